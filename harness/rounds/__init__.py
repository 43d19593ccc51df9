"""Rounds are data: one TOML file per MLPerf Inference round (LoadGen pin, seeds, targets)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, RoundMismatch

DEFAULT_ROUND = "v4.1"
_DIR = Path(__file__).parent


@dataclass(frozen=True)
class MetricTarget:
    metric: str
    reference: float
    min_ratio: float
    max_reference: float | None = None
    max_ratio: float | None = None
    per_sample: bool = False

    def check(self, value: float, n_samples: int, dataset_size: int) -> "TargetCheck":
        """Compare a value with this target, scaling per-sample totals to the samples scored."""
        scale = n_samples / dataset_size if self.per_sample else 1.0
        low = self.reference * self.min_ratio * scale
        high = None
        if self.max_ratio is not None:
            high = (self.max_reference or self.reference) * self.max_ratio * scale
        passed = value >= low and (high is None or value <= high)
        note = f"scaled to {n_samples} of {dataset_size} samples" if scale != 1.0 else ""
        return TargetCheck(self.metric, value, low, high, value / low if low else float("inf"), passed, note)


@dataclass(frozen=True)
class TargetCheck:
    metric: str
    value: float
    target: float
    upper: float | None
    ratio: float
    """value / target: 1.0 or more passes a lower bound."""
    passed: bool
    note: str


@dataclass(frozen=True)
class Round:
    name: str
    loadgen_version: str
    seeds: dict[str, int]
    accuracy: dict[str, tuple[MetricTarget, ...]]
    required_scenarios: dict[str, dict[str, tuple[str, ...]]]

    def targets(self, mlperf_name: str) -> tuple[MetricTarget, ...]:
        if mlperf_name not in self.accuracy:
            raise HarnessError(f"round {self.name} has no accuracy targets for {mlperf_name!r}")
        return self.accuracy[mlperf_name]

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
    path = _DIR / f"{name.replace('.', '_')}.toml"
    if not path.exists():
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
    return Round(raw["name"], raw["loadgen_version"], dict(raw["seeds"]), accuracy, required)
