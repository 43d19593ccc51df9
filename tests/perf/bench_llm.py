"""LLM serving on a generation benchmark's demo model: our continuous batching vs the reference's SUTs.

(a) Offline tokens/s. The reference-style SUT is the v4.1 Llama-2 reference's Offline SUT: the
    query is cut into chunks of ``--batch`` samples and each chunk is one left-padded ``generate``
    call, which runs until its longest answer ends. Ours is the harness SUT over
    ``ContinuousBatcher`` with the same batch limit.
(b) Highest Server QPS within the TTFT/TPOT bounds. The reference-style Server SUT serves one
    request at a time with ``generate`` and a streamer that hands the first token to
    ``FirstTokenComplete``. The v4.1 bounds (TTFT 2 s, TPOT 200 ms) are set for a 70B model; for
    the demo model they are scaled by its own speed: one decoding step of one sequence takes
    ``t``; a 70B model on one H100 takes about 20 ms, so TPOT's bound becomes 10 t (200 ms / 20
    ms) and TTFT's 100 t (2 s / 20 ms). A run counts when its TTFT and TPOT p99 are within those
    bounds and LoadGen's minimum query count and duration are met. LoadGen's early stopping is
    printed, not required: at p99 it needs about 460 queries, which the reference-style SUT, at
    under 2 QPS on the demo, would take minutes per step of the ladder to serve.

Same weights and data; every LoadGen test runs in a fresh process. Prints both sides and the ratio.

Usage: python tests/perf/bench_llm.py llama2|mixtral [--batch 32] [--offline-samples 96] [--start 0.5 | --qps 1,2,...]
       [--min-duration-ms 5000] [--queries 50] [--skip-offline] [--skip-server]
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlperf_loadgen as lg  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import in_fresh_process, load_demo, run_sut  # noqa: E402

from harness import datadir, registry  # noqa: E402
from harness.sut import SUT, BatchPolicy  # noqa: E402


def respond(rid: int, tokens: np.ndarray, complete=lg.QuerySamplesComplete) -> None:
    tokens = np.ascontiguousarray(tokens, dtype=np.int32)
    complete([lg.QuerySampleResponse(rid, tokens.ctypes.data, tokens.nbytes, len(tokens))])


def reference_offline_sut(model, dataset, batch: int):
    """Chunks of ``batch`` samples, each one padded ``generate`` (the reference's Offline SUT)."""
    def issue(ids, indices):
        def work():
            for start in range(0, len(ids), batch):
                chunk = list(zip(ids[start:start + batch], indices[start:start + batch]))
                for (rid, _), out in zip(chunk, model.predict([dataset[i] for _, i in chunk])):
                    respond(rid, out)
        threading.Thread(target=work, daemon=True).start()

    return lg.ConstructFastSUT(issue, lambda: None)


def reference_server_sut(model, dataset):
    """One request at a time, ``generate`` with a streamer for the first token (the reference's Server SUT)."""
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self, rid):
            self.rid, self.calls = rid, 0

        def put(self, value):
            self.calls += 1
            if self.calls == 2:  # the first call carries the prompt
                respond(self.rid, value.reshape(-1)[:1].cpu().numpy(), lg.FirstTokenComplete)

        def end(self):
            pass

    work: queue.Queue = queue.Queue()

    def serve():
        while True:
            rid, index = work.get()
            sample = dataset[index]
            prompt = torch.from_numpy(np.asarray(getattr(sample, "tokens", sample)))[None]
            with torch.inference_mode():
                out = model.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                           streamer=FirstToken(rid), eos_token_id=model.eos, pad_token_id=model.eos,
                                           **model.generation)
            respond(rid, model.finish(sample, out[0, prompt.shape[1]:].numpy()))

    threading.Thread(target=serve, daemon=True).start()
    return lg.ConstructFastSUT(lambda ids, indices: [work.put(item) for item in zip(ids, indices)], lambda: None)


class Reference:
    """The benchmark's reference execution, with what the baselines need of it."""

    def __init__(self, bench, data: Path) -> None:
        self.backend = bench.backend.load_reference(data, "cpu", "fp32")
        self.model, self.eos = self.backend.model, bench.spec.eos_token_id
        self.generation = dict(bench.backend.GENERATION)
        self.module = bench.backend

    def predict(self, samples):
        return self.backend.predict(samples)

    def finish(self, sample, tokens):
        """A generated row as the reference responds: cut after EOS (Llama-2), or stripped of
        trailing EOS/0 and cut after its stop sequence (Mixtral)."""
        if hasattr(self.module, "cut_after_eos"):
            return self.module.cut_after_eos(tokens)
        tokens = self.module.strip_trailing(tokens)
        return self.module.cut_after(tokens, sample.stop) if sample.stop else tokens



def settings_for(bench, scenario: str) -> lg.TestSettings:
    settings = lg.TestSettings()
    settings.FromConfig(str(bench.user_conf), bench.spec.conf_key, scenario)  # token mode from the round's conf
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    return settings


def step_time(bench_id: str, data: Path) -> float:
    """Seconds per decoding step of one sequence on the demo model (median over a 64-token answer)."""
    bench, dataset = load_demo(bench_id, data)
    engine = bench.backend.load(data, "cpu", "fp32")
    batcher = getattr(engine, "batcher", engine)  # a benchmark's Generator may wrap the batcher
    batcher.max_new_tokens, batcher.eos = 65, -1
    engine.add(0, dataset[0])
    times = []
    while len(engine):
        began = time.perf_counter()
        engine.step(lambda *a: None, lambda *a: None)
        times.append(time.perf_counter() - began)
    return float(np.median(times[1:]))


