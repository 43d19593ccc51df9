"""Real datasets and models: what ``artifacts.toml`` lists, verified and put in place atomically.

Each benchmark's ``artifacts.toml`` holds ``[[artifact]]`` tables::

    [[artifact]]
    path = "cnn_eval.json"     # file or folder, relative to the data folder
    kind = "dataset"           # or "model"
    source = "where it comes from"
    sha256 = "..."             # optional until recorded; a folder's hash is the sha256 of its
                               # `sha256sum`-style listing (sorted relative paths)

``verify`` checks presence, every recorded hash and that the dataset reads (hashes are cached by path, size and mtime,
so a second check does not re-read tens of GB); ``prepare`` copies the artifacts from a folder
the user has into the data folder: into a hidden staging folder first, verified, then renamed
into place, so a data folder never holds a half-copied artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness import datadir
from harness.errors import DataError
from harness.registry import Benchmark
from harness.util import sha256_file, store_cache


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: str
    source: str
    sha256: str | None = None


def artifacts(bench: Benchmark) -> list[Artifact]:
    path = bench.folder / "artifacts.toml"
    try:
        raw = tomllib.loads(path.read_text())
        return [Artifact(a["path"], a["kind"], a["source"], a.get("sha256")) for a in raw.get("artifact", [])]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is malformed ({exc!r}): each [[artifact]] needs path, kind and source") from exc


def _cache() -> Path:
    return datadir.cache_root() / "sha256-cache.json"


def file_hashes(root: Path, paths: Iterable[str] = ("",), fresh: bool = False) -> dict[str, str]:
    """sha256 of every file under ``root / path`` for each path, by path relative to ``root``.

    Cached by resolved path, size and mtime (in the harness cache), so tens of GB are hashed once.
    A file changed in place with its size and mtime kept (``touch -r``) looks unchanged to that
    cache: ``fresh`` reads every file again (replay, ``verify --full``) and refreshes the cache.
    """
    cache_file = _cache()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):  # absent or damaged: hash again
        cache = {}
    found = {}
    for target in (root / path for path in paths):
        for file in [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file()):
            stat = file.stat()
            key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
            if fresh or key not in cache:
                cache[key] = sha256_file(file)
            found[file.relative_to(root).as_posix()] = cache[key]
    store_cache(cache_file, json.dumps(cache).encode())  # processes hashing at once (partitions) never tear it
    return found


def listing_sha256(hashes: dict[str, str]) -> str:
    """sha256 of a sorted ``<sha256>  <relative path>`` listing (what ``sha256sum`` prints)."""
    return hashlib.sha256("".join(f"{h}  {p}\n" for p, h in sorted(hashes.items())).encode()).hexdigest()


def tree_sha256(target: Path, fresh: bool = False) -> str:
    """sha256 of a file, or of a folder's sorted ``<sha256>  <relative path>`` listing."""
    if target.is_file():
        return file_hashes(target.parent, [target.name], fresh)[target.name]
    return listing_sha256(file_hashes(target, fresh=fresh))


def problems(bench: Benchmark, folder: Path, fresh: bool = False) -> list[str]:
    """Every missing or mismatched artifact in ``folder``, each with what to do."""
    found = []
    for a in artifacts(bench):
        target = folder / a.path
        if not target.exists():
            found.append(f"{target} is missing ({a.kind}; source: {a.source}); put it there with "
                         f"`harness prepare {bench.spec.id} --from DIR`")
        elif a.sha256 and (actual := tree_sha256(target, fresh)) != a.sha256:
            found.append(f"{target} is corrupt or another version: sha256 {actual}, expected {a.sha256}; "
                         f"replace it from {a.source}")
    return found


def require(bench: Benchmark, folder: Path, fresh: bool = False) -> None:
    """Raise DataError listing every missing or mismatched artifact in ``folder``."""
    found = problems(bench, folder, fresh)
    if found:
        raise DataError(f"{bench.spec.id} data in {folder} is not usable:\n  - " + "\n  - ".join(found))


def _readable(bench: Benchmark, folder: Path) -> int:
    """The number of samples, once the dataset has read in its real format."""
    return len(bench.dataset.load(folder))


