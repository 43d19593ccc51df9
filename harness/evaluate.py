"""Turn a finished LoadGen test folder into numbers: accuracy against targets, performance validity."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

from harness import demo, logs, untrusted
from harness.errors import DataError, HarnessError
from harness.registry import Benchmark
from harness.rounds import Round
from harness.util import listing, read_json

SCENARIO_METRICS = {
    "Offline": {"samples_per_second": "result_samples_per_second",
                "tokens_per_second_inferred": "result_inferred_tokens_per_second",
                "tokens_per_second": "result_tokens_per_second"},
    "Server": {"completed_samples_per_second": "result_completed_samples_per_sec",
               "scheduled_samples_per_second": "result_scheduled_samples_per_sec",
               "tokens_per_second_inferred": "result_inferred_completed_tokens_per_second",
               "tokens_per_second": "result_completed_tokens_per_second"},
    "SingleStream": {"p90_latency_ns": "result_90.00_percentile_latency_ns",
                     "early_stopping_p90_latency_ns": "early_stopping_latency_ss",
                     "qps_with_loadgen_overhead": "result_qps_with_loadgen_overhead",
                     "tokens_per_second_inferred": "result_inferred_tokens_per_second"},
    "MultiStream": {"p99_latency_ns": "result_99.00_percentile_per_query_latency_ns",
                    "early_stopping_p99_latency_ns": "early_stopping_latency_ms"},
}
LATENCY_KEYS = {"min": "result_min_latency_ns", "mean": "result_mean_latency_ns",
                "p50": "result_50.00_percentile_latency_ns", "p90": "result_90.00_percentile_latency_ns",
                "p95": "result_95.00_percentile_latency_ns", "p99": "result_99.00_percentile_latency_ns",
                "p99.9": "result_99.90_percentile_latency_ns", "max": "result_max_latency_ns"}
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
TOKEN_LATENCY_KEYS = {
    **{f"ttft_{k}": f"result_first_token_{k}_latency_ns" for k in ("min", "mean", "max")},
    **{f"ttft_p{float(p):g}": f"result_first_token_{p}_percentile_latency_ns" for p in PERCENTILES},
    **{f"tpot_{k}": f"result_time_to_output_token_{k}" for k in ("min", "mean", "max")},
    **{f"tpot_p{float(p):g}": f"result_time_per_output_token_{p}_percentile_ns" for p in PERCENTILES},
    "ttft_bound": "requested_server_ttft_latency", "tpot_bound": "requested_server_tpot_latency"}
"""Token mode (LLMs): time to first token and time per output token, in ns, and the Server bounds."""
TOKEN_BOUNDS = {"TTFT": ("ttft_p99", "ttft_bound"), "TPOT": ("tpot_p99", "tpot_bound")}
"""What the submission checker compares outside Offline: the 99th percentile with the scenario's bound."""
CHECKS = {"result_min_duration_met": "min duration not met",
          "result_min_queries_met": "min query count not met",
          "early_stopping_met": "early stopping criterion not met",
          "result_perf_constraints_met": "latency constraint not met"}


SUT_STATS = {"issued": int, "completed": int, "failed": int, "errors": list, "failed_indices": list,
             "stalled": (str, type(None)), "wall_s": float, "devices": list,
             "by_replica": list}


def sut_stats(log_dir: Path) -> dict[str, Any]:
    """What the test process's SUT counted (``sut_stats.json``; none when the test did not finish)."""
    path = log_dir / "sut_stats.json"
    if not path.is_file():
        return {}
    stats = untrusted.record(read_json(path, f"{path} is missing", "a sut_stats.json"), str(path), {}, SUT_STATS)
    if not all(isinstance(error, str) for error in stats.get("errors", [])):
        raise untrusted.fail(str(path), "its errors are not text")
    return stats


