"""Read the tensors of a torchsnapshot folder without torchsnapshot, memory-mapped where they can be.

A snapshot (``torchsnapshot.Snapshot.take``) is a folder with a ``.snapshot_metadata`` manifest
(JSON, or YAML from older releases) and the files it points to. Each manifest path is
``<rank>/<stateful>/<key>``; its entry is one of:

* ``Tensor``: ``location`` (a file of the folder), ``serializer`` (``buffer_protocol``: the raw
  bytes of the tensor; ``torch_save``: a ``torch.save`` of it), ``dtype`` (``torch.float32``),
  ``shape``, ``byte_range`` ([start, end) in the file, or the whole file) and ``replicated``;
* ``ChunkedTensor``: a large tensor saved as ``chunks``, each ``{offsets, sizes, tensor}``;
* ``ShardedTensor``: one rank's ``shards``, each ``{offsets, sizes, tensor}``; the whole tensor is
  the union of the shards of every rank, as torchsnapshot merges them on load;
* containers (``dict``, ``OrderedDict``, ``list``), primitives and ``object`` entries, which hold
  no tensor of a state dict and are left alone (an object is a pickle: it is never read).

``read`` returns one stateful's tensors by key. A Tensor entry comes from the lowest rank that
has it (replicated ones are saved once). Chunked and sharded tensors come back as ``Pieces``: the
whole shape and its pieces, each a tensor at its offsets, checked to tile the shape exactly;
``Pieces.full()`` assembles a small one. Raw-byte tensors are memory-mapped copy-on-write: pages
are read when used and never copied into memory unless written, so tables larger than RAM stay
on disk. The manifest is untrusted: a location that leaves the folder, a byte range past a file's
end or of the wrong size, a missing file or shard and pieces that overlap or leave a gap raise a
``DataError`` that names the file and the entry.

``write`` lays tensors out the same way, as torchsnapshot 0.1.0 does (JSON manifest, one raw-bytes
file per rank, row-wise shards over the ranks): demo tiers are written with it, and it is
cross-checked against torchsnapshot in both directions.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import untrusted
from harness.errors import DataError, HarnessError

METADATA = ".snapshot_metadata"
DTYPES = {"torch.float64": np.float64, "torch.float32": np.float32, "torch.float16": np.float16,
          "torch.bfloat16": np.uint16, "torch.int64": np.int64, "torch.int32": np.int32, "torch.int16": np.int16,
          "torch.int8": np.int8, "torch.uint8": np.uint8, "torch.bool": np.bool_}
"""Element types a raw-bytes tensor may have, as numpy reads them (bfloat16's bits as uint16)."""


@dataclass(frozen=True)
class Pieces:
    """A tensor saved in pieces (chunks or shards): its whole shape, and each piece at its offsets."""

    shape: tuple[int, ...]
    pieces: tuple[tuple[tuple[int, ...], Any], ...]

    def full(self):
        """The whole tensor, assembled in memory."""
        import torch

        out = torch.empty(self.shape, dtype=self.pieces[0][1].dtype)
        for offsets, piece in self.pieces:
            out[tuple(slice(o, o + s) for o, s in zip(offsets, piece.shape))] = piece
        return out


def _is_box(part: Any, dims: int) -> bool:
    """Whether a piece has ``dims`` offsets and sizes, non-negative whole numbers."""
    if not isinstance(part, dict):
        return False
    offsets, sizes = part.get("offsets"), part.get("sizes")
    return (isinstance(offsets, list) and isinstance(sizes, list) and len(offsets) == len(sizes) == dims
            and all(untrusted.is_a(v, int) and v >= 0 for v in offsets + sizes))


class Reader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = folder / METADATA

    def manifest(self) -> dict[str, dict]:
        if not self.where.is_file():
            raise DataError(f"{self.where} is missing: {self.folder} is not a torchsnapshot folder (Snapshot.take "
                            f"writes that manifest next to the tensors)")
        text = self.where.read_text(encoding="utf-8", errors="replace")
        try:
            raw = json.loads(text)
        except ValueError:
            import yaml

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise DataError(f"{self.where} is neither JSON nor YAML ({exc}): the snapshot is damaged") from exc
        entries = raw.get("manifest") if isinstance(raw, dict) else None
        if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
            raise DataError(f"{self.where} has no manifest of entries: the snapshot is damaged")
        return entries

    def fail(self, path: str, problem: str) -> DataError:
        return DataError(f"{self.where}: entry {path!r}: {problem}")

    def tensor(self, path: str, entry: dict):
        """One Tensor entry (or the tensor of a shard or chunk), memory-mapped when raw bytes."""
        import torch

        fields = {"location": str, "serializer": str, "dtype": str, "shape": list}
        if not all(untrusted.is_a(entry.get(k), kind) for k, kind in fields.items()):
            raise self.fail(path, "a tensor needs location, serializer, dtype and shape")
        try:
            location = untrusted.relative_path(entry["location"], f"{self.where} entry {path!r} location")
        except HarnessError as exc:
            raise DataError(str(exc)) from None
        file = self.folder / location
        if not file.is_file():
            raise self.fail(path, f"its file {location} is missing from {self.folder}")
        if not file.resolve().is_relative_to(self.folder.resolve()):  # a link out of the folder
            raise self.fail(path, f"its file {location} leads out of {self.folder}")
        shape = tuple(entry["shape"])
        if not all(untrusted.is_a(s, int) and s >= 0 for s in shape):
            raise self.fail(path, f"shape {list(shape)} is not a list of sizes")
        size = file.stat().st_size
        start, end = entry.get("byte_range") or (0, size)
        if not (untrusted.is_a(start, int) and untrusted.is_a(end, int) and 0 <= start <= end <= size):
            raise self.fail(path, f"byte range {entry.get('byte_range')} is outside {location} ({size} bytes)")
        if entry["serializer"] == "buffer_protocol":
            if entry["dtype"] not in DTYPES:
                raise self.fail(path, f"dtype {entry['dtype']!r} is not one raw bytes can hold ({', '.join(DTYPES)})")
            dtype = np.dtype(DTYPES[entry["dtype"]])
            if end - start != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise self.fail(path, f"byte range {start}..{end} of {location} is {end - start} bytes, but "
                                      f"{entry['dtype']} {list(shape)} needs {int(np.prod(shape)) * dtype.itemsize}")
            if end == start:
                return torch.zeros(shape, dtype=getattr(torch, entry["dtype"].removeprefix("torch.")))
            mapped = torch.from_numpy(np.memmap(file, dtype=dtype, mode="c", offset=start, shape=shape))
            return mapped.view(torch.bfloat16) if entry["dtype"] == "torch.bfloat16" else mapped
        if entry["serializer"] == "torch_save":
            with file.open("rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
            try:
                loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any unreadable piece gets the same advice
                raise self.fail(path, f"{location} holds no readable tensor ({type(exc).__name__})") from exc
            if not isinstance(loaded, torch.Tensor) or tuple(loaded.shape) != shape:
                raise self.fail(path, f"{location} does not hold a tensor of shape {list(shape)}")
            return loaded
        raise self.fail(path, f"serializer {entry['serializer']!r} is neither buffer_protocol nor torch_save")

    def pieces(self, path: str, shape: tuple[int, ...], parts: list) -> Pieces:
        """Pieces that tile ``shape`` exactly: each within it, none overlapping, none missing."""
        if not parts:
            raise self.fail(path, "it has no pieces")
        found = []
        for number, part in enumerate(parts):
            if not (_is_box(part, len(shape)) and isinstance(part.get("tensor"), dict)):
                raise self.fail(path, f"piece {number} needs {len(shape)} offsets and sizes, and a tensor")
            offsets, sizes = tuple(part["offsets"]), tuple(part["sizes"])
            if any(o + s > n for o, s, n in zip(offsets, sizes, shape)):
                raise self.fail(path, f"piece {number} at {list(offsets)} of {list(sizes)} is not inside {list(shape)}")
            tensor = self.tensor(f"{path} piece {number}", part["tensor"])
            if tuple(tensor.shape) != sizes:
                raise self.fail(path, f"piece {number} holds {list(tensor.shape)}, not its sizes {list(sizes)}")
            found.append((offsets, tensor))
        boxes = [(o, tuple(t.shape)) for o, t in found]
        for i, (a, sa) in enumerate(boxes):
            for b, sb in boxes[i + 1:]:
                if all(x < y + m and y < x + n for x, n, y, m in zip(a, sa, b, sb)):
                    raise self.fail(path, f"pieces at {list(a)} and {list(b)} overlap")
        covered = sum(int(np.prod(s, dtype=np.int64)) for _, s in boxes)
        if covered != int(np.prod(shape, dtype=np.int64)):
            raise self.fail(path, f"its pieces cover {covered} of the {int(np.prod(shape))} elements of "
                                  f"{list(shape)}: a shard is missing (every rank's entries must be in the manifest)")
        return Pieces(shape, tuple(sorted(found, key=lambda item: item[0])))

    def read(self, stateful: str) -> dict[str, Any]:
        """The tensors of one stateful (``"model"``), by key: tensors, or ``Pieces``."""
        by_key: dict[str, list[tuple[int, str, dict]]] = {}
        for path, entry in self.manifest().items():
            rank, _, rest = path.partition("/")
            name, _, key = rest.partition("/")
            if rank.isdigit() and name == stateful and key:
                by_key.setdefault(key, []).append((int(rank), path, entry))
        if not by_key:
            raise DataError(f"{self.where} holds nothing under {stateful!r}: not the snapshot expected")
        tensors: dict[str, Any] = {}
        for key, found in by_key.items():
            found.sort(key=lambda item: item[0])
            _, path, entry = found[0]
            kind = entry.get("type")
            if kind == "Tensor":
                tensors[key] = self.tensor(path, entry)
            elif kind == "ChunkedTensor":
                shape = entry.get("shape")
                if not (isinstance(shape, list) and all(untrusted.is_a(s, int) and s >= 0 for s in shape)
                        and isinstance(entry.get("chunks"), list)):
                    raise self.fail(path, "a chunked tensor needs a shape and chunks")
                tensors[key] = self.pieces(path, tuple(entry["shape"]), entry["chunks"])
            elif kind == "ShardedTensor":
                # every rank lists its own shards; the tensor is their union, its shape their extent
                shards = [s for _, p, e in found if isinstance(e.get("shards"), list) for s in e["shards"]]
                dims = len(shards[0].get("offsets") or []) if shards and isinstance(shards[0], dict) else 0
                if not dims or not all(_is_box(s, dims) for s in shards):
                    raise self.fail(path, "a sharded tensor needs shards, each with offsets and sizes of one rank")
                extent = [max(shard["offsets"][d] + shard["sizes"][d] for shard in shards)
                          for d in range(len(shards[0]["offsets"]))]
                tensors[key] = self.pieces(path, tuple(extent), shards)
        return tensors


def read(folder: Path, stateful: str = "model") -> dict[str, Any]:
    """The tensors of ``stateful`` in the torchsnapshot at ``folder`` (see the module docstring)."""
    return Reader(folder).read(stateful)


def write(folder: Path, tensors: dict[str, Any], world_size: int = 1, row_sharded: tuple[str, ...] = (),
          stateful: str = "model") -> None:
    """Write ``tensors`` (a state dict) as torchsnapshot 0.1.0 lays a snapshot out, into ``folder``.

    ``world_size`` ranks each list every key. A key in ``row_sharded`` is a ShardedTensor split by
    rows over the ranks in chunks of ceil(rows / world_size), as torchrec's row-wise sharding and
    ``ChunkShardingSpec(dim=0)`` split it; the others are replicated Tensors, saved once. Each
    rank's bytes go to one ``batched/<uuid>`` file (raw bytes, ``buffer_protocol``), written as
    they come; the uuids derive from the rank, so the same tensors give the same folder.
    """
    import contextlib
    import uuid

    import torch

    names = [f"batched/{uuid.uuid5(uuid.NAMESPACE_OID, f'{stateful}/{rank}')}" for rank in range(world_size)]
    (folder / "batched").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        handles: dict[int, Any] = {}

        def put(rank: int, tensor) -> dict:
            if rank not in handles:
                handles[rank] = files.enter_context((folder / names[rank]).open("wb"))
            start = handles[rank].tell()
            if tensor.numel():
                handles[rank].write(memoryview(tensor.detach().contiguous().view(torch.uint8).numpy()))
            return {"type": "Tensor", "location": names[rank], "serializer": "buffer_protocol",
                    "dtype": str(tensor.dtype), "shape": list(tensor.shape), "replicated": False,
                    "byte_range": [start, handles[rank].tell()]}

        manifest: dict[str, dict] = {}
        replicated = {key: dict(put(0, t), replicated=True) for key, t in tensors.items() if key not in row_sharded}
        for rank in range(world_size):
            manifest[f"{rank}/{stateful}"] = {"type": "OrderedDict", "keys": list(tensors)}
            for key, tensor in tensors.items():
                if key not in row_sharded:
                    manifest[f"{rank}/{stateful}/{key}"] = replicated[key]
                    continue
                chunk = -(-tensor.shape[0] // world_size)
                start, stop = min(rank * chunk, tensor.shape[0]), min((rank + 1) * chunk, tensor.shape[0])
                shards = [] if start == stop else [
                    {"offsets": [start] + [0] * (tensor.dim() - 1), "sizes": [stop - start, *tensor.shape[1:]],
                     "tensor": put(rank, tensor[start:stop])}]
                manifest[f"{rank}/{stateful}/{key}"] = {"type": "ShardedTensor", "shards": shards}
    metadata = {"version": "0.1.0", "world_size": world_size, "manifest": manifest}
    (folder / METADATA).write_text(json.dumps(metadata, indent=2))
