"""Runs a benchmark: plans LoadGen tests (jobs), runs each in its own process, assembles results.

Run folder layout (never overwritten)::

    run.json            resolved settings (read by every job process)
    user.conf           the exact LoadGen user.conf used
    accuracy/           LoadGen logs + accuracy.txt            (mode accuracy or submission)
    performance/run_1/  LoadGen logs                           (mode performance or submission)
    partition-P-of-N/   LoadGen logs + partition.json          (partitioned accuracy runs)
    <job>.log           the job process's output
    result.json         settings, metrics, targets, PASS/FAIL, validity and reasons, demo flag
    manifest.json       provenance: code, image, LoadGen, inputs' sha256, device, packages (harness.provenance)
    report.txt          the printed report
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import datadir, evaluate, progress, provenance, registry, report, settings
from harness.errors import InvalidSettings, RunFailed
from harness.jobs import Job, partition_range
from harness.rounds import Round, load_round
from harness.settings import RunConfig


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


def execute(group: list[Job], run_dir: Path, timeout_s: float | None, poll_s: float = 1.0) -> None:
    """Run a group of jobs in parallel processes, showing their progress; raise RunFailed naming the
    job that failed."""
    procs = []
    env = job_env(group)
    for job in group:
        Path(job.log_dir).mkdir(parents=True)
        log = open(run_dir / f"{job.name}.log", "wb")
        cmd = [sys.executable, "-m", "harness.worker", str(run_dir), job.to_json()]
        procs.append((job, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=job.log_dir,
                                                 env=env)))
        print(f"  started {job.name}: samples [{job.start}, {job.stop}) on {', '.join(job.devices)}", flush=True)
    display = progress.Display([(job.name, Path(job.log_dir)) for job in group], sys.stdout)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    killed = set()
    try:
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
    finally:
        display.close()
    failures = []
    for job, log, proc in procs:
        rc = proc.wait()
        log.close()
        logfile = run_dir / f"{job.name}.log"
        if job.name in killed:
            failures.append(f"{job.name} exceeded --timeout {timeout_s:g} s and was killed; log {logfile}")
        elif rc != 0:
            failures.append(f"{job.name} exited with status {rc}; last lines of {logfile}:\n{_tail(logfile)}")
    if failures:
        raise RunFailed("a LoadGen test failed:\n" + "\n".join(failures))


def run(config: RunConfig, out: Path | None = None, echo: bool = True, inputs: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the planned LoadGen tests into a new run folder; write result.json, manifest.json and the report.

    ``inputs``: the data's hashes when the caller already has them; ``extra``: recorded in both files.
    """
    bench = registry.get(config.benchmark)
    settings.validate(config, bench.spec)
    rnd = load_round(config.round)
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
    inputs = inputs or provenance.input_facts(bench, Path(config.data_dir), config.demo)  # as they were at the start
    began = time.monotonic()
    for group in plan(config, run_dir, n_samples, devices):
        execute(group, run_dir, config.timeout_s)
        for job in group if config.partitioned else ():
            write_partition_meta(bench, config, job, n_samples)
    result = assemble(bench, config, run_dir, n_samples, rnd) | (extra or {})
    result["wall_s"] = round(time.monotonic() - began, 1)
    provenance.write(run_dir, provenance.manifest(bench, config, run_dir, inputs, result["image"]) | (extra or {}))
    write_result(run_dir, result, echo)
    return result


def write_partition_meta(bench: registry.Benchmark, config: RunConfig, job: Job, n_samples: int) -> None:
    """What ``harness merge`` needs to put this partition's accuracy log back in dataset order."""
    meta = {"benchmark": bench.spec.id, "round": config.round, "n_partitions": config.n_partitions,
            "partition": job.partition, "start": job.start, "stop": job.stop, "n_samples": n_samples,
            "payload_dtype": bench.spec.payload_dtype, "data_dir": config.data_dir, "demo": config.demo}
    (Path(job.log_dir) / "partition.json").write_text(json.dumps(meta, indent=2))


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


def assemble(bench: registry.Benchmark, config: RunConfig, run_dir: Path, n_samples: int,
             rnd: Round) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": bench.spec.id, "mlperf_names": list(bench.spec.mlperf_names), "round": rnd.name,
        "demo": config.demo, "run_dir": str(run_dir), "samples": n_samples,
        "settings": dataclasses.asdict(config), "image": image_info(),
    }
    data_dir = Path(config.data_dir)
    if config.partitioned:
        result["partitions"] = [
            {"folder": meta.parent.name, "sut": evaluate.sut_stats(meta.parent), **json.loads(meta.read_text())}
            for meta in sorted(run_dir.glob("partition-*-of-*/partition.json"))]
        result["evaluation_aid"] = (f"partitions {config.partition_offset}.. of {config.n_partitions}; "
                                    f"combine all partitions with `harness merge` to score")
        return result
    if (run_dir / "accuracy").is_dir():
        result["accuracy"] = evaluate.accuracy(bench, run_dir / "accuracy", data_dir, rnd, 0, n_samples)
        (run_dir / "accuracy" / "accuracy.txt").write_text(bench.accuracy.accuracy_text(result["accuracy"]["metrics"]))
    if (run_dir / "performance" / "run_1").is_dir():
        result["performance"] = evaluate.performance(run_dir / "performance" / "run_1", config.scenario, rnd)
    return result


def write_result(run_dir: Path, result: dict[str, Any], echo: bool) -> None:
    (run_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    text = report.render(result)
    (run_dir / "report.txt").write_text(text)
    if echo:
        print(text, flush=True)
