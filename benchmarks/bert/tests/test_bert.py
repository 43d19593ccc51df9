"""BERT SQuAD features, inference, payload and scoring on hand-made inputs and the demo tier."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchmarks.bert import accuracy, backend, dataset
from harness import cli
from harness.errors import DataError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "cat", "sat", "on", "the", "mat", "##s", "?", "."]


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("bert")


@pytest.fixture
def tiny_vocab(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return dataset.load_tokenizer(tmp_path)


def test_context_words_split_on_the_reference_whitespace():
    assert dataset.split_words(" The\tcat\u202fsat  on\nthe mat.") == ["The", "cat", "sat", "on", "the", "mat."]


def test_windows_move_by_the_stride_until_the_end():
    assert dataset.windows(10, 4, stride=2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert dataset.windows(400, 379) == [(0, 379), (128, 272)]
    assert dataset.windows(100, 379) == [(0, 100)]


def test_feature_layout(tiny_vocab):
    example = dataset.Example("q1", "What sat?", dataset.split_words("The cats sat on the mat."), ["the mat"])
    [feature] = dataset.make_features([example], tiny_vocab)
    assert feature.tokens == ["[CLS]", "what", "sat", "?", "[SEP]", "the", "cat", "##s", "sat", "on", "the", "mat",
                              ".", "[SEP]"]
    ids, mask, segments = feature.input_ids
    assert ids[:14].tolist() == [VOCAB.index(t) for t in feature.tokens] and not ids[14:].any()
    assert mask.tolist() == [1] * 14 + [0] * 370
    assert segments.tolist() == [0] * 5 + [1] * 9 + [0] * 370
    # window tokens point back at their context word ("cats" -> cat ##s, "mat." -> mat .)
    assert feature.token_to_orig_map == {5: 0, 6: 1, 7: 1, 8: 2, 9: 3, 10: 4, 11: 5, 12: 5}
    assert all(feature.token_is_max_context.values()) and feature.length == 14


def test_long_contexts_are_windowed_with_max_context_flags(tiny_vocab):
    example = dataset.Example("q2", "What?", ["cat"] * 400, ["cat"])
    first, second = dataset.make_features([example], tiny_vocab)
    head = 4  # [CLS] what ? [SEP]
    assert first.length == dataset.MAX_SEQ_LENGTH and second.length == head + 272 + 1
    assert second.token_to_orig_map[head] == 128  # the second window starts 128 tokens later
    # word 200: 200 left / 178 right of context in window 0 beats 72 / 199 in window 1
    assert first.token_is_max_context[head + 200] and not second.token_is_max_context[head + 72]
    assert second.token_is_max_context[head + 300 - 128]  # word 300 is only in window 1


def test_final_text_projects_back_onto_the_original_words():
    assert accuracy.final_text("steve smith", "Steve Smith's") == "Steve Smith"
    assert accuracy.final_text("muller", "Müller,") == "Müller"
    assert accuracy.final_text("nowhere", "Steve Smith") == "Steve Smith"  # no match: the words as they are


def test_squad_scores_against_hand_computed_values():
    assert accuracy.normalize_answer("The Cat, sat!  an  apple") == "cat sat apple"
    assert accuracy.exact_match("the Cat", "cat.") == 1.0
    assert accuracy.f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert accuracy.f1_score("dog", "cat") == 0.0


def oracle_outputs(ds, example_indices):
    """Logits that point at each question's first answer wherever the window holds it."""
    outputs = {}
    for index, feature in enumerate(ds.features):
        if feature.example_index not in example_indices:
            continue
        example = ds.examples[feature.example_index]
        words = dataset.split_words(example.answers[0])
        first = next(i for i in range(len(example.doc_tokens)) if example.doc_tokens[i:i + len(words)] == words)
        positions = [p for p, w in feature.token_to_orig_map.items() if first <= w < first + len(words)]
        logits = np.zeros((dataset.MAX_SEQ_LENGTH, 2), dtype=np.float32)
        if positions and feature.token_is_max_context[positions[0]]:
            logits[positions[0], 0] = logits[positions[-1], 1] = 10.0
        outputs[index] = logits.ravel()
    return outputs


