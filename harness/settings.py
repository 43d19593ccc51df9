"""Run settings, validated in one place, and the ONE conversion to ``lg.TestSettings``.

Precedence for LoadGen values: LoadGen's embedded mlperf.conf < the user.conf in use (the
benchmark's own ``user.conf`` unless ``--user-conf`` names another) < scenario and mode set
from the command line. ``FromConfig`` of the user.conf runs exactly once per process: LoadGen
(4.1 on) applies its embedded mlperf.conf only on the first call, and a second call logs an
ERROR that invalidates the run, so every LoadGen test runs in its own process (see
``harness.runner``). A round whose LoadGen embeds no mlperf.conf (v4.0) has its own read first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import untrusted, userconf
from harness.errors import InvalidSettings
from harness.spec import DTYPES, MODES, SCENARIOS, BenchmarkSpec
from harness.util import suggest

_DEVICE = re.compile(r"^(cpu|cuda|rngd)(:(\d+))?$")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, resolved. Written to ``run.json`` and read back by each test process."""

    benchmark: str
    scenario: str
    mode: str
    data_dir: str
    demo: bool
    user_conf: str
    dtype: str = "fp32"
    device: str = "cpu"
    n_devices: int = 1
    batch_size: int = 1
    batch_tokens: int | None = None
    """Cap on a batch's length (``BenchmarkSpec.padded_batches``); None: no cap."""
    n_count: int | None = None
    n_partitions: int = 1
    partition_offset: int = 0
    stall_timeout_s: float = 600.0
    batch_wait_ms: float | None = None
    timeout_s: float | None = None
    trace: bool = False
    null_backend: bool = False
    """Replace the model with ``NullBackend``: a harness-overhead and smoke-test mode."""
    round: str = "v4.1"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, where: str = "run.json") -> "RunConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidSettings(f"{where} is not valid JSON ({exc})") from exc
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "RunConfig":
        """Settings read back from a file (run.json, a manifest, result.json): every field present,
        of its type, and no other."""
        fields = {f.name: _FIELD_TYPES[str(f.type)] for f in dataclasses.fields(cls)}
        required = {name: kind for name, kind in fields.items() if name in _REQUIRED}
        optional = {name: kind for name, kind in fields.items() if name not in _REQUIRED}
        return cls(**untrusted.record(data, f"{where} settings", required, optional))

    @property
    def partitioned(self) -> bool:
        return self.n_partitions > 1


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str, "bool": bool, "int": int, "float": float, "int | None": (int, type(None)),
    "float | None": (float, type(None))}
_REQUIRED = ("benchmark", "scenario", "mode", "data_dir", "demo", "user_conf")


def device_kind(device: str) -> str | None:
    """``cuda:1`` -> ``cuda``; None for a string that is not a device."""
    match = _DEVICE.match(device)
    return match.group(1) if match else None


