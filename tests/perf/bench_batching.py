"""Batching: Offline throughput of a benchmark's demo tier, our SUT vs a reference-style SUT.

The reference-style SUT runs the model on one sample at a time inside IssueQuery, on LoadGen's
thread, as the reference implementations do (GPT-J, BERT, SingleStream vision). Ours enqueues
and lets replica workers run batches with the benchmark's defaults (batch size, token cap,
longest-first order). Same model, data and LoadGen settings: one Offline query holding every
sample of the demo set once (``performance_issue_unique``), samples loaded (pre-processed) before
the timed run. Prints samples/s and the ratios, all measured in this one run.

Usage: python tests/perf/bench_batching.py gptj|resnet|... [--samples 32] [--data DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import mlperf_loadgen as lg  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from harness import datadir, logs, registry  # noqa: E402
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
    with tempfile.TemporaryDirectory() as tmp:
        log = lg.LogSettings()
        log.log_output.outdir = tmp
        log.enable_trace = False
        lg.StartTestWithLogSettings(sut_handle, qsl, settings(n), log)
        detail = logs.read_detail(Path(tmp) / logs.DETAIL)
    lg.DestroyQSL(qsl)
    assert detail.get("result_query_count") == 1
    return float(detail.get("result_samples_per_second"))


def _load(bench_id: str, data: Path, n: int):
    bench = registry.get(bench_id)
    dataset = bench.dataset.load(data)
    if hasattr(dataset, "load_samples"):
        dataset.load_samples(list(range(n)))  # pre-processing is untimed, as LoadGen's load is
    if hasattr(dataset, "sample_length"):
        dataset.sample_length(0)
    return bench, dataset


def reference_style(bench_id: str, data: Path, n: int) -> float:
    """The model is loaded, warmed up and run on the main thread, as the reference does."""
    bench, dataset = _load(bench_id, data, n)
    model = bench.backend.load(data, "cpu", "fp32")
    model.warmup(dataset[0])

    def issue(samples):
        for q in samples:  # synchronously, one sample at a time, on LoadGen's thread
            out = np.ascontiguousarray(model.predict([dataset[q.index]])[0])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, out.ctypes.data, out.nbytes)])

    sut = lg.ConstructSUT(issue, lambda: None)
    try:
        return measure(sut, n)
    finally:
        lg.DestroySUT(sut)


def ours(bench_id: str, data: Path, n: int, replicas: int) -> float:
    """As ``harness run`` does it: each replica is loaded and warmed up on the thread that serves it."""
    bench, dataset = _load(bench_id, data, n)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // replicas))

    def replica():
        model = bench.backend.load(data, "cpu", "fp32")
        model.warmup(dataset[0])
        return model

    length = getattr(dataset, "sample_length", None)
    policy = BatchPolicy(bench.spec.default_batch_size, 0.0, sort_by_length=length is not None,
                         max_tokens=bench.spec.default_batch_tokens.get("cpu") if length else None)
    sut = SUT(lambda i: dataset[i], [replica] * replicas, policy, bench.spec.payload_dtype, 600.0,
              sample_length=length)
    try:
        return measure(sut.start(), n)
    finally:
        sut.stop()
        assert sut.stats.failed == 0, sut.stats.errors


def in_fresh_process(fn, *args) -> float:
    """Each measurement gets its own process, as each LoadGen test of a harness run does: OpenMP
    thread teams left over from one measurement would slow the next."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


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
    print(f"{spec.id} demo, {n} samples, {cores} CPU cores; batch {spec.default_batch_size}, "
          f"token cap {spec.default_batch_tokens.get('cpu')}")
    t = time.monotonic()
    base = in_fresh_process(reference_style, spec.id, data, n)
    print(f"reference-style (batch 1 inside IssueQuery, {cores} threads): {base:8.3f} samples/s  "
          f"({time.monotonic() - t:.0f} s)")
    for replicas in sorted({1, cores}):
        t = time.monotonic()
        rate = in_fresh_process(ours, spec.id, data, n, replicas)
        print(f"harness SUT, {replicas} replica(s) x {max(1, cores // replicas)} thread(s): {rate:8.3f} samples/s  "
              f"ratio {rate / base:.2f}  ({time.monotonic() - t:.0f} s)")


if __name__ == "__main__":
    main()
