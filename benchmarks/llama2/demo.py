"""Demo tier: a tiny random-weight Llama and a synthetic OpenOrca pickle, built offline.

The model is the real ``LlamaForCausalLM`` architecture (2 layers, 64 wide, grouped-query
attention, 2,048 positions) saved with ``save_pretrained``; the tokenizer is a byte-level BPE
trained here on the synthetic prompts with Llama's conventions: ``<unk>`` 0, ``<s>`` 1 (prepended
to every prompt), ``</s>`` 2 (EOS). The pickle has the real columns (``id``, ``system_prompt``,
``question``, ``input`` in the chat format, ``tok_input``, ``output``, ``origin``); a few prompts
are long (up to about 1,000 tokens) and some carry non-ASCII text. The EOS row of the output layer
is raised so answers end after a few to a few hundred tokens. Each ``output`` is what the reference
execution generates for the prompt, decoded as the scorer decodes (``ground_truth``).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from benchmarks.llama2.dataset import DATASET_FILE, MODEL_DIR

SPECIAL = ("<unk>", "<s>", "</s>")
SYSTEM = ("You are an AI assistant. Provide a detailed answer so user don't need to search outside to understand "
          "the answer.", "You are a helpful assistant, who always provide explanation.", "")
WORDS = (
    "what is the capital of france explain why the sky looks blue answer the question based on the passage "
    "translate this sentence into german write a short story about a cat who learns to fly solve the equation "
    "step by step premise hypothesis does the premise entail the hypothesis options yes no it is not possible "
    "to tell review movie plot summary generate a title for the following article sentiment positive negative"
).split()
NON_ASCII = ("Zürich", "café", "naïve", "São Paulo", "東京", "Москва", "€", "—", "“quoted”", "½")
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs of a tiny model. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput: the one query holds target_qps x
# min_duration x 1.1 samples and must outlast min_duration. Continuous batching answers the short
# demo prompts at over 300/s on 2 CPU cores (the 1,024-token answer of sample 23 slows a full run).
# Server needs about 460 queries before TTFT/TPOT early stopping can be met at p99.
llama2-70b.Offline.min_duration = 1000
llama2-70b.Offline.min_query_count = 1
llama2-70b.Offline.target_qps = 600
llama2-70b.Server.min_duration = 5000
llama2-70b.Server.min_query_count = 480
llama2-70b.Server.target_qps = 25
"""


def chat_prompt(system: str, question: str) -> str:
    """Llama-2's chat format, as the reference's processorca.py writes ``input``."""
    if system:
        return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{question} [/INST]"
    return f"<s>[INST] {question} [/INST]"


def synthetic_rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(500, 600) if i % 12 == 11 else rng.randint(5, 60))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(NON_ASCII))
        question = " ".join(words).capitalize() + "?"
        origin = ("cot", "flan", "niv", "t0")[i % 4]
        rows.append({"id": f"{origin}.{i}", "system_prompt": rng.choice(SYSTEM), "question": question,
                     "origin": origin})
    return rows


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=512, special_tokens=list(SPECIAL), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   model_max_length=2048)


def build(out: Path, seed: int = 0, n_samples: int = 24) -> None:
    """Write the pickle, ``model/`` and a demo ``user.conf`` into ``out`` (which exists)."""
    import pandas as pd
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rows = synthetic_rows(n_samples, seed)
    tokenizer = _train_tokenizer([r["question"] for r in rows] + list(SYSTEM))
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL] == [0, 1, 2]
    for row in rows:
        # the chat text without its "<s>": the tokenizer prepends BOS as Llama's does
        row["input"] = chat_prompt(row["system_prompt"], row["question"])
        row["tok_input"] = tokenizer(row["input"][len("<s>"):])["input_ids"]
        row["output"] = ""
    pd.DataFrame(rows).to_pickle(out / DATASET_FILE)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # decisive greedy choices, and an EOS that ends answers at many lengths
        model.lm_head.weight.mul_(30)
        model.lm_head.weight[2].mul_(1.5)
    model.save_pretrained(out / MODEL_DIR)
    tokenizer.save_pretrained(out / MODEL_DIR)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Make each row's reference answer the reference execution's generation, decoded with special
    tokens skipped as the scorer decodes predictions."""
    from benchmarks.llama2.dataset import load_tokenizer
    from harness.unpickle import load_dataframe

    path = out / DATASET_FILE
    frame = load_dataframe(path, ("output",))
    tokenizer = load_tokenizer(out)
    frame["output"] = [tokenizer.decode(outputs[i].tolist(), skip_special_tokens=True) for i in range(len(frame))]
    frame.to_pickle(path)
