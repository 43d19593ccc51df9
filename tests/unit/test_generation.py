"""The continuous-batching engine computes what batch-1 greedy ``generate`` computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.backends.generation import ContinuousBatcher

EOS = 2


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=160,
                         bos_token_id=1, eos_token_id=EOS, pad_token_id=0)
    llama = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # decisive logits, and an EOS that comes early for some prompts and late for others
        llama.lm_head.weight.mul_(30)
        llama.lm_head.weight[EOS] *= 1.6
    return llama


def prompts(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(3, 300, size=int(length)) for length in rng.choice([3, 9, 30, 70, 120], size=n)]


def reference(model, prompt, max_new_tokens, min_new_tokens):
    out = model.generate(torch.from_numpy(prompt)[None], max_new_tokens=max_new_tokens, do_sample=False,
                         min_new_tokens=min_new_tokens, eos_token_id=EOS, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def drive(engine, arrivals):
    """Step the engine, adding arrivals[k] = (step, key, prompt) when their step comes."""
    firsts, outputs, step, arrivals = {}, {}, 0, sorted(arrivals, key=lambda a: a[0])
    while arrivals or len(engine):
        while arrivals and arrivals[0][0] <= step:
            _, key, prompt = arrivals.pop(0)
            engine.add(key, prompt)
        engine.step(firsts.__setitem__, lambda key, tokens: outputs.__setitem__(key, list(tokens)))
        step += 1
    return firsts, outputs


def test_tokens_equal_batch_one_generate_with_staggered_arrivals(model):
    batch = prompts(12)
    want = [reference(model, p, 48, 1) for p in batch]
    lengths = sorted(len(w) for w in want)
    assert lengths[0] < 10 and lengths[-1] == 48 and sum(w[-1] == EOS for w in want) >= 3  # very different ends
    engine = ContinuousBatcher(model, EOS, max_new_tokens=48, min_new_tokens=1)
    # two at once, the rest arriving while others decode, a burst at step 20
    arrivals = [(0, 0, batch[0]), (0, 1, batch[1])] + [(3 * k, k, batch[k]) for k in range(2, 8)] + \
        [(20, k, batch[k]) for k in range(8, 12)]
    firsts, outputs = drive(engine, arrivals)
    assert [outputs[k] for k in range(12)] == want
    assert all(firsts[k] == want[k][0] for k in range(12))
    assert len(engine) == 0


def test_min_new_tokens_masks_eos_and_the_limit_cuts(model):
    batch = prompts(6, seed=1)
    engine = ContinuousBatcher(model, EOS, max_new_tokens=12, min_new_tokens=5)
    _, outputs = drive(engine, [(0, k, p) for k, p in enumerate(batch)])
    for k, p in enumerate(batch):
        assert outputs[k] == reference(model, p, 12, 5)
        assert len(outputs[k]) >= 5 and EOS not in outputs[k][:4] and outputs[k].count(EOS) <= 1


def cut_after(tokens, stop):
    for i in range(len(tokens) - len(stop) + 1):
        if tuple(tokens[i:i + len(stop)]) == stop:
            return tokens[:i + len(stop)]
    return tokens


def test_a_stop_sequence_ends_a_sequence_where_the_cut_output_would(model):
    batch = prompts(6, seed=2)
    want = [reference(model, p, 40, 2) for p in batch]
    long = max(range(6), key=lambda k: len(want[k]))
    stop = tuple(want[long][6:8])
    engine = ContinuousBatcher(model, EOS, max_new_tokens=40, min_new_tokens=2)
    for k, p in enumerate(batch):
        engine.add(k, p, stop=stop if k % 2 == 0 or k == long else ())
    outputs = {}
    while len(engine):
        engine.step(lambda key, token: None, lambda key, tokens: outputs.__setitem__(key, list(tokens)))
    assert len(outputs[long]) <= 8 < len(want[long])  # ended early, at the stop sequence
    for k in range(6):
        assert outputs[k] == (cut_after(want[k], stop) if k % 2 == 0 or k == long else want[k])


def test_generation_stops_at_the_models_context_and_long_prompts_are_refused(model):
    engine = ContinuousBatcher(model, EOS, max_new_tokens=100)
    prompt = prompts(1)[0][:3]
    near_end = np.concatenate([prompt, np.full(160 - 3 - 4, 7)])  # room for 4 new tokens
    _, outputs = drive(engine, [(0, "a", near_end)])
    assert len(outputs["a"]) <= 4
    with pytest.raises(ValueError, match="context is 160"):
        engine.add("b", np.full(160, 7))
    with pytest.raises(ValueError, match="empty"):
        engine.add("c", np.array([], dtype=np.int64))


def test_footprint_counts_rows_times_the_longest_possible_sequence(model):
    engine = ContinuousBatcher(model, EOS, max_new_tokens=10)
    assert engine.footprint() == 0 and engine.footprint(5) == 15
    engine.add("a", np.arange(3, 8))
    engine.add("b", np.arange(3, 40))
    assert engine.footprint() == 2 * 47 and engine.footprint(100) == 3 * 110
    assert sorted(engine.clear()) == ["a", "b"] and len(engine) == 0


def test_a_mixture_of_experts_model_equals_batch_one_generate():
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(1)
    config = MixtralConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                           max_position_embeddings=160, bos_token_id=1, eos_token_id=EOS, pad_token_id=0)
    mixtral = MixtralForCausalLM(config).eval()
    with torch.no_grad():
        mixtral.lm_head.weight.mul_(30)
        mixtral.lm_head.weight[EOS] *= 1.6
    batch = prompts(8, seed=3)
    want = [reference(mixtral, p, 32, 2) for p in batch]
    assert len({len(w) for w in want}) > 2  # rows routed to different experts end at different lengths
    engine = ContinuousBatcher(mixtral, EOS, max_new_tokens=32, min_new_tokens=2)
    _, outputs = drive(engine, [(2 * k, k, p) for k, p in enumerate(batch)])
    assert [outputs[k] for k in range(8)] == want
