"""DLRM-v2 by hand: the aggregation against the reference's trace, the mapped day 23 files, the
pure-torch DCNv2 against a numpy computation of the snapshot's weights, tables in pieces, batched
answers against the reference's one sample at a time, AUC, and bad input."""

from __future__ import annotations

import json
import resource
import zipfile

import numpy as np
import pytest
import torch

from benchmarks.dlrm import accuracy, backend, dataset, demo
from harness import snapshot
from harness.errors import DataError

# the first groups of the reference's trace (tools/dist_trace_verification.txt: seed 123, its quantile file)
REFERENCE_TRACE = """0, 200, 200
200, 400, 200
400, 600, 200
600, 800, 200
800, 1300, 500
1300, 2000, 700
2000, 2200, 200
2200, 2300, 100
2300, 2400, 100
2400, 2900, 500
2900, 3200, 300
3200, 3400, 200
3400, 3500, 100
"""


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("dlrm")


@pytest.fixture
def damaged(demo_copy):
    return demo_copy("dlrm")


def test_the_aggregation_is_the_references():
    rows = 178274637 // 2 + 1  # the first half of day 23
    bounds = dataset.aggregate(rows)
    assert len(bounds) - 1 == 330067 and bounds[-1] == rows
    assert dataset.trace(bounds).startswith(REFERENCE_TRACE)
    # one draw per group, as the reference's loop draws them
    np.random.seed(dataset.SEED)
    sizes = [dataset.QUANTILE[np.random.randint(low=0, high=len(dataset.QUANTILE))] for _ in range(1000)]
    assert np.diff(bounds[:1001]).tolist() == sizes


def test_a_small_aggregation_by_hand():
    # seed 0 draws 0, 1, 1, 0, 1, ... from two sizes: groups 2, 5, 5 then the 3 rows left (cut short)
    assert np.random.RandomState(0).randint(0, 2, size=4).tolist() == [0, 1, 1, 0]
    assert dataset.aggregate(15, quantile=(2, 5), seed=0).tolist() == [0, 2, 7, 12, 14, 15]
    assert dataset.trace(np.array([0, 2, 7])) == "0, 2, 2\n2, 7, 5\n"


def test_a_reference_trace_beside_the_data_is_checked(damaged):
    folder = damaged
    (folder / dataset.TRACE).write_text(REFERENCE_TRACE)  # the same seed and sizes: the same first groups
    assert len(dataset.load(folder)) == 74
    (folder / dataset.TRACE).write_text(REFERENCE_TRACE.replace("200, 400, 200", "200, 500, 300"))
    with pytest.raises(DataError, match=rf"{dataset.TRACE} line 2 is '200, 500, 300' but this dataset's group 1 is "
                                        rf"'200, 400, 200'"):
        dataset.load(folder)
    ours = dataset.trace(dataset.aggregate(len(dataset.Day23(folder))))
    (folder / dataset.TRACE).write_text(ours + "20001, 20100, 99\n")
    with pytest.raises(DataError, match=r"lists 75 groups, this dataset makes 74"):
        dataset.load(folder)


def test_the_day_files_are_mapped_and_cut_to_the_first_half(data):
    day = dataset.Day23(data)
    assert len(day) == demo.ROWS // 2 + 1  # ceil: 20001 of 40001
    assert day.hotness == demo.HOTNESS
    with np.load(data / dataset.SPARSE) as npz:
        for i in (0, 20, 25):
            assert isinstance(day.sparse[i].base, np.memmap) or isinstance(day.sparse[i], np.memmap)
            assert np.array_equal(day.sparse[i], npz[f"{i}.npy"][:len(day)])
    group = dataset.load(data)[3]
    bounds = dataset.aggregate(len(day))
    assert len(group) == bounds[4] - bounds[3] and np.array_equal(group.dense, day.dense[bounds[3]:bounds[4]])


def reference_numpy(state: dict, dense: np.ndarray, sparse: list[np.ndarray]) -> np.ndarray:
    """DLRM-DCNv2 written out with numpy, straight from the snapshot's tensors (float64)."""
    def w(key):
        return state[key].double().numpy()

    x = dense.astype(np.float64)
    for i in range(len(demo.DENSE_SIZES)):
        layer = backend.DENSE_LAYER.format(i)
        x = np.maximum(x @ w(f"{layer}.weight").T + w(f"{layer}.bias"), 0)
    pooled = [w(backend.TABLE.format(i))[ids].sum(axis=1) for i, ids in enumerate(sparse)]
    x0 = np.concatenate([x] + pooled, axis=1)  # the dense arch's output first, then the tables in order
    x = x0
    for layer in range(demo.CROSS_LAYERS):
        v, wk, b = (w(backend.CROSS.format(kind, layer)) for kind in ("V_kernels", "W_kernels", "bias"))
        x = x0 * ((x @ v.T) @ wk.T + b) + x
    for i in range(len(demo.OVER_SIZES)):
        layer = backend.OVER_LAYER.format(i)
        x = np.maximum(x @ w(f"{layer}.weight").T + w(f"{layer}.bias"), 0)
    logits = x @ w(f"{backend.OVER_OUT}.weight").T + w(f"{backend.OVER_OUT}.bias")
    return 1 / (1 + np.exp(-logits[:, 0]))