def sut_problems(stats: dict[str, Any]) -> list[str]:
    problems = []
    if stats.get("stalled"):
        problems.append(stats["stalled"])
    if stats.get("failed"):
        first = (stats.get("errors") or ["no error text"])[0].splitlines()[0]
        problems.append(f"{stats['failed']} of {stats.get('issued', '?')} samples failed in the SUT "
                        f"(first error: {first})")
    return problems


def loadgen_problems(detail: logs.Detail, rnd: Round, seeds: dict[str, int] | None = None) -> list[str]:
    """LoadGen errors, and seeds other than the round's (``seeds``: TEST05's instead)."""
    problems = [f"LoadGen error: {e}" for e in detail.errors]
    for key, expected in (rnd.seeds if seeds is None else seeds).items():
        found = detail.get(f"effective_{key}")
        if found is not None and int(found) != expected:
            why = "wrong LoadGen build" if seeds is None else "the audit.config was not applied"
            problems.append(f"{key} is {found}, round {rnd.name} needs {expected}: {why}")
    return problems


def performance(log_dir: Path, scenario: str, rnd: Round, seeds: dict[str, int] | None = None) -> dict[str, Any]:
    detail = logs.read_detail(log_dir / logs.DETAIL)
    reasons = [text for key, text in CHECKS.items() if detail.get(key) is False]
    if detail.get("result_invalid_reason"):
        reasons.append(f"LoadGen: {str(detail.get('result_invalid_reason')).strip()}")
    reasons += loadgen_problems(detail, rnd, seeds) + sut_problems(sut_stats(log_dir))
    loadgen_validity = detail.get("result_validity", "INVALID")
    metrics = {name: detail.get(key) for name, key in SCENARIO_METRICS[scenario].items() if detail.get(key) is not None}
    tokens = token_latencies(detail, scenario)
    for name, (value, bound) in TOKEN_BOUNDS.items():
        if bound in tokens and not tokens[value] < tokens[bound]:
            reasons.append(f"{name} p99 {tokens[value] / 1e6:.4g} ms is not below its bound of {tokens[bound] / 1e6:g} ms")
    return {
        "validity": "VALID" if loadgen_validity == "VALID" and not reasons else "INVALID",
        "loadgen_validity": loadgen_validity,
        "reasons": reasons,
        "metrics": metrics,
        "latency_ns": {name: detail.get(key) for name, key in LATENCY_KEYS.items() if detail.get(key) is not None},
        "token_latency_ns": tokens,
        "query_count": detail.get("result_query_count"),
        "min_duration_ms": detail.get("effective_min_duration_ms"),
        "loadgen_version": detail.get("loadgen_version"),
    }


def token_latencies(detail: logs.Detail, scenario: str) -> dict[str, float]:
    """TTFT/TPOT statistics (ns) of a token-mode run outside Offline, with the scenario's bounds."""
    if detail.get("requested_use_token_latencies") is not True or scenario == "Offline":
        return {}  # Offline streams no first token: neither TTFT nor TPOT is measured there
    return {name: detail.get(key) for name, key in TOKEN_LATENCY_KEYS.items()
            if isinstance(detail.get(key), (int, float)) and not isinstance(detail.get(key), bool)}


