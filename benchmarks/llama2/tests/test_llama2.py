"""Llama-2 data pipeline, generation and scoring on the demo tier."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from benchmarks.llama2 import BENCHMARK, accuracy, backend, dataset, demo
from harness import demo as demo_tier
from harness import evaluate, logs
from harness.errors import DataError
from harness.registry import get
from harness.rounds import load_round
from harness.unpickle import load_dataframe


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("llama2")


def frame(data):
    return load_dataframe(data / dataset.DATASET_FILE, dataset.COLUMNS)


def reference(data):
    records = logs.read_accuracy(data / demo_tier.REFERENCE_LOG)
    return logs.decode_outputs(records, "int32", len(records))


def generate(engine, prompts):
    outputs = {}
    for key, prompt in prompts.items():
        engine.add(key, prompt)
    while len(engine):
        engine.step(lambda key, token: None, lambda key, tokens: outputs.__setitem__(key, tokens))
    return outputs


def test_demo_pickle_has_the_real_layout(data):
    rows = frame(data)
    assert {"id", "system_prompt", "question", "input", "tok_input", "output", "origin"} <= set(rows.columns)
    tok = dataset.load_tokenizer(data)
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert all(ids[0] == 1 and 2 not in ids for ids in rows["tok_input"])  # BOS first, no EOS in a prompt
    assert all(text.startswith("<s>[INST] ") and text.endswith(" [/INST]") for text in rows["input"])
    assert any("<<SYS>>\n" in text for text in rows["input"]) and any(not t.isascii() for t in rows["input"])
    assert tok.decode(rows["tok_input"][0], skip_special_tokens=True) == rows["input"][0][len("<s>"):]
    assert max(len(ids) for ids in rows["tok_input"]) > 500  # long prompts
    config = json.loads((data / "model" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_key_value_heads"] == 2


def test_demo_answers_end_at_many_lengths(data):
    lengths = sorted(len(t) for t in reference(data).values())
    assert lengths[0] < 10 and lengths[-1] == backend.GENERATION["max_new_tokens"] and len(set(lengths)) > 15


def test_continuous_batching_generates_the_reference_tokens(data):
    ds = dataset.load(data)
    outputs = generate(backend.load(data, "cpu", "fp32"), {i: ds[i] for i in range(len(ds))})  # all at once
    want = reference(data)
    assert all(outputs[i] == want[i].tolist() for i in range(len(ds)))
    assert all(out.count(2) <= 1 and (2 not in out[:-1]) for out in outputs.values())


def test_a_perturbed_generation_fails_the_demo(data):
    ds = dataset.load(data)
    engine = backend.load(data, "cpu", "fp32")
    engine.max_new_tokens = 64  # the reference allows 1,024
    outputs = generate(engine, {i: ds[i] for i in range(len(ds))})
    result = evaluate.score(get("llama2"), {i: np.asarray(t, np.int32) for i, t in outputs.items()}, data,
                            load_round(), demo_tier=True)
    assert not any(v["passed"] for v in result["variants"].values())
    failed = {c["metric"] for c in result["variants"]["llama2-70b-99"]["checks"] if not c["passed"]}
    assert "tokens_per_sample" in failed


def test_scorer_against_hand_computed_values(data, tmp_path):
    tok = dataset.load_tokenizer(data)
    rows = frame(data)
    out = tmp_path / "d"
    out.mkdir()
    (out / "model").symlink_to(data / "model")
    rows = rows.iloc[:2].copy()
    rows["output"] = ["the cat sat on the mat", "Yes. It is."]
    rows.to_pickle(out / dataset.DATASET_FILE)
    preds = {0: np.asarray(tok("the cat sat", add_special_tokens=False)["input_ids"] + [2], np.int32),
             1: np.asarray(tok("Yes. It is.", add_special_tokens=False)["input_ids"], np.int32)}
    metrics = accuracy.score(preds, out)
    # sample 0: unigram P 3/3, R 3/6 -> F 2/3; bigram P 2/2, R 2/5 -> F 4/7; LCS 3 -> F 2/3; sample 1: 1 everywhere
    assert metrics["rouge1"] == round((2 / 3 + 1) / 2 * 100, 4) == 83.3333
    assert metrics["rouge2"] == round((4 / 7 + 1) / 2 * 100, 4)
    assert metrics["rougeL"] == metrics["rougeLsum"] == 83.3333
    tokens = len(preds[0]) + len(preds[1])
    assert metrics["gen_tok_len"] == tokens and metrics["tokens_per_sample"] == round(tokens / 2, 1)
    assert metrics["gen_num"] == 2 and metrics["gen_len"] == len("the cat sat") + len("Yes.\nIt is.")
    text = accuracy.accuracy_text(metrics)
    # the v4.1 checker's patterns
    assert float(re.search(r"'rouge1':\s([\d.]+)", text)[1]) == 83.3333
    assert float(re.search(r"'tokens_per_sample':\s([\d.]+)", text)[1]) == metrics["tokens_per_sample"]


def test_targets_of_the_round():
    rnd = load_round()
    checks = {t.metric: t for t in rnd.targets("llama2-70b-99")}
    assert checks["rouge1"].check(43.99, 1, 1).passed and not checks["rouge1"].check(43.98, 1, 1).passed
    window = checks["tokens_per_sample"].check(294.45, 1, 1)
    assert (round(window.target, 3), round(window.upper, 3)) == (265.005, 323.895)
    assert not checks["tokens_per_sample"].check(324.0, 1, 1).passed
    assert round(next(t for t in rnd.targets("llama2-70b-99.9") if t.metric == "rougeL").reference * 0.999, 6) == \
        28.587584
    assert rnd.compliance["llama2-70b-99"] == ("TEST06",) and BENCHMARK.eos_token_id == 2


# -- bad input --------------------------------------------------------------------------------------

def test_a_pickle_of_the_wrong_shape_is_named(demo_copy):
    folder = demo_copy("llama2")
    path = folder / dataset.DATASET_FILE
    pd.DataFrame({"input": ["x"], "output": ["y"]}).to_pickle(path)
    with pytest.raises(DataError, match="lacks the column.*tok_input"):
        dataset.load(folder)
    pd.DataFrame({"input": ["x"], "tok_input": [["a", "b"]], "output": ["y"]}).to_pickle(path)
    with pytest.raises(DataError, match="row 0 has tok_input .* not a non-empty list of token ids"):
        dataset.load(folder)
    path.write_bytes(pickle.dumps({"not": "a frame"}))
    with pytest.raises(DataError, match="holds a dict, not a pandas DataFrame"):
        dataset.load(folder)


def test_prompts_tokenized_for_another_vocabulary_are_refused(demo_copy):
    folder = demo_copy("llama2")
    rows = frame(folder)
    rows.loc[3, "tok_input"] = [1, 31999, 5]  # a real Llama-2 id, beyond the demo's vocabulary
    rows.to_pickle(folder / dataset.DATASET_FILE)
    with pytest.raises(DataError, match="token id 31999, but the checkpoint .* vocabulary of"):
        dataset.load(folder)


def test_wrong_checkpoint_or_missing_tokenizer_is_named(demo_copy):
    folder = demo_copy("llama2")
    (folder / "model" / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="has no tokenizer"):
        backend.load(folder, "cpu", "fp32")
    config = folder / "model" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"model_type": "gptj"}))
    with pytest.raises(DataError, match="describes a 'gptj' model, not 'llama'"):
        backend.load(folder, "cpu", "fp32")
    config.unlink()
    with pytest.raises(DataError, match="holds no meta-llama/Llama-2-70b-chat-hf checkpoint"):
        backend.load(folder, "cpu", "fp32")


def test_a_prompt_over_the_context_is_refused_by_the_engine(data):
    engine = backend.load(data, "cpu", "fp32")
    with pytest.raises(ValueError, match="context is 2048"):
        engine.add("long", np.full(2048, 5))
