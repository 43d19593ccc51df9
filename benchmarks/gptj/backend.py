"""GPT-J in PyTorch/transformers with batched beam search, as the reference generates.

Generation: beam search with 4 beams, 128 new tokens at most, 30 at least, early stopping, EOS
as pad. Batches are left-padded; each output is the generated ids only (prompt stripped), cut
after its first EOS, so a batched result equals what batch size 1 gives (no pad tail, at most
one EOS).

transformers runs the search; two things here make it cheaper without changing what it computes
(tests compare the tokens with transformers' own cache and eager attention): the attention goes
through torch's fused kernel, and a beam cache keeps each prompt's keys and values once per
sample instead of once per beam (``_beam_cache``).
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, NamedTuple

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


def _additive(mask):
    """The attention mask as fp32 values added to the scores (a boolean mask's False -> -inf)."""
    import torch

    if mask is None:
        return None
    if mask.dtype != torch.bool:
        return mask.float()  # added to fp32 scores, as the eager code does
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill_(~mask, float("-inf"))


def _fused_attention(self, query, key, value, attention_mask=None):
    """GPT-J's eager attention, softmax(QK^T / sqrt(d) + mask) V in fp32, through torch's fused kernel.

    transformers' GPT-J only offers the eager path, which materialises the L x L weights: for a
    1919-token prompt, times 4 beams, that dominated the whole generation. The fused kernel
    computes the same function without them; batched outputs stay identical to batch size 1.
    Keys and values from ``_beam_cache`` come in two parts (the prompt's, shared by the beams,
    and the generated tokens'), and are attended to as one sequence.
    """
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    if isinstance(key, BeamKV):
        if key.generated is not None:
            return _two_part_attention(query, key, value, attention_mask, 1.0 / self.scale_attn), None
        # the prompt: its beams are copies, so attend for one of them and copy the result
        beams = key.beams
        out, _ = _fused_attention(self, query[::beams], key.prompt, value.prompt,
                                  None if attention_mask is None else attention_mask[::beams])
        return out.repeat_interleave(beams, dim=0), None
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        attention_mask = attention_mask.float()  # added to fp32 scores, as the eager code does
    causal = attention_mask is None and query.shape[-2] == key.shape[-2] > 1
    out = scaled_dot_product_attention(query.float(), key.float(), value.float(), attn_mask=attention_mask,
                                       is_causal=causal, scale=1.0 / self.scale_attn)
    return out.to(value.dtype), None


class BeamKV(NamedTuple):
    """Keys (or values) of one layer from the beam cache: the prompt's, one row per sample, and
    the generated tokens', one row per beam (None while the prompt itself is being read)."""

    prompt: Any
    generated: Any
    beams: int


def _two_part_attention(query, key, value, mask, scale):
    """One decoding step's attention over [prompt | generated] without joining them.

    query: [B*K, H, 1, D] (K beams per sample); key/value: the prompt's [B, H, P, D], shared by a
    sample's beams, and the generated tokens' [B*K, H, G, D]; mask: [B*K, 1, 1, P+G] (or None).
    The beams of a sample are the query rows of one product with its prompt keys, so the prompt
    is read once per sample, not copied per beam.
    """
    import torch

    (prompt_k, new_k, _), (prompt_v, new_v, _) = key, value
    rows, heads, _, dim = query.shape
    batch, length = prompt_k.shape[0], prompt_k.shape[2]
    beams = rows // batch
    q = query.float().view(batch, beams, heads, dim).transpose(1, 2)  # [B, H, K, D]
    scores_prompt = torch.matmul(q, prompt_k.float().transpose(-1, -2)) * scale  # [B, H, K, P]
    scores_new = torch.matmul(query.float(), new_k.float().transpose(-1, -2)) * scale  # [B*K, H, 1, G]
    scores_new = scores_new.view(batch, beams, heads, -1).transpose(1, 2)  # [B, H, K, G]
    mask = _additive(mask)
    if mask is not None:
        mask = mask.view(batch, beams, 1, -1).transpose(1, 2)  # [B, 1, K, P+G]
        scores_prompt = scores_prompt + mask[..., :length]
        scores_new = scores_new + mask[..., length:]
    weights = torch.softmax(torch.cat([scores_prompt, scores_new], dim=-1), dim=-1)
    out = torch.matmul(weights[..., :length], prompt_v.float())  # [B, H, K, D]
    new = weights[..., length:].transpose(1, 2).reshape(rows, heads, 1, -1)  # [B*K, H, 1, G]
    out = out.transpose(1, 2).reshape(rows, heads, 1, dim) + torch.matmul(new, new_v.float())
    return out.to(new_v.dtype)


def _beam_cache(n_layers: int, beams: int):
    """A transformers cache for beam search that keeps each prompt's keys and values once per
    sample and only the generated tokens' per beam (preallocated, so a step writes in place).

    transformers' default cache holds the whole sequence per beam, grows it with a copy at every
    step and copies it again to reorder the beams: per sequence, that is the prompt copied twice
    a step, which batching cannot share. Here a reorder moves the generated part only.
    """
    import torch
    from transformers.cache_utils import Cache, DynamicLayer

    class BeamLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.prompt = (key_states[::beams].contiguous(), value_states[::beams].contiguous())
            rows, heads, _, dim = key_states.shape
            self.keys = key_states.new_empty(rows, heads, 32, dim)
            self.values = value_states.new_empty(rows, heads, 32, dim)
            self.generated = 0
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:  # the prompt, the same in every beam
                self.lazy_initialization(key_states, value_states)
                return BeamKV(self.prompt[0], None, beams), BeamKV(self.prompt[1], None, beams)
            end = self.generated + key_states.shape[-2]
            if end > self.keys.shape[-2]:
                grow = lambda t: torch.cat([t, torch.empty_like(t)], dim=-2)  # noqa: E731
                self.keys, self.values = grow(self.keys), grow(self.values)
            self.keys[:, :, self.generated:end] = key_states
            self.values[:, :, self.generated:end] = value_states
            self.generated = end
            return (BeamKV(self.prompt[0], self.keys[:, :, :end], beams),
                    BeamKV(self.prompt[1], self.values[:, :, :end], beams))

        def get_seq_length(self) -> int:
            return self.prompt[0].shape[-2] + self.generated if self.is_initialized else 0

        def reorder_cache(self, beam_idx) -> None:
            if self.is_initialized and self.generated:
                part = slice(0, self.generated)
                self.keys[:, :, part] = self.keys[:, :, part].index_select(0, beam_idx)
                self.values[:, :, part] = self.values[:, :, part].index_select(0, beam_idx)

    return Cache(layers=[BeamLayer() for _ in range(n_layers)])


class GptjBackend:
    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch
        from transformers import GPTJForCausalLM

        model_dir = data_dir / MODEL_DIR
        check_checkpoint(model_dir)
        self.tokenizer = load_tokenizer(data_dir)
        self.eos = self.tokenizer.eos_token_id
        self.device = torch.device(device)
        self.model = GPTJForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, TORCH_DTYPES[dtype]))
        self.model.to(self.device).eval()
        if not as_reference:
            for layer in self.model.transformer.h:
                layer.attn._attn = types.MethodType(_fused_attention, layer.attn)
        self.beam_cache = not as_reference  # False: transformers' default cache (which the eager attention needs)

    def predict(self, samples: list[np.ndarray], **overrides) -> list[np.ndarray]:
        import torch

        width = max(len(s) for s in samples)
        ids = np.full((len(samples), width), self.eos, dtype=np.int64)
        mask = np.zeros((len(samples), width), dtype=np.int64)
        for row, sample in enumerate(samples):
            ids[row, width - len(sample):] = sample
            mask[row, width - len(sample):] = 1
        settings = {**GENERATION, **overrides}
        cache = _beam_cache(self.model.config.n_layer, settings["num_beams"]) if self.beam_cache else None
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.from_numpy(ids).to(self.device),
                                      attention_mask=torch.from_numpy(mask).to(self.device),
                                      past_key_values=cache, pad_token_id=self.eos, **settings)
        generated = out[:, width:].cpu().numpy()
        return [self._cut_after_eos(row) for row in generated]

    def _cut_after_eos(self, tokens: np.ndarray) -> np.ndarray:
        hits = np.flatnonzero(tokens == self.eos)
        return tokens[: hits[0] + 1] if hits.size else tokens

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample], max_new_tokens=2, min_new_tokens=1)


def load(data_dir: Path, device: str, dtype: str) -> GptjBackend:
    return GptjBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> GptjBackend:
    """The same model run as the reference runs it: transformers' eager attention and its default
    cache (the reference's batch is one sample)."""
    return GptjBackend(data_dir, device, dtype, as_reference=True)
