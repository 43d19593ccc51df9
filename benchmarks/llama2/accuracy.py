"""Llama-2 scoring as the v4.1 ``evaluate-accuracy.py``: ROUGE-1/2/L/Lsum, gen_len, gen_num,
gen_tok_len and tokens_per_sample.

The first response per sample counts. Token ids are decoded with special tokens skipped;
predictions and references are stripped, Punkt-split into sentences and newline-joined; ROUGE is
the per-sample mean x 100 rounded to 4 places (numpy's round); ``gen_len`` is the characters of
the post-processed predictions, ``gen_num`` their count, ``gen_tok_len`` the generated tokens and
``tokens_per_sample`` = gen_tok_len / gen_num rounded to 1 place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.llama2.dataset import load_tokenizer, read_frame
from harness.metrics.rouge import postprocess, rouge

KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num", "gen_tok_len", "tokens_per_sample")


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    """``outputs`` maps dataset index -> generated token ids, in accuracy-log order."""
    references = read_frame(data_dir)["output"].tolist()
    tokenizer = load_tokenizer(data_dir)
    order = list(outputs)
    decoded = tokenizer.batch_decode([outputs[i].tolist() for i in order], skip_special_tokens=True)
    predictions = [postprocess(text) for text in decoded]
    metrics: dict[str, float | int] = dict(rouge(predictions, [postprocess(references[i]) for i in order]))
    tokens = sum(len(outputs[i]) for i in order)
    metrics |= {"gen_len": sum(len(p) for p in predictions), "gen_num": len(order), "gen_tok_len": tokens,
                "tokens_per_sample": round(tokens / len(order), 1)}
    return metrics


def accuracy_text(metrics: dict[str, float | int]) -> str:
    """The line the v4.1 checker's ROUGE and TOKENS_PER_SAMPLE patterns read, as the reference prints it."""
    return "\nResults\n\n" + repr({k: metrics[k] for k in KEYS}) + "\n"