def test_perfect_logits_score_100_and_a_failed_sample_scores_0(data):
    ds = dataset.load(data)
    metrics = accuracy.score(oracle_outputs(ds, set(range(10))), data)
    # as in evaluate_v1.1.py, an answer that normalises to nothing ("The") matches exactly, F1 0
    blank = sum(1 for e in ds.examples[:10] if not accuracy.normalize_answer(e.answers[0]))
    assert metrics == {"exact_match": 100.0, "f1": 100.0 * (10 - blank) / 10, "questions": 10}
    assert accuracy.accuracy_text(metrics) == f'{{"exact_match": 100.0, "f1": {metrics["f1"]}}}\n'
    outputs = oracle_outputs(ds, {0, 1})
    outputs[next(i for i, f in enumerate(ds.features) if f.example_index == 1)] = np.zeros(0, np.float32)
    assert accuracy.score(outputs, data)["exact_match"] == 50.0  # an empty payload: -10000 everywhere


def test_features_are_cached_by_content(tmp_path, monkeypatch, demo_copy):
    root = demo_copy("bert")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    first = dataset.load(root).features
    assert len(list((tmp_path / "cache" / "bert").glob("features-*.npz"))) == 1
    monkeypatch.setattr(dataset, "make_features", lambda *a: pytest.fail("features were rebuilt"))
    again = dataset.load(root).features  # every field, read back from plain arrays
    assert [dataclasses.replace(f, input_ids=None) for f in again] == [dataclasses.replace(f, input_ids=None)
                                                                          for f in first]
    assert all(np.array_equal(a.input_ids, b.input_ids) and a.input_ids.dtype == np.int64 for a, b in zip(again, first))
    assert np.load(next((tmp_path / "cache" / "bert").glob("features-*.npz")), allow_pickle=False)["ids"].ndim == 3
    squad = json.loads((root / "dev-v1.1.json").read_text())
    squad["data"][0]["paragraphs"][0]["qas"][0]["question"] = "Which bridge?"
    (root / "dev-v1.1.json").write_text(json.dumps(squad))
    with pytest.raises(pytest.fail.Exception, match="features were rebuilt"):  # new content, new key
        dataset.load(root)


def test_payload_is_float32_384x2_and_batching_does_not_change_it(data):
    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in range(len(ds))]
    assert len({backend.width(s) for s in samples}) > 2  # the demo has several widths
    batched = model.predict(samples)
    assert all(out.dtype == np.float32 and out.shape == (384, 2) for out in batched)
    assert all(np.array_equal(model.predict([s])[0], out) for s, out in zip(samples[:6], batched))
    for sample, out in zip(samples, batched):
        assert (out[backend.width(sample):] == backend.PAD_LOGIT).all()
    raw = batched[0].tobytes()  # the accuracy script reads the bytes back as (-1, 2)
    assert np.array_equal(np.frombuffer(raw, np.float32).reshape(-1, 2), batched[0])


def test_running_at_the_feature_width_gives_the_384_wide_logits(data):
    ds = dataset.load(data)
    model, reference = backend.load(data, "cpu", "fp32"), backend.load_reference(data, "cpu", "fp32")
    short = [i for i in range(len(ds)) if backend.width(ds[i]) < 384]
    for index in short[:2] + short[-1:] + [len(ds) - 1]:
        sample = ds[index]
        length = ds.features[index].length
        full = reference.predict([sample])[0]
        assert (full[backend.width(sample):] != backend.PAD_LOGIT).all()  # the reference computes every position
        assert np.allclose(model.predict([sample])[0][:length], full[:length], atol=1e-5)


