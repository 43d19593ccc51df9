"""Runs a benchmark: plans LoadGen tests (jobs), runs each in its own process, assembles results.

Run folder layout (never overwritten)::

    run.json            resolved settings (read by every job process)
    user.conf           the exact LoadGen user.conf used
    accuracy/           LoadGen logs + accuracy.txt            (mode accuracy or submission)
    performance/run_1/  LoadGen logs                           (mode performance or submission)
    partition-P-of-N/   LoadGen logs + partition.json          (partitioned accuracy runs)
    <job>.log           the job process's output
    result.json         settings, metrics, targets, PASS/FAIL, validity and reasons, demo flag; while the
                        run goes on, and when it ends early, ``incomplete`` with the reason
    manifest.json       provenance: code, image, LoadGen, inputs' sha256, device, packages (harness.provenance)
    report.txt          the printed report
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import datadir, evaluate, progress, provenance, registry, report, settings
from harness.errors import HarnessError, Interrupted, InvalidSettings, RunFailed
from harness.jobs import Job, partition_range
from harness.rounds import Round, load_round
from harness.settings import RunConfig
from harness.util import write_atomic


def plan(config: RunConfig, run_dir: Path, n_samples: int, devices: list[str]) -> list[list[Job]]:
    """Groups of jobs: groups run one after another, the jobs of a group at the same time."""
    if config.partitioned:
        last = min(config.partition_offset + config.n_devices, config.n_partitions)
        group = []
        for k, p in enumerate(range(config.partition_offset, last)):
            start, stop = partition_range(n_samples, config.n_partitions, p)
            name = f"partition-{p}-of-{config.n_partitions}"
            group.append(Job(name, str(run_dir / name), "accuracy", start, stop, [devices[k]], partition=p))
        return [group]
    jobs = []
    if config.mode in ("accuracy", "submission"):
        jobs.append([Job("accuracy", str(run_dir / "accuracy"), "accuracy", 0, n_samples, devices)])
    if config.mode in ("performance", "submission"):
        jobs.append([Job("performance", str(run_dir / "performance" / "run_1"), "performance", 0, n_samples, devices)])
    return jobs


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


def job_env(group: list[Job]) -> dict[str, str]:
    """The job processes' environment. CPU replicas (of one job or of jobs running at once) share
    the cores: each gets cores / replicas OpenMP threads, unless OMP_NUM_THREADS is set. Left at
    the default, every replica would start a thread per core and oversubscribe them."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    replicas = sum(device == "cpu" for job in group for device in job.devices)
    if replicas > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // replicas))
    return env


def _death(rc: int) -> str:
    """How a test process ended, in words."""
    if rc >= 0:
        return f"exited with status {rc}"
    try:
        name = signal.Signals(-rc).name
    except ValueError:
        name = f"signal {-rc}"
    why = " (out of memory, or killed by hand)" if -rc == signal.SIGKILL else ""
    return f"was killed by {name}{why}"


def _stop(procs: list[tuple[Job, Any, subprocess.Popen]], grace_s: float = 5.0) -> None:
    """Terminate every test process still running, and kill those that do not end within grace_s."""
    running = [proc for _, _, proc in procs if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def execute(group: list[Job], run_dir: Path, timeout_s: float | None, poll_s: float = 1.0) -> None:
    """Run a group of jobs in parallel processes, showing their progress; raise RunFailed naming the
    job that failed. Interrupted (Ctrl-C, SIGTERM), it stops the test processes before it re-raises."""
    procs = []
    env = job_env(group)
    display = None
    killed = set()
    try:
        for job in group:
            Path(job.log_dir).mkdir(parents=True)
            log = open(run_dir / f"{job.name}.log", "wb")
            cmd = [sys.executable, "-m", "harness.worker", str(run_dir), job.to_json()]
            procs.append((job, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=job.log_dir,
                                                     env=env)))
            print(f"  started {job.name}: samples [{job.start}, {job.stop}) on {', '.join(job.devices)}", flush=True)
        display = progress.Display([(job.name, Path(job.log_dir)) for job in group], sys.stdout)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while running := [(job, proc) for job, _, proc in procs if proc.poll() is None]:
            display.update()
            if deadline is not None and time.monotonic() > deadline:
                for job, proc in running:
                    proc.kill()
                    killed.add(job.name)
            try:
                running[0][1].wait(timeout=poll_s)  # returns as soon as it ends
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        _stop(procs)
        raise
    finally:
        if display is not None:
            display.close()
        for _, log, _ in procs:
            log.close()
    failures = []
    for job, _, proc in procs:
        rc = proc.wait()
        logfile = run_dir / f"{job.name}.log"
        if job.name in killed:
            failures.append(f"{job.name} exceeded --timeout {timeout_s:g} s and was killed; log {logfile}")
        elif rc != 0:
            failures.append(f"{job.name} {_death(rc)}; last lines of {logfile}:\n{_tail(logfile)}")
    if failures:
        raise RunFailed("a LoadGen test failed:\n" + "\n".join(failures))


STARTED = "the harness ended before the run finished (it was killed, or the machine stopped)"


@contextlib.contextmanager
def finishing(run_dir: Path, result: dict[str, Any], echo: bool) -> Iterator[None]:
    """``result.json`` says the run is incomplete from the start, so a harness that is killed leaves
    its folder marked. If the block ends early (a test failed, Ctrl-C, SIGTERM), the result, with
    what finished, says why, its report is printed, and the error goes on (Ctrl-C as Interrupted)."""
    write_json(run_dir / "result.json", result | {"incomplete": {"reason": STARTED}})
    try:
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted("interrupted by Ctrl-C (SIGINT)", 130) from None
    except HarnessError as exc:
        result["incomplete"] = {"reason": str(exc)}
        write_result(run_dir, result, echo)
        raise


