"""Llama-2 in PyTorch/transformers: greedy generation as the reference, with continuous batching.

Generation as the reference's: greedy, at most 1,024 new tokens, at least 1 (EOS is masked for
the first), EOS 2. ``load`` gives the continuous-batching engine (``harness.backends.generation``):
sequences join and leave between decoding steps, the first token is streamed outside Offline,
and each output is every generated token up to and including its EOS, as batch-1 ``generate``
returns it. ``load_reference`` runs the reference's way: ``generate`` on left-padded static batches
(one sample for the demo's ground truth), each output cut after its first EOS (the reference
leaves the pad tail in; that inflates n_tokens and fails TEST06, so it is not copied).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.llama2.dataset import CHECKPOINT, MODEL_DIR
from harness.backends import hf
from harness.backends.generation import ContinuousBatcher

EOS = 2
GENERATION = {"max_new_tokens": 1024, "min_new_tokens": 1, "do_sample": False, "num_beams": 1}


def load_model(data_dir: Path, device: str, dtype: str):
    return hf.load_causal_lm(data_dir / MODEL_DIR, "llama", "LlamaForCausalLM", CHECKPOINT, device, dtype)


def load(data_dir: Path, device: str, dtype: str) -> ContinuousBatcher:
    return ContinuousBatcher(load_model(data_dir, device, dtype), EOS, GENERATION["max_new_tokens"],
                             GENERATION["min_new_tokens"])


class ReferenceBackend:
    """The v4.1 reference SUT's generation: ``generate`` on a left-padded batch."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        rows = hf.generate_left_padded(self.model, samples, EOS, eos_token_id=EOS, **GENERATION)
        return [cut_after_eos(row) for row in rows]


def cut_after_eos(tokens: np.ndarray) -> np.ndarray:
    """Generated ids up to and including the first EOS (a padded batch's rows go on with EOS)."""
    ends = np.flatnonzero(tokens == EOS)
    return tokens[: ends[0] + 1] if ends.size else tokens


def load_reference(data_dir: Path, device: str, dtype: str) -> ReferenceBackend:
    return ReferenceBackend(load_model(data_dir, device, dtype))