def test_the_broadcast_key_mask_gives_the_logits_of_transformers_own_mask(data):
    import torch

    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in range(len(ds))]
    w = max(backend.width(s) for s in samples)
    rows = [s for s in samples if backend.width(s) == w][:4]
    batch = torch.from_numpy(np.stack(rows))
    assert (batch[:, 1] == 0).any()  # some padding to mask
    with torch.inference_mode():
        own = model.model(input_ids=batch[:, 0], attention_mask=batch[:, 1], token_type_ids=batch[:, 2])
    expected = torch.stack([own.start_logits, own.end_logits], dim=-1).numpy()
    assert np.array_equal(np.stack(model.predict(rows)), expected)


def test_bad_squad_files_are_named(demo_copy):
    root = demo_copy("bert")
    squad = json.loads((root / "dev-v1.1.json").read_text())
    del squad["data"][0]["paragraphs"][1]["context"]
    (root / "dev-v1.1.json").write_text(json.dumps(squad))
    with pytest.raises(DataError, match=r"dev-v1.1.json: data\[0\].paragraphs\[1\] has questions but no context"):
        dataset.load(root)
    (root / "dev-v1.1.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="is not a SQuAD JSON file"):
        dataset.load(root)


def test_bad_model_folders_are_named(demo_copy):
    import torch

    root = demo_copy("bert")
    state = torch.load(root / "model" / "model.pytorch", weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("qa_outputs")}, root / "model" / "model.pytorch")
    with pytest.raises(DataError, match="lacks 2 tensor.*qa_outputs"):
        backend.load(root, "cpu", "fp32")
    (root / "model" / "bert_config.json").write_text("{}")
    with pytest.raises(DataError, match="is not a BERT config"):
        backend.load(root, "cpu", "fp32")
    (root / "model" / "vocab.txt").unlink()
    with pytest.raises(DataError, match="vocab.txt is missing"):
        dataset.load(root)


def test_demo_runs_accuracy_and_a_short_performance_test(data, tmp_path):
    conf = tmp_path / "perf.conf"
    conf.write_text("bert.Offline.min_duration = 1000\nbert.Offline.min_query_count = 1\n"
                    "bert.Offline.target_qps = 4000\n")
    assert cli.main(["run", "bert", "--mode", "submission", "--user-conf", str(conf), "--data", str(data),
                     "--n-devices", "2", "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    assert result["accuracy"]["full_dataset"] is False and result["accuracy"]["metrics"]["questions"] == 45
    text = (tmp_path / "run" / "accuracy" / "accuracy.txt").read_text()
    assert text.startswith('{"exact_match": ') and '"f1": ' in text


def test_the_demo_answers_are_the_reference_s_spans_at_several_positions(data):
    squad = json.loads((data / dataset.DATASET_FILE).read_text(encoding="utf-8"))
    paragraphs = [p for a in squad["data"] for p in a["paragraphs"]]
    answers = [(p["context"], qa["answers"]) for p in paragraphs for qa in p["qas"]]
    assert all(len(a) == 1 and c[a[0]["answer_start"]:].startswith(a[0]["text"]) for c, a in answers)
    assert len({a[0]["answer_start"] for _, a in answers}) >= 15 and len({a[0]["text"] for _, a in answers}) >= 15
    ds = dataset.load(data)
    reference = backend.load_reference(data, "cpu", "fp32")
    first = [i for i, f in enumerate(ds.features) if f.example_index == 0]
    assert accuracy.predict_text(ds.examples[0], [ds.features[i] for i in first],
                                 [reference.predict([ds[i]])[0] for i in first]) == answers[0][1][0]["text"]


def test_the_demo_passes_and_a_shorter_truncation_fails(data, demo_verdict, monkeypatch):
    ok, score = demo_verdict("bert", data)
    assert ok and score["metrics"]["f1"] == 100.0
    monkeypatch.setattr(backend, "width", lambda sample: 64)  # every feature cut to 64 tokens
    ok, score = demo_verdict("bert", data)
    assert not ok and score["metrics"]["f1"] < 99
