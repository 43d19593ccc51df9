"""Harness overhead: our SUT machinery around a no-op model vs a bare LoadGen null SUT.

Prints, measured in this one run (the machine is noisy, so compare within a run):
  * Offline throughput of each and their ratio (target >= 0.5), and the per-sample overhead
    1/ours - 1/bare (target <= 20 us);
  * the highest Server target QPS at which our SUT's run is VALID (target >= 20,000).

Usage: python tests/perf/bench_overhead.py [--min-duration-ms 3000]
"""

from __future__ import annotations

import argparse

import mlperf_loadgen as lg
from common import run_test

from harness import logs
from harness.sut import QSL, SUT, BatchPolicy, NullBackend, SutStats  # noqa: E402

SAMPLES = 1024


def settings_for(scenario: str, args, qps: float):
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, scenario)
    s.mode = lg.TestMode.PerformanceOnly
    s.min_duration_ms = args.min_duration_ms
    s.min_query_count = 1
    s.offline_expected_qps = qps
    s.server_target_qps = qps
    s.server_target_latency_ns = 10_000_000  # mlperf.conf's default Server bound
    return s


def bare(scenario: str, args, qps: float) -> logs.Detail:
    """The reference null SUT: completes every sample inside IssueQuery, one batched call."""
    def issue(samples):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(SAMPLES, SAMPLES, lambda ix: None, lambda ix: None)
    try:
        return run_test(sut, qsl, settings_for(scenario, args, qps))
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)


def ours(scenario: str, args, qps: float) -> logs.Detail:
    policy = BatchPolicy(args.batch, 0.0, sort_by_length=True) if scenario == "Offline" else BatchPolicy(args.batch, 0.0005)
    sut = SUT(lambda i: i, [NullBackend], policy, "uint8", 60.0, sample_length=lambda i: i)
    qsl = QSL(SAMPLES, SAMPLES, lambda ix: None, lambda ix: None, SutStats())
    try:
        detail = run_test(sut.start(), qsl.start(), settings_for(scenario, args, qps))
    finally:
        sut.stop()
        qsl.stop()
    assert sut.stats.failed == 0, sut.stats.errors
    return detail


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min-duration-ms", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()

    b = bare("Offline", args, 600_000).get("result_samples_per_second")
    o = ours("Offline", args, 300_000).get("result_samples_per_second")
    overhead_us = (1 / o - 1 / b) * 1e6
    print(f"Offline bare LoadGen null SUT : {b:12,.0f} samples/s")
    print(f"Offline harness SUT, no-op    : {o:12,.0f} samples/s")
    print(f"Offline throughput ratio      : {o / b:.2f}   (target >= 0.5)")
    print(f"Per-sample harness overhead   : {overhead_us:.2f} us (target <= 20)")

    best = None
    for qps in (20_000, 40_000, 60_000, 80_000, 100_000):
        detail = ours("Server", args, qps)
        valid = detail.get("result_validity")
        p99 = detail.get("result_99.00_percentile_latency_ns") / 1e6
        done = detail.get("result_completed_samples_per_sec")
        print(f"Server target {qps:>7,} QPS    : {valid:7}  completed {done:10,.0f}/s  p99 {p99:.3f} ms")
        if valid != "VALID":
            break
        best = qps
    print(f"Highest VALID Server QPS      : {best or 0:,} (target >= 20,000)")


if __name__ == "__main__":
    main()
