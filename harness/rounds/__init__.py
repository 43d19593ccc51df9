"""Rounds are data: one TOML file per MLPerf Inference round.

A round file holds the LoadGen pin and seeds, accuracy targets, required scenarios, what the
submission checker requires of performance runs, the compliance tests (their audit.config lines
and which MLPerf names need them) and the submission tree's layout and limits.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import loadgen
from harness.errors import HarnessError, RoundMismatch

if TYPE_CHECKING:
    from harness.spec import BenchmarkSpec

DEFAULT_ROUND = "v4.1"
ROUND_NAME = re.compile(r"^v[0-9]+\.[0-9]+$")
"""How a round is named (``v4.1``): the name picks its data file, so nothing else is accepted."""
_DIR = Path(__file__).parent


@dataclass(frozen=True)
class MetricTarget:
    metric: str
    reference: float
    min_ratio: float
    max_reference: float | None = None
    max_ratio: float | None = None
    per_sample: bool = False

    def bounds(self, n_samples: int, dataset_size: int) -> tuple[float, float | None, str]:
        """The lower and upper bound (None: none) for ``n_samples`` of ``dataset_size``, per-sample
        totals scaled to the samples scored, and a note saying so."""
        scale = n_samples / dataset_size if self.per_sample else 1.0
        low = self.reference * self.min_ratio * scale
        high = None
        if self.max_ratio is not None:
            high = (self.max_reference or self.reference) * self.max_ratio * scale
        return low, high, f"scaled to {n_samples} of {dataset_size} samples" if scale != 1.0 else ""

    def check(self, value: float, n_samples: int, dataset_size: int) -> "TargetCheck":
        """Compare a value with this target, scaling per-sample totals to the samples scored."""
        low, high, note = self.bounds(n_samples, dataset_size)
        passed = value >= low and (high is None or value <= high)
        return TargetCheck(self.metric, value, low, high, value / low if low else float("inf"), passed, note)

    def not_scored(self, why: str, n_samples: int, dataset_size: int) -> "TargetCheck":
        """The check of a metric the scorer could not compute: failed, with why."""
        low, high, _ = self.bounds(n_samples, dataset_size)
        return TargetCheck(self.metric, None, low, high, 0.0, False, f"NOT SCORED: {why}")


@dataclass(frozen=True)
class TargetCheck:
    metric: str
    value: float | None
    """None: the scorer could not compute the metric (the check fails; ``note`` says why)."""
    target: float
    upper: float | None
    ratio: float
    """value / target: 1.0 or more passes a lower bound."""
    passed: bool
    note: str


@dataclass(frozen=True)
class PerformanceRules:
    """What the submission checker requires of one MLPerf name's performance runs."""

    sample_count: int
    offline_samples_per_query: int
    server_latency_ms: float | None = None
    result: dict[str, str] = field(default_factory=dict)
    """Detail-log key of the reported result per scenario, where it differs from the round's default."""
    equal_issue: bool = False
    """The checker requires equal-issue mode (LoadGen's ``sample_concatenate_permutation``)."""
    server_ttft_ms: float | None = None
    server_tpot_ms: float | None = None
    """An LLM's token-latency bounds: token latencies must be measured, and in Server the p99 time to
    first token and time per output token must stay below these (the checker's own constants)."""


