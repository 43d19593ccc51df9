"""Demo tier: a tiny random-weight GPT-J and a synthetic ``cnn_eval.json``, built offline.

The model is the real ``GPTJForCausalLM`` architecture (2 layers, 64 wide, 2048 positions so a
1919-token prompt plus 128 new tokens fits) saved with ``save_pretrained``; the tokenizer is a
byte-level BPE trained here on the synthetic articles, with GPT-J's convention that
``<|endoftext|>`` is BOS, EOS, UNK and pad. Articles are deterministic for a seed; every eighth
is long enough to be truncated at 1919 tokens, and some carry non-ASCII text. Each record's
reference summary (``output``) is what the reference execution generates for it, decoded as the
scorer decodes (``ground_truth``; see ``harness.demo``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from benchmarks.gptj.dataset import DATASET_FILE, MODEL_DIR

EOS = "<|endoftext|>"
INSTRUCTION = "Summarize the following news article:"
WORDS = (
    "the government said on monday that new rules for city transport will start next year "
    "officials police report market shares rose after strong results in europe and asia while "
    "the team won its third match players fans weather storm rain coast families homes court "
    "judge ruled company chief executive announced plans to hire workers school students health "
    "hospital doctors minister election voters campaign president senator budget tax energy oil"
).split()
NON_ASCII = ("Zürich", "café", "naïve", "São Paulo", "Kraków", "東京", "Москва", "€120", "—", "“quoted”")
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs of a tiny model. Not valid for a submission.
# Offline is VALID only while target_qps stays above the throughput (5 to 16 samples/s on 2 CPU
# cores): the one query holds target_qps x min_duration x 1.1 samples and must outlast min_duration.
gptj.Offline.min_duration = 5000
gptj.Offline.min_query_count = 1
gptj.Offline.target_qps = 30
gptj.Server.min_duration = 10000
gptj.Server.min_query_count = 32
gptj.Server.target_qps = 2
gptj.SingleStream.min_duration = 10000
gptj.SingleStream.min_query_count = 16
gptj.SingleStream.target_latency = 500
"""


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), rng.choice(NON_ASCII))
    return " ".join(words).capitalize() + "."


def synthetic_records(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        n_sentences = rng.randint(450, 500) if i % 8 == 7 else rng.randint(4, 30)
        sentences = [_sentence(rng) for _ in range(n_sentences)]
        highlights = " ".join(rng.sample(sentences, k=min(3, len(sentences))))
        records.append({"instruction": INSTRUCTION, "input": " ".join(sentences), "output": highlights})
    return records


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                   pad_token=EOS, model_max_length=2048)


def build(out: Path, seed: int = 0, n_samples: int = 64) -> None:
    """Write ``cnn_eval.json``, ``model/`` and a demo ``user.conf`` into ``out`` (which exists)."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    records = synthetic_records(n_samples, seed)
    (out / DATASET_FILE).write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    tokenizer = _train_tokenizer([r["input"] for r in records] + [r["output"] for r in records])
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPTJConfig(vocab_size=len(tokenizer), n_positions=2048, n_embd=64, n_layer=2, n_head=4,
                        rotary_dim=16, n_inner=256, tie_word_embeddings=False,
                        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    torch.manual_seed(seed)
    model = GPTJForCausalLM(config).eval()
    model.save_pretrained(out / MODEL_DIR)
    tokenizer.save_pretrained(out / MODEL_DIR)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Make each record's reference summary the reference execution's generation, decoded with
    special tokens skipped as the scorer decodes predictions."""
    from benchmarks.gptj.dataset import load_tokenizer

    path = out / DATASET_FILE
    records = json.loads(path.read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(out)
    for index, record in enumerate(records):
        record["output"] = tokenizer.decode(outputs[index].tolist(), skip_special_tokens=True)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
