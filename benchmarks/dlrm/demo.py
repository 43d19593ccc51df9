"""Demo tier: a narrow random-weight DLRM-DCNv2 of the real structure, in the real snapshot layout,
and a synthetic day 23 in the real file formats.

The model has the 26 tables with the real multi-hot sizes (``HOTNESS``) and the real row counts
up to ``MAX_ROWS``, 8-wide embeddings, a dense arch 13 -> 32 -> 16 -> 8, a 3-layer cross net of
rank 16 over 27 x 8 = 216 features and an over arch 216 -> 64 -> 32 -> 16 -> 8 -> 1: narrow
enough that a sample's forward pass costs about what its calls cost, as the real model's does on
an accelerator. It is saved as the MLPerf weights are
(``harness.snapshot.write``): a torchsnapshot over ``WORLD_SIZE`` ranks, the tables of more than
``SHARD_ABOVE`` rows split by rows over the ranks, the rest replicated, every key under ``model.``.

Day 23 has ``ROWS`` rows (odd, so that the first half is ceil(rows / 2)): log-scaled dense
features, skewed ids (most traffic on a table's first rows, as Criteo's), int32 [rows, 1] labels.
The first half makes ``aggregate``'s groups of 100 to 700 pairs. Ground truth (``ground_truth``):
clicks drawn with a probability rising with the rank of the reference execution's prediction, so
that its AUC is a realistic one (about 82%) that a model of other answers does not reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.dlrm.backend import CHECKPOINT, CROSS, DENSE_LAYER, OVER_LAYER, OVER_OUT, TABLE
from benchmarks.dlrm.dataset import DENSE, DENSE_FEATURES, LABELS, SPARSE, SPARSE_FEATURES

HOTNESS = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)
"""Ids per row of each feature: the multi-hot sizes of the MLPerf training recipe."""
REAL_ROWS = (40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10, 2209, 11938,
             155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36)
MAX_ROWS = 1000
DIM, DENSE_SIZES, LOW_RANK, CROSS_LAYERS, OVER_SIZES = 8, (32, 16, 8), 16, 3, (64, 32, 16, 8)
WORLD_SIZE, SHARD_ABOVE = 4, 100
ROWS = 40001
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput (700 to 1500 samples/s on 2 cores);
# Server needs about 480 queries within the 60 ms bound for its early-stopping estimate.
dlrm-v2.Offline.min_duration = 1000
dlrm-v2.Offline.min_query_count = 74
dlrm-v2.Offline.target_qps = 4000
dlrm-v2.Server.min_duration = 1000
dlrm-v2.Server.min_query_count = 480
dlrm-v2.Server.target_qps = 50
"""