def test_the_model_is_dcnv2_as_written_out(data):
    state = {k: (v.full() if isinstance(v, snapshot.Pieces) else v)
             for k, v in snapshot.read(data / backend.CHECKPOINT).items()}
    groups = [dataset.load(data)[i] for i in range(3)]
    ours = backend.load(data, "cpu", "fp32").predict(groups)
    for group, answer in zip(groups, ours):
        expected = reference_numpy(state, np.asarray(group.dense), [np.asarray(s) for s in group.sparse])
        assert answer.dtype == np.float32 and answer.shape == (len(group), 2)
        np.testing.assert_allclose(answer[:, 0], expected, rtol=1e-5, atol=1e-6)
        assert np.array_equal(answer[:, 1], np.asarray(group.labels, dtype=np.float32))


def test_batched_answers_are_the_references_one_at_a_time(data):
    ds = dataset.load(data)
    groups = [ds[i] for i in range(len(ds))]
    ours = backend.load(data, "cpu", "fp32").predict(groups)
    reference = backend.load_reference(data, "cpu", "fp32").predict(groups)
    assert [len(a) for a in ours] == [len(g) for g in groups]
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    bf16 = backend.load(data, "cpu", "bf16").predict(groups[:2])
    np.testing.assert_allclose(bf16[0][:, 0], ours[0][:, 0], atol=0.05)


def test_tables_in_pieces_are_summed_in_place(monkeypatch):
    table = torch.randn(10, 4)
    pieces = snapshot.Pieces((10, 4), (((0, 0), table[:4]), ((4, 0), table[4:7]), ((7, 0), table[7:])))
    monkeypatch.setattr(backend, "ASSEMBLE_BYTES", 0)
    ids = torch.tensor([[0, 9, 4], [6, 6, 3], [7, 1, 8]], dtype=torch.int32)
    expected = table[ids.long()].sum(dim=1)
    torch.testing.assert_close(backend.Table(pieces, "t").pool(ids), expected)
    columns = snapshot.Pieces((10, 4), (((0, 0), table[:, :3]), ((0, 3), table[:, 3:])))  # column-wise shards
    torch.testing.assert_close(backend.Table(columns, "t").pool(ids), expected)
    with pytest.raises(DataError, match=r"id 10 is outside t \(10 rows\)"):
        backend.Table(pieces, "t").pool(torch.tensor([[1, 10]]))
    monkeypatch.setattr(backend, "ASSEMBLE_BYTES", 1 << 20)
    assert len(backend.Table(pieces, "t").pieces) == 1  # a small one is assembled


def resident_mib() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2 ** 20


def test_a_large_table_is_read_in_place_not_into_memory(tmp_path):
    rows = 1 << 18  # 256 MiB of fp32 x 256
    table = np.lib.format.open_memmap(tmp_path / "t.npy", mode="w+", dtype=np.float32, shape=(rows, 256))
    table[::4096] = 1.0
    table.flush()
    offset = table.offset
    del table
    (tmp_path / "snap").mkdir()
    (tmp_path / "t.npy").rename(tmp_path / "snap" / "blob")
    entry = {"type": "Tensor", "location": "blob", "serializer": "buffer_protocol", "dtype": "torch.float32",
             "shape": [rows, 256], "replicated": False, "byte_range": [offset, offset + rows * 256 * 4]}
    (tmp_path / "snap" / snapshot.METADATA).write_text(
        '{"version": "0.1.0", "world_size": 1, "manifest": {"0/model/t": %s}}' % json.dumps(entry))
    before = resident_mib()
    weight = snapshot.read(tmp_path / "snap")["t"]
    pooled = backend.Table(weight, "t").pool(torch.arange(0, rows, 4096, dtype=torch.int64).reshape(-1, 2))
    grown_mib = resident_mib() - before
    assert pooled.shape == (32, 256) and float(pooled[0, 0]) == 2.0
    assert grown_mib < 64, f"reading a 256 MiB table grew the process by {grown_mib:.0f} MiB"


def test_replicas_share_one_mapping(data):
    a, b = backend.load(data, "cpu", "fp32"), backend.load(data, "cpu", "fp32")
    assert a.tables is b.tables and a.model is not b.model  # the tables once per process, the dense part each


