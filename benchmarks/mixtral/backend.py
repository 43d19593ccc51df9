"""Mixtral-8x7B in PyTorch/transformers: greedy generation as the reference, with continuous batching.

Generation as the reference's: greedy, at most 1,024 new tokens, at least 2 (EOS is masked for
the first two), EOS 2. Before responding, trailing EOS and 0 tokens are stripped, and an MBXP
answer is cut after the first occurrence of its stop sequence (``dataset.MBXP_STOP``). ``load``
gives the continuous-batching engine (``harness.backends.generation``), which ends an MBXP
sequence at its stop sequence instead of generating on: the same tokens once cut. Outside Offline
the first token is streamed and stays in the final output. ``load_reference`` runs the reference's
way: ``generate`` on a left-padded batch (pad = EOS), every output generated to its end, then
stripped and cut.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.mixtral.dataset import CHECKPOINT, MODEL_DIR, Prompt
from harness.backends import hf
from harness.backends.generation import ContinuousBatcher, OnDone, OnToken

EOS = 2
GENERATION = {"max_new_tokens": 1024, "min_new_tokens": 2, "do_sample": False, "num_beams": 1}


def strip_trailing(tokens: Sequence[int] | np.ndarray) -> np.ndarray:
    """The output without its trailing EOS and 0 tokens, as the reference responds."""
    array = np.asarray(tokens, dtype=np.int64)
    keep = np.flatnonzero((array != EOS) & (array != 0))
    return array[: keep[-1] + 1] if keep.size else array[:0]


def cut_after(tokens: np.ndarray, stop: tuple[int, ...]) -> np.ndarray:
    """``tokens`` up to and including the first occurrence of ``stop`` (all of them if none)."""
    n = len(stop)
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i:i + n]) == stop:
            return tokens[: i + n]
    return tokens


def load_model(data_dir: Path, device: str, dtype: str):
    return hf.load_causal_lm(data_dir / MODEL_DIR, "mixtral", "MixtralForCausalLM", CHECKPOINT, device, dtype)


class Engine:
    """The SUT's ``Generator`` over the continuous batcher: MBXP prompts carry their stop sequence,
    and outputs leave stripped of trailing EOS/0 tokens."""

    def __init__(self, batcher: ContinuousBatcher) -> None:
        self.batcher = batcher

    def __len__(self) -> int:
        return len(self.batcher)

    def footprint(self, prompt_length: int | None = None) -> int:
        return self.batcher.footprint(prompt_length)

    def add(self, key: Hashable, prompt: Prompt) -> None:
        self.batcher.add(key, prompt.tokens, prompt.stop)

    def step(self, on_first: OnToken, on_done: OnDone) -> None:
        self.batcher.step(on_first, lambda key, tokens: on_done(key, strip_trailing(tokens).tolist()))

    def clear(self) -> list[Hashable]:
        return self.batcher.clear()


def load(data_dir: Path, device: str, dtype: str) -> Engine:
    return Engine(ContinuousBatcher(load_model(data_dir, device, dtype), EOS, GENERATION["max_new_tokens"],
                                    GENERATION["min_new_tokens"]))


class ReferenceBackend:
    """The reference SUT's generation: ``generate`` on a left-padded batch, then strip and cut."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, samples: list[Prompt]) -> list[np.ndarray]:
        rows = hf.generate_left_padded(self.model, [s.tokens for s in samples], EOS, eos_token_id=EOS, **GENERATION)
        outputs = [strip_trailing(row) for row in rows]
        return [cut_after(o, s.stop) if s.stop else o for o, s in zip(outputs, samples)]


def load_reference(data_dir: Path, device: str, dtype: str) -> ReferenceBackend:
    return ReferenceBackend(load_model(data_dir, device, dtype))
