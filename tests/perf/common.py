"""Pieces the performance scripts share: a LoadGen test with its logs read back, the demo data
loaded as a run loads it, the reference-style SUT, replicas built as ``harness run`` builds them,
and one fresh process per measurement.

Two baselines run the model one sample at a time inside IssueQuery, as the reference
implementations do: ``reference`` executes the model as the reference does too (a backend module's
``load_reference``, where its own execution differs: e.g. ResNet-50 without folded batch norm, BERT
at 384 positions for every feature); ``batch1`` executes it as our backend does, so that its ratio
is what our serving (batching, replicas) adds on its own."""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import mlperf_loadgen as lg  # noqa: E402
import numpy as np  # noqa: E402

from harness import logs, registry  # noqa: E402


def run_test(sut_handle: int, qsl_handle: int, settings) -> logs.Detail:
    """One LoadGen test, logged to a temporary folder (trace off); returns its detail log."""
    with tempfile.TemporaryDirectory() as tmp:
        log = lg.LogSettings()
        log.log_output.outdir = tmp
        log.enable_trace = False
        lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log)
        return logs.read_detail(Path(tmp) / logs.DETAIL)


def run_sut(handle: int, sut, n: int, settings, destroy=lg.DestroySUT) -> logs.Detail:
    """One LoadGen test of a SUT over an n-sample QSL, then its teardown: ``sut.stop()`` for the
    harness SUT (``sut``), ``destroy(handle)`` for a bare LoadGen one (``sut`` None)."""
    qsl = lg.ConstructQSL(n, n, lambda ix: None, lambda ix: None)
    detail = run_test(handle, qsl, settings)
    lg.DestroyQSL(qsl)
    if sut is None:
        destroy(handle)
    else:
        sut.stop()
    return detail


def load_demo(bench_id: str, data: Path, n: int | None = None):
    """(benchmark, dataset) with the first ``n`` samples (default: all) loaded, as LoadGen's untimed
    load does, and sample lengths computed."""
    bench = registry.get(bench_id)
    dataset = bench.dataset.load(data)
    if hasattr(dataset, "load_samples"):
        dataset.load_samples(list(range(len(dataset) if n is None else n)))
    if hasattr(dataset, "sample_length"):
        dataset.sample_length(0)
    return bench, dataset


def reference_sut(model, dataset) -> int:
    """The reference implementations' SUT: one sample at a time, synchronously inside IssueQuery."""
    def issue(samples):
        for q in samples:
            out = np.ascontiguousarray(model.predict([dataset[q.index]])[0])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, out.ctypes.data, out.nbytes)])

    return lg.ConstructSUT(issue, lambda: None)


def baselines(bench) -> tuple[str, ...]:
    """The baselines that differ for this benchmark: ``reference`` only where it has its own execution."""
    return ("reference", "batch1") if hasattr(bench.backend, "load_reference") else ("batch1",)


def warm_model(bench, data: Path, dataset, baseline: str | None = None):
    """The backend as ``harness run`` loads it, or as the ``reference`` baseline executes it."""
    load = bench.backend.load
    if baseline == "reference":
        load = getattr(bench.backend, "load_reference", load)
    model = load(data, "cpu", "fp32")
    model.warmup(dataset[0])
    return model


def in_fresh_process(fn, *args):
    """Each measurement gets its own process, as each LoadGen test of a harness run does: OpenMP
    thread teams left over from one measurement would slow the next."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()
