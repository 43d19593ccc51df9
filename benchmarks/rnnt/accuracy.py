"""Word error rate as the reference's ``accuracy_eval.py`` computes and prints it.

Each payload is an utterance's int64 character indices (``dataset.LABELS``); the hypothesis is
their characters, the reference the normalised transcript of the manifest. Both are split on
white space; WER = the sum over utterances of the word-level Levenshtein distance, divided by the
sum of the reference words (an utterance listed twice counts twice), and accuracy = 100 (1 - WER)
in percent, the value the checker reads and judges. A failed sample (empty payload) counts as an
empty hypothesis: all its words deleted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.rnnt.dataset import LABELS, read_manifest
from harness.errors import DataError


def levenshtein(a: list[str], b: list[str]) -> int:
    """Edits (insertions, deletions, substitutions) that turn ``a`` into ``b``."""
    if len(a) > len(b):
        a, b = b, a
    row = list(range(len(a) + 1))
    for i, word in enumerate(b, 1):
        previous, row = row, [i] + [0] * len(a)
        for j, other in enumerate(a, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (other != word))
    return row[-1]


def word_error_rate(hypotheses: list[str], references: list[str]) -> float:
    errors = sum(levenshtein(h.split(), r.split()) for h, r in zip(hypotheses, references, strict=True))
    words = sum(len(r.split()) for r in references)
    return errors / words if words else float("inf")


def transcript(payload: np.ndarray, index: int) -> str:
    outside = payload[(payload < 0) | (payload >= len(LABELS))]
    if outside.size:
        raise DataError(f"sample {index} answered label {int(outside[0])}, outside the {len(LABELS)} characters: "
                        f"the accuracy log is not from this model")
    return "".join(LABELS[c] for c in payload.tolist())


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    utterances = read_manifest(data_dir)
    indices = sorted(outputs)
    wer = word_error_rate([transcript(outputs[i], i) for i in indices], [utterances[i][1] for i in indices])
    return {"accuracy": (1 - wer) * 100, "wer": wer * 100, "utterances": len(indices)}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    return f"Word Error Rate: {metrics['wer']}%, accuracy={metrics['accuracy']}%\n"