def verify(bench: Benchmark, folder: Path, full: bool = False) -> str:
    """A one-line verdict; raises DataError listing every problem. An empty folder means the demo tier.
    ``full``: hash every file again, whatever the hash cache says."""
    listed = artifacts(bench)
    if not folder.is_dir() or not any((folder / a.path).exists() for a in listed):
        return f"{folder}: no real {bench.spec.id} data; runs will use the demo tier"
    require(bench, folder, full)
    return _verdict(bench, folder, _readable(bench, folder), full)


def _verdict(bench: Benchmark, folder: Path, samples: int, full: bool) -> str:
    listed = artifacts(bench)
    hashed = sum(1 for a in listed if a.sha256)
    how = "read again and verified" if full else "verified"
    return (f"{folder}: {len(listed)} {bench.spec.id} artifacts present, {hashed} {how} by sha256; "
            f"{samples} samples read")


def copy_regular(source: Path, target: Path, root: Path, within: frozenset[Path] = frozenset()) -> None:
    """Copy a file or a folder of ``root`` as regular files and folders only: a link is followed
    when it points inside ``root`` (its content is copied) and refused when it points outside, as
    are devices, pipes and sockets and links that loop, so a prepared data folder holds nothing but
    plain files. ``within``: the real folders being copied above this one."""
    real = source.resolve()
    if not real.is_relative_to(root.resolve()):
        raise DataError(f"{source} is a link to {real}, outside {root}; copy the file itself into {root}")
    if real.is_dir():
        if real in within:
            raise DataError(f"{source} is a link to a folder that holds it (a loop); remove the link")
        target.mkdir()
        for child in sorted(source.iterdir()):
            copy_regular(child, target / child.name, root, within | {real})
    elif real.is_file():
        shutil.copyfile(real, target)
        shutil.copystat(real, target)
    else:
        raise DataError(f"{source} is not a regular file or folder (a device, pipe or socket); remove it")


def prepare(bench: Benchmark, source: Path, folder: Path) -> str:
    """Copy the artifacts from ``source`` into ``folder`` through a staging folder that is checked
    (every recorded sha256, and the dataset read in its real format) before anything is moved into
    place; when anything fails, ``folder`` is left as it was."""
    if not source.is_dir():
        raise DataError(f"--from {source} is not a folder")
    listed = artifacts(bench)
    missing = [a.path for a in listed if not (source / a.path).exists()]
    if missing:
        raise DataError(f"{source} lacks {', '.join(missing)}; see benchmarks/{bench.spec.id}/artifacts.toml")
    clashes = [a.path for a in listed if (folder / a.path).exists()]
    if clashes:
        raise DataError(f"{folder} already holds {', '.join(clashes)}; nothing is overwritten: remove them first")
    new = not folder.exists()
    # beside a new folder, so that one rename puts it in place; inside an existing one (a volume's
    # mount point cannot be replaced), each artifact is renamed into place
    stage = folder.parent / f".{folder.name}.staging-{os.getpid()}" if new else folder / f".staging-{os.getpid()}"
    moved: list[str] = []
    try:
        stage.mkdir(parents=True)
        for a in listed:
            (stage / a.path).parent.mkdir(parents=True, exist_ok=True)
            copy_regular(source / a.path, stage / a.path, source)
        found = problems(bench, stage, fresh=True)
        if found:
            raise DataError(f"the copies from {source} do not verify:\n  - " + "\n  - ".join(found))
        try:
            samples = _readable(bench, stage)
        except DataError as exc:
            raise DataError(f"the dataset copied from {source} does not read, so nothing was put in {folder}: "
                            f"{exc}") from exc
        if new:
            stage.rename(folder)
        else:
            for a in listed:
                (folder / a.path).parent.mkdir(parents=True, exist_ok=True)
                (stage / a.path).rename(folder / a.path)
                moved.append(a.path)
    except BaseException:
        for path in reversed(moved):  # a rename that failed half-way: put back what was moved
            (folder / path).rename(stage / path)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return _verdict(bench, folder, samples, True)
