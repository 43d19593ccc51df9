"""Finished run folders read back: what ran (result.json) and where its LoadGen logs are."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness import logs, untrusted
from harness.errors import HarnessError
from harness.spec import MODES, SCENARIOS
from harness.util import read_json


@dataclass(frozen=True)
class Run:
    folder: Path
    result: dict[str, Any]

    @property
    def benchmark(self) -> str:
        return self.result["benchmark"]

    @property
    def scenario(self) -> str:
        return self.result["settings"]["scenario"]

    @property
    def round(self) -> str:
        return self.result["round"]

    @property
    def incomplete(self) -> str | None:
        """Why the run did not finish (a test failed or was killed, the harness was interrupted), or None."""
        return (self.result.get("incomplete") or {}).get("reason")

    @property
    def compliance(self) -> dict[str, Any] | None:
        """The verification of a compliance run (``harness compliance``); None for other runs."""
        return self.result.get("compliance")

    @cached_property
    def accuracy_dir(self) -> Path | None:
        folder = self.folder / "accuracy"
        return folder if (folder / logs.ACCURACY).is_file() else None

    @cached_property
    def performance_dir(self) -> Path | None:
        folder = self.folder / "performance" / "run_1"
        return folder if self.compliance is None and (folder / logs.DETAIL).is_file() else None

    def describe(self) -> str:
        kind = f"{self.compliance['test']} compliance" if self.compliance else self.result["settings"]["mode"]
        return f"{self.folder} ({self.benchmark} {self.scenario} {kind}{', INCOMPLETE' if self.incomplete else ''})"

    def finished(self) -> "Run":
        """This run, or an error saying why it did not finish (for commands that need whole runs)."""
        if self.incomplete:
            raise HarnessError(f"{self.folder} is an incomplete run ({self.incomplete}); run it again")
        return self


RESULT = {"benchmark": str, "mlperf_names": list, "round": str, "demo": bool, "samples": int, "settings": dict}
NUMBER = (int, float)
# what reports, diff and submit read of the sections, each of its type where present
ACCURACY = {"samples": int, "full_dataset": bool, "metrics": dict, "variants": dict, "problems": list, "targets": str,
            "completed": dict}
CHECK = {"metric": str, "value": (*NUMBER, type(None)), "target": NUMBER, "upper": (*NUMBER, type(None)),
         "ratio": NUMBER, "passed": bool, "note": str}
PERFORMANCE = {"validity": str, "loadgen_validity": str, "reasons": list, "metrics": dict, "latency_ns": dict,
               "token_latency_ns": dict,
               "query_count": (int, type(None)), "min_duration_ms": (int, type(None)),
               "loadgen_version": (str, type(None))}


def _sections(result: dict[str, Any], where: str) -> None:
    """The accuracy and performance sections: the keys reports and submissions read, of their types."""
    accuracy = result.get("accuracy")
    if accuracy is not None:
        untrusted.record(accuracy, f"{where} accuracy", {}, ACCURACY, extra=True)
        for name, variant in accuracy.get("variants", {}).items():
            untrusted.record(variant, f"{where} accuracy {name}", {"passed": bool, "checks": list})
            for check in variant["checks"]:
                untrusted.record(check, f"{where} accuracy {name}", {k: CHECK[k] for k in ("metric", "value", "target",
                                 "ratio", "passed")}, CHECK)
        if not all(untrusted.is_a(v, (*NUMBER, str, type(None))) for v in accuracy.get("metrics", {}).values()):
            raise untrusted.fail(where, "its accuracy metrics are not numbers")
    performance = result.get("performance")
    if performance is not None:
        untrusted.record(performance, f"{where} performance", {"validity": str}, PERFORMANCE, extra=True)
        numbers = [*performance.get("metrics", {}).values(), *performance.get("latency_ns", {}).values(),
                   *performance.get("token_latency_ns", {}).values()]
        if not all(untrusted.is_a(v, NUMBER) for v in numbers) or not all(
                isinstance(r, str) for r in performance.get("reasons", [])):
            raise untrusted.fail(where, "its performance metrics are not numbers, or its reasons not text")


def read_run(folder: Path) -> Run:
    """A run folder made by ``harness run``, ``merge`` or ``compliance``; errors name what is wrong.

    ``result.json`` may come from anyone: the fields the harness builds paths, commands or pages
    from are checked (a known benchmark and round, its MLPerf names, a scenario, mode and settings
    of the right types, a known compliance test), and ``run_dir`` is where the folder is now, not
    what the file says.
    """
    from harness import registry
    from harness.compliance import TESTS
    from harness.rounds import ROUND_NAME
    from harness.settings import RunConfig

    source = folder / "result.json"
    if not folder.is_dir():
        raise HarnessError(f"{folder} is not a folder; pass run folders made by `harness run`")
    if not source.is_file():
        raise HarnessError(f"{folder} has no result.json: it is not a finished run folder made by `harness run`")
    result = read_json(source, f"{source} is missing", "a result.json written by the harness")
    where = str(source)
    untrusted.record(result, where, RESULT, extra=True)
    spec = registry.get(result["benchmark"]).spec
    if not ROUND_NAME.match(result["round"]):
        raise untrusted.fail(where, f"round {result['round']!r} is not a round's name (v4.1)")
    config = RunConfig.from_dict(result["settings"], where)
    if config.scenario not in SCENARIOS or config.mode not in MODES or config.benchmark != spec.id:
        raise untrusted.fail(where, f"its settings name scenario {config.scenario!r}, mode {config.mode!r} and "
                                    f"benchmark {config.benchmark!r}")
    if not all(name in spec.mlperf_names for name in result["mlperf_names"]):
        raise untrusted.fail(where, f"MLPerf names {result['mlperf_names']!r} are not {spec.id}'s")
    checked = result.get("compliance")
    if checked is not None and (not isinstance(checked, dict) or checked.get("test") not in TESTS):
        raise untrusted.fail(where, "its compliance section names no known test")
    _sections(result, where)
    incomplete = result.get("incomplete")
    if incomplete is not None:
        untrusted.record(incomplete, f"{where} incomplete", {"reason": str})
    return Run(folder.resolve(), result | {"run_dir": str(folder.resolve())})