def test_auc_by_hand(data, monkeypatch):
    # 4 pairs: positives at 0.9 and 0.4, negatives at 0.5 and 0.1: 3 of the 4 (positive, negative) orders right
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1]) == 0.75
    ds = dataset.load(data)
    labels = ds.labels
    outputs = {}
    for i in range(len(ds)):
        s, e = int(ds.bounds[i]), int(ds.bounds[i + 1])
        truth = labels[s:e].astype(np.float32)
        outputs[i] = np.stack([truth * 0.5 + 0.25, truth], axis=1).reshape(-1)  # every click above every other
    metrics = accuracy.score(outputs, data)
    assert metrics["AUC"] == 100.0 and metrics["queries"] == len(ds) and metrics["total"] == len(labels)
    assert metrics["good"] == metrics["total"]  # 0.75 rounds to a click, 0.25 to none
    text = accuracy.accuracy_text(metrics)
    assert text.startswith("AUC=100.000%, accuracy=") and text.endswith(f"queries={len(ds)}\n")
    outputs[0] = np.array([], dtype=np.float32)  # a failed sample answers 0 for its pairs
    assert accuracy.score(outputs, data)["AUC"] < 100.0


def test_a_log_that_is_not_of_this_data_is_refused(data):
    ds = dataset.load(data)
    n = int(ds.bounds[1])
    with pytest.raises(DataError, match=rf"sample 0 answered 3 values, but its group has {n} pairs"):
        accuracy.score({0: np.zeros(3, np.float32)}, data)
    flipped = np.stack([np.zeros(n), 1 - ds.labels[:n]], axis=1).astype(np.float32).reshape(-1)
    with pytest.raises(DataError, match=r"sample 0 carries labels that are not those of .*day_23_labels.npy \(row 0\)"):
        accuracy.score({0: flipped}, data)
    with pytest.raises(DataError, match=r"names sample 999, but the data makes 74 samples"):
        accuracy.score({999: np.zeros(2, np.float32)}, data)


def test_labels_other_than_clicks_are_refused(damaged):
    labels = np.load(damaged / dataset.LABELS)
    labels[5, 0] = 2
    np.save(damaged / dataset.LABELS, labels)
    with pytest.raises(DataError, match=r"day_23_labels.npy holds the label 2; a click label is 0 or 1"):
        accuracy.score({0: np.array([], np.float32)}, damaged)


def test_bad_day_files_are_named(damaged):
    folder = damaged
    np.save(folder / dataset.DENSE, np.zeros((10, 13), dtype=np.float64))
    with pytest.raises(DataError, match=r"day_23_dense.npy is float64 \(10, 13\); it must be float32 \[rows, 13\]"):
        dataset.load(folder)
    np.save(folder / dataset.DENSE, np.zeros((10, 13), dtype=np.float32))
    with pytest.raises(DataError, match=r"day_23_labels.npy has 40001 rows but day_23_dense.npy has 10"):
        dataset.load(folder)
    data = (folder / dataset.SPARSE).read_bytes()
    (folder / dataset.SPARSE).write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"day_23_sparse_multi_hot.npz is not a readable npz .*truncated"):
        dataset.load(folder)


def test_the_npz_members_are_checked(tmp_path):
    path = tmp_path / "s.npz"
    np.savez_compressed(path, **{"0": np.zeros((4, 2), np.int32)})
    with pytest.raises(DataError, match=r"0.npy is compressed"):
        dataset.npz_member(path, "0.npy")
    np.savez(path, **{"0": np.zeros((4, 2), np.int64)})
    with pytest.raises(DataError, match=r"0.npy is int64 \(4, 2\); each feature is C-ordered int32"):
        dataset.npz_member(path, "0.npy")
    with pytest.raises(DataError, match=r"has no 1.npy"):
        dataset.npz_member(path, "1.npy")
    np.savez(path, **{"0": np.arange(8, dtype=np.int32).reshape(4, 2)})
    with zipfile.ZipFile(path) as archive:  # a member whose header claims more than it holds
        info = archive.getinfo("0.npy")
    assert dataset.npz_member(path, "0.npy").tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    raw = bytearray(path.read_bytes())
    header = raw.index(b"(4, 2)", info.header_offset)
    raw[header:header + 6] = b"(9, 2)"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"0.npy is truncated"):
        dataset.npz_member(path, "0.npy")


def test_a_snapshot_of_another_model_is_named(damaged):
    folder = damaged
    state = demo.state_dict(0)
    state[backend.TABLE.format(3)] = torch.zeros(5, demo.DIM + 1)
    import shutil

    shutil.rmtree(folder / backend.CHECKPOINT)
    (folder / backend.CHECKPOINT).mkdir()
    snapshot.write(folder / backend.CHECKPOINT, state, world_size=2, row_sharded=(backend.TABLE.format(0),))
    wrong = rf"t_cat_3.weight is \[5, {demo.DIM + 1}\], but the dense arch gives {demo.DIM}"
    with pytest.raises(DataError, match=wrong):
        backend.load(folder, "cpu", "fp32")
    del state[backend.CROSS.format("W_kernels", 1)]
    shutil.rmtree(folder / backend.CHECKPOINT)
    (folder / backend.CHECKPOINT).mkdir()
    snapshot.write(folder / backend.CHECKPOINT, state)
    with pytest.raises(DataError, match=r"has no model.inter_arch.crossnet.W_kernels.1: the cross net is incomplete"):
        backend.load(folder, "cpu", "fp32")
