"""The torchsnapshot reader on hand-built snapshots: each entry type, shards merged across ranks,
memory mapping, and untrusted manifests refused by name."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch
import yaml

from harness import snapshot
from harness.errors import DataError


def raw(location: str, tensor: torch.Tensor, byte_range=None, replicated=False) -> dict:
    return {"type": "Tensor", "location": location, "serializer": "buffer_protocol",
            "dtype": str(tensor.dtype), "shape": list(tensor.shape), "replicated": replicated,
            "byte_range": byte_range}


def piece(offsets, tensor_entry) -> dict:
    return {"offsets": offsets, "sizes": tensor_entry["shape"], "tensor": tensor_entry}


def write(folder, files: dict[str, bytes], manifest: dict, as_yaml: bool = False) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    metadata = {"version": "0.1.0", "world_size": 2, "manifest": manifest}
    (folder / snapshot.METADATA).write_text(yaml.safe_dump(metadata) if as_yaml else json.dumps(metadata))


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b""


@pytest.fixture
def table() -> torch.Tensor:
    return torch.arange(40, dtype=torch.float32).reshape(10, 4)


def test_tensors_of_one_stateful_from_a_batched_file_and_torch_save(tmp_path):
    weight, bias = torch.randn(3, 5), torch.randn(5, dtype=torch.float64)
    saved = io.BytesIO()
    torch.save(torch.tensor([7, 8], dtype=torch.int64), saved)
    batched = tensor_bytes(weight) + tensor_bytes(bias)
    write(tmp_path, {"batched/0a": batched, "0/model/steps": saved.getvalue(), "0/optim/x": tensor_bytes(weight)}, {
        "0/model": {"type": "OrderedDict", "keys": ["w", "b", "steps"]},
        "0/model/w": raw("batched/0a", weight, [0, 60], replicated=True),
        "0/model/b": raw("batched/0a", bias, [60, 100], replicated=True),
        "0/model/steps": {"type": "Tensor", "location": "0/model/steps", "serializer": "torch_save",
                          "dtype": "torch.int64", "shape": [2], "replicated": False},
        "0/model/note": {"type": "object", "location": "0/model/note", "serializer": "torch_save",
                         "obj_type": "argparse.Namespace", "replicated": False},
        "0/optim/w": raw("0/optim/x", weight),
    })
    found = snapshot.read(tmp_path, "model")
    assert set(found) == {"w", "b", "steps"}  # the object is never read, the other stateful is not this one
    assert torch.equal(found["w"], weight) and torch.equal(found["b"], bias)
    assert found["steps"].tolist() == [7, 8]


def resident_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_raw_tensors_are_memory_mapped_copy_on_write(tmp_path, table):
    """A 1 GiB table (a sparse file) is read without reading it: only the rows touched come in."""
    rows = 2 ** 18
    with open(tmp_path / "big", "wb") as handle:
        handle.truncate(rows * 1024 * 4)
    big = torch.empty(0, dtype=torch.float32)
    write(tmp_path, {"t": tensor_bytes(table)}, {"0/model/t": raw("t", table),
                                                   "0/model/big": raw("big", big) | {"shape": [rows, 1024]}})
    before = resident_bytes()
    found = snapshot.read(tmp_path)
    assert found["big"].shape == (rows, 1024) and float(found["big"][12345].sum()) == 0.0
    assert resident_bytes() - before < 64 * 2 ** 20
    found["t"][0, 0] = -1.0  # written in memory only: the file keeps its bytes
    assert torch.equal(snapshot.read(tmp_path)["t"], table)


def test_bfloat16_raw_bytes(tmp_path):
    values = torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16)
    write(tmp_path, {"v": tensor_bytes(values)}, {"0/model/v": raw("v", values)})
    found = snapshot.read(tmp_path)["v"]
    assert found.dtype == torch.bfloat16 and torch.equal(found, values)


def test_sharded_tensors_are_the_union_of_every_ranks_shards(tmp_path, table):
    """Row-wise shards on two ranks (as DLRM's tables) and column-wise shards of another."""
    top, bottom = table[:4], table[4:]
    left, right = table[:, :1], table[:, 1:]
    files = {"sharded/a_0": tensor_bytes(top), "sharded/a_1": tensor_bytes(bottom),
             "sharded/b_0": tensor_bytes(left), "sharded/b_1": tensor_bytes(right)}
    write(tmp_path, files, {
        "0/model/rows": {"type": "ShardedTensor", "shards": [piece([0, 0], raw("sharded/a_0", top))]},
        "1/model/rows": {"type": "ShardedTensor", "shards": [piece([4, 0], raw("sharded/a_1", bottom))]},
        "1/model/cols": {"type": "ShardedTensor", "shards": [piece([0, 1], raw("sharded/b_1", right))]},
        "0/model/cols": {"type": "ShardedTensor", "shards": [piece([0, 0], raw("sharded/b_0", left))]},
    })
    found = snapshot.read(tmp_path)
    rows, cols = found["rows"], found["cols"]
    assert rows.shape == cols.shape == (10, 4)
    assert [offsets for offsets, _ in rows.pieces] == [(0, 0), (4, 0)]
    assert torch.equal(rows.full(), table) and torch.equal(cols.full(), table)


def test_chunked_tensors_are_assembled_from_their_chunks(tmp_path, table):
    first, second = table[:7], table[7:]
    write(tmp_path, {"c": tensor_bytes(first) + tensor_bytes(second)}, {"0/model/big": {
        "type": "ChunkedTensor", "dtype": "torch.float32", "shape": [10, 4], "replicated": True,
        "chunks": [piece([0, 0], raw("c", first, [0, 112])), piece([7, 0], raw("c", second, [112, 160]))]}})
    assert torch.equal(snapshot.read(tmp_path)["big"].full(), table)


def test_older_yaml_manifests_are_read(tmp_path, table):
    write(tmp_path, {"t": tensor_bytes(table)}, {"0/model/t": raw("t", table)}, as_yaml=True)
    assert torch.equal(snapshot.read(tmp_path)["t"], table)


@pytest.mark.parametrize("location, problem", [
    ("../outside", "is not a relative path inside its folder"),
    ("/etc/passwd", "is not a relative path inside its folder"),
    ("absent", "its file absent is missing from"),
])
def test_a_location_outside_the_folder_or_missing_is_refused(tmp_path, table, location, problem):
    (tmp_path / "snap").mkdir()
    (tmp_path / "outside").write_bytes(tensor_bytes(table))
    write(tmp_path / "snap", {}, {"0/model/t": raw(location, table)})
    with pytest.raises(DataError, match=problem):
        snapshot.read(tmp_path / "snap")


def test_a_link_out_of_the_folder_is_refused(tmp_path, table):
    (tmp_path / "snap").mkdir()
    (tmp_path / "secret").write_bytes(tensor_bytes(table))
    os.symlink(tmp_path / "secret", tmp_path / "snap" / "t")
    write(tmp_path / "snap", {}, {"0/model/t": raw("t", table)})
    with pytest.raises(DataError, match=r"entry '0/model/t': its file t leads out of"):
        snapshot.read(tmp_path / "snap")


@pytest.mark.parametrize("byte_range, problem", [
    ([0, 400], r"byte range \[0, 400\] is outside t \(160 bytes\)"),
    ([0, 120], r"is 120 bytes, but torch.float32 \[10, 4\] needs 160"),
])
def test_byte_ranges_past_the_file_or_of_the_wrong_size_are_refused(tmp_path, table, byte_range, problem):
    write(tmp_path, {"t": tensor_bytes(table)}, {"0/model/t": raw("t", table, byte_range)})
    with pytest.raises(DataError, match=problem):
        snapshot.read(tmp_path)


def test_a_missing_shard_and_overlapping_shards_are_refused(tmp_path, table):
    top = table[:4]
    write(tmp_path, {"a": tensor_bytes(top)}, {
        "0/model/rows": {"type": "ShardedTensor", "shards": [piece([0, 0], raw("a", top))]},
        "1/model/rows": {"type": "ShardedTensor", "shards": [piece([6, 0], raw("a", top))]},
    })
    with pytest.raises(DataError, match=r"its pieces cover 32 of the 40 elements of \[10, 4\]: a shard is missing"):
        snapshot.read(tmp_path)
    write(tmp_path, {"a": tensor_bytes(top)}, {
        "0/model/rows": {"type": "ShardedTensor", "shards": [piece([0, 0], raw("a", top))]},
        "1/model/rows": {"type": "ShardedTensor", "shards": [piece([2, 0], raw("a", top))]},
    })
    with pytest.raises(DataError, match=r"pieces at \[0, 0\] and \[2, 0\] overlap"):
        snapshot.read(tmp_path)
    write(tmp_path, {}, {"0/model/empty": {"type": "ChunkedTensor", "dtype": "torch.float32", "shape": [0],
                                           "replicated": True, "chunks": []}})
    with pytest.raises(DataError, match="entry '0/model/empty': it has no pieces"):
        snapshot.read(tmp_path)


def test_damaged_manifests_and_unknown_serializers_are_named(tmp_path, table):
    with pytest.raises(DataError, match=r"\.snapshot_metadata is missing: .* is not a torchsnapshot folder"):
        snapshot.read(tmp_path)
    (tmp_path / snapshot.METADATA).write_text("manifest: [unclosed")
    with pytest.raises(DataError, match="is neither JSON nor YAML"):
        snapshot.read(tmp_path)
    entry = raw("t", table) | {"serializer": "pickle"}
    write(tmp_path, {"t": tensor_bytes(table)}, {"0/model/t": entry})
    with pytest.raises(DataError, match="serializer 'pickle' is neither buffer_protocol nor torch_save"):
        snapshot.read(tmp_path)
    write(tmp_path, {"t": tensor_bytes(table)}, {"0/model/t": raw("t", table)})
    with pytest.raises(DataError, match="holds nothing under 'optim'"):
        snapshot.read(tmp_path, "optim")


def state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"table": torch.randn(10, 4, generator=generator), "tiny": torch.randn(3, 2, generator=generator),
            "bias": torch.randn(5, dtype=torch.float64, generator=generator),
            "half": torch.randn(2, 3, generator=generator).to(torch.bfloat16)}


