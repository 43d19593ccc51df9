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

import json
from pathlib import Path

import numpy as np

from benchmarks.llama2.dataset import MODEL_DIR, load_tokenizer
from harness.backends.generation import ContinuousBatcher
from harness.errors import DataError

EOS = 2
GENERATION = {"max_new_tokens": 1024, "min_new_tokens": 1, "do_sample": False, "num_beams": 1}
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def load_model(data_dir: Path, device: str, dtype: str):
    import torch
    from transformers import LlamaForCausalLM

    model_dir = data_dir / MODEL_DIR
    config = model_dir / "config.json"
    if not config.is_file():
        raise DataError(f"{model_dir} holds no Llama-2 checkpoint (no config.json): put the Llama-2-70b-chat-hf "
                        f"checkpoint there in HuggingFace format, or run without --data to use the demo tier")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except ValueError as exc:
        raise DataError(f"{config} is not valid JSON: {exc}") from exc
    if model_type != "llama":
        raise DataError(f"{config} describes a {model_type!r} model, not Llama ('llama'): point --data at a folder "
                        f"whose model/ is the Llama-2-70b-chat-hf checkpoint")
    load_tokenizer(data_dir)  # a checkpoint without its tokenizer is refused here, not when scoring
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, TORCH_DTYPES[dtype]))
    return model.to(torch.device(device)).eval()


def load(data_dir: Path, device: str, dtype: str) -> ContinuousBatcher:
    return ContinuousBatcher(load_model(data_dir, device, dtype), EOS, GENERATION["max_new_tokens"],
                             GENERATION["min_new_tokens"])


class ReferenceBackend:
    """The v4.1 reference SUT's generation: ``generate`` on a left-padded batch."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        width = max(len(s) for s in samples)
        ids = np.full((len(samples), width), EOS, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, sample in enumerate(samples):
            ids[row, width - len(sample):], mask[row, width - len(sample):] = sample, 1
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.from_numpy(ids).to(device),
                                      attention_mask=torch.from_numpy(mask).to(device), eos_token_id=EOS,
                                      pad_token_id=EOS, **GENERATION)
        return [cut_after_eos(row) for row in out[:, width:].cpu().numpy()]


def cut_after_eos(tokens: np.ndarray) -> np.ndarray:
    """Generated ids up to and including the first EOS (a padded batch's rows go on with EOS)."""
    ends = np.flatnonzero(tokens == EOS)
    return tokens[: ends[0] + 1] if ends.size else tokens


def load_reference(data_dir: Path, device: str, dtype: str) -> ReferenceBackend:
    return ReferenceBackend(load_model(data_dir, device, dtype))
