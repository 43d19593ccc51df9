"""GPT-J data pipeline, generation and scoring on the demo tier."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.gptj import accuracy, backend, dataset, demo
from harness.errors import DataError
from harness.metrics.rouge import postprocess


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("gptj")


def test_demo_is_deterministic_and_realistic(data, tmp_path):
    records = json.loads((data / "cnn_eval.json").read_text(encoding="utf-8"))
    inputs = [{k: r[k] for k in ("instruction", "input")} for r in records]
    assert inputs == [{k: r[k] for k in ("instruction", "input")} for r in demo.synthetic_records(64, seed=0)]
    assert inputs != [{k: r[k] for k in ("instruction", "input")} for r in demo.synthetic_records(64, seed=1)]
    assert all(set(r) == {"instruction", "input", "output"} for r in records)
    assert all(r["instruction"] == "Summarize the following news article:" for r in records)
    assert any(not r["input"].isascii() for r in records)
    config = json.loads((data / "model" / "config.json").read_text())
    assert config["architectures"] == ["GPTJForCausalLM"] and config["model_type"] == "gptj"
    tok = dataset.load_tokenizer(data)
    assert tok.eos_token == tok.pad_token == tok.bos_token == "<|endoftext|>"
    assert tok.padding_side == "left"


def test_prompt_and_truncation(data):
    ds = dataset.load(data)
    tok = dataset.load_tokenizer(data)
    first = tok.decode(ds[0].tolist())
    assert first.startswith("Below is an instruction that describes a task, paired with an input")
    assert "### Instruction:\nSummarize the following news article:\n\n### Input:\n" in first
    assert first.endswith("\n\n### Response:")
    lengths = [ds.sample_length(i) for i in range(len(ds))]
    assert max(lengths) == dataset.MAX_INPUT_TOKENS  # long articles hit the 1919-token limit ...
    long = lengths.index(dataset.MAX_INPUT_TOKENS)
    # ... and are cut on the right, as the reference tokenizer does: the prompt head survives
    assert tok.decode(ds[long].tolist()).startswith("Below is an instruction")
    assert ds[0].dtype == np.int64


def test_batched_generation_equals_batch_one(data):
    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in (0, 1, 2)]
    batched = model.predict(samples)
    for sample, out in zip(samples, batched):
        single = model.predict([sample])[0]
        assert np.array_equal(out, single)
        assert 30 <= len(out) <= 128
        assert np.count_nonzero(out == model.eos) <= 1 and (model.eos not in out[:-1])


def test_fused_attention_generates_what_the_eager_attention_does(data):
    from transformers.models.gptj.modeling_gptj import GPTJAttention

    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in (0, 7)]  # sample 7 is truncated at 1919 tokens
    layers = model.model.transformer.h
    assert all(layer.attn._attn.__func__ is backend._fused_attention for layer in layers)
    fused = model.predict(samples)
    model.beam_cache = False  # transformers' own cache, whose keys and values the eager code reads
    assert all(np.array_equal(a, b) for a, b in zip(fused, model.predict(samples)))
    for layer in layers:
        del layer.attn._attn  # back to transformers' eager attention
    assert all(layer.attn._attn.__func__ is GPTJAttention._attn for layer in layers)
    eager = model.predict(samples)
    assert all(np.array_equal(a, b) for a, b in zip(fused, eager))


def test_beam_cache_keeps_one_prompt_per_sample_and_reorders_the_generated_part():
    import torch

    cache = backend._beam_cache(n_layers=1, beams=2)
    prompt = torch.arange(2 * 1 * 3 * 1, dtype=torch.float32).view(2, 1, 3, 1).repeat_interleave(2, dim=0)
    keys, values = cache.update(prompt, -prompt, 0)  # 2 samples x 2 beams, a 3-token prompt
    assert keys.generated is None and torch.equal(keys.prompt, prompt[::2]) and torch.equal(values.prompt, -prompt[::2])
    assert cache.get_seq_length() == 3
    for step in range(40):  # past the first preallocated 32 positions
        new = torch.full((4, 1, 1, 1), float(step)) + torch.arange(4.0).view(4, 1, 1, 1) / 10
        keys, values = cache.update(new, -new, 0)
    assert cache.get_seq_length() == 43 and keys.generated.shape == (4, 1, 40, 1)
    assert torch.equal(keys.generated[:, 0, -1, 0], torch.tensor([39.0, 39.1, 39.2, 39.3]))
    cache.reorder_cache(torch.tensor([1, 1, 3, 2]))  # beams move within their own sample only
    keys, values = cache.update(torch.zeros(4, 1, 1, 1), torch.zeros(4, 1, 1, 1), 0)
    assert torch.equal(keys.generated[:, 0, 39, 0], torch.tensor([39.1, 39.1, 39.3, 39.2]))
    assert torch.equal(values.generated[:, 0, 0, 0], -torch.tensor([0.1, 0.1, 0.3, 0.2]))
    assert torch.equal(keys.prompt, prompt[::2])  # the prompt is never copied or moved


def test_two_part_attention_equals_attention_over_the_joined_sequence():
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    torch.manual_seed(0)
    batch, beams, heads, dim, length, generated = 2, 3, 2, 8, 5, 4
    prompt_k, prompt_v = torch.randn(2, batch, heads, length, dim)
    new_k, new_v = torch.randn(2, batch * beams, heads, generated, dim)
    query = torch.randn(batch * beams, heads, 1, dim)
    mask = torch.ones(batch * beams, 1, 1, length + generated, dtype=torch.bool)
    mask[:beams, ..., :2] = False  # the first sample's prompt is left-padded by 2
    joined_k = torch.cat([prompt_k.repeat_interleave(beams, dim=0), new_k], dim=2)
    joined_v = torch.cat([prompt_v.repeat_interleave(beams, dim=0), new_v], dim=2)
    expected = scaled_dot_product_attention(query, joined_k, joined_v, attn_mask=mask, scale=0.3)
    got = backend._two_part_attention(query, backend.BeamKV(prompt_k, new_k, beams),
                                      backend.BeamKV(prompt_v, new_v, beams), mask, 0.3)
    assert torch.allclose(got, expected, atol=1e-6)


def score_texts(data, predictions: dict[int, str]):
    tok = dataset.load_tokenizer(data)
    outputs = {i: np.asarray(tok(text)["input_ids"], dtype=np.int64) for i, text in predictions.items()}
    return accuracy.score(outputs, data)


def test_score_against_hand_computed_values(data):
    records = dataset.read_records(data)
    perfect = score_texts(data, {i: records[i]["output"] for i in range(4)})
    assert {k: perfect[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")} == dict.fromkeys(
        ("rouge1", "rouge2", "rougeL", "rougeLsum"), 100.0)
    assert perfect["gen_len"] == sum(len(postprocess(records[i]["output"])) for i in range(4))
    assert perfect["gen_num"] == 4
    # one perfect prediction and one empty one: ROUGE is the per-sample mean, GEN_LEN a character total
    half = score_texts(data, {0: records[0]["output"], 1: ""})
    assert half["rouge1"] == 50.0 and half["gen_len"] == len(postprocess(records[0]["output"]))
    text = accuracy.accuracy_text(half)
    assert "'rouge1': 50.0, 'rouge2': 50.0, 'rougeL': 50.0" in text and "np." not in text


def test_eos_is_skipped_when_decoding(data):
    tok = dataset.load_tokenizer(data)
    records = dataset.read_records(data)
    ids = tok(records[0]["output"])["input_ids"] + [tok.eos_token_id]
    result = accuracy.score({0: np.asarray(ids, dtype=np.int64)}, data)
    assert result["rouge1"] == 100.0


def test_bad_dataset_files_are_named(demo_copy):
    broken = demo_copy("gptj")
    (broken / "cnn_eval.json").write_text("[{\"instruction\": ")
    with pytest.raises(DataError, match=r"cnn_eval.json is not valid UTF-8 JSON"):
        dataset.load(broken)
    (broken / "cnn_eval.json").write_text(json.dumps([{"instruction": "x", "input": "y"}]))
    with pytest.raises(DataError, match="record 0 must have string fields instruction, input, output"):
        dataset.load(broken)
    (broken / "cnn_eval.json").unlink()
    with pytest.raises(DataError, match="cnn_eval.json is missing"):
        dataset.load(broken)


def test_bad_checkpoints_are_named(demo_copy):
    broken = demo_copy("gptj")
    (broken / "model" / "tokenizer.json").unlink()
    with pytest.raises(DataError, match="has no tokenizer"):
        dataset.load_tokenizer(broken)
    config = json.loads((broken / "model" / "config.json").read_text())
    (broken / "model" / "config.json").write_text(json.dumps(config | {"model_type": "llama"}))
    with pytest.raises(DataError, match="describes a 'llama' model, not GPT-J"):
        backend.check_checkpoint(broken / "model")
    shutil.rmtree(broken / "model")
    with pytest.raises(DataError, match="holds no GPT-J checkpoint"):
        backend.check_checkpoint(broken / "model")


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_half_precision_loads_and_generates(data, dtype):
    import torch

    model = backend.load(data, "cpu", dtype)
    assert model.model.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    out = model.predict([dataset.load(data)[0]])[0]
    assert out.dtype == np.int64 and 30 <= len(out) <= 128


def test_the_demo_summaries_are_the_reference_s_generations(data):
    records = json.loads((data / "cnn_eval.json").read_text(encoding="utf-8"))
    reference = backend.load_reference(data, "cpu", "fp32")
    assert all(layer.attn._attn.__func__ is not backend._fused_attention for layer in reference.model.transformer.h)
    ds = dataset.load(data)
    tok = dataset.load_tokenizer(data)
    for index in (0, 7):  # 7: a prompt truncated at 1919 tokens
        generated = reference.predict([ds[index]])[0]
        assert tok.decode(generated.tolist(), skip_special_tokens=True) == records[index]["output"]
    assert len({r["output"] for r in records}) >= 48 and all(r["output"].strip() for r in records)


def test_the_demo_passes_and_another_beam_count_fails(data, demo_verdict, monkeypatch):
    ok, score = demo_verdict("gptj", data, n=12)
    assert ok and score["metrics"]["rouge1"] == 100.0
    monkeypatch.setitem(backend.GENERATION, "num_beams", 2)
    ok, score = demo_verdict("gptj", data, n=12)
    assert not ok and score["metrics"]["rouge1"] < 99
