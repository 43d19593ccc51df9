"""SQuAD v1.1 EM/F1 as the reference's ``accuracy-squad.py`` and ``evaluate_v1.1.py`` compute them.

Per question, over its features' logits: the 20 best start and 20 best end positions, kept when
both lie in the context window, the start has its maximal context there, and the span is at most
30 tokens; ranked by start + end logit; the WordPiece span is de-tokenized and projected back onto
the original words (``final_text``); the first distinct text is the prediction. Scores: SQuAD
v1.1 normalisation (lower case, no punctuation or articles, single spaces), exact match and token
F1, best over the reference answers, mean x 100.

Scored questions: those with at least one feature in the accuracy log (all of them on a full
run; a subset run scores its own questions, where the reference would count the rest as 0).
"""

from __future__ import annotations

import collections
import functools
import json
import re
import string
from pathlib import Path

import numpy as np

from benchmarks.bert.dataset import MAX_SEQ_LENGTH, load

N_BEST = 20
MAX_ANSWER_LENGTH = 30
PUNCTUATION = frozenset(string.punctuation)


@functools.cache
def _basic_tokenizer():
    from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer

    return BasicTokenizer(do_lower_case=True)


def final_text(pred_text: str, orig_text: str) -> str:
    """Map the normalised WordPiece text back onto the original words (or give them whole).

    The original words are re-tokenized with BERT's basic tokenizer; when that text and the
    original have the same characters apart from spaces, the prediction's character span is
    carried over one to one; otherwise the original words are returned unchanged.
    """
    tok_text = " ".join(_basic_tokenizer().tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1

    def without_spaces(text: str) -> tuple[str, dict[int, int]]:
        kept = [(i, c) for i, c in enumerate(text) if c != " "]
        return "".join(c for _, c in kept), {n: i for n, (i, _) in enumerate(kept)}

    orig_ns, orig_map = without_spaces(orig_text)
    tok_ns, tok_map = without_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_to_ns = {i: n for n, i in tok_map.items()}
    if start not in tok_to_ns or end not in tok_to_ns:
        return orig_text
    orig_start, orig_end = orig_map.get(tok_to_ns[start]), orig_map.get(tok_to_ns[end])
    if orig_start is None or orig_end is None:
        return orig_text
    return orig_text[orig_start:orig_end + 1]


def _best_indexes(logits: list[float]) -> list[int]:
    return sorted(range(len(logits)), key=lambda i: logits[i], reverse=True)[:N_BEST]  # stable on ties


def predict_text(example, features: list, logits: list[np.ndarray]) -> str:
    """The best answer text for one question from its features' [384, 2] logits."""
    candidates = []  # (score, feature position, start, end)
    for position, (feature, raw) in enumerate(zip(features, logits)):
        # as the reference reads the log: float32 values as Python floats, missing positions -10000
        start_logits = [-10000.0] * MAX_SEQ_LENGTH
        end_logits = [-10000.0] * MAX_SEQ_LENGTH
        pairs = raw.reshape(-1, 2)
        start_logits[:len(pairs)] = pairs[:, 0].tolist()
        end_logits[:len(pairs)] = pairs[:, 1].tolist()
        for start in _best_indexes(start_logits):
            for end in _best_indexes(end_logits):
                if (start >= len(feature.tokens) or end >= len(feature.tokens) or start not in feature.token_to_orig_map
                        or end not in feature.token_to_orig_map or not feature.token_is_max_context.get(start, False)
                        or end < start or end - start + 1 > MAX_ANSWER_LENGTH):
                    continue
                candidates.append((start_logits[start] + end_logits[end], position, start, end))
    candidates.sort(key=lambda c: c[0], reverse=True)
    seen: list[str] = []
    for _, position, start, end in candidates:
        if len(seen) >= N_BEST:
            break
        feature = features[position]
        tok_text = " ".join(feature.tokens[start:end + 1]).replace(" ##", "").replace("##", "")
        tok_text = " ".join(tok_text.strip().split())
        words = example.doc_tokens[feature.token_to_orig_map[start]:feature.token_to_orig_map[end] + 1]
        text = final_text(tok_text, " ".join(words))
        if text not in seen:
            seen.append(text)
    return seen[0] if seen else "empty"


def normalize_answer(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    """``outputs`` maps feature index -> float32 logits [384 x 2] (flattened), in log order."""
    dataset = load(data_dir)
    by_example: dict[int, list[int]] = collections.defaultdict(list)
    for index in sorted(outputs):
        by_example[dataset.features[index].example_index].append(index)
    em = f1 = 0.0
    for example_index, indices in by_example.items():
        example = dataset.examples[example_index]
        prediction = predict_text(example, [dataset.features[i] for i in indices], [outputs[i] for i in indices])
        if example.answers:
            em += max(exact_match(prediction, truth) for truth in example.answers)
            f1 += max(f1_score(prediction, truth) for truth in example.answers)
    total = len(by_example)
    return {"exact_match": 100.0 * em / total if total else 0.0, "f1": 100.0 * f1 / total if total else 0.0,
            "questions": total}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    """The line ``evaluate_v1.1.py`` prints, which the submission checker's F1 pattern reads."""
    return json.dumps({"exact_match": metrics["exact_match"], "f1": metrics["f1"]}) + "\n"
