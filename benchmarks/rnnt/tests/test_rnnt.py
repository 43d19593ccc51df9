"""RNN-T by hand: the features against a direct computation, the frame counts, the encoder's
padding, batched greedy decoding against batch 1, the symbol cap, WER, the transcript
normalisation, and bad input (manifest, WAVs, checkpoint)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.rnnt import accuracy, backend, dataset, demo, text
from harness.errors import DataError


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("rnnt")


@pytest.fixture(scope="module")
def model(data):
    return backend.load_network(data)


@pytest.fixture
def damaged(demo_copy):
    return demo_copy("rnnt")


def numpy_features(waveform: np.ndarray) -> np.ndarray:
    """The reference's features written out with numpy: pre-emphasis, centred frames with reflect
    padding, the symmetric Hann window centred in 512 points, |rfft|^2 + dither^2, mel, log,
    splicing by 3, per-feature normalisation, ceil(ceil(n / 160) / 3) frames."""
    x = np.concatenate([waveform[:1], waveform[1:] - 0.97 * waveform[:-1]]).astype(np.float64)
    padded = np.pad(x, 256, mode="reflect")
    window = np.zeros(512)
    window[96:416] = np.hanning(320)
    count = 1 + len(x) // 160
    spectra = np.stack([np.fft.rfft(padded[i * 160:i * 160 + 512] * window) for i in range(count)], axis=1)
    power = np.abs(spectra) ** 2 + 1e-10
    mel = np.log(backend.mel_filterbank().numpy().astype(np.float64) @ power + 1e-20)
    shifted = [np.pad(mel[:, s:], ((0, 0), (0, s))) for s in range(3)]
    spliced = np.concatenate(shifted, axis=0)[:, ::3]
    n = -(-(-(-len(x) // 160)) // 3)
    kept = spliced[:, :n]
    return ((kept - kept.mean(axis=1, keepdims=True)) / (kept.std(axis=1, ddof=1, keepdims=True) + 1e-5)).T


@pytest.mark.parametrize("n", [4321, 16000, 961])
def test_features_are_the_references_computation(n):
    waveform = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    ours = backend.features(waveform).numpy()
    assert ours.shape == (backend.frames(n), 240) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, numpy_features(waveform), atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("samples, frames", [(1, 1), (160, 1), (161, 1), (480, 1), (481, 2), (16000, 34)])
def test_frame_counts_are_the_references_get_seq_len(samples, frames):
    assert backend.frames(samples) == frames  # ceil(ceil(n / 160) / 3)


def test_the_encoder_on_a_padded_batch_is_the_encoder_of_each_utterance(model, data):
    """Frames past an utterance's end are zero where the frames are stacked, as in batch 1 (odd
    lengths included), and the LSTMs are causal: the padding changes nothing that is kept."""
    import torch

    ds = dataset.load(data)
    waves = [ds[i] for i in (0, 4, 10)]
    lengths = [backend.frames(len(w)) for w in waves]
    assert {n % 2 for n in lengths} == {0, 1}
    with torch.no_grad():
        batch, batch_lengths = backend.encode(model, waves)
        for i, wave in enumerate(waves):
            alone, alone_length = backend.encode(model, [wave])
            assert int(batch_lengths[i]) == int(alone_length[0]) == -(-lengths[i] // 2)
            torch.testing.assert_close(batch[i, :int(alone_length[0])], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("order", [list(range(11)), [10, 0, 5], [3], [7, 7, 2]])
def test_batched_decoding_gives_the_transcripts_of_batch_one(data, order):
    ds = dataset.load(data)
    samples = [ds[i] for i in order]
    ours = backend.load(data, "cpu", "fp32").predict(samples)
    reference = backend.load_reference(data, "cpu", "fp32").predict(samples)
    assert [t.tolist() for t in ours] == [t.tolist() for t in reference]
    assert all(t.dtype == np.int64 for t in ours) and sum(len(t) for t in ours) > 3 * len(order)
    assert len({c for t in ours for c in t.tolist()}) > 3  # several labels, not one


def test_at_most_30_symbols_per_frame(data):
    """A joint that never prefers blank: every frame emits the cap, in both decoders."""
    import torch

    model = backend.load_network(data)
    with torch.no_grad():
        model.joint.net[3].bias[backend.BLANK] = -1e9
        wave = dataset.load(data)[0]
        encoded, lengths = backend.encode(model, [wave])
        batched = backend.greedy_batch(model, encoded, lengths)[0]
        one = backend.greedy_reference(model, encoded[0], int(lengths[0]))
    assert len(batched) == len(one) == 30 * int(lengths[0]) and batched == one


def test_levenshtein_and_word_error_rate_by_hand():
    assert accuracy.levenshtein("a b c".split(), "a c".split()) == 1
    assert accuracy.levenshtein("kitten sat".split(), "sitting sat on".split()) == 2
    assert accuracy.levenshtein([], "x y".split()) == 2
    # 1 deletion of 4 words, 1 substitution of 2: 2 / 6
    assert accuracy.word_error_rate(["the cat sat", "hello there"], ["the cat sat down", "hello world"]) == 2 / 6
    assert accuracy.word_error_rate(["a"], [""]) == float("inf")


def test_score_and_its_printed_line(data):
    utterances = dataset.read_manifest(data)
    first = utterances[0][1]
    right = np.asarray([dataset.LABELS.index(c) for c in first], dtype=np.int64)
    metrics = accuracy.score({0: right, 1: np.zeros(0, np.int64)}, data)
    words = [len(first.split()), len(utterances[1][1].split())]
    assert metrics["wer"] == pytest.approx(100 * words[1] / sum(words))
    assert metrics["accuracy"] == pytest.approx(100 - metrics["wer"]) and metrics["utterances"] == 2
    assert accuracy.accuracy_text({"wer": 8.5, "accuracy": 91.5}) == "Word Error Rate: 8.5%, accuracy=91.5%\n"
    with pytest.raises(DataError, match="sample 0 answered label 28, outside the 28 characters"):
        accuracy.score({0: np.asarray([28])}, data)
    with pytest.raises(DataError, match="sample 1 answered label -1, outside"):
        accuracy.score({1: np.asarray([3, -1, 5])}, data)


def test_transcripts_are_normalised_as_the_references_manifest():
    said = "Mr. Smith paid $3.50 on the 2nd, and 1999's fee & more!"
    assert text.normalize(said, dataset.LABELS) == (
        "mister smith paid three dollars fifty cents on the second and nineteen ninety nine's fee and more")
    assert text.normalize("Caf\u00e9  at 10:30 -- 007", dataset.LABELS) == "cafe at ten thirty zero zero seven"
    assert text.normalize("he was in a fevered state", dataset.LABELS) == "he was in a fevered state"


def test_the_manifest_drops_utterances_over_15_s_and_keeps_its_order(data):
    entries = json.loads((data / dataset.MANIFEST).read_text())
    kept = dataset.read_manifest(data)
    assert len(entries) == 12 and len(kept) == 11 == len(dataset.load(data))
    assert [audio for audio, _ in kept] == [e["files"][0]["fname"] for e in entries if e["original_duration"] <= 15]


def test_a_manifest_path_out_of_its_folder_is_refused(damaged):
    entries = json.loads((damaged / dataset.MANIFEST).read_text())
    entries[2]["files"][0]["fname"] = "../../etc/passwd"
    (damaged / dataset.MANIFEST).write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"entry 2.files\[\].fname: '../../etc/passwd' is not a relative path inside"):
        dataset.read_manifest(damaged)


def test_a_manifest_naming_a_missing_file_is_refused(damaged):
    (damaged / "dev-clean-wav/84/121123/84-121123-0003.wav").unlink()
    with pytest.raises(DataError, match=r"names dev-clean-wav/84/121123/84-121123-0003.wav, but .* is missing"):
        dataset.read_manifest(damaged)


def test_a_manifest_entry_without_its_fields_is_refused(damaged):
    (damaged / dataset.MANIFEST).write_text(json.dumps([{"files": [], "transcript": "x"}]))
    with pytest.raises(DataError, match="entry 0 needs files .*, original_duration .* and transcript"):
        dataset.read_manifest(damaged)
    (damaged / dataset.MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="is not a JSON manifest"):
        dataset.read_manifest(damaged)


@pytest.mark.parametrize("rate, channels", [(8000, 1), (16000, 2)])
def test_a_wav_of_another_rate_or_channel_count_is_refused(damaged, rate, channels):
    import soundfile

    path = damaged / "dev-clean-wav/84/121123/84-121123-0001.wav"
    soundfile.write(str(path), np.zeros((800, channels), np.int16), rate, subtype="PCM_16")
    with pytest.raises(DataError, match=rf"84-121123-0001.wav is {rate} Hz with {channels} channel\(s\); the model "
                                        rf"takes 16000 Hz mono"):
        dataset.read_wav(path)
    path.write_bytes(b"RIFF....not a wav")
    with pytest.raises(DataError, match="84-121123-0001.wav is not a readable WAV"):
        dataset.read_wav(path)
    soundfile.write(str(path), np.zeros(100, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(DataError, match="84-121123-0001.wav holds 100 samples, too short an utterance"):
        dataset.read_wav(path)


def test_a_checkpoint_that_is_not_rnnt_is_named(damaged):
    import torch

    state = torch.load(damaged / backend.CHECKPOINT, weights_only=True)["state_dict"]
    del state["joint_net.0.weight"]
    torch.save({"state_dict": state}, damaged / backend.CHECKPOINT)
    with pytest.raises(DataError, match=r"rnnt.pt has no joint.net.0.weight tensor: it is not the MLPerf RNN-T"):
        backend.load_network(damaged)


def test_the_demo_checkpoint_is_shaped_as_the_mlperf_one(data):
    """A training checkpoint: ``state_dict`` with ``joint_net`` names and the featurizer's buffers,
    which are left out of the model (the reference recomputes them)."""
    import torch

    saved = torch.load(data / backend.CHECKPOINT, weights_only=True)
    keys = set(saved["state_dict"])
    assert {"audio_preprocessor.featurizer.fb", "joint_net.3.bias", "encoder.post_rnn.lstm.weight_ih_l2"} <= keys
    assert backend.sizes_of({k.replace("joint_net", "joint.net"): v for k, v in saved["state_dict"].items()},
                            data) == demo.SIZES