def state_dict(seed: int) -> dict:
    """Random weights of the demo structure under the reference's key names: layers uniform in
    +-sqrt(6 / fan_in) (He's, so that activations keep their scale through the ReLUs), the cross
    net's Xavier's, the tables uniform in +-1/sqrt(rows), as torchrec's."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def uniform(shape, bound):
        return (torch.rand(shape, generator=generator) * 2 - 1) * bound

    state = {}
    for i, real in enumerate(REAL_ROWS):
        rows = min(real, MAX_ROWS)
        state[TABLE.format(i)] = uniform((rows, DIM), rows ** -0.5)

    def linear(key, fan_in, fan_out):
        state[f"{key}.weight"] = uniform((fan_out, fan_in), (6 / fan_in) ** 0.5)
        state[f"{key}.bias"] = uniform((fan_out,), fan_in ** -0.5)

    for i, (a, b) in enumerate(zip((DENSE_FEATURES,) + DENSE_SIZES, DENSE_SIZES)):
        linear(DENSE_LAYER.format(i), a, b)
    width = (SPARSE_FEATURES + 1) * DIM
    for layer in range(CROSS_LAYERS):
        state[CROSS.format("V_kernels", layer)] = uniform((LOW_RANK, width), (6 / (LOW_RANK + width)) ** 0.5)
        state[CROSS.format("W_kernels", layer)] = uniform((width, LOW_RANK), (6 / (LOW_RANK + width)) ** 0.5)
        state[CROSS.format("bias", layer)] = torch.zeros(width)
    for i, (a, b) in enumerate(zip((width,) + OVER_SIZES, OVER_SIZES)):
        linear(OVER_LAYER.format(i), a, b)
    linear(OVER_OUT, OVER_SIZES[-1], 1)
    return state


def spread_logits(state: dict, dense: np.ndarray, sparse: list[np.ndarray]) -> None:
    """Scale the last layer so that the logits on the demo rows have mean -1 and spread 1.5: a
    random network's predictions otherwise all sit within 1e-3 of one value."""
    import torch
    import torch.nn.functional as F

    from benchmarks.dlrm.backend import network

    model = network(state, Path("demo"))
    with torch.no_grad():
        pooled = torch.stack([F.embedding_bag(torch.from_numpy(ids).long(), state[TABLE.format(i)], mode="sum")
                              for i, ids in enumerate(sparse)], dim=1)
        logits = model(torch.from_numpy(dense), pooled)
        mean, spread = logits.mean(), logits.std().clamp(min=1e-12)
        weight, bias = state[f"{OVER_OUT}.weight"], state[f"{OVER_OUT}.bias"]
        weight.mul_(1.5 / spread)
        bias.sub_(mean).mul_(1.5 / spread).sub_(1.0)


def build(out: Path, seed: int = 0) -> None:
    """Write the snapshot, the three day 23 files and the demo's user.conf."""
    from harness import snapshot

    rng = np.random.default_rng(seed)
    counts = rng.gamma(0.6, 40.0, size=(ROWS, DENSE_FEATURES))
    dense = np.log(np.floor(counts) + 3).astype(np.float32)
    sparse = [np.minimum(min(real, MAX_ROWS) * rng.random((ROWS, hot)) ** 3, min(real, MAX_ROWS) - 1).astype(np.int32)
              for real, hot in zip(REAL_ROWS, HOTNESS)]
    np.save(out / DENSE, dense)
    np.savez(out / SPARSE, **{str(i): ids for i, ids in enumerate(sparse)})  # stored, not compressed: read in place
    state = state_dict(seed)
    spread_logits(state, dense, sparse)
    sharded = tuple(TABLE.format(i) for i, real in enumerate(REAL_ROWS) if min(real, MAX_ROWS) > SHARD_ABOVE)
    (out / CHECKPOINT).mkdir()
    snapshot.write(out / CHECKPOINT, state, world_size=WORLD_SIZE, row_sharded=sharded)
    np.save(out / LABELS, np.zeros((ROWS, 1), dtype=np.int32))
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Draw the labels of the inference rows from the reference's predictions and write them.

    The reference's responses carry the labels of their pairs, so those are rewritten in
    ``outputs`` too: they are the responses it gives on the final data (a prediction does not
    depend on its label).
    """
    pairs = [outputs[i].reshape(-1, 2) for i in range(len(outputs))]
    predictions = np.concatenate([p[:, 0] for p in pairs])  # the groups are consecutive rows from 0
    rank = np.argsort(np.argsort(predictions, kind="stable"), kind="stable") / max(len(predictions) - 1, 1)
    rng = np.random.default_rng(len(predictions))
    clicks = (rng.random(len(predictions)) < 0.02 + 0.6 * rank ** 3).astype(np.int32)
    labels = np.load(out / LABELS)
    labels[:len(clicks), 0] = clicks
    labels[len(clicks):, 0] = rng.random(len(labels) - len(clicks)) < 0.17
    np.save(out / LABELS, labels)
    start = 0
    for i, p in enumerate(pairs):
        responded = p.copy()
        responded[:, 1] = clicks[start:start + len(p)]
        outputs[i] = responded.reshape(-1)
        start += len(p)
