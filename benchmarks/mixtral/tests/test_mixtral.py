"""Mixtral scoring rules: GSM8K answer extraction and the MBXP programs, by hand."""

from __future__ import annotations

import pytest

from benchmarks.mixtral import accuracy
from benchmarks.mixtral.accuracy import gsm8k_correct, gsm8k_number, mbxp_problem
from harness.rounds import load_round


@pytest.mark.parametrize("text, number", [
    ("She pays 3 + 4 = 7 dollars. The answer is 7.", "7"),
    ("The answer is 1,200 apples, not 5.", "1,200"),  # the first number after the phrase
    ("First 12, then 30. So 42 in all.", "42"),  # no phrase: the last number
    ("Add 13 and 15. The answer is unknown", "15"),  # the phrase with no number after it: the last number
    ("The answer is 3. Later: The answer is 9", "9"),  # after the LAST phrase
    ("It drops to -4.5 degrees", "-4.5"),
    ("Costs .75 each", ".75"),
    ("no digits at all", ""),
])
def test_gsm8k_number_as_the_reference_picks_it(text, number):
    assert gsm8k_number(text) == number


@pytest.mark.parametrize("prediction, reference, correct", [
    ("Each box holds 6, so 6 * 4 = 24. The answer is 24.", "24", True),
    ("The answer is 5,600.", "5600", True),  # commas dropped
    ("The answer is 7.0", "7", True),  # compared as floats
    ("The answer is 8.\nQ: another question? The answer is 24.", "24", False),  # only before "\nQ:"
    ("I cannot tell.", "3", False),  # no number
    ("The answer is 2", "two", False),  # an unreadable reference never matches
])
def test_gsm8k_exact_answers(prediction, reference, correct):
    assert gsm8k_correct(prediction, reference) is correct


def test_mbxp_programs_as_the_reference_builds_them():
    test_py = "def check(candidate):\n    assert candidate(2) == 4\n"
    python = mbxp_problem("python_double_it", "  def double\\_it(x):\n    return 2 * x\n```\nmore talk", test_py)
    assert python.language == "python" and python.entry_point == "double_it"
    assert python.program == "def double_it(x):\n    return 2 * x\n\n" + test_py + "\ncheck(double_it)"
    cpp = mbxp_problem("cpp_add", "int add(int a, int b) { return a + b; }\n```", "\nint main() { return 0; }\n")
    assert cpp.program == "int add(int a, int b) { return a + b; }\n\nint main() { return 0; }\n"  # appended as is
    assert mbxp_problem("typescript_f", "an unclosed block", "T").program == "an unclosed blockT"
    assert mbxp_problem("java_f", "class A {}", "") is None  # a language the reference does not score
    assert mbxp_problem("nolanguage", "x", "") is None


def test_accuracy_text_is_the_checkers_line():
    metrics = {"rouge1": 45.1, "rouge2": 23.2, "rougeL": 30.2, "rougeLsum": 42.0, "gsm8k": 73.5, "mbxp": None,
               "gen_len": 10, "gen_num": 3, "gen_tok_len": 400, "tokens_per_sample": 133.3, "unscored": "mbxp: why"}
    text = accuracy.accuracy_text(metrics)
    assert text == ("\nResults\n\n{'rouge1': 45.1, 'rouge2': 23.2, 'rougeL': 30.2, 'rougeLsum': 42.0, 'gsm8k': 73.5, "
                    "'mbxp': None, 'gen_len': 10, 'gen_num': 3, 'gen_tok_len': 400, 'tokens_per_sample': 133.3}\n")


def test_targets_of_the_round():
    targets = {t.metric: t for t in load_round("v4.1").targets("mixtral-8x7b")}
    assert {m: round(t.reference * t.min_ratio, 6) for m, t in targets.items()} == {
        "rouge1": 45.036189, "rouge2": 23.050071, "rougeL": 30.057885, "gsm8k": 73.0422, "mbxp": 59.5188,
        "tokens_per_sample": 131.31}
    assert round(targets["tokens_per_sample"].reference * targets["tokens_per_sample"].max_ratio, 2) == 160.49


# -- on the demo tier -------------------------------------------------------------------------------

import json  # noqa: E402
import pickle  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.mixtral import backend, dataset  # noqa: E402
from harness import demo as demo_tier  # noqa: E402
from harness import logs  # noqa: E402
from harness.errors import DataError  # noqa: E402
from harness.unpickle import load_dataframe  # noqa: E402


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("mixtral")


def frame(folder):
    return load_dataframe(folder / dataset.DATASET_FILE, dataset.COLUMNS)


def reference(folder):
    records = logs.read_accuracy(folder / demo_tier.REFERENCE_LOG)
    return logs.decode_outputs(records, "int32", len(records))


