"""The MLPerf RNN-T (LibriSpeech, characters) with its features and greedy decoding in the SUT.

Features of one utterance, as the reference's ``FilterbankFeatures`` with its ``input_eval``
settings: pre-emphasis 0.97; STFT (n_fft 512, 20 ms Hann window (symmetric), 10 ms hop, centred,
reflect padding); power spectrum plus dither^2 (its deterministic dithering); librosa's 80-band
mel filterbank (recomputed, as the reference recomputes it instead of using the checkpoint's);
log(x + 1e-20); frames spliced by 3 (each frame with the next two, zero past the end, every third
kept); each feature normalised over the utterance's frames (mean, unbiased std + 1e-5);
ceil(ceil(n / 160) / 3) frames kept.

The network is the reference's ``RNNT``: the encoder (a 2-layer LSTM, frames stacked by 2, a
3-layer LSTM), the prediction network (an embedding of the 28 labels, a 2-layer LSTM; a zero
vector and a zero state before the first label) and the joint network (the encoder and
prediction outputs concatenated, Linear, ReLU, Linear to the 28 labels + blank). Its weights come
from the MLPerf checkpoint (a pickled training checkpoint, its ``state_dict``), read by
``harness.checkpoint`` without running anything in it; ``joint_net`` is named ``joint.net`` as the
reference migrates it, and the sizes are read from the tensors, so the demo's small network of the
same topology loads alike.

Greedy decoding as the reference's ``ScriptGreedyDecoder``: at each encoder frame, up to 30
symbols: the joint's arg-max; blank moves to the next frame, a label is emitted and the
prediction network advanced on it. ``load`` decodes a batch of utterances together: features one
by one (their STFT padding is per utterance), the encoder on the padded batch (its LSTMs are
causal, and the first LSTM's output is zeroed past each utterance's end, where the reference
stacks zeros), then every frame's symbol steps batched over the utterances still active there,
the prediction network advanced only for those that emitted. The transcripts are those of batch 1
(tested). ``load_reference`` runs one utterance at a time with the reference's per-step calls.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np

from benchmarks.rnnt.dataset import LABELS, SAMPLE_RATE
from harness.checkpoint import load_into, read_state_dict
from harness.errors import DataError, InvalidSettings

CHECKPOINT = "rnnt.pt"
N_MELS, N_FFT, WINDOW, HOP, SPLICE = 80, 512, 320, 160, 3
PREEMPHASIS, DITHER = 0.97, 1e-5
BLANK = len(LABELS)
MAX_SYMBOLS_PER_STEP = 30


@cache
def mel_filterbank():
    import librosa
    import torch

    bank = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0, fmax=SAMPLE_RATE / 2)
    return torch.tensor(bank, dtype=torch.float)


def frames(n_samples: int) -> int:
    """Feature frames of an utterance of ``n_samples`` (the reference's ``get_seq_len``)."""
    return math.ceil(math.ceil(n_samples / HOP) / SPLICE)


def features(waveform: np.ndarray):
    """float32 [frames, 240] of one utterance's float32 waveform (see the module docstring)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))[None]
    n = frames(x.shape[1])
    x = torch.cat((x[:, :1], x[:, 1:] - PREEMPHASIS * x[:, :-1]), dim=1)
    spectrum = torch.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=WINDOW, center=True,
                          window=torch.hann_window(WINDOW, periodic=False), return_complex=True)
    power = torch.view_as_real(spectrum).pow(2).sum(-1) + DITHER ** 2
    x = torch.log(torch.matmul(mel_filterbank(), power) + 1e-20)
    spliced = [x]
    for shift in range(1, SPLICE):
        later = torch.zeros_like(x)
        later[:, :, :-shift] = x[:, :, shift:]
        spliced.append(later)
    x = torch.cat(spliced, dim=1)[:, :, ::SPLICE]
    kept = x[:, :, :n]
    x = (x - kept.mean(dim=2, keepdim=True)) / (kept.std(dim=2, keepdim=True) + 1e-5)
    return x[0, :, :n].T.contiguous()


def network(sizes: dict[str, int]):
    """The reference's RNNT module tree (state dict names as its migrated checkpoint's)."""
    import torch
    from torch import nn

    class Lstm(nn.Module):
        def __init__(self, inputs: int, hidden: int, layers: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(inputs, hidden, layers)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre_rnn = Lstm(sizes["features"], sizes["encoder"], sizes["pre_layers"])
            self.post_rnn = Lstm(sizes["stack"] * sizes["encoder"], sizes["encoder"], sizes["post_layers"])

        def forward(self, x, lengths):
            """x [T, B, F] (zero past each length) -> [B, ceil(T / stack), H] and the new lengths."""
            x, _ = self.pre_rnn.lstm(x)
            x = x * (torch.arange(x.shape[0], device=x.device)[:, None] < lengths[None, :]).to(x.dtype)[:, :, None]
            stack = sizes["stack"]
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, (-x.shape[0]) % stack))
            x = x.transpose(0, 1).reshape(x.shape[1], x.shape[0] // stack, -1).transpose(0, 1)
            x, _ = self.post_rnn.lstm(x)
            return x.transpose(0, 1), (lengths + stack - 1) // stack

    class Prediction(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(BLANK, sizes["prediction"])
            self.dec_rnn = Lstm(sizes["prediction"], sizes["prediction"], sizes["prediction_layers"])

        def forward(self, labels, state):
            """labels [B] (-1: none yet, a zero vector), state (h, c) [L, B, H] -> g [B, H], new state."""
            y = self.embed(labels.clamp(min=0)) * (labels >= 0).to(self.embed.weight.dtype)[:, None]
            g, state = self.dec_rnn.lstm(y[None], state)
            return g[0], state

    class Joint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(sizes["encoder"] + sizes["prediction"], sizes["joint"]), nn.ReLU(),
                                     nn.Dropout(0.0), nn.Linear(sizes["joint"], BLANK + 1))

        def forward(self, f, g):
            return self.net(torch.cat((f, g), dim=-1))

    class RNNT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.prediction, self.joint = Encoder(), Prediction(), Joint()

    return RNNT()


def sizes_of(state: dict, path: Path) -> dict[str, int]:
    def layers(prefix: str) -> int:
        return sum(1 for key in state if key.startswith(prefix) and key.rsplit("_l", 1)[0].endswith("weight_ih"))

    try:
        encoder = int(state["encoder.pre_rnn.lstm.weight_hh_l0"].shape[1])
        sizes = {"features": int(state["encoder.pre_rnn.lstm.weight_ih_l0"].shape[1]), "encoder": encoder,
                 "stack": int(state["encoder.post_rnn.lstm.weight_ih_l0"].shape[1]) // encoder,
                 "pre_layers": layers("encoder.pre_rnn.lstm."), "post_layers": layers("encoder.post_rnn.lstm."),
                 "prediction": int(state["prediction.embed.weight"].shape[1]),
                 "prediction_layers": layers("prediction.dec_rnn.lstm."),
                 "joint": int(state["joint.net.0.weight"].shape[0])}
    except KeyError as exc:
        raise DataError(f"{path} has no {exc.args[0]} tensor: it is not the MLPerf RNN-T checkpoint; use "
                        f"{CHECKPOINT} (DistributedDataParallel_1576581068.9962234-epoch-100.pt)") from exc
    if sizes["features"] != N_MELS * SPLICE:
        raise DataError(f"{path}: the encoder takes {sizes['features']} features; the reference's are "
                        f"{N_MELS} mels x {SPLICE} spliced frames = {N_MELS * SPLICE}")
    return sizes


def load_network(data_dir: Path):
    path = data_dir / CHECKPOINT
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLPerf RNN-T checkpoint there as {CHECKPOINT} (zenodo 3662521, "
                        f"DistributedDataParallel_1576581068.9962234-epoch-100.pt), or run without --data for the "
                        f"demo tier")
    state = {key.replace("joint_net", "joint.net"): value for key, value in read_state_dict(path).items()
             if not key.startswith("audio_preprocessor.")}  # its filterbank and window are recomputed
    model = network(sizes_of(state, path))
    load_into(model, state, path, "is not the MLPerf RNN-T state dict", f"use {CHECKPOINT}")
    return model.eval()


def encode(model, waveforms: list[np.ndarray]):
    """Encoder outputs [B, T, H] and lengths [B] of a batch of waveforms (on the model's device)."""
    import torch

    device = model.joint.net[0].weight.device
    feats = [features(w) for w in waveforms]
    lengths = torch.tensor([len(f) for f in feats], device=device)
    batch = torch.nn.utils.rnn.pad_sequence(feats).to(device)  # [T, B, F], zero past each end
    return model.encoder(batch, lengths)


def greedy_batch(model, encoded, lengths) -> list[list[int]]:
    """Greedy transducer decoding of a batch, each frame's symbol steps batched (module docstring)."""
    import torch

    count, device = encoded.shape[0], encoded.device
    layers, width = model.prediction.dec_rnn.lstm.num_layers, model.prediction.dec_rnn.lstm.hidden_size
    state = (torch.zeros(layers, count, width, device=device), torch.zeros(layers, count, width, device=device))
    g, advanced = model.prediction(torch.full((count,), -1, device=device), state)
    transcripts: list[list[int]] = [[] for _ in range(count)]
    for t in range(int(lengths.max()) if count else 0):
        active = torch.nonzero(lengths > t).flatten()
        for _ in range(MAX_SYMBOLS_PER_STEP):
            if not len(active):
                break
            symbols = model.joint(encoded[active, t], g[active]).argmax(dim=-1)
            emitted = symbols != BLANK
            active, symbols = active[emitted], symbols[emitted]
            if not len(active):
                break
            for i, symbol in zip(active.tolist(), symbols.tolist()):
                transcripts[i].append(symbol)
            state = tuple(s.index_copy(1, active, a[:, active]) for s, a in zip(state, advanced))
            g_new, advanced_new = model.prediction(symbols, tuple(s[:, active] for s in state))
            g = g.index_copy(0, active, g_new)
            advanced = tuple(a.index_copy(1, active, n) for a, n in zip(advanced, advanced_new))
    return transcripts


def greedy_reference(model, encoded, length: int) -> list[int]:
    """One utterance as the reference decodes it: the prediction network run again at every step."""
    import torch

    state, transcript = None, []
    for t in range(length):
        f = encoded[t][None]
        for _ in range(MAX_SYMBOLS_PER_STEP):
            last = torch.tensor([transcript[-1] if transcript else -1], device=encoded.device)
            g, advanced = model.prediction(last, state)
            symbol = int(model.joint(f, g)[0].argmax())
            if symbol == BLANK:
                break
            transcript.append(symbol)
            state = advanced
    return transcript


class RnntBackend:
    def __init__(self, model, batched: bool) -> None:
        self.model = model
        self.batched = batched

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            if self.batched:
                encoded, lengths = encode(self.model, samples)
                transcripts = greedy_batch(self.model, encoded, lengths)
            else:
                transcripts = []
                for sample in samples:
                    encoded, lengths = encode(self.model, [sample])
                    transcripts.append(greedy_reference(self.model, encoded[0], int(lengths[0])))
        return [np.asarray(t, dtype=np.int64) for t in transcripts]

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample[:SAMPLE_RATE]])


def _load(data_dir: Path, device: str, dtype: str, batched: bool) -> RnntBackend:
    import torch

    if dtype != "fp32":
        raise InvalidSettings(f"RNN-T runs in fp32 here, as the reference does (asked: {dtype}): use --dtype fp32")
    return RnntBackend(load_network(data_dir).to(torch.device(device)), batched)


def load(data_dir: Path, device: str, dtype: str) -> RnntBackend:
    """Utterances of a batch encoded and decoded together (the transcripts of batch 1: tested)."""
    return _load(data_dir, device, dtype, batched=True)


def load_reference(data_dir: Path, device: str, dtype: str) -> RnntBackend:
    """The reference's way: one utterance at a time, the prediction network run at every step."""
    return _load(data_dir, device, dtype, batched=False)
