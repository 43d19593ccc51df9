"""Multi-hot Criteo day 23, memory-mapped, in the reference's aggregated samples.

Data folder layout: the three files the MLPerf training recipe writes for day 23,
``day_23_dense.npy`` (float32 [rows, 13]), ``day_23_sparse_multi_hot.npz`` (``0.npy`` ...
``25.npy``, each int32 [rows, hotness of that feature], stored uncompressed) and
``day_23_labels.npy`` ([rows] or [rows, 1], 0 or 1), and the model (see ``backend.py``). All
three are memory-mapped: nothing is read before a sample is used, and the sparse arrays are read
in place inside the npz, as the reference reads them.

Inference uses the first half of the rows (ceil(rows / 2); the second half starts the calibration
set). One LoadGen sample is a group of consecutive rows (user-item pairs): the reference draws
each group's size from the quantile list of its ``dist_quantile.txt`` (``QUANTILE``), uniformly,
with numpy's legacy generator seeded 123, until the rows run out (the last group is cut short).
Day 23 gives 330,067 groups; ``trace`` writes them as the reference's
``dlrm_trace_of_aggregated_samples.txt`` ("start, end, size" per line), and a trace of that name
in the data folder is checked against ours. A sample is the views of its rows: no copy is made
until the model reads them.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.samples import HeldDataset

DENSE, SPARSE, LABELS = "day_23_dense.npy", "day_23_sparse_multi_hot.npz", "day_23_labels.npy"
TRACE = "dlrm_trace_of_aggregated_samples.txt"
DENSE_FEATURES, SPARSE_FEATURES = 13, 26
QUANTILE = (100, 100) + (200,) * 12 + (300, 300, 400, 500, 600, 700)
"""Group sizes, equally likely: the inverse CDF of the reference's query-size distribution."""
SEED = 123  # the reference's --numpy-rand-seed