def test_demo_has_the_real_layout_and_mixtrals_token_ids(data):
    rows = frame(data)
    assert list(rows["dataset"]).count("MBXP") == list(rows["dataset"]).count("GSM8K") == 8
    assert {i.split("_")[0] for i in rows["id"] if "_" in i} == {*accuracy.LANGUAGES, "java"}
    tok = dataset.load_tokenizer(data)
    assert tok("a\n```\n", add_special_tokens=False)["input_ids"][-4:] == list(dataset.MBXP_STOP)
    assert all(ids[0] == 1 for ids in rows["tok_input"]) and len(tok) == 32000
    config = json.loads((data / "model" / "config.json").read_text())
    assert config["architectures"] == ["MixtralForCausalLM"] and config["num_local_experts"] == 4
    # the reference's responses: trailing EOS stripped; MBXP answers end at the stop sequence if it came
    for i, out in reference(data).items():
        assert len(out) == 0 or out[-1] not in (0, 2)
        if rows["dataset"][i] == "MBXP" and "```" in tok.decode(out.tolist()):
            assert tuple(out[-4:]) == dataset.MBXP_STOP


def test_continuous_batching_generates_the_reference_tokens(data):
    ds = dataset.load(data)
    engine = backend.load(data, "cpu", "fp32")
    outputs = {}
    for i in range(len(ds)):
        engine.add(i, ds[i])
    while len(engine):
        engine.step(lambda key, token: None, lambda key, tokens: outputs.__setitem__(key, tokens))
    want = reference(data)
    assert all(outputs[i] == want[i].tolist() for i in range(len(ds)))


def test_scorer_on_a_hand_made_log(data, tmp_path, monkeypatch):
    tok = dataset.load_tokenizer(data)
    out = tmp_path / "d"
    out.mkdir()
    (out / "model").symlink_to(data / "model")
    rows = frame(data)
    rows = rows[rows["dataset"] != "OpenOrca"].iloc[[0, 1, 9, 15]].copy().reset_index(drop=True)
    rows = pd.concat([frame(data).iloc[:1], rows], ignore_index=True)
    rows.loc[0, "gt_output"] = "the cat sat on the mat"
    rows.loc[1, "gt_output"], rows.loc[2, "gt_output"] = "7", "42"
    rows.to_pickle(out / dataset.DATASET_FILE)
    texts = ["the cat sat", "So 3 + 4. The answer is 7.", "I think 41", "def double_it(x):\n    return x + x\n```",
             "class Main {}"]
    preds = {i: np.asarray(tok(t, add_special_tokens=False)["input_ids"], np.int32) for i, t in enumerate(texts)}
    ran = []
    monkeypatch.setattr(accuracy, "mbxp_pass_rate", lambda problems: (ran.extend(problems), (50.0, ""))[1])
    metrics = accuracy.score(preds, out)
    assert metrics["rouge1"] == round(2 / 3 * 100, 4) and metrics["gsm8k"] == 50.0 and metrics["mbxp"] == 50.0
    assert [p.language for p in ran] == ["python"] and metrics["mbxp_skipped"] == 1  # java: not scored
    assert ran[0].program.startswith("def double_it(x):\n    return x + x\n\ndef double_it(x):")
    tokens = sum(len(p) for p in preds.values())
    assert metrics["gen_num"] == 5 and metrics["gen_tok_len"] == tokens and metrics["gen_len"] == len("the cat sat")
    assert metrics["tokens_per_sample"] == round(tokens / 5, 1) and "unscored" not in metrics


def test_without_a_sandbox_mbxp_is_not_scored_and_the_rest_is(data, monkeypatch):
    from harness import sandbox
    from harness.errors import HarnessError

    def refuse(image):
        raise HarnessError("the Docker engine is not reachable")

    monkeypatch.setattr(sandbox, "check_available", refuse)
    metrics = accuracy.score(reference(data), data)
    assert metrics["mbxp"] is None and "MBXP not scored: the Docker engine is not reachable" in metrics["unscored"]
    assert metrics["rouge1"] == 100.0 and metrics["gsm8k"] is not None
    assert "'mbxp': None" in accuracy.accuracy_text(metrics)


# -- bad input --------------------------------------------------------------------------------------

def test_a_pickle_missing_a_part_or_of_the_wrong_shape_is_named(demo_copy):
    folder = demo_copy("mixtral")
    path = folder / dataset.DATASET_FILE
    rows = frame(folder)
    rows[rows["dataset"] != "GSM8K"].to_pickle(path)
    with pytest.raises(DataError, match=r"has the parts \['MBXP', 'OpenOrca'\].*exactly OpenOrca, GSM8K, MBXP"):
        dataset.load(folder)
    rows.drop(columns=["gt_output"]).to_pickle(path)
    with pytest.raises(DataError, match="lacks the column.*gt_output"):
        dataset.load(folder)
    path.write_bytes(pickle.dumps({"not": "a frame"}))
    with pytest.raises(DataError, match="holds a dict, not a pandas DataFrame"):
        dataset.load(folder)


def test_wrong_checkpoint_or_missing_tokenizer_is_named(demo_copy):
    folder = demo_copy("mixtral")
    (folder / "model" / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="has no tokenizer"):
        backend.load(folder, "cpu", "fp32")
    config = folder / "model" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"model_type": "llama"}))
    with pytest.raises(DataError, match="describes a 'llama' model, not 'mixtral'"):
        backend.load(folder, "cpu", "fp32")
