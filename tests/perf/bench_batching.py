"""Batching: Offline throughput on the GPT-J demo, our SUT vs a reference-style SUT.

The reference-style SUT runs the model on one sample at a time inside IssueQuery, on LoadGen's
thread, as the reference GPT-J implementation does. Ours enqueues and lets replica workers run
length-sorted batches. Same model, data and LoadGen settings: one Offline query holding every
sample of the demo set once (``performance_issue_unique``). Prints samples/s and the ratios,
all measured in this one run.

Usage: python tests/perf/bench_gptj_batching.py [--samples 32] [--data DIR]
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


def reference_style(data: Path, n: int) -> float:
    """The model is loaded, warmed up and run on the main thread, as the reference does."""
    bench, dataset = _load(data)
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


def ours(data: Path, n: int, replicas: int, batch: int, tokens: int | None) -> float:
    """As ``harness run`` does it: each replica is loaded and warmed up on the thread that serves it."""
    bench, dataset = _load(data)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // replicas))

    def replica():
        model = bench.backend.load(data, "cpu", "fp32")
        model.warmup(dataset[0])
        return model

    policy = BatchPolicy(batch, 0.0, sort_by_length=True, max_tokens=tokens)
    sut = SUT(lambda i: dataset[i], [replica] * replicas, policy, "int64", 600.0,
              sample_length=dataset.sample_length)
    try:
        return measure(sut.start(), n)
    finally:
        sut.stop()
        assert sut.stats.failed == 0, sut.stats.errors


def _load(data: Path):
    bench = registry.get("gptj")
    dataset = bench.dataset.load(data)
    dataset.sample_length(0)  # tokenizes every prompt up front, outside the timed runs
    return bench, dataset


def in_fresh_process(fn, *args) -> float:
    """Each measurement gets its own process, as each LoadGen test of a harness run does: OpenMP
    thread teams left over from one measurement would slow the next."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    bench = registry.get("gptj")
    data, _ = datadir.resolve(bench, args.data)
    n = min(args.samples, len(bench.dataset.load(data)))
    cores = os.cpu_count() or 1
    print(f"GPT-J demo, {n} samples, {cores} CPU cores")
    t = time.monotonic()
    base = in_fresh_process(reference_style, data, n)
    print(f"reference-style (batch 1 inside IssueQuery, {cores} threads): {base:7.3f} samples/s  "
          f"({time.monotonic() - t:.0f} s)")
    tokens = bench.spec.default_batch_tokens.get("cpu")
    for replicas, batch, cap in ((1, 8, None), (1, 8, tokens), (cores, 8, tokens)):
        t = time.monotonic()
        rate = in_fresh_process(ours, data, n, replicas, batch, cap)
        print(f"harness SUT, {replicas} replica(s) x {max(1, cores // replicas)} thread(s), batch {batch}, "
              f"token cap {cap}: {rate:7.3f} samples/s  ratio {rate / base:.2f}  ({time.monotonic() - t:.0f} s)")


if __name__ == "__main__":
    main()
