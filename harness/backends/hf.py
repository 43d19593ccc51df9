"""HuggingFace checkpoint folders of causal LMs: the checks every LLM benchmark makes, and loading.

``generate_left_padded`` is how the reference SUTs generate: one ``generate`` call on a batch.

A data folder's ``model/`` must hold a ``config.json`` of the expected ``model_type`` and the
tokenizer (``tokenizer.json`` or ``tokenizer.model``); pre-tokenized prompts must be lists of
non-negative ids inside the checkpoint's vocabulary. Each failure is a ``DataError`` that names
the path and the checkpoint to use instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from harness.errors import DataError

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def vocab_size(model_dir: Path) -> int | None:
    """The checkpoint's vocabulary size, or None where config.json cannot tell (the model's load
    names a missing or broken checkpoint)."""
    try:
        size = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError):
        return None
    return size if isinstance(size, int) and size > 0 else None


def prompt_ids(path: Path, column: Iterable, model_dir: Path, checkpoint: str) -> list[np.ndarray]:
    """Each row's prompt token ids (int64), checked: non-empty, non-negative, in the vocabulary."""
    prompts = []
    for row, ids in enumerate(column):
        try:
            array = np.asarray(ids, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            array = None
        if array is None or not array.size or (array < 0).any():
            raise DataError(f"{path}: row {row} has tok_input {str(ids)[:60]!r}, not a non-empty list of token ids")
        prompts.append(array)
    vocab = vocab_size(model_dir)
    highest = max((int(p.max()) for p in prompts), default=0)
    if vocab is not None and highest >= vocab:
        raise DataError(f"{path} has token id {highest}, but the checkpoint in {model_dir} has a vocabulary of "
                        f"{vocab}: the prompts were tokenized for another model; use the {checkpoint} checkpoint "
                        f"and its tokenizer")
    return prompts


def load_tokenizer(model_dir: Path, checkpoint: str):
    from transformers import AutoTokenizer

    if not any((model_dir / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise DataError(f"{model_dir} has no tokenizer (tokenizer.json or tokenizer.model): copy the tokenizer "
                        f"files of {checkpoint} into the checkpoint folder")
    return AutoTokenizer.from_pretrained(model_dir)


def load_causal_lm(model_dir: Path, model_type: str, model_class: str, checkpoint: str, device: str, dtype: str):
    """``transformers.<model_class>`` from ``model_dir`` in eval mode on ``device``, cast to ``dtype``
    (fp32, fp16, bf16), after checking its config names ``model_type`` and its tokenizer is there."""
    import torch
    import transformers

    config = model_dir / "config.json"
    if not config.is_file():
        raise DataError(f"{model_dir} holds no {checkpoint} checkpoint (no config.json): put it there in "
                        f"HuggingFace format, or run without --data to use the demo tier")
    try:
        found = json.loads(config.read_text()).get("model_type")
    except ValueError as exc:
        raise DataError(f"{config} is not valid JSON: {exc}") from exc
    if found != model_type:
        raise DataError(f"{config} describes a {found!r} model, not {model_type!r}: point --data at a folder whose "
                        f"model/ is the {checkpoint} checkpoint")
    load_tokenizer(model_dir, checkpoint)  # a checkpoint without its tokenizer is refused here, not when scoring
    model = getattr(transformers, model_class).from_pretrained(model_dir, dtype=getattr(torch, TORCH_DTYPES[dtype]))
    return model.to(torch.device(device)).eval()


def generate_left_padded(model, prompts: list[np.ndarray], pad_token_id: int, **generation) -> np.ndarray:
    """``model.generate`` on the prompts left-padded with ``pad_token_id`` to the longest (the
    reference SUTs' static batch); returns the generated columns, rows that ended early padded on."""
    import torch

    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad_token_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):], mask[row, width - len(prompt):] = prompt, 1
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model.generate(input_ids=torch.from_numpy(ids).to(device),
                             attention_mask=torch.from_numpy(mask).to(device), pad_token_id=pad_token_id, **generation)
    return out[:, width:].cpu().numpy()
