"""CNN/DailyMail validation set in the reference's ``cnn_eval.json`` form, prompted and tokenized.

Data folder layout: ``cnn_eval.json`` (a list of {instruction, input, output}) and ``model/``
(the HuggingFace checkpoint, whose tokenizer files are used). Prompts follow the reference:
the Alpaca template, tokenized one by one with truncation to 1919 tokens (2048 - 128 - 1) on the
right, as the reference tokenizer's defaults do. Tokenization happens once, outside the timed path.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from harness.errors import DataError

DATASET_FILE = "cnn_eval.json"
MODEL_DIR = "model"
MAX_INPUT_TOKENS = 1919
FIELDS = ("instruction", "input", "output")
PROMPT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)


def read_records(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / DATASET_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the CNN/DailyMail validation file there (see "
                        f"benchmarks/gptj/README.md) or run without --data to use the demo tier")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(records, list) or not records:
        raise DataError(f"{path} must be a non-empty JSON list of {{instruction, input, output}} objects")
    for n, record in enumerate(records):
        if not isinstance(record, dict) or not all(isinstance(record.get(f), str) for f in FIELDS):
            raise DataError(f"{path}: record {n} must have string fields {', '.join(FIELDS)}")
    return records


def load_tokenizer(data_dir: Path):
    from transformers import AutoTokenizer

    model_dir = data_dir / MODEL_DIR
    if not (model_dir / "tokenizer.json").is_file() and not (
            (model_dir / "vocab.json").is_file() and (model_dir / "merges.txt").is_file()):
        raise DataError(f"{model_dir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt): copy the "
                        f"GPT-J tokenizer files (EleutherAI/gpt-j-6B) into the checkpoint folder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, model_max_length=MAX_INPUT_TOKENS,
                                              padding_side="left", truncation_side="right")
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class Dataset:
    """QSL samples: one int64 array of prompt token ids per article. Tokenizes on first access, at the
    latest when LoadGen loads samples (untimed), so no query waits for the tokenizer."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.records = read_records(data_dir)

    def __len__(self) -> int:
        return len(self.records)

    @cached_property
    def input_ids(self) -> list[np.ndarray]:
        tokenizer = load_tokenizer(self.data_dir)
        prompts = [PROMPT.format_map(r) for r in self.records]
        encoded = tokenizer(prompts, truncation=True, max_length=MAX_INPUT_TOKENS)["input_ids"]
        return [np.asarray(ids, dtype=np.int64) for ids in encoded]

    def __getitem__(self, index: int) -> np.ndarray:
        return self.input_ids[index]

    def load_samples(self, indices: list[int]) -> None:
        self.input_ids  # noqa: B018 - tokenize now, outside the timed run

    def sample_length(self, index: int) -> int:
        return len(self.input_ids[index])


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
