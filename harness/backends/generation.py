"""Greedy generation with continuous (iteration-level) batching over a transformers causal LM.

``ContinuousBatcher`` keeps a set of running sequences and advances all of them one token per
``step``: sequences added since the last step are read first (their prompt pass, which yields
their first token), then one decoding pass runs for every running sequence together, and a
sequence that ends (EOS, its new-token limit, the model's context, or a stop sequence given with
it) leaves at once, so its
slot is free for the next request between two decoding passes. Nothing waits for a batch to
fill or for its longest member to finish.

What it computes is greedy decoding as transformers' ``generate(do_sample=False)`` on one
sequence at a time: the EOS logit is masked while fewer than ``min_new_tokens`` tokens exist
(transformers' ``MinNewTokensLengthLogitsProcessor``), the next token is the arg-max, and the
output is every generated token, the EOS that ended it included. Tests compare the tokens with
batch-1 ``generate`` on the same model. A stop sequence ends a sequence as soon as its generated
tokens end with it: the same tokens as generating on and cutting after its first occurrence.

The keys and values of the running sequences live in one preallocated tensor per layer,
``[rows, kv_heads, length, head_dim]``, row ``r`` holding sequence ``r`` from position 0. A
decoding pass writes each sequence's new entry at its own position and attends over the longest
sequence's length with a mask that hides the positions past each one's own. The rows stay packed:
when a sequence leaves, the last row moves into its place. A prompt is read alone (as batch-1
``generate`` reads it) and its entries are copied into a new row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OnToken = Callable[[Hashable, int], None]
"""Called with (key, first generated token) right after a sequence's prompt pass."""
OnDone = Callable[[Hashable, list[int]], None]
"""Called with (key, every generated token) when a sequence ends."""


@dataclass
class _Sequence:
    key: Hashable
    prompt: np.ndarray
    stop: tuple[int, ...] = ()
    tokens: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Entries of this sequence in the cache: its prompt and the generated tokens fed back so far
        (all but the newest)."""
        return self.prompt.size + len(self.tokens) - 1


class _RowCache:
    """transformers' cache protocol (``update``) over the packed rows, for one decoding pass."""

    def __init__(self, batcher: ContinuousBatcher, rows: int, attend: int) -> None:
        self._b, self._rows, self._attend = batcher, rows, attend

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        import torch

        b = self._b
        index = torch.arange(self._rows, device=key_states.device)
        at = b._lengths[: self._rows]
        b._keys[layer_idx][index, :, at] = key_states[:, :, 0]
        b._values[layer_idx][index, :, at] = value_states[:, :, 0]
        return b._keys[layer_idx][: self._rows, :, : self._attend], b._values[layer_idx][: self._rows, :, : self._attend]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._attend - 1