def test_the_writer_shards_rows_over_the_ranks_as_torchrec(tmp_path):
    tensors = state()
    snapshot.write(tmp_path, tensors, world_size=4, row_sharded=("table", "tiny"))
    manifest = json.loads((tmp_path / snapshot.METADATA).read_text())["manifest"]
    assert [s["offsets"] for r in range(4) for s in manifest[f"{r}/model/table"]["shards"]] == [[0, 0], [3, 0], [6, 0],
                                                                                                 [9, 0]]
    assert manifest["3/model/tiny"]["shards"] == []  # 3 rows over 4 ranks: the last holds none
    assert manifest["2/model/bias"] == manifest["0/model/bias"] and manifest["0/model/bias"]["replicated"]
    read = snapshot.read(tmp_path)
    assert isinstance(read["table"], snapshot.Pieces) and len(read["table"].pieces) == 4
    for key, tensor in tensors.items():
        got = read[key].full() if isinstance(read[key], snapshot.Pieces) else read[key]
        assert got.dtype == tensor.dtype and torch.equal(got, tensor)


def test_torchsnapshot_reads_what_the_writer_writes(tmp_path):
    import torchsnapshot

    tensors = state()
    snapshot.write(tmp_path, tensors, world_size=4, row_sharded=("table", "tiny"))
    taken = torchsnapshot.Snapshot(str(tmp_path))
    for rank in (0, 3):
        for key, tensor in tensors.items():
            out = torch.zeros_like(tensor)
            assert torch.equal(taken.read_object(f"{rank}/model/{key}", obj_out=out), tensor), (rank, key)