def validate(config: RunConfig, spec: BenchmarkSpec) -> list[str]:
    """Raise InvalidSettings listing every problem with the requested run (its user.conf included);
    return warnings about user.conf keys LoadGen would ignore."""
    problems = []
    if config.scenario not in spec.scenarios:
        problems.append(f"scenario {config.scenario!r} is not one of {spec.id}'s scenarios "
                        f"({', '.join(spec.scenarios)}){suggest(config.scenario, SCENARIOS)}")
    if config.mode not in MODES:
        problems.append(f"mode {config.mode!r} is unknown; use one of {', '.join(MODES)}{suggest(config.mode, MODES)}")
    if config.dtype not in DTYPES:
        problems.append(f"dtype {config.dtype!r} is unknown; use one of {', '.join(DTYPES)}")
    if (kind := device_kind(config.device)) is None:
        problems.append(f"device {config.device!r} is unknown; use cpu, cuda, cuda:N, rngd or rngd:N")
    elif kind not in spec.devices:
        problems.append(f"{spec.id}'s image runs on {', '.join(spec.devices)}, not {kind}; "
                        f"use --device {spec.devices[0]}")
    if config.batch_tokens is not None and config.batch_tokens < 1:
        problems.append(f"--batch-tokens must be at least 1, got {config.batch_tokens}")
    for name in ("n_devices", "batch_size", "n_partitions"):
        if getattr(config, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if config.n_count is not None and config.n_count < 1:
        problems.append(f"--n-count must be at least 1, got {config.n_count}")
    if not 0 <= config.partition_offset < config.n_partitions:
        problems.append(f"--partition-offset {config.partition_offset} must be in [0, {config.n_partitions}) "
                        f"for --n-partitions {config.n_partitions}")
    if config.partitioned and config.mode != "accuracy":
        problems.append("partitioned runs are accuracy-only evaluation aids; use --mode accuracy")
    if config.stall_timeout_s <= 0:
        problems.append("--stall-timeout must be positive")
    if not Path(config.user_conf).is_file():
        problems.append(f"user.conf {config.user_conf} does not exist; pass an existing file to --user-conf")
    if problems:
        raise InvalidSettings("invalid run settings:\n  - " + "\n  - ".join(problems))
    return userconf.check(Path(config.user_conf), spec.conf_key)


def check_sample_count(config: RunConfig, available: int) -> int:
    """Return the number of samples the run uses (the first N of the dataset)."""
    if config.n_count is None:
        return available
    if config.n_count > available:
        raise InvalidSettings(f"--n-count {config.n_count} is above the dataset size {available} "
                              f"in {config.data_dir}; use at most {available}")
    return config.n_count


def devices(config: RunConfig) -> list[str]:
    """``cuda`` with 2 devices -> cuda:0, cuda:1; ``cuda:2`` -> cuda:2, cuda:3; cpu replicas stay cpu."""
    match = _DEVICE.match(config.device)
    assert match, config.device
    kind, first = match.group(1), int(match.group(3) or 0)
    if kind == "cpu":
        return ["cpu"] * config.n_devices
    wanted = [f"{kind}:{first + i}" for i in range(config.n_devices)]
    if kind != "cuda":
        return wanted  # the backend that drives these devices checks that they exist
    import torch

    available = torch.cuda.device_count()
    if first + config.n_devices > available:
        hint = ("; in a container, run the service's cuda profile (docker compose --profile cuda run --rm "
                f"{config.benchmark}-cuda)" if os.environ.get("HARNESS_IMAGE_COMMIT") else "")
        raise InvalidSettings(f"--device {config.device} --n-devices {config.n_devices} needs "
                              f"{', '.join(wanted)} but {available} CUDA device(s) are visible; "
                              f"use --device cpu or fewer devices{hint}")
    return wanted


def test_settings(spec: BenchmarkSpec, scenario: str, test_mode: str, user_conf: Path,
                  round_conf: str | None = None):
    """Build lg.TestSettings: mlperf.conf + user.conf, then scenario/mode. LoadGen builds that embed
    the round's mlperf.conf apply it on the one FromConfig of the user.conf; where the round brings
    its own (``round_conf``: LoadGen 4.0.1 embeds none), that file is read first, as its reference
    harness does."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    if round_conf is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            conf.write(round_conf)
            conf.flush()
            if settings.FromConfig(conf.name, spec.conf_key, scenario) != 0:
                raise InvalidSettings("LoadGen could not read the round's mlperf.conf (harness/rounds): the round "
                                      "file is damaged")
    status = settings.FromConfig(str(user_conf), spec.conf_key, scenario)
    if status != 0:
        raise InvalidSettings(f"LoadGen could not read {user_conf} (status {status}): each line must be "
                              f"'model.scenario.key = number', and comments need '# ' with a space")
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = {"accuracy": lg.TestMode.AccuracyOnly, "performance": lg.TestMode.PerformanceOnly}[test_mode]
    return settings


def log_settings(outdir: Path, trace: bool):
    """Default log names (the checker looks for them); trace off unless asked for (it grows to GBs)."""
    import mlperf_loadgen as lg

    if not outdir.is_dir():  # LoadGen does not create it, and aborts at exit when it is missing
        raise InvalidSettings(f"log folder {outdir} does not exist")
    out = lg.LogOutputSettings()
    out.outdir = str(outdir)
    settings = lg.LogSettings()
    settings.log_output = out
    settings.enable_trace = trace
    return settings


def audit_values(audit: str, scenario: str) -> dict[str, str]:
    """The key/value lines of an audit.config that apply to a scenario (LoadGen's lookup order:
    ``*.<scenario>.key`` before ``*.*.key``); comments and blank lines are skipped."""
    general, specific = {}, {}
    for line in audit.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, value = (part.strip() for part in line.partition("="))
        model, _, rest = name.partition(".")
        where, _, key = rest.partition(".")
        if model != "*" or not key or not value:
            raise InvalidSettings(f"audit line {line!r} is not '*.<scenario or *>.<key> = <value>'")
        if where == scenario:
            specific[key] = value
        elif where == "*":
            general[key] = value
    return general | specific


def expected_samples(settings, scenario: str, performance_count: int) -> int:
    """The samples LoadGen expects a performance run to issue, computed as LoadGen 4.1 computes them
    (``TestSettingsInternal``, then ``IssueQueries``) to turn an ``accuracy_log_sampling_target`` into
    a logging probability: the same operations in the same order, truncated to whole numbers where
    its C++ stores them in unsigned integers. ``performance_count``: the QSL's.

    Offline's one query holds max(min_query_count, 1.1 x duration x QPS) samples (or the performance
    sample count with ``performance_issue_unique``); the other scenarios expect QPS x duration
    queries (QPS = 1 / expected latency for the stream scenarios), at least min_query_count, each of
    ``samples_per_query`` samples (MultiStream) or one. (3D-UNet's ``sample_concatenate_permutation``,
    which raises the SingleStream query count, is not readable from the Python TestSettings of 4.1.)
    """
    min_duration_ms = settings.min_duration_ms
    if scenario == "Offline":
        qps = settings.offline_expected_qps
        performance_count = settings.performance_sample_count_override or performance_count
        per_query = (performance_count if settings.performance_issue_unique else
                     max(settings.min_query_count, int(1.1 * (min_duration_ms / 1000) * qps)))
        return max(int(qps * min_duration_ms / 1000), per_query)  # its minimum: one query of per_query
    qps, per_query = {"Server": (settings.server_target_qps, 1),
                      "SingleStream": (1e9 / settings.single_stream_expected_latency_ns, 1),
                      "MultiStream": (1e9 / settings.multi_stream_expected_latency_ns,
                                      settings.multi_stream_samples_per_query)}[scenario]
    return max(int(qps * min_duration_ms / 1000) * per_query, settings.min_query_count * per_query)


def sampling_probability(target: int, expected: int) -> float:
    """LoadGen's ``accuracy_log_sampling_target / expected_queries`` (unclamped: a value of 1 or more
    logs every response, as it does in LoadGen)."""
    return target / expected if expected else float("inf")


UNSETTABLE = {"sample_concatenate_permutation": "this LoadGen takes it only from its embedded mlperf.conf, neither "
                                                 "as a TestSettings attribute nor from a user.conf"}
"""Audit keys the round's LoadGen offers no way to set from outside; recorded as not applied."""