def measure(bench, data: Path, dataset, settings, style: str, batch: int, reference_sut) -> dict:
    """One LoadGen test of ``style``: the reference-style SUT ``reference_sut(model, dataset)``, or ours."""
    n = len(dataset)
    if style == "reference":
        sut, handle = None, reference_sut(Reference(bench, data), dataset)
    else:
        sut = SUT(lambda i: dataset[i], [lambda: bench.backend.load(data, "cpu", "fp32")],
                  BatchPolicy(batch, max_tokens=bench.spec.default_batch_tokens.get("cpu")), "int32", 600.0,
                  dataset.sample_length, stream_first=settings.scenario != lg.TestScenario.Offline)
        handle = sut.start()
    return run_sut(handle, sut, n, settings, lg.DestroyFastSUT).values


def offline(bench_id: str, data: Path, style: str, batch: int, samples: int) -> tuple[str, float]:
    bench, dataset = load_demo(bench_id, data)
    settings = settings_for(bench, "Offline")
    settings.min_duration_ms, settings.min_query_count, settings.offline_expected_qps = 0, samples, 1
    detail = measure(bench, data, dataset, settings, style, batch,
                     lambda model, ds: reference_offline_sut(model, ds, batch))
    return detail.get("result_validity"), float(detail.get("result_tokens_per_second") or 0)


def server(bench_id: str, data: Path, style: str, qps: float, batch: int, min_duration_ms: int, queries: int,
           bounds_ns: tuple[int, int]) -> tuple[bool, str, float, float, float]:
    bench, dataset = load_demo(bench_id, data)
    settings = settings_for(bench, "Server")
    settings.server_target_qps, settings.min_duration_ms, settings.min_query_count = qps, min_duration_ms, queries
    settings.ttft_latency, settings.tpot_latency = bounds_ns
    detail = measure(bench, data, dataset, settings, style, batch, reference_server_sut)
    ttft = float(detail.get("result_first_token_99.00_percentile_latency_ns") or float("inf"))
    tpot = float(detail.get("result_time_per_output_token_99.00_percentile_ns") or float("inf"))
    met = ttft < bounds_ns[0] and tpot < bounds_ns[1] and detail.get("result_min_queries_met") is True \
        and detail.get("result_min_duration_met") is True
    return (met, detail.get("result_validity"), float(detail.get("result_completed_samples_per_sec") or 0),
            ttft / 1e6, tpot / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark")
    parser.add_argument("--batch", type=int, help="batch limit of both SUTs (default: the benchmark's)")
    parser.add_argument("--offline-samples", type=int, default=96)
    parser.add_argument("--qps", help="Server target QPS ladder, comma-separated (default: 20%% steps from --start)")
    parser.add_argument("--start", type=float, default=0.5)
    parser.add_argument("--min-duration-ms", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=50, help="Server: minimum query count of each run")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    bench = registry.get(args.benchmark)
    batch = args.batch or bench.spec.batch_size("cpu")
    data, _ = datadir.resolve(bench, None)
    print(f"{bench.spec.id} demo, {os.cpu_count()} CPU cores, batch limit {batch}")
    if not args.skip_offline:
        rates = {}
        for style in ("reference", "harness"):
            validity, rates[style] = in_fresh_process(offline, bench.spec.id, data, style, batch, args.offline_samples)
            print(f"  Offline {style:9s}: {rates[style]:8.1f} tokens/s ({validity})", flush=True)
        print(f"(a) Offline tokens/s ratio harness / reference: {rates['harness'] / rates['reference']:.2f}")
    if not args.skip_server:
        t = in_fresh_process(step_time, bench.spec.id, data)
        bounds = (int(100 * t * 1e9), int(10 * t * 1e9))
        print(f"  one decoding step: {t * 1e3:.3f} ms -> scaled bounds TTFT {bounds[0] / 1e6:.1f} ms, "
              f"TPOT {bounds[1] / 1e6:.2f} ms")
        ladder = [float(q) for q in args.qps.split(",")] if args.qps else [
            round(args.start * 1.2 ** k, 1) for k in range(40)]
        best, climbing = {"reference": 0.0, "harness": 0.0}, ["reference", "harness"]
        for qps in ladder:
            for style in list(climbing):
                met, validity, done, ttft, tpot = in_fresh_process(server, bench.spec.id, data, style, qps, batch,
                                                                   args.min_duration_ms, args.queries, bounds)
                print(f"  Server {style:9s} target {qps:6.1f} QPS: bounds {'met' if met else 'missed':6s} "
                      f"({done:.1f}/s completed, TTFT p99 {ttft:.1f} ms, TPOT p99 {tpot:.2f} ms; LoadGen {validity})",
                      flush=True)
                if met:
                    best[style] = qps
                else:
                    climbing.remove(style)
            if not climbing:
                break
        ratio = best["harness"] / best["reference"] if best["reference"] else float("inf")
        print(f"(b) highest Server QPS within the bounds: reference {best['reference']:g}, harness {best['harness']:g}; "
              f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
