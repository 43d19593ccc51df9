"""The MLPerf DLRM-v2 (DCNv2) in plain PyTorch, from its sharded torchsnapshot, tables memory-mapped.

The network is torchrec's ``DLRM_DCN`` as the reference builds it, inside ``DLRMTrain`` (hence the
``model.`` of every key):

* 26 embedding tables (``sparse_arch.embedding_bag_collection.embedding_bags.t_cat_<i>.weight``),
  each a sum over the feature's multi-hot ids;
* the dense arch, an MLP 13 -> 512 -> 256 -> 128 with ReLU after every layer
  (``dense_arch.model._mlp.<i>._linear``);
* the interaction: the dense arch's output and the 26 pooled embeddings, concatenated in that order
  (27 x 128 = 3456 features), through a 3-layer low-rank cross net, x_{l+1} = x_0 * (W_l (V_l x_l)
  + b_l) + x_l with rank 512 (``inter_arch.crossnet.{V_kernels,W_kernels,bias}.<l>``);
* the over arch, an MLP 3456 -> 1024 -> 1024 -> 512 -> 256 with ReLU, then Linear(256, 1)
  (``over_arch.model.0._mlp.<i>._linear``, ``over_arch.model.1``); the prediction is its sigmoid.

The sizes are read from the tensors, so the demo's narrow model of the same structure loads alike.
The weights are read by ``harness.snapshot`` (no torchsnapshot, nothing of the snapshot runs):
raw-byte tensors are mapped copy-on-write, so the tables (97 GiB for the real model) stay in the
page cache, shared by every replica of the process, and a host that cannot hold them in memory
still runs. A table saved in shards (the real checkpoint is row-wise sharded over 8 ranks) is used
shard by shard: each id is looked up in the shard that holds its row, never assembled.

``load`` answers a batch of samples in one pass: their pairs concatenated, each table's ids looked
up at once, the dense parts in the asked dtype (fp32, bf16, fp16; the tables stay fp32 and the
pooled sums are cast), on the CPU or a CUDA device (the tables stay in host memory and the pooled
sums are moved). ``load_reference`` is the reference's way: one sample per forward pass, through
``nn.EmbeddingBag`` lookups of offsets-and-values ids, as torchrec's ``KeyedJaggedTensor`` holds them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.dlrm.dataset import DENSE_FEATURES, SPARSE_FEATURES, Group
from harness import snapshot
from harness.backends.hf import TORCH_DTYPES
from harness.errors import DataError

CHECKPOINT = "model_weights"
TABLE = "model.sparse_arch.embedding_bag_collection.embedding_bags.t_cat_{}.weight"
DENSE_LAYER = "model.dense_arch.model._mlp.{}._linear"
CROSS = "model.inter_arch.crossnet.{}.{}"
OVER_LAYER = "model.over_arch.model.0._mlp.{}._linear"
OVER_OUT = "model.over_arch.model.1"


ASSEMBLE_BYTES = 256 << 20
"""A table saved in pieces is assembled in memory up to this size; a larger one is used in place."""


class Table:
    """One embedding table, whole or in pieces (mapped tensors), summed over each row of ids."""

    def __init__(self, weight: Any, name: str) -> None:
        self.name = name
        if isinstance(weight, snapshot.Pieces) and len(weight.pieces) > 1 \
                and int(np.prod(weight.shape)) * weight.pieces[0][1].element_size() <= ASSEMBLE_BYTES:
            weight = weight.full()
        if isinstance(weight, snapshot.Pieces):
            self.shape, self.pieces = weight.shape, weight.pieces
        else:
            self.shape, self.pieces = tuple(weight.shape), (((0, 0), weight),)
        if len(self.shape) != 2:
            raise DataError(f"{name} is {list(self.shape)}; an embedding table is [rows, dim]")

    def pool(self, ids):
        """Sum of the rows of each line of ``ids`` (int32 or int64 [n, hotness]) -> float32 [n, dim]."""
        import torch
        import torch.nn.functional as F

        if ids.numel():
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.shape[0]:
                raise DataError(f"id {high if high >= self.shape[0] else low} is outside {self.name} "
                                f"({self.shape[0]} rows): the data and the model disagree")
        if len(self.pieces) == 1:
            return F.embedding_bag(ids, self.pieces[0][1], mode="sum")
        # each piece sums the ids of its rows (the others weigh 0): fused lookups, no mask copies
        pooled = torch.zeros((len(ids), self.shape[1]), dtype=self.pieces[0][1].dtype)
        for (row, col), piece in self.pieces:
            inside = ((ids >= row) & (ids < row + piece.shape[0])).to(piece.dtype)
            local = (ids - row).clamp_(0, piece.shape[0] - 1)
            pooled[:, col:col + piece.shape[1]] += F.embedding_bag(local, piece, mode="sum", per_sample_weights=inside)
        return pooled


def _not_the_snapshot(path: Path, key: str) -> DataError:
    return DataError(f"{path} has no {key}: it is not the MLPerf DLRM-v2 snapshot ({CHECKPOINT})")


def _dense(state: dict, layer: str, path: Path):
    try:
        return state[f"{layer}.weight"], state[f"{layer}.bias"]
    except KeyError as exc:
        raise _not_the_snapshot(path, exc.args[0]) from None


def _count(state: dict, pattern: str) -> int:
    count = 0
    while pattern.format(count) in state:
        count += 1
    return count


def network(state: dict, path: Path):
    """The dense part (dense arch, cross net, over arch) with the snapshot's weights, as a Module
    taking (dense float [n, 13], pooled [n, 26, dim]) and giving logits [n]."""
    import torch
    from torch import nn

    def mlp(pattern: str, count: int, relu_last: bool) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for i in range(count):
            weight, bias = _dense(state, pattern.format(i), path)
            linear = nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                linear.weight.copy_(weight)
                linear.bias.copy_(bias)
            layers += [linear, nn.ReLU()] if relu_last or i < count - 1 else [linear]
        return layers

    dense_layers = _count(state, DENSE_LAYER + ".weight")
    cross_layers = _count(state, CROSS.format("V_kernels", "{}"))
    over_layers = _count(state, OVER_LAYER + ".weight")
    if not (dense_layers and cross_layers and over_layers):
        raise DataError(f"{path} lacks the dense arch, cross net or over arch of DLRM-DCNv2: it is not the MLPerf "
                        f"DLRM-v2 snapshot ({CHECKPOINT})")

    class DCN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense_arch = nn.Sequential(*mlp(DENSE_LAYER, dense_layers, relu_last=True))
            over = mlp(OVER_LAYER, over_layers, relu_last=True) + mlp(OVER_OUT, 1, relu_last=False)
            self.over_arch = nn.Sequential(*over)
            try:
                cross = [[state[CROSS.format(kind, l)] for l in range(cross_layers)]
                         for kind in ("V_kernels", "W_kernels", "bias")]
            except KeyError as exc:
                raise DataError(f"{path} has no {exc.args[0]}: the cross net is incomplete") from None
            self.V = nn.ParameterList([nn.Parameter(t.clone(), requires_grad=False) for t in cross[0]])
            self.W = nn.ParameterList([nn.Parameter(t.clone(), requires_grad=False) for t in cross[1]])
            self.b = nn.ParameterList([nn.Parameter(t.clone(), requires_grad=False) for t in cross[2]])

        def forward(self, dense, pooled):
            x0 = torch.cat([self.dense_arch(dense).unsqueeze(1), pooled], dim=1).flatten(1)
            x = x0
            for V, W, b in zip(self.V, self.W, self.b):
                # x0 * (W (V x) + b) + x, with the bias and the residual fused into their ops
                x = torch.addcmul(x, x0, torch.addmm(b, torch.mm(x, V.t()), W.t()))
            return self.over_arch(x).squeeze(-1)

    model = DCN().eval()
    dim = model.dense_arch[-2].out_features
    width = (SPARSE_FEATURES + 1) * dim
    if model.dense_arch[0].in_features != DENSE_FEATURES or model.V[0].shape[1] != width \
            or model.over_arch[0].in_features != width or model.over_arch[-1].out_features != 1:
        raise DataError(f"{path}: the layer sizes do not fit together (dense arch {DENSE_FEATURES} -> {dim}, cross "
                        f"net and over arch of {width} features, one output): not a DLRM-DCNv2 of 26 tables")
    return model


@cache
def _mapped(folder: str, stamp: int) -> tuple[list[Table], dict]:
    """The snapshot's tensors, mapped once per process (every replica shares them)."""
    path = Path(folder)
    state = snapshot.read(path, "model")
    try:
        tables = [Table(state[TABLE.format(i)], f"{path}: {TABLE.format(i)}") for i in range(SPARSE_FEATURES)]
    except KeyError as exc:
        raise _not_the_snapshot(path, exc.args[0]) from None
    dense = {k: (v.full() if isinstance(v, snapshot.Pieces) else v)
             for k, v in state.items() if "embedding_bags" not in k}
    return tables, dense


