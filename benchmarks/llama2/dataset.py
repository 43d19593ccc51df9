"""The OpenOrca set as the reference ships it: a pandas DataFrame pickle, prompts pre-tokenized.

Data folder layout: ``open_orca_gpt4_tokenized_llama.sampled_24576.pkl`` (columns ``input``, the
chat-formatted prompt, ``tok_input``, its Llama token ids with BOS, and ``output``, the reference
answer; others are ignored) and ``model/``, the HuggingFace checkpoint. The pickle is read with
``harness.unpickle`` (nothing it names outside a DataFrame's own classes is imported). Samples are
the ``tok_input`` ids as given: the SUT receives token ids, as the reference's does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.unpickle import load_dataframe

DATASET_FILE = "open_orca_gpt4_tokenized_llama.sampled_24576.pkl"
MODEL_DIR = "model"
COLUMNS = ("input", "tok_input", "output")


def read_frame(data_dir: Path):
    path = data_dir / DATASET_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLCommons OpenOrca pickle there (see benchmarks/llama2/README.md) "
                        f"or run without --data to use the demo tier")
    frame = load_dataframe(path, COLUMNS)
    if not len(frame):
        raise DataError(f"{path} holds no samples")
    return frame


def vocab_size(data_dir: Path) -> int | None:
    config = data_dir / MODEL_DIR / "config.json"
    try:
        size = json.loads(config.read_text()).get("vocab_size")
    except (OSError, ValueError):
        return None  # the backend names a missing or broken checkpoint
    return size if isinstance(size, int) and size > 0 else None


class Dataset:
    """QSL samples: the prompt token ids (int64) of each row, checked against the model's vocabulary."""

    def __init__(self, data_dir: Path) -> None:
        path = data_dir / DATASET_FILE
        frame = read_frame(data_dir)
        self.outputs: list[str] = []
        self.tokens: list[np.ndarray] = []
        for row, (ids, output) in enumerate(zip(frame["tok_input"], frame["output"])):
            try:
                array = np.asarray(ids, dtype=np.int64).reshape(-1)
            except (TypeError, ValueError, OverflowError):
                array = None
            if array is None or not array.size or (array < 0).any():
                raise DataError(f"{path}: row {row} has tok_input {str(ids)[:60]!r}, not a non-empty list of token ids")
            if not isinstance(output, str):
                raise DataError(f"{path}: row {row} has an output that is not text ({type(output).__name__})")
            self.tokens.append(array)
            self.outputs.append(output)
        vocab = vocab_size(data_dir)
        highest = max(int(t.max()) for t in self.tokens)
        if vocab is not None and highest >= vocab:
            raise DataError(f"{path} has token id {highest}, but the checkpoint in {data_dir / MODEL_DIR} has a "
                            f"vocabulary of {vocab}: the prompts were tokenized for another model; use the "
                            f"Llama-2 checkpoint and its tokenizer")

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[index]

    def sample_length(self, index: int) -> int:
        return len(self.tokens[index])


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)


def load_tokenizer(data_dir: Path):
    from transformers import AutoTokenizer

    model_dir = data_dir / MODEL_DIR
    if not any((model_dir / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise DataError(f"{model_dir} has no tokenizer (tokenizer.json or tokenizer.model): copy the Llama-2 "
                        f"tokenizer files (meta-llama/Llama-2-70b-chat-hf) into the checkpoint folder")
    return AutoTokenizer.from_pretrained(model_dir)
