"""One LoadGen test in this process: ``python -m harness.worker RUN_DIR JOB_JSON``.

Runs in the job's log folder (a fresh folder, so no stray ``audit.config`` is picked up), loads
the round's LoadGen build (``harness.loadgen``), builds its settings (``settings.test_settings``),
runs the test, writes ``sut_stats.json`` and exits without waiting for a replica that may be
stuck in a model call. A compliance job's audit.config reaches LoadGen as its round says: as the
file, in that folder only while the test runs, or applied to the TestSettings
(``settings.apply_audit``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import loadgen, progress, registry, settings
from harness.errors import HarnessError
from harness.jobs import Job
from harness.rounds import load_round
from harness.sut import QSL, SUT, Backend, BatchPolicy, NullBackend, NullGenerator

AUDIT_CONFIG = "audit.config"  # the name LoadGen looks for in its working directory


def batch_policy(config: settings.RunConfig, lg_settings, padded: bool = True) -> BatchPolicy:
    size, tokens = config.batch_size, config.batch_tokens
    if config.scenario == "Offline":
        return BatchPolicy(size, 0.0, sort_by_length=True, max_tokens=tokens, padded=padded)
    if config.scenario == "Server":
        # wait for a batch to fill at most 5% of the latency bound, unless told otherwise
        wait_ms = config.batch_wait_ms
        if wait_ms is None:
            wait_ms = lg_settings.server_target_latency_ns / 1e6 * 0.05
        return BatchPolicy(size, wait_ms / 1000, max_tokens=tokens, padded=padded)
    return BatchPolicy(size, 0.0, max_tokens=tokens, padded=padded)


def run(run_dir: Path, job: Job) -> None:
    config = settings.RunConfig.from_json((run_dir / "run.json").read_text())
    rnd = load_round(config.round)
    loadgen.activate(rnd.loadgen_version, rnd.name)  # the round's build, before LoadGen is first imported
    import mlperf_loadgen as lg

    bench = registry.get(config.benchmark)
    spec = bench.spec
    log_dir = Path(job.log_dir)
    os.chdir(log_dir)
    if Path(AUDIT_CONFIG).exists():
        raise HarnessError(f"refusing to run: {log_dir}/{AUDIT_CONFIG} exists and would turn this run into a "
                           f"compliance test")
    data_dir = Path(config.data_dir)
    dataset = bench.dataset.load(data_dir)
    start, count = job.start, job.stop - job.start

    def replica(device: str) -> Callable[[], Backend]:
        def build() -> Backend:  # runs on the replica's worker thread (see harness.sut)
            if config.null_backend:  # token mode needs a first token and n_tokens >= 2
                return NullGenerator() if lg_settings.use_token_latencies else NullBackend()
            backend = bench.backend.load(data_dir, device, config.dtype)
            if hasattr(backend, "warmup"):
                backend.warmup(dataset[start])  # untimed: LoadGen has no warm-up hook
            return backend
        return build

    performance_count = min(spec.performance_count, count)
    lg_settings = settings.test_settings(spec, config.scenario, job.test_mode, Path(config.user_conf), rnd.mlperf_conf)
    audit_file = job.audit
    if job.audit is not None and rnd.audit_via == "settings":
        applied = settings.apply_audit(lg_settings, job.audit, config.scenario, performance_count)
        Path("audit_settings.json").write_text(json.dumps(applied, indent=2))
        audit_file = None
    sample_length = getattr(dataset, "sample_length", None)
    policy = batch_policy(config, lg_settings, spec.padded_batches)
    sut = SUT(lambda i: dataset[start + i], [replica(d) for d in job.devices], policy, spec.payload_dtype,
              config.stall_timeout_s, (lambda i: sample_length(start + i)) if sample_length else None,
              stream_first=lg_settings.use_token_latencies and config.scenario != "Offline")
    load = getattr(dataset, "load_samples", lambda indices: None)
    unload = getattr(dataset, "unload_samples", lambda indices: None)
    qsl = QSL(count, performance_count, lambda ix: load([start + i for i in ix]),
              lambda ix: unload([start + i for i in ix]), sut.stats)
    sut_handle = sut.start()  # loads and warms up the replicas
    began = time.monotonic()
    performance = lg_settings.mode != lg.TestMode.AccuracyOnly
    expected = settings.expected_samples(lg_settings, config.scenario, performance_count) if performance else count
    shown = progress.reporter(log_dir, lambda: {
        "issued": sut.stats.issued, "completed": sut.stats.completed + sut.stats.failed, "failed": sut.stats.failed,
        "elapsed_s": round(time.monotonic() - began, 1), "expected": expected,
        "min_duration_s": lg_settings.min_duration_ms / 1000 if performance else 0})
    with audit_config(audit_file):
        lg.StartTestWithLogSettings(sut_handle, qsl.start(), lg_settings, settings.log_settings(log_dir, config.trace))
    elapsed = time.monotonic() - began
    shown.set()
    sut.stop()
    qsl.stop()
    stats = dataclasses.asdict(sut.stats) | {"wall_s": round(elapsed, 3), "devices": job.devices}
    Path("sut_stats.json").write_text(json.dumps(stats, indent=2))


@contextlib.contextmanager
def audit_config(text: str | None) -> Iterator[None]:
    """``audit.config`` in the working directory for the duration of the block (none: nothing)."""
    path = Path(AUDIT_CONFIG)
    if text is not None:
        path.write_text(text)
    try:
        yield
    finally:
        if text is not None:
            path.unlink(missing_ok=True)


def main() -> None:
    run_dir, job = Path(sys.argv[1]), Job.from_json(sys.argv[2])
    try:
        run(run_dir, job)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for a replica abandoned by the watchdog


if __name__ == "__main__":
    main()