@dataclass(frozen=True)
class Round:
    name: str
    loadgen_version: str
    seeds: dict[str, int]
    accuracy: dict[str, tuple[MetricTarget, ...]]
    required_scenarios: dict[str, dict[str, tuple[str, ...]]]
    test05_seeds: dict[str, int] = field(default_factory=dict)
    performance: dict[str, PerformanceRules] = field(default_factory=dict)
    audits: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """Compliance test -> LoadGen conf key (or "*") -> audit.config lines."""
    compliance: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """MLPerf name -> the compliance tests a closed submission needs."""
    tolerances: dict[str, float] = field(default_factory=dict)
    """Compliance test (and ``small_latency``) -> allowed performance difference, as a fraction."""
    audit_via: str = "file"
    """How a compliance test's audit.config reaches LoadGen: ``file`` (where LoadGen reads it) or
    ``settings`` (applied to TestSettings by the harness, for LoadGen builds that mishandle the file)."""
    submission: dict[str, Any] = field(default_factory=dict)
    """The submission tree: layout, limits, system description and implementation fields."""
    accuracy_samples: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """MLPerf name -> the samples whose outputs an accuracy run keeps as files for the checker (the
    benchmark's ``accuracy.save_samples`` writes them; SDXL's images)."""
    mlperf_conf: str | None = None
    """The round's mlperf.conf where its LoadGen embeds none (v4.0): applied through FromConfig
    before the user.conf."""
    loadgen_logs_as: str | None = None
    """The version the round's LoadGen writes in its detail log, where it is not ``loadgen_version``
    (4.0.1 logs "4.0")."""

    @property
    def logged_loadgen_version(self) -> str:
        return self.loadgen_logs_as or self.loadgen_version

    def includes(self, spec: "BenchmarkSpec") -> bool:
        """Whether a benchmark is part of this round (its MLPerf names have targets here)."""
        return any(name in self.accuracy for name in spec.mlperf_names)

    def check_benchmark(self, spec: "BenchmarkSpec") -> None:
        """Refuse, by name, a benchmark this round does not have."""
        if not self.includes(spec):
            others = sorted((name for name in available_rounds() if load_round(name).includes(spec)), key=_order)
            where = f"it is part of {', '.join(others)} (--round {others[-1]})" if others else "no round has it"
            raise RoundMismatch(f"{spec.id} is not part of round {self.name}; {where}")

    def rules(self, mlperf_name: str) -> PerformanceRules:
        if mlperf_name not in self.performance:
            raise HarnessError(f"round {self.name} has no performance rules for {mlperf_name!r}")
        return self.performance[mlperf_name]

    def audit_config(self, test: str, conf_key: str) -> str:
        """The audit.config text of a compliance test for a benchmark.

        LoadGen applies audit.config with model ``*``, so lines naming this benchmark's conf key
        are written with ``*`` (the official procedure leaves them to the harness) and lines
        naming another benchmark are left out.
        """
        if test not in self.audits:
            raise HarnessError(f"round {self.name} has no compliance test {test!r}; it has "
                               f"{', '.join(self.audits) or 'none'}")
        lines = []
        for line in self.audits[test].get(conf_key, self.audits[test]["*"]):
            model, _, rest = line.partition(".")
            if model in ("*", conf_key):
                lines.append(f"*.{rest}")
        return "\n".join(lines) + "\n"

    def targets(self, mlperf_name: str) -> tuple[MetricTarget, ...]:
        if mlperf_name not in self.accuracy:
            raise HarnessError(f"round {self.name} has no accuracy targets for {mlperf_name!r}")
        return self.accuracy[mlperf_name]

    def embedded_mlperf_conf(self) -> str:
        """The mlperf.conf LoadGen applies first (the submission tree's measurements carry it): the
        round's own where its LoadGen embeds none, else the one compiled into the round's LoadGen,
        checked to hold the round's seeds."""
        if self.mlperf_conf is not None:
            return self.mlperf_conf
        module = loadgen.module_file(self.loadgen_version, self.name)
        binary = module.read_bytes()
        start = binary.find(b"# The format of this config file is")
        text = binary[start:binary.find(b"\0", start)].decode(errors="replace") if start >= 0 else ""
        if str(self.seeds["qsl_rng_seed"]) not in text:
            raise RoundMismatch(f"the LoadGen at {module} embeds no mlperf.conf with the seeds of round "
                                f"{self.name}; install mlcommons-loadgen=={self.loadgen_version}")
        return text

    def check_loadgen(self) -> str:
        """Return the round's LoadGen version, installed or beside the installed one
        (``harness.loadgen``); raise naming the fix when it is neither."""
        loadgen.locate(self.loadgen_version, self.name)
        return self.loadgen_version


def available_rounds() -> list[str]:
    return sorted(p.stem.replace("_", ".") for p in _DIR.glob("v*.toml"))


def default_round(spec: "BenchmarkSpec") -> str:
    """The round a benchmark runs in unless told: the default one, or the newest that has it."""
    if load_round(DEFAULT_ROUND).includes(spec):
        return DEFAULT_ROUND
    having = [name for name in available_rounds() if load_round(name).includes(spec)]
    return max(having, key=_order, default=DEFAULT_ROUND)


def _order(name: str) -> tuple[int, ...]:
    """A round name's place in time: v4.1 before v10.0."""
    return tuple(int(part) for part in name[1:].split("."))


def load_round(name: str = DEFAULT_ROUND) -> Round:
    path = _DIR / f"{name.replace('.', '_')}.toml" if isinstance(name, str) and ROUND_NAME.match(name) else None
    if path is None or not path.exists():
        raise HarnessError(f"unknown round {name!r}; available: {', '.join(available_rounds())}")
    raw = tomllib.loads(path.read_text())
    accuracy = {
        mlperf_name: tuple(MetricTarget(metric=m, **fields) for m, fields in metrics.items())
        for mlperf_name, metrics in raw["accuracy"].items()
    }
    required = {
        system: {k: tuple(v) for k, v in table.items()}
        for system, table in raw.get("required_scenarios", {}).items()
    }
    compliance = raw.get("compliance", {})
    return Round(
        raw["name"], raw["loadgen_version"], dict(raw["seeds"]), accuracy, required,
        test05_seeds=dict(raw.get("test05_seeds", {})),
        performance={name: PerformanceRules(**rules) for name, rules in raw.get("performance", {}).items()},
        audits={test: {key: tuple(lines) for key, lines in table.items()}
                for test, table in compliance.get("audit", {}).items()},
        compliance={name: tuple(tests) for name, tests in compliance.get("required", {}).items()},
        tolerances=dict(compliance.get("tolerance", {})),
        audit_via=compliance.get("audit_via", "file"),
        submission=raw.get("submission", {}),
        accuracy_samples={name: tuple(ids) for name, ids in raw.get("accuracy_samples", {}).items()},
        mlperf_conf=raw.get("mlperf_conf"), loadgen_logs_as=raw.get("loadgen_logs_as"),
    )