def run(config: RunConfig, out: Path | None = None, echo: bool = True, inputs: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the planned LoadGen tests into a new run folder; write result.json, manifest.json and the report.

    ``inputs``: the data's hashes when the caller already has them; ``extra``: recorded in both files.
    """
    bench = registry.get(config.benchmark)
    for warning in settings.validate(config, bench.spec):
        print(f"warning: {warning}", file=sys.stderr)
    rnd = load_round(config.round)
    rnd.check_benchmark(bench.spec)
    rnd.check_loadgen()
    data_dir = Path(config.data_dir)
    n_samples = settings.check_sample_count(config, len(bench.dataset.load(data_dir)))
    if config.n_partitions > n_samples:
        raise InvalidSettings(f"--n-partitions {config.n_partitions} is more than the {n_samples} samples to split")
    devices = settings.devices(config)
    name = f"{bench.spec.id}-{config.scenario}-{config.mode}"
    if config.partitioned:
        name += f"-p{config.partition_offset}of{config.n_partitions}"
    run_dir = datadir.new_run_dir(out, name)
    shutil.copyfile(config.user_conf, run_dir / "user.conf")
    (run_dir / "run.json").write_text(config.to_json())
    if config.demo and echo:
        print(report.DEMO_BANNER, flush=True)
    result = header(bench, config, run_dir, n_samples, rnd) | (extra or {})
    with finishing(run_dir, result, echo):
        inputs = inputs or provenance.input_facts(bench, Path(config.data_dir), config.demo)  # as at the start
        began = time.monotonic()
        for group in plan(config, run_dir, n_samples, devices):
            execute(group, run_dir, config.timeout_s)
            for job in group:
                finished(bench, config, job, result, n_samples, rnd)
        result["wall_s"] = round(time.monotonic() - began, 1)
        provenance.write(run_dir, provenance.manifest(bench, config, run_dir, inputs, result["image"]) | (extra or {}))
    write_result(run_dir, result, echo)
    return result


def write_partition_meta(bench: registry.Benchmark, config: RunConfig, job: Job, n_samples: int) -> dict[str, Any]:
    """What ``harness merge`` needs to put this partition's accuracy log back in dataset order."""
    meta = {"benchmark": bench.spec.id, "round": config.round, "n_partitions": config.n_partitions,
            "partition": job.partition, "start": job.start, "stop": job.stop, "n_samples": n_samples,
            "payload_dtype": bench.spec.payload_dtype, "data_dir": config.data_dir, "demo": config.demo}
    (Path(job.log_dir) / "partition.json").write_text(json.dumps(meta, indent=2))
    return meta


def image_info() -> dict[str, Any] | None:
    """Provenance of the container image this run is in (None when run natively)."""
    if "HARNESS_IMAGE_COMMIT" not in os.environ:
        return None
    def read(variable: str) -> str | None:
        path = Path(os.environ.get(variable, "/nonexistent"))
        return path.read_text().strip() if path.is_file() else None

    locks = read("HARNESS_IMAGE_LOCKS")
    # the image's ID is not visible in here: `harness collect` adds it from the host by this build ID
    return {"name": os.environ.get("HARNESS_IMAGE_NAME"), "git_commit": os.environ["HARNESS_IMAGE_COMMIT"],
            "lock_sha256": os.environ.get("HARNESS_IMAGE_LOCK_SHA256"), "build_id": read("HARNESS_IMAGE_BUILD") or None,
            "locks": locks.splitlines() if locks is not None else None}


def header(bench: registry.Benchmark, config: RunConfig, run_dir: Path, n_samples: int,
           rnd: Round) -> dict[str, Any]:
    """What result.json says of a run before any test has finished."""
    result: dict[str, Any] = {
        "benchmark": bench.spec.id, "mlperf_names": list(bench.spec.mlperf_names), "round": rnd.name,
        "demo": config.demo, "run_dir": str(run_dir), "samples": n_samples,
        "settings": dataclasses.asdict(config), "image": image_info(),
    }
    if config.partitioned:
        result["partitions"] = []
        result["evaluation_aid"] = (f"partitions {config.partition_offset}.. of {config.n_partitions}; "
                                    f"combine all partitions with `harness merge` to score")
    return result


def finished(bench: registry.Benchmark, config: RunConfig, job: Job, result: dict[str, Any], n_samples: int,
             rnd: Round) -> None:
    """Add a finished job's outcome to ``result``: a partition's record, accuracy, or performance."""
    log_dir = Path(job.log_dir)
    if job.partition is not None:
        meta = write_partition_meta(bench, config, job, n_samples)
        result["partitions"].append({"folder": log_dir.name, "sut": evaluate.sut_stats(log_dir), **meta})
    elif job.test_mode == "accuracy":
        result["accuracy"] = evaluate.accuracy(bench, log_dir, Path(config.data_dir), rnd, 0, n_samples, config.demo)
        (log_dir / "accuracy.txt").write_text(bench.accuracy.accuracy_text(result["accuracy"]["metrics"]))
    else:
        result["performance"] = evaluate.performance(log_dir, config.scenario, rnd)


def write_json(path: Path, content: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(content, indent=2, default=str))


def write_result(run_dir: Path, result: dict[str, Any], echo: bool) -> None:
    write_json(run_dir / "result.json", result)
    text = report.render(result)
    (run_dir / "report.txt").write_text(text)
    if echo:
        print(text, flush=True)
