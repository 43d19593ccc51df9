"""Batching: Offline throughput of a benchmark's demo tier, our SUT vs a reference-style SUT.

The reference-style SUTs run the model on one sample at a time inside IssueQuery, on LoadGen's
thread, as the reference implementations do (GPT-J, BERT, SingleStream vision): ``reference``
also executes the model as the reference does, ``batch1`` as our backend does (see common.py).
Ours enqueues and lets replica workers run batches with the benchmark's defaults (batch size,
token cap, longest-first order). Same model weights, data and LoadGen settings: one Offline query
holding every sample of the demo set once (``performance_issue_unique``), samples loaded
(pre-processed) before the timed run. Prints samples/s and the ratios, all measured in this run.

Usage: python tests/perf/bench_batching.py gptj|resnet|... [--samples 32] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlperf_loadgen as lg  # noqa: E402
import torch  # noqa: E402
from common import baselines, in_fresh_process, load_demo, reference_sut, run_test, warm_model  # noqa: E402

from harness import datadir, registry  # noqa: E402
from harness.sut import SUT, BatchPolicy  # noqa: E402


def settings(n: int):
    s = lg.TestSettings()
    s.scenario = lg.TestScenario.Offline
    s.mode = lg.TestMode.PerformanceOnly
    s.performance_issue_unique = True  # the query holds each of the n samples exactly once
    s.min_duration_ms = 1000
    s.min_query_count = 1
    s.offline_expected_qps = n
    return s


def measure(sut_handle: int, n: int) -> float:
    qsl = lg.ConstructQSL(n, n, lambda ix: None, lambda ix: None)
    detail = run_test(sut_handle, qsl, settings(n))
    lg.DestroyQSL(qsl)
    assert detail.get("result_query_count") == 1
    return float(detail.get("result_samples_per_second"))


def reference_style(bench_id: str, data: Path, n: int, baseline: str) -> float:
    """The model is loaded, warmed up and run on the main thread, as the reference does."""
    bench, dataset = load_demo(bench_id, data, n)
    sut = reference_sut(warm_model(bench, data, dataset, baseline), dataset)
    try:
        return measure(sut, n)
    finally:
        lg.DestroySUT(sut)


def ours(bench_id: str, data: Path, n: int, replicas: int) -> float:
    """As ``harness run`` does it: each replica is loaded and warmed up on the thread that serves it."""
    bench, dataset = load_demo(bench_id, data, n)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // replicas))
    length = getattr(dataset, "sample_length", None)
    policy = BatchPolicy(bench.spec.batch_size("cpu"), 0.0, sort_by_length=length is not None,
                         max_tokens=bench.spec.default_batch_tokens.get("cpu") if length else None,
                         padded=bench.spec.padded_batches)
    sut = SUT(lambda i: dataset[i], [partial(warm_model, bench, data, dataset)] * replicas, policy,
              bench.spec.payload_dtype, 600.0, sample_length=length)
    try:
        return measure(sut.start(), n)
    finally:
        sut.stop()
        assert sut.stats.failed == 0, sut.stats.errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    bench = registry.get(args.benchmark)
    data, _ = datadir.resolve(bench, args.data)
    n = min(args.samples, len(bench.dataset.load(data)))
    cores = os.cpu_count() or 1
    spec = bench.spec
    print(f"{spec.id} demo, {n} samples, {cores} CPU cores; batch {spec.batch_size('cpu')}, "
          f"token cap {spec.default_batch_tokens.get('cpu')}")
    bases = {}
    for baseline in baselines(bench):
        t = time.monotonic()
        bases[baseline] = in_fresh_process(reference_style, spec.id, data, n, baseline)
        print(f"reference-style {baseline:9s} (batch 1 inside IssueQuery, {cores} threads): "
              f"{bases[baseline]:8.3f} samples/s  ({time.monotonic() - t:.0f} s)")
    for replicas in sorted({1, cores}):
        t = time.monotonic()
        rate = in_fresh_process(ours, spec.id, data, n, replicas)
        ratios = "  ".join(f"vs {b} {rate / bases[b]:.2f}" for b in bases)
        print(f"harness SUT, {replicas} replica(s) x {max(1, cores // replicas)} thread(s): {rate:8.3f} samples/s  "
              f"{ratios}  ({time.monotonic() - t:.0f} s)")


if __name__ == "__main__":
    main()
