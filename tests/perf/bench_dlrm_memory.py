"""DLRM-v2 memory: a run whose embedding tables are larger than the memory it may use.

Builds the demo tier, then a copy whose five largest tables (the real model's 40M-row ones) have
``--rows`` rows each, row-wise sharded over 4 ranks (``harness.snapshot.write``), with the day 23
ids of those features spread over every row. ``harness run dlrm --mode accuracy`` then runs on it
in a memory cgroup limited to ``--limit-mib`` (cgroup v2 or v1; root, or a delegated cgroup). The
tables' pages are dropped from the page cache first (posix_fadvise), so that every page the run
reads is charged to its cgroup. Prints the tables' size, the limit, the cgroup's peak and the
run's peak RSS, and whether the run completed.

Usage: python tests/perf/bench_dlrm_memory.py [--rows 24000000] [--limit-mib 1280] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.dlrm import backend, dataset, demo
from harness import registry, snapshot
from harness.demo import build


def big_copy(source: Path, out: Path, rows: int) -> int:
    """The demo folder with its 40M-row tables made ``rows`` long; returns the tables' bytes."""
    import torch

    shutil.copytree(source, out)
    shutil.rmtree(out / backend.CHECKPOINT)
    state = {k: (v.full() if isinstance(v, snapshot.Pieces) else v)
             for k, v in snapshot.read(source / backend.CHECKPOINT).items()}
    big = [i for i, real in enumerate(demo.REAL_ROWS) if real == max(demo.REAL_ROWS)]
    generator = torch.Generator().manual_seed(1)
    for i in big:
        state[backend.TABLE.format(i)] = (torch.rand((rows, demo.DIM), generator=generator) * 2 - 1) * rows ** -0.5
    (out / backend.CHECKPOINT).mkdir()
    sharded = tuple(backend.TABLE.format(i) for i in big)
    snapshot.write(out / backend.CHECKPOINT, state, world_size=4, row_sharded=sharded)
    rng = np.random.default_rng(1)
    with np.load(source / dataset.SPARSE) as npz:
        sparse = {str(i): npz[f"{i}.npy"] for i in range(dataset.SPARSE_FEATURES)}
    for i in big:
        sparse[str(i)] = rng.integers(0, rows, size=sparse[str(i)].shape, dtype=np.int32)
    np.savez(out / dataset.SPARSE, **sparse)
    return sum(state[backend.TABLE.format(i)].numel() * 4 for i in range(dataset.SPARSE_FEATURES))


def drop_cached(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class MemoryCgroup:
    """A child memory cgroup of this process's, limited to ``limit`` bytes (v2 or v1)."""

    def __init__(self, limit: int) -> None:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        unified = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
        v1 = next((line.split(":", 2)[2] for line in lines if ":memory:" in line), None)
        if v1 is not None and Path("/sys/fs/cgroup/memory").is_dir():
            self.path = Path("/sys/fs/cgroup/memory") / v1.lstrip("/") / f"bench-dlrm-{os.getpid()}"
            self.limit_file, self.peak_file = "memory.limit_in_bytes", "memory.max_usage_in_bytes"
        elif unified is not None:
            self.path = Path("/sys/fs/cgroup") / unified.lstrip("/") / f"bench-dlrm-{os.getpid()}"
            self.limit_file, self.peak_file = "memory.max", "memory.peak"
        else:
            sys.exit("no memory cgroup found in /proc/self/cgroup")
        try:
            self.path.mkdir()
            (self.path / self.limit_file).write_text(str(limit))
        except OSError as exc:
            sys.exit(f"cannot make a memory cgroup at {self.path} ({exc}): run as root or in a delegated cgroup")
        if (self.path / "memory.swap.max").exists():
            (self.path / "memory.swap.max").write_text("0")  # no swapping out of the limit

    def run(self, command: list[str]) -> subprocess.CompletedProcess:
        procs = self.path / "cgroup.procs"
        return subprocess.run(command, preexec_fn=lambda: procs.write_text(str(os.getpid())),
                              capture_output=True, text=True)

    def peak(self) -> int:
        return int((self.path / self.peak_file).read_text())

    def remove(self) -> None:
        self.path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=24_000_000)
    parser.add_argument("--limit-mib", type=int, default=1280)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dlrm-", dir=args.work))
    try:
        t = time.monotonic()
        source = build(registry.get("dlrm"), work / "demo")
        tables = big_copy(source, work / "big", args.rows)
        print(f"tables: {tables / 2 ** 30:.2f} GiB (5 tables of {args.rows:,} rows x {demo.DIM}, row-wise over 4 "
              f"ranks, mapped; {time.monotonic() - t:.0f} s to write)")
        drop_cached(work / "big")
        cgroup = MemoryCgroup(args.limit_mib << 20)
        t = time.monotonic()
        done = cgroup.run([sys.executable, "-m", "harness", "run", "dlrm", "--scenario", "Offline", "--mode",
                           "accuracy", "--data", str(work / "big"), "--out", str(work / "run")])
        elapsed = time.monotonic() - t
        peak, rss = cgroup.peak(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10
        cgroup.remove()
        print(f"memory limit: {args.limit_mib} MiB; cgroup peak {peak / 2 ** 20:.0f} MiB "
              f"({peak / tables:.2f} of the tables); largest process peak RSS {rss / 2 ** 20:.0f} MiB")
        auc = [line for line in done.stdout.splitlines() if "AUC" in line][:1]
        print(f"run: exit {done.returncode} in {elapsed:.0f} s; {auc[0].strip() if auc else done.stderr[-800:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
