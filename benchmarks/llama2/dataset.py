"""The OpenOrca set as the reference ships it: a pandas DataFrame pickle, prompts pre-tokenized.

Data folder layout: ``open_orca_gpt4_tokenized_llama.sampled_24576.pkl`` (columns ``input``, the
chat-formatted prompt, ``tok_input``, its Llama token ids with BOS, and ``output``, the reference
answer; others are ignored) and ``model/``, the HuggingFace checkpoint. The pickle is read with
``harness.unpickle`` (nothing it names outside a DataFrame's own classes is imported). Samples are
the ``tok_input`` ids as given: the SUT receives token ids, as the reference's does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.backends import hf
from harness.errors import DataError
from harness.unpickle import load_dataframe

DATASET_FILE = "open_orca_gpt4_tokenized_llama.sampled_24576.pkl"
MODEL_DIR = "model"
COLUMNS = ("input", "tok_input", "output")
CHECKPOINT = "meta-llama/Llama-2-70b-chat-hf"


def read_frame(data_dir: Path):
    path = data_dir / DATASET_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLCommons OpenOrca pickle there (see benchmarks/llama2/README.md) "
                        f"or run without --data to use the demo tier")
    frame = load_dataframe(path, COLUMNS)
    if not len(frame):
        raise DataError(f"{path} holds no samples")
    return frame


class Dataset:
    """QSL samples: the prompt token ids (int64) of each row, checked against the model's vocabulary."""

    def __init__(self, data_dir: Path) -> None:
        path = data_dir / DATASET_FILE
        frame = read_frame(data_dir)
        self.tokens = hf.prompt_ids(path, frame["tok_input"], data_dir / MODEL_DIR, CHECKPOINT)
        self.outputs: list[str] = []
        for row, output in enumerate(frame["output"]):
            if not isinstance(output, str):
                raise DataError(f"{path}: row {row} has an output that is not text ({type(output).__name__})")
            self.outputs.append(output)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[index]

    def sample_length(self, index: int) -> int:
        return len(self.tokens[index])


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)


def load_tokenizer(data_dir: Path):
    return hf.load_tokenizer(data_dir / MODEL_DIR, CHECKPOINT)