class ContinuousBatcher:
    """Continuous-batching greedy decoder over a transformers ``*ForCausalLM`` model in eval mode."""

    def __init__(self, model: Any, eos_token_id: int, max_new_tokens: int, min_new_tokens: int = 0,
                 max_context: int | None = None) -> None:
        config = model.config
        self.model = model
        self.eos = eos_token_id
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens
        self.max_context = max_context or config.max_position_embeddings
        self._layers = config.num_hidden_layers
        heads = config.num_attention_heads
        self._kv_heads = getattr(config, "num_key_value_heads", None) or heads
        self._head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        self._device = next(model.parameters()).device
        self._dtype = next(model.parameters()).dtype
        self._waiting: list[_Sequence] = []
        self._running: list[_Sequence] = []
        self._keys: list[Any] = []
        self._values: list[Any] = []
        self._lengths: Any = None
        self._reserve(rows=1, length=64)

    # -- admission -----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Sequences added and not yet ended."""
        return len(self._waiting) + len(self._running)

    def final_length(self, prompt_length: int) -> int:
        """The most cache entries a sequence with this prompt can reach."""
        return min(prompt_length + self.max_new_tokens, self.max_context)

    def footprint(self, prompt_length: int | None = None) -> int:
        """Cache entries (rows x longest possible length) the running sequences can reach, with one
        more of ``prompt_length`` tokens if given: what a token budget bounds."""
        lengths = [self.final_length(len(s.prompt)) for s in self._waiting + self._running]
        if prompt_length is not None:
            lengths.append(self.final_length(prompt_length))
        return len(lengths) * max(lengths, default=0)

    def add(self, key: Hashable, prompt: np.ndarray, stop: tuple[int, ...] = ()) -> None:
        """Queue a sequence; its prompt is read at the next ``step``; it ends early once its generated
        tokens end with ``stop`` (if given). Raises ``ValueError`` for a prompt that is empty or leaves
        no room in the model's context for a new token."""
        prompt = np.asarray(prompt, dtype=np.int64).reshape(-1)
        if not prompt.size:
            raise ValueError("the prompt is empty")
        if prompt.size >= self.max_context:
            raise ValueError(f"the prompt has {prompt.size} tokens; the model's context is {self.max_context}, "
                             f"so no token can be generated")
        self._waiting.append(_Sequence(key, prompt, tuple(stop)))

    def clear(self) -> list[Hashable]:
        """Drop every sequence (after a failed step); returns their keys."""
        keys = [s.key for s in self._waiting + self._running]
        self._waiting, self._running = [], []
        return keys

    # -- generation ----------------------------------------------------------------------------
    def step(self, on_first: OnToken, on_done: OnDone) -> None:
        """Read the prompts added since the last step, then advance every running sequence by one token."""
        import torch

        with torch.inference_mode():
            waiting, self._waiting = self._waiting, []
            for sequence in waiting:
                self._prefill(sequence, on_first, on_done)
            if self._running:
                self._decode(on_done)

    def _next_token(self, logits, sequences: list[_Sequence]) -> list[int]:
        """Greedy choice per row of ``logits`` [rows, vocab], EOS masked below ``min_new_tokens``."""
        import torch

        early = [i for i, s in enumerate(sequences) if len(s.tokens) < self.min_new_tokens]
        if early:
            logits = logits.clone()
            logits[early, self.eos] = -torch.inf
        return torch.argmax(logits, dim=-1).tolist()

    def _prefill(self, sequence: _Sequence, on_first: OnToken, on_done: OnDone) -> None:
        import torch
        from transformers import DynamicCache

        ids = torch.from_numpy(sequence.prompt).to(self._device).unsqueeze(0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=ids, past_key_values=cache, use_cache=True)
        token = self._next_token(out.logits[:, -1].float(), [sequence])[0]
        sequence.tokens.append(token)
        on_first(sequence.key, token)
        if self._finished(sequence):
            on_done(sequence.key, sequence.tokens)
            return
        row, length = len(self._running), sequence.prompt.size
        self._reserve(row + 1, length + 1)
        for layer in range(self._layers):
            self._keys[layer][row, :, :length] = cache.layers[layer].keys[0]
            self._values[layer][row, :, :length] = cache.layers[layer].values[0]
        self._lengths[row] = length
        self._running.append(sequence)

    def _decode(self, on_done: OnDone) -> None:
        import torch

        rows = len(self._running)
        longest = max(s.length for s in self._running)
        self._reserve(rows, longest + 1)
        lengths = self._lengths[:rows]
        ids = torch.tensor([[s.tokens[-1]] for s in self._running], device=self._device)
        # each row sees its own entries and the one written now, nothing past them
        seen = torch.arange(longest + 1, device=self._device)[None, :] <= lengths[:, None]
        # additive, as transformers' own masks are (the eager attention adds it; SDPA takes it as is)
        mask = torch.zeros(seen.shape, dtype=self._dtype, device=self._device).masked_fill_(
            ~seen, torch.finfo(self._dtype).min)
        out = self.model(input_ids=ids, position_ids=lengths[:, None].clone(), attention_mask=mask[:, None, None, :],
                         past_key_values=_RowCache(self, rows, longest + 1), use_cache=True)
        tokens = self._next_token(out.logits[:, -1].float(), self._running)
        lengths += 1
        ended = []
        for row, (sequence, token) in enumerate(zip(self._running, tokens)):
            sequence.tokens.append(token)
            if self._finished(sequence):
                ended.append(row)
        for row in reversed(ended):  # highest first, so moving the last row never moves an ended one
            sequence = self._running[row]
            self._remove(row)
            on_done(sequence.key, sequence.tokens)

    def _finished(self, sequence: _Sequence) -> bool:
        tokens, stop = sequence.tokens, sequence.stop
        return (tokens[-1] == self.eos or len(tokens) >= self.max_new_tokens
                or sequence.prompt.size + len(tokens) >= self.max_context
                or bool(stop) and tuple(tokens[-len(stop):]) == stop)

    # -- rows ----------------------------------------------------------------------------------
    def _remove(self, row: int) -> None:
        last = len(self._running) - 1
        if row != last:
            n = int(self._lengths[last])
            for cache in (self._keys, self._values):
                for layer in cache:
                    layer[row, :, :n] = layer[last, :, :n]
            self._lengths[row] = self._lengths[last]
            self._running[row] = self._running[last]
        self._running.pop()

    def _reserve(self, rows: int, length: int) -> None:
        """Grow the cache tensors (doubling) to hold ``rows`` rows of ``length`` entries."""
        import torch

        have_rows, have_length = (self._keys[0].shape[0], self._keys[0].shape[2]) if self._keys else (0, 0)
        if rows <= have_rows and length <= have_length:
            return
        new_rows = max(rows, 2 * have_rows) if rows > have_rows else have_rows
        new_length = max(length, 2 * have_length) if length > have_length else have_length
        shape = (new_rows, self._kv_heads, new_length, self._head_dim)
        for cache in (self._keys, self._values):
            for layer in range(self._layers):
                grown = torch.zeros(shape, dtype=self._dtype, device=self._device)
                if layer < len(cache):
                    grown[:have_rows, :, :have_length] = cache[layer]
                    cache[layer] = grown
                else:
                    cache.append(grown)
        lengths = torch.zeros(new_rows, dtype=torch.long, device=self._device)
        if self._lengths is not None:
            lengths[:have_rows] = self._lengths
        self._lengths = lengths
