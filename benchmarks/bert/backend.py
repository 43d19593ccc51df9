"""BERT-Large for question answering in PyTorch/transformers, loaded as the reference loads it.

The checkpoint folder (``model/``) holds ``bert_config.json`` (the architecture), ``vocab.txt``
and ``model.pytorch`` (a state dict with transformers' ``BertForQuestionAnswering`` names).
The reference runs every feature at the full 384 positions. Here a feature runs at its own
length rounded up to a multiple of 64 (padding positions are masked out of attention, so the
logits of its tokens are those of the 384-wide run up to float rounding): a short question costs
a fraction of a long one. The width depends only on the feature, never on what it is batched
with, so accuracy- and performance-mode bytes stay equal (TEST01 compares them). The response is
float32 [384, 2], start and end logits stacked on the last axis; positions past the width hold
-10000, the value the reference's accuracy script pads short outputs with. ``load_reference``
runs every feature at 384 positions, as the reference does: the performance scripts' baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.bert.dataset import MAX_SEQ_LENGTH, MODEL_DIR
from harness.errors import DataError

CONFIG = "bert_config.json"
CHECKPOINT = "model.pytorch"
CONFIG_KEYS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
               "initializer_range", "intermediate_size", "max_position_embeddings", "num_attention_heads",
               "num_hidden_layers", "type_vocab_size", "vocab_size")
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
WIDTH_STEP = 64
PAD_LOGIT = -10000.0


def width(sample: np.ndarray) -> int:
    """Positions a feature runs at: its tokens (input mask) rounded up to a multiple of 64."""
    tokens = int(sample[1].sum())
    return min(MAX_SEQ_LENGTH, -(-tokens // WIDTH_STEP) * WIDTH_STEP)


def read_config(model_dir: Path) -> dict:
    path = model_dir / CONFIG
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing: put the BERT-Large bert_config.json next to {CHECKPOINT}, or run "
                        f"without --data to use the demo tier") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc})") from exc
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise DataError(f"{path} is not a BERT config: it lacks {', '.join(missing)}")
    return {key: config[key] for key in CONFIG_KEYS}


class BertBackend:
    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch
        from transformers import BertConfig, BertForQuestionAnswering

        model_dir = data_dir / MODEL_DIR
        # sdpa: torch's fused attention, which takes the broadcast key mask ``predict`` builds
        model = BertForQuestionAnswering(BertConfig(**read_config(model_dir), attn_implementation="sdpa"))
        path = model_dir / CHECKPOINT
        if not path.is_file():
            raise DataError(f"{path} is missing: put the reference's PyTorch BERT-Large checkpoint (zenodo "
                            f"3733896) there")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            result = model.load_state_dict(state, strict=False)
        except Exception as exc:  # noqa: BLE001 - unreadable or mis-shaped: the same advice
            raise DataError(f"{path} is not a BERT question-answering state dict matching {CONFIG} "
                            f"({str(exc).splitlines()[0][:200]})") from exc
        # the reference loads with strict=False; refuse what that would silently leave random
        missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
        if missing:
            raise DataError(f"{path} lacks {len(missing)} tensor(s) of BertForQuestionAnswering, e.g. "
                            f"{', '.join(missing[:3])}: is it the question-answering checkpoint?")
        self.as_reference = as_reference
        self.device = torch.device(device)
        self.model = model.to(self.device, getattr(torch, TORCH_DTYPES[dtype])).eval()

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        widths = [MAX_SEQ_LENGTH if self.as_reference else width(s) for s in samples]
        logits = np.full((len(samples), MAX_SEQ_LENGTH, 2), PAD_LOGIT, dtype=np.float32)
        for w in sorted(set(widths)):  # one model call per width present in the batch
            rows = [i for i, x in enumerate(widths) if x == w]
            batch = torch.from_numpy(np.stack([samples[i][:, :w] for i in rows])).to(self.device)
            mask = batch[:, 1]
            if not self.as_reference:
                # A [B, 1, 1, W] key mask that attention broadcasts, passed through as a prepared
                # mask: from the 2-D one, transformers builds [B, 1, W, W] on every call. The same
                # logits bit for bit; a 384-wide batch of 8 runs about 1.6x faster on CPU.
                mask = (mask != 0)[:, None, None, :]
            with torch.inference_mode():
                out = self.model(input_ids=batch[:, 0], attention_mask=mask, token_type_ids=batch[:, 2])
                logits[rows, :w] = torch.stack([out.start_logits, out.end_logits], dim=-1).float().cpu().numpy()
        return list(logits)

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> BertBackend:
    return BertBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> BertBackend:
    """The same model run as the reference runs it: every feature at 384 positions."""
    return BertBackend(data_dir, device, dtype, as_reference=True)
