"""Demo tier: a small random-weight RNN-T of the real topology and synthetic 16 kHz utterances.

The network is the reference's RNNT (2 + 3 encoder LSTM layers with frames stacked by 2, a
2-layer prediction LSTM, the joint network) on the real features (80 mels x 3 spliced frames),
with narrow layers, saved as the MLPerf checkpoint is: a pickled training checkpoint whose
``state_dict`` names ``joint_net`` and holds the featurizer's filterbank and window. The joint's
outputs are centred on the demo audio and blank raised to win most steps (``centre_joint``), so
that the transcripts are many characters, of several labels, emitted one or a few per frame.

The utterances are 16-bit mono WAVs of voiced-sound-like signals (harmonics of a gliding pitch
under a syllable envelope, with noise) from 0.5 s to 4 s, in the reference's folder layout and
manifest format, plus one utterance over 15 s that the manifest reader leaves out, as it leaves
out dev-clean's. Ground truth (``ground_truth``): the reference execution's transcripts, written
into the manifest; the reference then scores accuracy 100 (WER 0) on its own answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.rnnt.backend import BLANK, CHECKPOINT, N_MELS, SPLICE, encode, mel_filterbank, network
from benchmarks.rnnt.dataset import LABELS, MANIFEST, SAMPLE_RATE

SIZES = {"features": N_MELS * SPLICE, "encoder": 48, "stack": 2, "pre_layers": 2, "post_layers": 3,
         "prediction": 24, "prediction_layers": 2, "joint": 32}
DURATIONS_S = (0.5, 0.8, 1.1, 1.4, 1.7, 2.0, 2.4, 2.8, 3.2, 3.6, 4.0, 16.0)
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput (200 to 500 utterances/s on 2 cores);
# Server needs about 460 queries within the latency bound for its early-stopping estimate.
rnnt.Offline.min_duration = 1000
rnnt.Offline.min_query_count = 11
rnnt.Offline.target_qps = 1000
rnnt.Server.min_duration = 1000
rnnt.Server.min_query_count = 480
rnnt.Server.target_qps = 60
rnnt.SingleStream.min_duration = 1000
rnnt.SingleStream.min_query_count = 22
rnnt.SingleStream.target_latency = 200
"""


def utterance(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """int16 samples: harmonics of a gliding pitch under a syllable envelope, with a little noise."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = rng.uniform(90, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * phase) for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, np.pi)), 0, None) ** 2
    signal = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    return np.round(np.clip(signal, -1, 1 - 2 ** -15) * 32767).astype(np.int16)


def entry(fname: str, samples: int) -> dict:
    """A manifest entry in the reference's format (its transcript is filled in by ``ground_truth``)."""
    seconds = samples / SAMPLE_RATE
    return {"files": [{"channels": 1, "sample_rate": float(SAMPLE_RATE), "bitrate": 16, "duration": seconds,
                       "num_samples": samples, "encoding": "Signed Integer PCM", "silent": False, "fname": fname,
                       "speed": 1}],
            "original_duration": seconds, "original_num_samples": samples, "transcript": ""}


def centre_joint(model, waveforms: list[np.ndarray], generator_seed: int) -> None:
    """Centre each output of the joint on the demo audio (its mean removed, divided by its spread,
    with the prediction network one random label in), then raise blank until it wins 90% of those
    steps: labels then follow the audio and the prediction state instead of one bias."""
    import torch

    with torch.no_grad():
        encoded, lengths = encode(model, waveforms)
        frames = torch.cat([encoded[i, :n] for i, n in enumerate(lengths.tolist())])
        labels = torch.randint(0, BLANK, (len(frames),), generator=torch.Generator().manual_seed(generator_seed))
        g, _ = model.prediction(labels, None)
        out = model.joint.net[3]
        logits = model.joint(frames, g)
        mean, spread = logits.mean(dim=0), logits.std(dim=0).clamp(min=1e-6)
        out.weight.div_(spread[:, None])
        out.bias.sub_(mean).div_(spread)
        logits = model.joint(frames, g)
        margin = logits[:, :BLANK].max(dim=1).values - logits[:, BLANK]
        out.bias[BLANK] += torch.quantile(margin, 0.9)


def build(out: Path, seed: int = 0) -> None:
    """Write the WAVs, ``dev-clean-wav.json`` and the checkpoint."""
    import soundfile
    import torch

    rng = np.random.default_rng(seed)
    entries, waveforms = [], []
    for number, seconds in enumerate(DURATIONS_S):
        fname = f"dev-clean-wav/84/121123/84-121123-{number:04d}.wav"
        (out / fname).parent.mkdir(parents=True, exist_ok=True)
        samples = utterance(rng, seconds)
        soundfile.write(str(out / fname), samples, SAMPLE_RATE, subtype="PCM_16")
        entries.append(entry(fname, len(samples)))
        waveforms.append(samples.astype(np.float32) / 32768)
    (out / MANIFEST).write_text(json.dumps(entries, indent=2))
    torch.manual_seed(seed)
    model = network(SIZES).eval()
    centre_joint(model, waveforms[:-1], seed)
    state = {key.replace("joint.net", "joint_net"): value for key, value in model.state_dict().items()}
    state["audio_preprocessor.featurizer.fb"] = mel_filterbank()[None]
    state["audio_preprocessor.featurizer.window"] = torch.hann_window(320, periodic=False)
    torch.save({"epoch": 100, "state_dict": state, "labels": list(LABELS)}, out / CHECKPOINT)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Write the reference's transcripts into the manifest, for the utterances it keeps."""
    from benchmarks.rnnt.dataset import MAX_DURATION_S

    entries = json.loads((out / MANIFEST).read_text())
    kept = [e for e in entries if e["original_duration"] <= MAX_DURATION_S]
    for index, kept_entry in enumerate(kept):
        kept_entry["transcript"] = "".join(LABELS[c] for c in outputs[index].tolist())
    (out / MANIFEST).write_text(json.dumps(entries, indent=2))
