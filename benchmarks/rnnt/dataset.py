"""LibriSpeech dev-clean as the reference's QSL reads it: the manifest, and 16 kHz mono WAVs.

Data folder layout: ``dev-clean-wav.json`` (the reference's manifest: a JSON list of utterances,
each with ``files`` [{"fname": "dev-clean-wav/<speaker>/<chapter>/<id>.wav", "speed": 1, ...}],
``original_duration`` in seconds and ``transcript``) with the WAVs under the same folder, as the
reference's conversion script writes them, and the model (see ``backend.py``).

As the reference's ``Manifest`` (``max_duration=15.0``): an utterance longer than 15 s is left out
(2,513 of dev-clean's 2,703 remain, in manifest order); its audio is the file of speed 1. A sample
is the utterance's raw waveform, float32 in [-1, 1) as soundfile reads 16-bit PCM; the features
are computed in the SUT (timed), as the reference does. The reference resamples a file of another
rate with librosa; none of its files needs that, and here a WAV that is not 16 kHz mono is refused,
naming it. Transcripts are normalised as ``text.normalize``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from benchmarks.rnnt.text import normalize
from harness import untrusted
from harness.errors import DataError, HarnessError
from harness.samples import HeldDataset

MANIFEST = "dev-clean-wav.json"
LABELS = " abcdefghijklmnopqrstuvwxyz'"
"""The 28 character labels, by index; the model's blank is index 28."""
SAMPLE_RATE = 16000
MAX_DURATION_S = 15.0
MIN_SAMPLES = 3 * 160 + 1
"""Two feature frames (10 ms hops spliced by 3): the per-feature normalisation needs a spread."""


def _entry_fields(entry: object, where: str) -> tuple[str, float, str]:
    """(audio path, duration, transcript) of one manifest entry, checked."""
    if not isinstance(entry, dict):
        raise DataError(f"{where} is not an object with files, original_duration and transcript")
    files, duration, transcript = entry.get("files"), entry.get("original_duration"), entry.get("transcript")
    if not isinstance(transcript, str) or not untrusted.is_a(duration, float) or not isinstance(files, list):
        raise DataError(f"{where} needs files (a list), original_duration (seconds) and transcript (text)")
    speed_one = [f.get("fname") for f in files if isinstance(f, dict) and f.get("speed") == 1]
    if len(speed_one) != 1:
        raise DataError(f"{where} must name one file of speed 1 in its files; it names {len(speed_one)}")
    try:
        path = untrusted.relative_path(speed_one[0], f"{where}.files[].fname")
    except HarnessError as exc:
        raise DataError(str(exc)) from None
    return path, float(duration), transcript


@cache
def _read_manifest(path: Path, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a JSON manifest ({exc}): use the reference's dev-clean-wav.json") from exc
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path} must be a non-empty JSON list of utterances (the reference's dev-clean-wav.json)")
    kept = []
    for number, entry in enumerate(entries):
        audio, duration, transcript = _entry_fields(entry, f"{path} entry {number}")
        if duration <= MAX_DURATION_S:
            kept.append((audio, normalize(transcript, LABELS)))
    if not kept:
        raise DataError(f"{path} has no utterance of {MAX_DURATION_S:g} s or less")
    return tuple(kept)


def read_manifest(data_dir: Path) -> tuple[tuple[str, str], ...]:
    """(audio path relative to the data folder, normalised transcript) of each utterance, in QSL order;
    every audio file must exist."""
    path = data_dir / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} is missing: put the reference's dev-clean-wav.json there with the converted WAVs "
                        f"(see benchmarks/rnnt/README.md), or run without --data for the demo tier")
    utterances = _read_manifest(path, path.stat().st_mtime_ns)
    for audio, _ in utterances:
        if not (data_dir / audio).is_file():
            raise DataError(f"{path} names {audio}, but {data_dir / audio} is missing: convert LibriSpeech dev-clean "
                            f"to WAV as the reference does (or fix the manifest)")
    return utterances


def read_wav(path: Path) -> np.ndarray:
    """float32 [n] of a 16 kHz mono WAV; anything else is refused, naming the file."""
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as wav:
            rate, channels = wav.samplerate, wav.channels
            samples = wav.read(dtype="float32")
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as exc:
        raise DataError(f"{path} is not a readable WAV ({exc}): convert it again") from exc
    if rate != SAMPLE_RATE or channels != 1:
        raise DataError(f"{path} is {rate} Hz with {channels} channel(s); the model takes {SAMPLE_RATE} Hz mono: "
                        f"convert it as the reference does (sox -r 16000 -c 1 -b 16)")
    if len(samples) < MIN_SAMPLES:
        raise DataError(f"{path} holds {len(samples)} samples, too short an utterance to transcribe: convert it again")
    return np.ascontiguousarray(samples, dtype=np.float32)


class Dataset(HeldDataset):
    """QSL samples: each utterance's waveform, float32 [n], held while LoadGen has it loaded."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.utterances = read_manifest(data_dir)
        super().__init__(len(self.utterances), lambda index: read_wav(data_dir / self.utterances[index][0]))

    def sample_length(self, index: int) -> int:
        """Audio samples of an utterance (an Offline query is sorted by it: batches pad little)."""
        return len(self[index])


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