def score(bench: Benchmark, outputs: dict, data_dir: Path, rnd: Round, demo_tier: bool = False) -> dict[str, Any]:
    """Score decoded outputs (dataset index -> payload) and check every accuracy variant's targets:
    the round's, or on the demo tier the round's ratios of the reference execution's score on the
    same samples (``harness.demo``)."""
    metrics = bench.accuracy.score(outputs, data_dir)
    reference = demo.reference_metrics(bench, data_dir, list(outputs)) if demo_tier else None
    n = len(outputs)
    variants = {}
    for name in bench.spec.mlperf_names:
        checks = []
        for target in rnd.targets(name):
            if target.metric not in metrics:
                raise DataError(f"the {bench.spec.id} scorer returned no {target.metric!r}, which round "
                                f"{rnd.name} requires for {name}")
            if metrics[target.metric] is None:
                checks.append(target.not_scored(str(metrics.get("unscored", "not scored")), n,
                                                bench.spec.dataset_size))
                continue
            if reference is not None and reference.get(target.metric) is None:
                checks.append(target.not_scored("the reference's own score has no value: " + str(
                    reference.get("unscored", "not scored")), n, bench.spec.dataset_size))
                continue
            if reference is not None:
                target = demo.target(target, reference[target.metric])
            checks.append(target.check(float(metrics[target.metric]), n, bench.spec.dataset_size))
        variants[name] = {"passed": all(c.passed for c in checks), "checks": [dataclasses.asdict(c) for c in checks]}
    return {"samples": n, "full_dataset": n == bench.spec.dataset_size and not demo_tier, "metrics": metrics,
            "variants": variants, "targets": demo.TARGETS if demo_tier else f"MLPerf {rnd.name} targets"}


def newly_scored(recorded: dict[str, Any] | None, rescored: dict[str, Any]) -> list[str]:
    """The metrics a run's recorded accuracy left not scored (``None``) that ``rescored`` scores, or
    [] when there are none. A metric the run did score must come out the same, since the re-score
    reads the same log: one that differs means other data, and completing the run with it would mix
    two datasets' scores, so that raises ``HarnessError``."""
    before, after = (recorded or {}).get("metrics", {}), rescored["metrics"]
    gaps = [name for name, value in before.items() if value is None and after.get(name) is not None]
    if not gaps:
        return []
    differ = [name for name, value in before.items() if value is not None and name != "unscored"
              and not _same(value, after.get(name))]
    if differ or (recorded or {}).get("samples") != rescored["samples"]:
        raise HarnessError(f"this re-score would complete {', '.join(gaps)}, but it gives "
                           f"{', '.join(differ) or 'the sample count'} another value than the run recorded: the "
                           f"data folder is not the one the run was scored with; pass that one with --data")
    return gaps


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def save_samples(bench: Benchmark, outputs: dict, data_dir: Path, rnd: Round, log_dir: Path) -> None:
    """Keep the outputs of the round's listed samples as files next to the log (the checker requires
    them in the submission), once: the benchmark's ``accuracy.save_samples`` writes them into
    ``log_dir / accuracy.SAMPLES_DIR``, which a re-score leaves as it is."""
    ids = list(dict.fromkeys(i for name in bench.spec.mlperf_names for i in rnd.accuracy_samples.get(name, ())))
    if not ids or not hasattr(bench.accuracy, "save_samples"):
        return
    folder = log_dir / bench.accuracy.SAMPLES_DIR
    if folder.exists():
        return
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    bench.accuracy.save_samples(outputs, data_dir, ids, partial)
    partial.rename(folder)


def accuracy(bench: Benchmark, log_dir: Path, data_dir: Path, rnd: Round, start: int, expected: int,
             demo_tier: bool = False) -> dict[str, Any]:
    """Score ``log_dir``'s accuracy log; LoadGen index i is dataset index ``start + i``.

    The caller writes ``accuracy.txt`` from ``bench.accuracy.accuracy_text(result["metrics"])``.
    """
    records = logs.read_accuracy(log_dir / logs.ACCURACY)
    local = logs.decode_outputs(records, bench.spec.payload_dtype, expected, log_dir / logs.ACCURACY)
    if len(local) != expected:
        missing = sorted(set(range(expected)) - set(local))
        raise DataError(f"{log_dir / logs.ACCURACY} covers {len(local)} of {expected} samples; missing "
                        f"{listing(missing)}")
    outputs = {start + i: payload for i, payload in local.items()}
    result = score(bench, outputs, data_dir, rnd, demo_tier)
    save_samples(bench, outputs, data_dir, rnd, log_dir)
    detail = logs.read_detail(log_dir / logs.DETAIL)
    result["problems"] = loadgen_problems(detail, rnd) + sut_problems(sut_stats(log_dir))
    return result
