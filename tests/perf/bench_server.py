"""Server: the highest VALID Server QPS at a benchmark's latency bound, our SUT vs a reference-style SUT.

The reference-style SUTs run the model on each query's one sample inside IssueQuery (LoadGen's
issue thread waits for it): ``reference`` also executes the model as the reference does,
``batch1`` as our backend does (see common.py). Ours enqueues and lets the replica batch whatever
arrived, waiting at most 5% of the latency bound for a batch to fill. Same model weights, data and
latency bound (from the round's mlperf.conf for the benchmark); each target QPS is one LoadGen run
in a fresh process. A run counts when LoadGen says VALID (latency bound met at the percentile,
early stopping met).

Usage: python tests/perf/bench_server.py bert [--min-duration-ms 5000] [--start 200 | --qps 40,80,...] [--batch B]
       [--wait-fraction 0.05] [--replicas R] [--only reference|batch1|harness]
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlperf_loadgen as lg  # noqa: E402
import torch  # noqa: E402
from common import baselines, in_fresh_process, load_demo, reference_sut, run_sut, warm_model  # noqa: E402

from harness import datadir, registry  # noqa: E402
from harness.sut import SUT, BatchPolicy  # noqa: E402


def run(bench_id: str, data: Path, style: str, qps: float, min_duration_ms: int, batch: int,
        wait_fraction: float, replicas: int) -> tuple[str, float]:
    bench, dataset = load_demo(bench_id, data)
    n = len(dataset)
    settings = lg.TestSettings()
    settings.FromConfig(str(bench.user_conf), bench.spec.conf_key, "Server")  # the round's latency bound
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = qps
    settings.min_duration_ms = min_duration_ms
    settings.min_query_count = 600  # enough queries for early stopping at the 99th percentile
    bound_s = settings.server_target_latency_ns / 1e9
    if style != "harness":
        sut = None
        handle = reference_sut(warm_model(bench, data, dataset, style), dataset)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // replicas))  # as `harness run --n-devices` does
        sut = SUT(lambda i: dataset[i], [partial(warm_model, bench, data, dataset)] * replicas,
                  BatchPolicy(batch, bound_s * wait_fraction), bench.spec.payload_dtype, 600.0)
        handle = sut.start()
    detail = run_sut(handle, sut, n, settings)
    return detail.get("result_validity"), float(detail.get("result_completed_samples_per_sec") or 0)


def best_valid(bench_id: str, data: Path, styles: list[str], ladder: list[float], args) -> dict[str, float]:
    """Climb the ladder with every style at each step (so that the machine's drift hits them
    alike); a style leaves at its first INVALID run. Returns each style's highest VALID QPS."""
    best, climbing = dict.fromkeys(styles, 0.0), list(styles)
    for qps in ladder:
        for style in list(climbing):
            validity, completed = in_fresh_process(run, bench_id, data, style, qps, args.min_duration_ms,
                                                   args.batch, args.wait_fraction, args.replicas)
            print(f"  {style:9s} target {qps:7.1f} QPS: {validity:7s} ({completed:.1f} samples/s completed)",
                  flush=True)
            if validity == "VALID":
                best[style] = qps
            else:
                climbing.remove(style)
        if not climbing:
            break
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark")
    parser.add_argument("--min-duration-ms", type=int, default=5000)
    parser.add_argument("--qps", help="target QPS ladder, comma-separated (default: 15%% steps from --start)")
    parser.add_argument("--start", type=float, default=200.0, help="first target QPS of the default ladder")
    parser.add_argument("--batch", type=int, help="largest batch (default: the benchmark's)")
    parser.add_argument("--wait-fraction", type=float, default=0.05,
                        help="longest wait for a batch to fill, as a fraction of the latency bound (harness default)")
    parser.add_argument("--replicas", type=int, default=1, help="harness SUT: replicas sharing the CPU cores")
    parser.add_argument("--only", choices=("reference", "batch1", "harness"))
    args = parser.parse_args()
    bench = registry.get(args.benchmark)
    args.batch = args.batch or bench.spec.batch_size("cpu")
    data, _ = datadir.resolve(bench, None)
    ladder = [float(q) for q in args.qps.split(",")] if args.qps else [
        round(args.start * 1.15 ** k) for k in range(40)]
    print(f"{bench.spec.id} demo, Server, {os.cpu_count()} CPU cores, min duration {args.min_duration_ms} ms")
    print(f"harness SUT: {args.replicas} replica(s), batch {args.batch}, batch wait {args.wait_fraction:g} x "
          f"latency bound")
    styles = [s for s in (*baselines(bench), "harness") if args.only in (None, s)]
    if not styles:
        parser.error(f"--only {args.only}: {bench.spec.id}'s backend has no load_reference; use batch1 or harness")
    best = best_valid(bench.spec.id, data, styles, ladder, args)
    print("highest VALID Server QPS: " + ", ".join(f"{style} {qps:g}" for style, qps in best.items()))
    if "harness" in best:
        for base in [style for style in best if style != "harness"]:
            ratio = best["harness"] / best[base] if best[base] else float("inf")
            print(f"ratio harness / {base}: {ratio:.2f}")


if __name__ == "__main__":
    main()
