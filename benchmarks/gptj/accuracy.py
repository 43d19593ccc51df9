"""GPT-J scoring exactly as the reference ``evaluation.py``: ROUGE-1/2/L/Lsum, GEN_LEN, gen_num.

Predictions are decoded with special tokens skipped; predictions and references are stripped,
sentence-split and newline-joined; ROUGE is the per-sample mean x 100 (4 decimals); ``gen_len``
is the total number of characters of the post-processed predictions; ``gen_num`` their count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.gptj.dataset import load_tokenizer, read_records
from harness.metrics.rouge import postprocess, rouge


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    """``outputs`` maps dataset index -> generated token ids, in accuracy-log order."""
    records = read_records(data_dir)
    tokenizer = load_tokenizer(data_dir)
    order = list(outputs)
    decoded = tokenizer.batch_decode([outputs[i].tolist() for i in order], skip_special_tokens=True)
    predictions = [postprocess(text) for text in decoded]
    references = [postprocess(records[i]["output"]) for i in order]
    metrics: dict[str, float | int] = dict(rouge(predictions, references))
    metrics["gen_len"] = sum(len(p) for p in predictions)
    metrics["gen_num"] = len(predictions)
    return metrics


def accuracy_text(metrics: dict[str, float | int]) -> str:
    """The line the submission checker's ROUGE/GEN_LEN patterns read, as the reference prints it."""
    keys = ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num")
    return "\nResults\n\n" + repr({k: metrics[k] for k in keys}) + "\n"
