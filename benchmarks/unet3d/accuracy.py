"""Kidney and tumor DICE as the reference's ``accuracy_kits.py`` computes and prints them.

Each sample's payload is its case's uint8 label volume in the preprocessed (resampled, padded)
grid, which is where the reference scores it: against the segmentation preprocessed the same way.
Per case, DICE of label 1 ("kidney", as the reference counts it: label 1 only) and of label 2
("tumor"), each (2 |T n P| + 1e-6) / (|T| + |P| + 1e-6) over the whole volume, and their mean; the
scores are the means over the cases (a case listed twice counts twice). A failed sample (empty
payload) scores 0. The checker reads the printed mean, to 5 decimals: that is the value judged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.unet3d.dataset import load_case, read_cases
from harness.errors import DataError

SMOOTH = 1e-6


def dice(truth: np.ndarray, prediction: np.ndarray, label: int) -> float:
    t, p = truth == label, prediction == label
    return float((2.0 * np.count_nonzero(t & p) + SMOOTH) / (np.count_nonzero(t) + np.count_nonzero(p) + SMOOTH))


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    cases = read_cases(data_dir)
    kidney, tumor = [], []
    for index in sorted(outputs):
        truth = load_case(data_dir, cases[index])[1][0]
        payload = outputs[index]
        if payload.size == 0:
            kidney.append(0.0)
            tumor.append(0.0)
            continue
        if payload.size != truth.size:
            raise DataError(f"sample {index} ({cases[index]}) answered {payload.size} labels, but its preprocessed "
                            f"volume {truth.shape} has {truth.size}: the accuracy log is not from this data")
        prediction = payload.reshape(truth.shape)
        kidney.append(dice(truth, prediction, 1))
        tumor.append(dice(truth, prediction, 2))
    composite = [(k + t) / 2 for k, t in zip(kidney, tumor)]
    return {"mean": round(float(np.mean(composite)), 5), "kidney": round(float(np.mean(kidney)), 4),
            "tumor": round(float(np.mean(tumor)), 4), "cases": len(composite)}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    return f"Accuracy: mean = {metrics['mean']:.5f}, kidney = {metrics['kidney']:.4f}, tumor = {metrics['tumor']:.4f}\n"