def _take_sharded(rank: int, folder: str, store: str) -> None:
    """One of two ranks: a row-wise ShardedTensor and a replicated tensor, saved by torchsnapshot."""
    import torch.distributed as dist
    import torchsnapshot
    from torch.distributed._shard import sharded_tensor
    from torch.distributed._shard.sharding_spec import ChunkShardingSpec

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    table = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    sharded = sharded_tensor.empty(ChunkShardingSpec(dim=0, placements=["rank:0/cpu", "rank:1/cpu"]), 10, 4)
    for shard in sharded.local_shards():
        start, rows = shard.metadata.shard_offsets[0], shard.metadata.shard_sizes[0]
        shard.tensor.copy_(table[start:start + rows])

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)
            torch.nn.init.constant_(self.linear.weight, 0.5)

        def state_dict(self, *args, **kwargs):
            return super().state_dict(*args, **kwargs) | {"table": sharded}

    torchsnapshot.Snapshot.take(path=folder, app_state={"model": Holder()})
    dist.destroy_process_group()


def test_the_reader_merges_torchsnapshots_shards_of_every_rank(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_take_sharded, args=(str(tmp_path / "snap"), str(tmp_path / "store")), nprocs=2)
    read = snapshot.read(tmp_path / "snap")
    assert isinstance(read["table"], snapshot.Pieces) and [o for o, _ in read["table"].pieces] == [(0, 0), (5, 0)]
    assert torch.equal(read["table"].full(), torch.arange(40, dtype=torch.float32).reshape(10, 4))
    assert torch.equal(read["linear.weight"], torch.full((2, 3), 0.5))