def read_model(data_dir: Path):
    """(tables, dense-part Module) of the snapshot in ``data_dir``, the tables checked against the dim."""
    path = data_dir / CHECKPOINT
    if not (path / snapshot.METADATA).is_file():
        raise DataError(f"{path} is not a torchsnapshot folder: put the MLPerf DLRM-v2 weights (the "
                        f"'{CHECKPOINT}' folder of the MLCommons bucket) there, or run without --data for the "
                        f"demo tier")
    tables, dense = _mapped(str(path.resolve()), (path / snapshot.METADATA).stat().st_mtime_ns)
    model = network(dense, path)
    dim = model.dense_arch[-2].out_features
    for table in tables:
        if table.shape[1] != dim:
            raise DataError(f"{table.name} is {list(table.shape)}, but the dense arch gives {dim} features: each "
                            f"table must be [rows, {dim}]")
    return tables, model


def _ids(groups: list[Group], feature: int):
    """int32 [pairs, hotness] of one feature over the groups (embedding_bag takes int32 ids as they are)."""
    import torch

    parts = [g.sparse[feature] for g in groups]
    return torch.from_numpy(np.concatenate(parts) if len(parts) > 1 else np.array(parts[0]))


def _responses(groups: list[Group], predictions: np.ndarray) -> list[np.ndarray]:
    """[prediction, label] float32 pairs of each group, as the reference responds."""
    out, start = [], 0
    for group in groups:
        stop = start + len(group)
        out.append(np.stack([predictions[start:stop], np.asarray(group.labels, dtype=np.float32)], axis=1))
        start = stop
    return out


