"""ROC AUC as the reference's ``accuracy-dlrm.py`` computes and prints it.

Each payload is float32 [prediction, label] per user-item pair of the sample's group, the labels
carried in the response as the reference carries them. AUC is scikit-learn's ``roc_auc_score``
over every pair of every sample (a sample listed twice counts once, as the reference de-duplicates
by sample index); accuracy counts the rounded predictions equal to their label. The labels of a
log are checked against ``day_23_labels.npy``: a log whose labels are not the data's is refused
(the reference would score whatever labels it carries). A failed sample (empty payload) answers
0 for each of its pairs, with the data's labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.dlrm.dataset import LABELS, Dataset
from harness.errors import DataError


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    from sklearn.metrics import roc_auc_score

    dataset = Dataset(data_dir)
    labels = dataset.labels
    predictions, targets = [], []
    for index in sorted(outputs):
        if not 0 <= index < len(dataset):
            raise DataError(f"the accuracy log names sample {index}, but the data makes {len(dataset)} samples")
        start, stop = int(dataset.bounds[index]), int(dataset.bounds[index + 1])
        truth = labels[start:stop].astype(np.float32)
        payload = outputs[index]
        if payload.size == 0:
            predictions.append(np.zeros(stop - start, dtype=np.float32))
            targets.append(truth)
            continue
        if payload.size != 2 * (stop - start):
            raise DataError(f"sample {index} answered {payload.size} values, but its group has {stop - start} pairs "
                            f"([prediction, label] each): the accuracy log is not from this data")
        pairs = payload.reshape(-1, 2)
        if not np.array_equal(pairs[:, 1], truth):
            row = start + int(np.flatnonzero(pairs[:, 1] != truth)[0])
            raise DataError(f"sample {index} carries labels that are not those of {data_dir / LABELS} (row {row}): "
                            f"the accuracy log is not from this data")
        predictions.append(pairs[:, 0])
        targets.append(truth)
    if not predictions:
        raise DataError("the accuracy log holds no sample to score")
    prediction, target = np.concatenate(predictions), np.concatenate(targets)
    if not np.isin(target, (0, 1)).all():
        raise DataError(f"{data_dir / LABELS} holds the label {target[~np.isin(target, (0, 1))][0]:g}; a click label "
                        f"is 0 or 1")
    if len(np.unique(target)) < 2:
        raise DataError(f"the {len(target)} pairs scored all have label {target[0]:g}: AUC needs both clicks and "
                        f"non-clicks (score more samples)")
    auc = float(roc_auc_score(target, prediction))
    good = int(np.count_nonzero(np.round(prediction) == target))
    return {"AUC": round(100 * auc, 3), "accuracy": round(100 * good / len(target), 3), "good": good,
            "total": len(target),
            "queries": len(predictions)}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    return (f"AUC={metrics['AUC']:.3f}%, accuracy={metrics['accuracy']:.3f}%, good={metrics['good']}, "
            f"total={metrics['total']}, queries={metrics['queries']}\n")
