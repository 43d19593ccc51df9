"""ROUGE and sentence splitting against values computed by hand."""

import pytest

from harness.metrics.rouge import mean_percent, postprocess, rouge, split_sentences


def test_rouge_hand_computed():
    # unigrams: 5 of 6 shared (the x2, cat, on, mat) -> P = R = F = 5/6
    # bigrams: the cat, on the, the mat shared of 5 each -> 3/5
    # LCS: "the cat on the mat" = 5 -> 5/6
    scores = rouge(["the cat sat on the mat"], ["the cat was on the mat"])
    assert scores == {"rouge1": 83.3333, "rouge2": 60.0, "rougeL": 83.3333, "rougeLsum": 83.3333}


def test_rouge_uses_porter_stemming_and_averages_per_pair():
    # "running dogs" stems to "run dog": identical to the reference -> 100; the second pair shares nothing -> 0
    scores = rouge(["running dogs", "blue sky"], ["run dog", "green grass"])
    assert scores["rouge1"] == 50.0
    assert scores["rouge2"] == 50.0


def test_rougelsum_uses_newline_sentences():
    # Same two sentences in swapped order. rougeL sees one sequence: LCS "the dog barked" = 3 of 6
    # tokens -> 50. rougeLsum matches sentence by sentence: 6 of 6 -> 100.
    pred = postprocess("The dog barked. The cat slept.")
    ref = postprocess("The cat slept. The dog barked.")
    assert pred == "The dog barked.\nThe cat slept."
    scores = rouge([pred], [ref])
    assert scores["rougeL"] == 50.0
    assert scores["rougeLsum"] == 100.0


def test_punkt_english_parameters_keep_abbreviations():
    text = "Dr. Smith met the U.S. envoy at 3 p.m. on Monday. Mr. Jones left early. It rained."
    assert split_sentences(text) == [
        "Dr. Smith met the U.S. envoy at 3 p.m. on Monday.",
        "Mr. Jones left early.",
        "It rained.",
    ]


def test_postprocess_strips_and_newline_joins():
    assert postprocess("  Hello world. Bye now.  ") == "Hello world.\nBye now."
    assert len(postprocess("  Hello world. Bye now.  ")) == 21


def test_rouge_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="nothing to score"):
        rouge([], [])


def test_means_are_rounded_as_numpy_rounds_them():
    # 0.1000015 x 100 = 10.00015 sits just below the halfway point, so Python's round gives 10.0001;
    # the reference rounds the numpy float64 (x 10^4 = 100001.5, half to even -> 100002): 10.0002
    assert round(0.1000015 * 100, 4) == 10.0001
    assert mean_percent([0.1000015]) == 10.0002
    assert mean_percent([3.5e-6]) == 0.0004 and mean_percent([2.5e-6]) == 0.0002  # halves to even
    assert isinstance(mean_percent([0.5, 0.25]), float) and mean_percent([0.5, 0.25]) == 37.5