class DlrmBackend:
    def __init__(self, tables: list[Table], model, device: str, dtype: str) -> None:
        import torch

        self.tables, self.device, self.dtype = tables, torch.device(device), getattr(torch, TORCH_DTYPES[dtype])
        self.model = model.to(self.device, self.dtype)

    def predict(self, samples: list[Group]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            pooled = torch.stack([t.pool(_ids(samples, i)) for i, t in enumerate(self.tables)], dim=1)
            dense = torch.from_numpy(np.concatenate([g.dense for g in samples]))
            logits = self.model(dense.to(self.device, self.dtype), pooled.to(self.device, self.dtype))
            predictions = torch.sigmoid(logits.float()).cpu().numpy()
        return _responses(samples, predictions)

    def warmup(self, sample: Group) -> None:
        self.predict([sample])


class ReferenceBackend:
    """The reference's SUT path, one sample per forward pass: the sample's ids as a
    ``KeyedJaggedTensor`` holds them (values of every feature concatenated, a length per row and
    feature, offsets their running sum), split per table into ``nn.EmbeddingBag`` (sum) lookups;
    the response built pair by pair as its ``DlrmPostProcess`` builds it (a [prediction, label]
    list per pair, then a float32 array of them)."""

    def __init__(self, tables: list[Table], model) -> None:
        import torch

        self.bags = []
        for table in tables:
            whole = snapshot.Pieces(table.shape, table.pieces).full()
            self.bags.append(torch.nn.EmbeddingBag.from_pretrained(whole, mode="sum", freeze=True))
        self.model = model

    def predict(self, samples: list[Group]) -> list[np.ndarray]:
        import torch

        out = []
        with torch.no_grad():
            for group in samples:
                n, hotness = len(group), [ids.shape[1] for ids in group.sparse]
                lengths = torch.ones(len(hotness) * n, dtype=torch.int32)
                for k, hot in enumerate(hotness):
                    lengths[k * n:(k + 1) * n] = hot
                offsets = torch.cumsum(torch.cat((torch.tensor([0]), lengths)), dim=0)
                per_key = torch.cumsum(torch.cat((torch.tensor([0]), torch.tensor([n * h for h in hotness]))), dim=0)
                values = torch.cat([torch.from_numpy(np.array(ids)).flatten() for ids in group.sparse])
                labels = torch.from_numpy(np.array(group.labels).reshape(-1))
                pooled = [bag(values[per_key[k]:per_key[k + 1]].long(), (offsets[k * n:(k + 1) * n] - offsets[k * n]))
                          for k, bag in enumerate(self.bags)]
                logits = self.model(torch.from_numpy(np.array(group.dense)), torch.stack(pooled, dim=1))
                result = torch.reshape(torch.sigmoid(logits), (-1,))
                pairs = [[r, t] for r, t in zip(result, labels)]
                out.append(np.array(pairs, np.float32))
        return out

    def warmup(self, sample: Group) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> DlrmBackend:
    tables, model = read_model(data_dir)
    return DlrmBackend(tables, model, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> ReferenceBackend:
    tables, model = read_model(data_dir)
    return ReferenceBackend(tables, model)