def aggregate(rows: int, quantile: tuple[int, ...] = QUANTILE, seed: int = SEED) -> np.ndarray:
    """Group boundaries [0, e1, e2, ..., rows]: group i is rows [b[i], b[i + 1]).

    The reference draws one size per group with ``np.random.randint(0, len(quantile))`` after
    ``np.random.seed(seed)``; a draw of many at once gives the same numbers (tested).
    """
    if rows <= 0:
        raise DataError("day 23 has no rows to group into samples")
    sizes = np.asarray(quantile, dtype=np.int64)[
        np.random.RandomState(seed).randint(0, len(quantile), size=rows // min(quantile) + 1)]
    ends = np.cumsum(sizes)
    last = int(np.searchsorted(ends, rows))  # the first group that reaches the end
    bounds = np.concatenate([[0], np.minimum(ends[:last + 1], rows)])
    most, fewest = -(-rows // min(quantile)), -(-rows // max(quantile))
    if not fewest <= len(bounds) - 1 <= most:  # the reference's sanity check
        raise DataError(f"{len(bounds) - 1} groups of {rows} rows is outside [{fewest}, {most}]")
    return bounds


def trace(bounds: np.ndarray) -> str:
    """The reference's aggregation trace: "start, end, size" for each group."""
    return "".join(f"{s}, {e}, {e - s}\n" for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def npz_member(path: Path, name: str) -> np.memmap:
    """The array ``name`` of an uncompressed npz, memory-mapped in place (read-only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(name)
            if info.compress_type != zipfile.ZIP_STORED:
                raise DataError(f"{path}: {name} is compressed; the sparse features are read in place, so the npz "
                                f"must be stored (np.savez, not np.savez_compressed)")
            with path.open("rb") as handle:
                handle.seek(info.header_offset)
                local = handle.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    raise DataError(f"{path}: the entry of {name} is damaged: fetch the file again")
                name_length, extra_length = struct.unpack("<HH", local[26:30])
                start = info.header_offset + 30 + name_length + extra_length
                handle.seek(start)
                version = np.lib.format.read_magic(handle)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(handle))
                offset = handle.tell()
    except KeyError:
        raise DataError(f"{path} has no {name}: it must hold 0.npy ... {SPARSE_FEATURES - 1}.npy, one per "
                        f"categorical feature, as the training recipe writes it") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable npz ({exc}): it is truncated or damaged; fetch it again") from exc
    if dtype != np.int32 or fortran or len(shape) != 2:
        raise DataError(f"{path}: {name} is {dtype} {shape}; each feature is C-ordered int32 [rows, hotness]")
    needed = int(np.prod(shape, dtype=np.int64)) * 4
    if offset - start + needed > info.file_size or offset + needed > path.stat().st_size:
        raise DataError(f"{path}: {name} is truncated ({shape} needs {needed} bytes): fetch the file again")
    return np.memmap(path, dtype=np.int32, mode="r", offset=offset, shape=shape)


def load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing: put the preprocessed day 23 there (see benchmarks/dlrm/README.md), "
                        f"or run without --data for the demo tier")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy of {what} ({exc}): it is truncated or damaged") from exc


@dataclass(frozen=True)
class Group:
    """One LoadGen sample: the rows of a group, as views of the mapped files."""

    dense: np.ndarray
    """float32 [n, 13]"""
    sparse: tuple[np.ndarray, ...]
    """per feature, int32 [n, hotness]"""
    labels: np.ndarray
    """[n]"""

    def __len__(self) -> int:
        return len(self.dense)


class Day23:
    """The mapped day 23 files, cut to the rows inference uses, checked against each other."""

    def __init__(self, data_dir: Path) -> None:
        dense = load_npy(data_dir / DENSE, "dense features")
        labels = load_npy(data_dir / LABELS, "labels")
        sparse_path = data_dir / SPARSE
        if not sparse_path.is_file():
            raise DataError(f"{sparse_path} is missing: put the preprocessed day 23 there (see "
                            f"benchmarks/dlrm/README.md), or run without --data for the demo tier")
        sparse = [npz_member(sparse_path, f"{i}.npy") for i in range(SPARSE_FEATURES)]
        if dense.dtype != np.float32 or dense.ndim != 2 or dense.shape[1] != DENSE_FEATURES:
            raise DataError(f"{data_dir / DENSE} is {dense.dtype} {dense.shape}; it must be float32 "
                            f"[rows, {DENSE_FEATURES}]")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or labels.dtype.kind not in "iuf":
            raise DataError(f"{data_dir / LABELS} is {labels.dtype} {labels.shape}; it must be numbers [rows] or "
                            f"[rows, 1]")
        rows = len(dense)
        for name, array in [(LABELS, labels)] + [(f"{SPARSE} {i}.npy", s) for i, s in enumerate(sparse)]:
            if len(array) != rows:
                raise DataError(f"{data_dir / name.split()[0]}: {name} has {len(array)} rows but {DENSE} has {rows}; "
                                f"the three files must be of the same day")
        used = rows // 2 + rows % 2  # the reference's first half
        self.dense, self.labels = dense[:used], labels[:used]
        self.sparse = tuple(s[:used] for s in sparse)
        self.hotness = tuple(int(s.shape[1]) for s in sparse)

    def __len__(self) -> int:
        return len(self.dense)

    def rows(self, start: int, stop: int) -> Group:
        return Group(self.dense[start:stop], tuple(s[start:stop] for s in self.sparse), self.labels[start:stop])


class Dataset(HeldDataset):
    """QSL samples: the aggregated groups of day 23 (``Group``), in the reference's order."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.day = Day23(data_dir)
        self.bounds = aggregate(len(self.day))
        check_trace(data_dir / TRACE, self.bounds)
        super().__init__(len(self.bounds) - 1, self.group)

    def group(self, index: int) -> Group:
        return self.day.rows(int(self.bounds[index]), int(self.bounds[index + 1]))

    def sample_length(self, index: int) -> int:
        """User-item pairs of a sample (batches are capped by their total)."""
        return int(self.bounds[index + 1] - self.bounds[index])

    @property
    def labels(self) -> np.ndarray:
        """[rows] of the inference rows (mapped)."""
        return self.day.labels


def check_trace(path: Path, bounds: np.ndarray) -> None:
    """A reference trace beside the data must list the groups we made, line for line."""
    if not path.is_file():
        return
    ours = trace(bounds).splitlines()
    theirs = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, (a, b) in enumerate(zip(ours, theirs), 1):
        if a != b.strip():
            raise DataError(f"{path} line {number} is {b.strip()!r} but this dataset's group {number - 1} is {a!r}: "
                            f"the trace is of other data, or of another seed or quantile file")
    if len(theirs) > len(ours):
        raise DataError(f"{path} lists {len(theirs)} groups, this dataset makes {len(ours)}: the trace is of other "
                        f"data")


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
