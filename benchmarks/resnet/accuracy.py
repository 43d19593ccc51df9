"""Top-1 accuracy as the reference's ``accuracy-imagenet.py`` computes and prints it.

Each sample's payload is a float32 class index; the first record per sample counts (LoadGen may
send an image more than once). A failed sample (empty payload) counts as wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.resnet.dataset import read_val_map


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    labels = [label for _, label in read_val_map(data_dir)]
    good = sum(1 for index, out in outputs.items() if out.size and int(out[0]) == labels[index])
    total = len(outputs)
    # the checker reads the printed value, rounded to 3 decimals: judge that value
    return {"acc": round(100.0 * good / total, 3) if total else 0.0, "good": good, "total": total}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    return f"accuracy={metrics['acc']:.3f}%, good={metrics['good']}, total={metrics['total']}\n"
