"""The Mixtral set as the reference ships it: one pandas DataFrame pickle of three parts.

Data folder layout: ``09292024_mixtral_15k_mintoken2_v1.pkl``, 15,000 rows of three parts named in
its ``dataset`` column: ``OpenOrca`` (5,000; scored by ROUGE against ``gt_output``), ``GSM8K``
(5,000; ``gt_output`` is the number the answer must give) and ``MBXP`` (5,000; ``id`` is
``<language>_<entry point>`` and ``gt_output`` the test code the program must pass). ``tok_input``
holds each prompt's Mixtral token ids (with BOS) and ``input`` its text; ``model/`` is the
HuggingFace checkpoint. The pickle is read with ``harness.unpickle``. The SUT receives token ids,
as the reference's does, with the stop sequence of MBXP prompts (``Prompt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.backends import hf
from harness.errors import DataError
from harness.unpickle import load_dataframe

DATASET_FILE = "09292024_mixtral_15k_mintoken2_v1.pkl"
MODEL_DIR = "model"
COLUMNS = ("dataset", "id", "input", "tok_input", "gt_output")
PARTS = ("OpenOrca", "GSM8K", "MBXP")
CHECKPOINT = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MBXP_STOP = (13, 13940, 28832, 13)
"""Newline, code fence, newline in Mixtral's vocabulary: the reference cuts MBXP answers after it."""


@dataclass(frozen=True)
class Prompt:
    """One QSL sample: the prompt's token ids and the stop sequence its answer ends at (MBXP)."""

    tokens: np.ndarray
    stop: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.tokens)


def read_frame(data_dir: Path):
    path = data_dir / DATASET_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLCommons Mixtral pickle there (see benchmarks/mixtral/README.md) "
                        f"or run without --data to use the demo tier")
    frame = load_dataframe(path, COLUMNS)
    if not len(frame):
        raise DataError(f"{path} holds no samples")
    parts = set(frame["dataset"])
    if parts - set(PARTS) or set(PARTS) - parts:
        raise DataError(f"{path} has the parts {sorted(map(str, parts))} in its dataset column; the Mixtral set has "
                        f"exactly {', '.join(PARTS)} (a missing part cannot be scored): use the MLCommons pickle")
    return frame


class Dataset:
    """QSL samples: each row's prompt token ids, checked against the model's vocabulary."""

    def __init__(self, data_dir: Path) -> None:
        frame = read_frame(data_dir)
        self.parts: list[str] = list(frame["dataset"])
        ids = hf.prompt_ids(data_dir / DATASET_FILE, frame["tok_input"], data_dir / MODEL_DIR, CHECKPOINT)
        self.prompts = [Prompt(t, MBXP_STOP if part == "MBXP" else ()) for t, part in zip(ids, self.parts)]

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> Prompt:
        return self.prompts[index]

    def sample_length(self, index: int) -> int:
        return len(self.prompts[index].tokens)


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)


def load_tokenizer(data_dir: Path):
    return hf.load_tokenizer(data_dir / MODEL_DIR, CHECKPOINT)
