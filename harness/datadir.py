"""Where datasets, models, demo data and results live, and which tier a run uses.

* Real data: ``--data DIR``, else ``$HARNESS_DATA/<id>`` (default ``./data/<id>``). It is real
  when every artifact of the benchmark's ``artifacts.toml`` is there; a run checks them (and
  their recorded sha256) first and refuses missing or corrupt ones.
* Demo tier: with no real data, a run uses (and builds once, offline) the benchmark's demo data
  under ``$HARNESS_CACHE/demo/<id>-seed<seed>`` (default ``~/.cache/mlperf-harness``; see
  ``harness.demo``). A demo folder carries ``DEMO.json``; results produced on it are flagged demo,
  judged against the reference execution's score, and can never be packaged.
* Results: ``--out DIR``, else a new folder under ``$HARNESS_RESULTS`` (default ``./results``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from harness import demo
from harness.errors import DataError, HarnessError
from harness.registry import Benchmark


def data_root() -> Path:
    return Path(os.environ.get("HARNESS_DATA", "data"))


def results_root() -> Path:
    return Path(os.environ.get("HARNESS_RESULTS", "results"))


def cache_root() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "mlperf-harness"))


def _paths(bench: Benchmark) -> list[str]:
    from harness.artifacts import artifacts

    return [a.path for a in artifacts(bench)]


def missing_real(bench: Benchmark, folder: Path) -> list[str]:
    return [p for p in _paths(bench) if not (folder / p).exists()]


def _checked(bench: Benchmark, folder: Path) -> Path:
    """The folder, once every artifact is present and matches its recorded sha256.

    The dataset itself is read (and its format checked) by the run, once.
    """
    from harness.artifacts import require

    require(bench, folder)
    return folder.resolve()


def resolve(bench: Benchmark, data: Path | None, seed: int = 0) -> tuple[Path, bool]:
    """Return (data folder, is_demo) for a run."""
    if data is not None:
        if not data.is_dir():
            raise DataError(f"--data {data} is not a folder")
        if demo.is_demo(data):
            return data.resolve(), True
        missing = missing_real(bench, data)
        if missing:
            raise DataError(f"--data {data} lacks {', '.join(missing)}: see benchmarks/{bench.spec.id}/README.md "
                            f"for the layout, or omit --data to use the demo tier")
        return _checked(bench, data), False
    real = data_root() / bench.spec.id
    if real.is_dir() and any((real / a).exists() for a in _paths(bench)):
        return _checked(bench, real), False
    folder = cache_root() / "demo" / f"{bench.spec.id}-seed{seed}"
    if demo.is_demo(folder) and not (folder / demo.REFERENCE_LOG).is_file():
        print(f"{folder} was built by an older harness, without the reference's responses: building it again")
        shutil.rmtree(folder)  # the harness's own cache
    if not demo.is_demo(folder):
        print(f"building the {bench.spec.id} demo tier in {folder} (offline, once)", flush=True)
        demo.build(bench, folder, seed)
    return folder.resolve(), True


def make_folder(folder: Path, **options: bool) -> None:
    try:
        folder.mkdir(**options)
    except OSError as exc:  # not writable, read-only file system, a file in the way
        raise HarnessError(f"cannot create {folder}: {exc.strerror}; choose a writable folder (--out, or "
                           f"HARNESS_RESULTS / HARNESS_CACHE)") from exc


def new_run_dir(out: Path | None, name: str) -> Path:
    """A new, empty run folder; an existing ``--out`` is refused, never overwritten."""
    if out is not None:
        if out.exists():
            raise HarnessError(f"run folder {out} already exists; nothing is overwritten. Choose a new --out")
        make_folder(out, parents=True)
        return out.resolve()
    root = results_root()
    make_folder(root, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        candidate = root / f"{name}-{stamp}{'' if n == 1 else f'-{n}'}"
        try:
            candidate.mkdir()
            return candidate.resolve()
        except FileExistsError:
            continue
        except OSError:
            make_folder(candidate)  # names the folder and the reason
    raise HarnessError(f"could not create a new run folder under {root}")