def apply_audit(settings, audit: str, scenario: str, performance_count: int) -> dict[str, object]:
    """Apply a compliance test's audit.config lines to TestSettings, as LoadGen would apply the file;
    returns the attributes set.

    Used where the round's LoadGen cannot take the file itself: 4.1.30 reads an audit.config as a
    second conf file (an ERROR in the log, which the checker rejects) and takes the accuracy-log and
    test05 keys only from its embedded mlperf.conf, so they would be ignored.
    """
    import mlperf_loadgen as lg

    modes = {0: lg.TestMode.SubmissionRun, 1: lg.TestMode.AccuracyOnly, 2: lg.TestMode.PerformanceOnly,
             3: lg.TestMode.FindPeakPerformance}
    applied: dict[str, object] = {}
    unset: dict[str, str] = {}
    values = audit_values(audit, scenario)
    for key, raw in values.items():
        if key == "mode":
            settings.mode, applied[key] = modes[int(raw)], int(raw)
        elif key in ("performance_issue_unique", "performance_issue_same", "test05"):
            applied[key] = bool(int(raw))
        elif key in ("accuracy_log_rng_seed", "performance_issue_same_index", "min_query_count"):
            applied[key] = int(raw, 0)
        elif key == "min_duration":
            applied["min_duration_ms"] = int(raw)
        elif key == "accuracy_log_probability":
            applied[key] = float(raw) * 0.01  # percent in conf files
        elif key in UNSETTABLE:
            unset[key] = f"{raw} (not applied: {UNSETTABLE[key]})"
        elif key != "accuracy_log_sampling_target":
            raise InvalidSettings(f"audit key {key!r} cannot be applied to LoadGen's TestSettings here")
    for name, value in applied.items():
        if name != "mode":
            setattr(settings, name, value)
    applied.update(unset)
    if "accuracy_log_sampling_target" in values:  # LoadGen: target / expected samples, after the rest
        expected = expected_samples(settings, scenario, performance_count)
        settings.accuracy_log_probability = applied["accuracy_log_probability"] = sampling_probability(
            int(values["accuracy_log_sampling_target"]), expected)
    return applied
