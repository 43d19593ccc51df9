"""Rounds are data: one TOML file per MLPerf Inference round.

A round file holds the LoadGen pin and seeds, accuracy targets, required scenarios, what the
submission checker requires of performance runs, the compliance tests (their audit.config lines
and which MLPerf names need them) and the submission tree's layout and limits.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, RoundMismatch

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
        """The mlperf.conf compiled into the installed LoadGen, which its first FromConfig applies (the
        submission tree's measurements carry it); checked to hold the round's seeds."""
        import mlperf_loadgen

        binary = Path(mlperf_loadgen.__file__).read_bytes()
        start = binary.find(b"# The format of this config file is")
        text = binary[start:binary.find(b"\0", start)].decode(errors="replace") if start >= 0 else ""
        if str(self.seeds["qsl_rng_seed"]) not in text:
            raise RoundMismatch(f"the installed LoadGen ({mlperf_loadgen.__file__}) embeds no mlperf.conf with the "
                                f"seeds of round {self.name}; install mlcommons-loadgen=={self.loadgen_version}")
        return text

    def check_loadgen(self) -> str:
        """Return the installed LoadGen version; raise when it is not the round's pin."""
        try:
            installed = importlib.metadata.version("mlcommons-loadgen")
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != self.loadgen_version:
            raise RoundMismatch(
                f"round {self.name} needs mlcommons-loadgen=={self.loadgen_version} (its embedded "
                f"mlperf.conf carries the round's seeds), but {installed} is installed. "
                f"Install the pinned version: pip install mlcommons-loadgen=={self.loadgen_version}"
            )
        return installed


def available_rounds() -> list[str]:
    return sorted(p.stem.replace("_", ".") for p in _DIR.glob("v*.toml"))


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
    )
