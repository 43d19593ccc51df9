"""The demo tier: a tiny model and synthetic data, judged by agreement with the reference execution.

A random-weight model scores about zero against real labels, so a demo run judged by MLPerf's
targets would say nothing. Instead, the demo's ground truth is what the reference execution of the
same demo model produces on the same demo data, and the demo's targets are the round's ratios
(0.99, 0.999, ...) of the reference's own score: a demo run PASSes exactly when our optimized path
(batching, fused kernels, ONNX Runtime, caches) reproduces the reference implementation.

``build`` makes a demo folder in four steps:

1. the benchmark's ``demo.build(out, seed)`` writes the model and the data in their real formats;
2. the reference execution, the benchmark's ``backend.load_reference`` (eager, batch 1, the
   reference's preprocessing, CPU, fp32), answers every sample;
3. the benchmark's ``demo.ground_truth(out, outputs)`` writes those answers into the data as its
   ground truth (labels, boxes, answer spans, summaries), in the real file format;
4. the reference's responses are kept as an accuracy log (``reference/mlperf_log_accuracy.json``),
   and ``DEMO.json`` records the reference's score.

A run on the demo, of the whole set or of a subset, is then judged against the reference's score
on the same samples (``targets``), labelled ``TARGETS``, never as MLPerf targets.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import logs
from harness.errors import DataError, HarnessError
from harness.registry import Benchmark
from harness.rounds import MetricTarget

MARKER = "DEMO.json"
REFERENCE_LOG = Path("reference") / logs.ACCURACY
TARGETS = "demo targets: agreement with the reference execution"
EXECUTION = "the reference execution (backend.load_reference: eager, batch 1, the reference's preprocessing), cpu fp32"


def is_demo(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def reference_outputs(bench: Benchmark, folder: Path) -> dict[int, np.ndarray]:
    """Every sample answered by the reference execution, one at a time, as LoadGen would log it."""
    dataset = bench.dataset.load(folder)
    backend = bench.backend.load_reference(folder, "cpu", "fp32")
    dtype = np.dtype(bench.spec.payload_dtype)
    outputs = {}
    for index in range(len(dataset)):
        payload = np.ascontiguousarray(backend.predict([dataset[index]])[0], dtype=dtype)
        outputs[index] = np.frombuffer(payload.tobytes(), dtype=dtype)  # the bytes a response carries
    return outputs


def build(bench: Benchmark, out: Path, seed: int = 0) -> Path:
    """Build the demo tier into ``out`` (which must not exist), atomically."""
    from harness.datadir import make_folder

    if out.exists():
        raise HarnessError(f"{out} already exists; nothing is overwritten. Choose another --out or remove it")
    make_folder(out.parent, parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    make_folder(tmp)
    try:
        bench.demo.build(tmp, seed=seed)
        outputs = reference_outputs(bench, tmp)
        bench.demo.ground_truth(tmp, outputs)
        logs.write_accuracy(tmp / REFERENCE_LOG, list(outputs.items()))
        metrics = bench.accuracy.score(outputs, tmp)
        marker = {"benchmark": bench.spec.id, "seed": seed, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "note": "synthetic data and a random-weight model; not for MLPerf results",
                  "ground_truth": f"what {EXECUTION} answers", "reference_metrics": metrics}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, default=float))
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def reference_metrics(bench: Benchmark, data_dir: Path, indices: list[int]) -> dict[str, Any]:
    """The reference's score on the same samples, in the same order, from the demo's reference log."""
    path = data_dir / REFERENCE_LOG
    if not path.is_file():
        raise DataError(f"{path} is missing: {data_dir} is a demo folder without the reference's responses (made "
                        f"by an older harness?); build it again with `harness demo-data {bench.spec.id} --out DIR`")
    records = logs.read_accuracy(path)
    outputs = logs.decode_outputs(records, bench.spec.payload_dtype, len(records), path)
    missing = [i for i in indices if i not in outputs]
    if missing:
        raise DataError(f"{path} has no reference response for sample(s) {missing[:10]}: the demo folder "
                        f"{data_dir} is damaged; build it again with `harness demo-data {bench.spec.id}`")
    return bench.accuracy.score({i: outputs[i] for i in indices}, data_dir)


def target(mlperf: MetricTarget, reference_value: float) -> MetricTarget:
    """A round's target turned into the demo's: its ratios of the reference's score on the same samples."""
    return MetricTarget(mlperf.metric, float(reference_value), mlperf.min_ratio, None, mlperf.max_ratio, False)
