"""GPT-J in PyTorch/transformers with batched beam search, as the reference generates.

Generation: beam search with 4 beams, 128 new tokens at most, 30 at least, early stopping, EOS
as pad. Batches are left-padded; each output is the generated ids only (prompt stripped), cut
after its first EOS, so a batched result equals what batch size 1 gives (no pad tail, at most
one EOS).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np

from benchmarks.gptj.dataset import MODEL_DIR, load_tokenizer
from harness.errors import DataError

GENERATION = {"num_beams": 4, "max_new_tokens": 128, "min_new_tokens": 30, "early_stopping": True,
              "do_sample": False}
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def check_checkpoint(model_dir: Path) -> None:
    config = model_dir / "config.json"
    if not config.is_file():
        raise DataError(f"{model_dir} holds no GPT-J checkpoint (no config.json): put the MLCommons GPT-J "
                        f"checkpoint there in HuggingFace format, or run without --data to use the demo tier")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type != "gptj":
        raise DataError(f"{config} describes a {model_type!r} model, not GPT-J ('gptj'): point --data at a "
                        f"folder whose model/ is the GPT-J checkpoint")


def _fused_attention(self, query, key, value, attention_mask=None):
    """GPT-J's eager attention, softmax(QK^T / sqrt(d) + mask) V in fp32, through torch's fused kernel.

    transformers' GPT-J only offers the eager path, which materialises the L x L weights: for a
    1919-token prompt, times 4 beams, that dominated the whole generation. The fused kernel
    computes the same function without them; batched outputs stay identical to batch size 1.
    """
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    if attention_mask is not None and attention_mask.dtype != torch.bool:
        attention_mask = attention_mask.float()  # added to fp32 scores, as the eager code does
    causal = attention_mask is None and query.shape[-2] == key.shape[-2] > 1
    out = scaled_dot_product_attention(query.float(), key.float(), value.float(), attn_mask=attention_mask,
                                       is_causal=causal, scale=1.0 / self.scale_attn)
    return out.to(value.dtype), None


class GptjBackend:
    def __init__(self, data_dir: Path, device: str, dtype: str) -> None:
        import torch
        from transformers import GPTJForCausalLM

        model_dir = data_dir / MODEL_DIR
        check_checkpoint(model_dir)
        self.tokenizer = load_tokenizer(data_dir)
        self.eos = self.tokenizer.eos_token_id
        self.device = torch.device(device)
        self.model = GPTJForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, TORCH_DTYPES[dtype]))
        self.model.to(self.device).eval()
        for layer in self.model.transformer.h:
            layer.attn._attn = types.MethodType(_fused_attention, layer.attn)

    def predict(self, samples: list[np.ndarray], **overrides) -> list[np.ndarray]:
        import torch

        width = max(len(s) for s in samples)
        ids = np.full((len(samples), width), self.eos, dtype=np.int64)
        mask = np.zeros((len(samples), width), dtype=np.int64)
        for row, sample in enumerate(samples):
            ids[row, width - len(sample):] = sample
            mask[row, width - len(sample):] = 1
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.from_numpy(ids).to(self.device),
                                      attention_mask=torch.from_numpy(mask).to(self.device),
                                      pad_token_id=self.eos, **{**GENERATION, **overrides})
        generated = out[:, width:].cpu().numpy()
        return [self._cut_after_eos(row) for row in generated]

    def _cut_after_eos(self, tokens: np.ndarray) -> np.ndarray:
        hits = np.flatnonzero(tokens == self.eos)
        return tokens[: hits[0] + 1] if hits.size else tokens

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample], max_new_tokens=2, min_new_tokens=1)


def load(data_dir: Path, device: str, dtype: str) -> GptjBackend:
    return GptjBackend(data_dir, device, dtype)
