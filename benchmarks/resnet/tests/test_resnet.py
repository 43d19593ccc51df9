"""ResNet-50 data pipeline, inference, payload and scoring on the demo tier."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.resnet import accuracy, backend, dataset, demo
from harness import cli
from harness.errors import DataError


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("resnet")


def test_constant_image_normalises_to_hand_computed_values(tmp_path):
    path = tmp_path / "flat.png"  # lossless, so the pixels are exactly these
    cv2.imwrite(str(path), np.full((300, 400, 3), (50, 100, 200), dtype=np.uint8))  # BGR
    out = dataset.preprocess(path)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    expected = [(200 / 255 - 0.485) / 0.229, (100 / 255 - 0.456) / 0.224, (50 / 255 - 0.406) / 0.225]  # RGB
    for channel, value in enumerate(expected):
        assert np.allclose(out[channel], value, atol=1e-6)


def test_resize_and_centre_crop_geometry(tmp_path):
    # 300 x 400 (h x w), dark left of column 200: resized to 256 x 341, the edge lands at column
    # 170.5; the centre crop starts at column round((341 - 224) / 2) = 58, so in the crop at 112.5
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    image[:, 200:] = 255
    path = tmp_path / "edge.png"
    cv2.imwrite(str(path), image)
    row = dataset.preprocess(path)[0, 112]
    assert (row[:110] == row[0]).all() and (row[116:] == row[-1]).all() and row[0] < 0 < row[-1]
    assert row[110] < 0 < row[115]


def test_preprocessing_is_the_reference_bits(data):
    import torchvision.transforms.functional as F
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    ds = dataset.load(data)
    for index in (0, 1, 2, 5):  # landscape, portrait, small, grayscale
        rgb = cv2.cvtColor(cv2.imread(str(ds.path(index))), cv2.COLOR_BGR2RGB)
        image = F.center_crop(F.resize(Image.fromarray(rgb), 256, InterpolationMode.BILINEAR), 224)
        reference = F.normalize(F.to_tensor(image), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
        assert np.array_equal(ds[index], reference.numpy())


def test_demo_is_deterministic_and_varied(data, tmp_path):
    demo.build(tmp_path, seed=0, n_samples=8)
    names = [line.split()[0] for line in (data / "imagenet" / "val_map.txt").read_text().splitlines()[:8]]
    assert [line.split()[0] for line in (tmp_path / "imagenet" / "val_map.txt").read_text().splitlines()] == names
    assert all((tmp_path / "imagenet" / n).read_bytes() == (data / "imagenet" / n).read_bytes() for n in names)
    shapes = {cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in (tmp_path / "imagenet").glob("*.JPEG")}
    assert any(len(s) == 2 for s in shapes)  # grayscale files
    assert any(s[0] > s[1] for s in shapes) and any(s[0] < s[1] for s in shapes) and any(max(s[:2]) < 256 for s in shapes)


def test_scorer_against_hand_computed_values(data):
    labels = [label for _, label in dataset.read_val_map(data)]
    outputs = {0: np.array([labels[0]], np.float32), 1: np.array([(labels[1] + 1) % 1000], np.float32),
               2: np.array([labels[2]], np.float32), 3: np.zeros(0, np.float32)}  # 3 failed: empty payload
    metrics = accuracy.score(outputs, data)
    assert metrics == {"acc": 50.0, "good": 2, "total": 4}
    assert accuracy.accuracy_text(metrics) == "accuracy=50.000%, good=2, total=4\n"
    assert accuracy.score({0: outputs[0], 1: outputs[1], 2: outputs[1]}, data)["acc"] == 33.333


def test_payload_is_one_float32_class_and_batching_does_not_change_it(data):
    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in range(4)]
    batched = model.predict(samples)
    assert all(out.dtype == np.float32 and out.shape == (1,) for out in batched)
    decoded = np.frombuffer(b"".join(out.tobytes() for out in batched), dtype=np.float32)
    assert all(0 <= c < 1000 and c == int(c) for c in decoded)
    assert [model.predict([s])[0] for s in samples] == batched


def test_folded_batch_norm_predicts_what_the_eager_network_does(data):
    import torch

    ds = dataset.load(data)
    model = backend.ResnetBackend(data, "cpu", "fp32")  # the CUDA, fp16 and bf16 path, here on CPU
    reference = backend.load_reference(data, "cpu", "fp32")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.model.modules())  # folded
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in reference.model.modules()) == 53  # as torchvision's
    samples = [ds[i] for i in range(16)]
    assert [float(a[0]) for a in model.predict(samples)] == [float(b[0]) for b in reference.predict(samples)]


def test_onnx_runtime_computes_the_eager_network_and_ignores_batch_company(data):
    import torch

    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    assert isinstance(model, backend.OnnxResnetBackend)
    batch = np.stack([ds[i] for i in range(16)])
    with torch.inference_mode():
        eager = backend.network(data)(torch.from_numpy(batch)).numpy()
    logits = model.session.run(batch)
    assert np.allclose(logits, eager, rtol=1e-4, atol=1e-4 * np.abs(eager).max())
    assert (logits.argmax(axis=1) == eager.argmax(axis=1)).all()
    # a sample's logits are the same bytes alone, in a batch of 3 and of 16 (TEST01 compares them)
    assert np.array_equal(np.concatenate([model.session.run(batch[i:i + 1]) for i in range(16)]), logits)
    assert np.array_equal(np.concatenate([model.session.run(batch[i:i + 3]) for i in range(0, 15, 3)]),
                          logits[:15])


@pytest.mark.parametrize("line, message", [
    ("ILSVRC2012_val_00000001.JPEG 1000", "label 1000 is not an ImageNet class"),
    ("ILSVRC2012_val_00000001.JPEG", "expected '<image file> <label>'"),
    ("missing.JPEG 3", r"1 image\(s\) listed in .* e.g. .*missing.JPEG"),
    ("../../../etc/passwd 3", "'../../../etc/passwd' is not a plain file name"),  # the data folder is untrusted
    ("/etc/passwd 3", "'/etc/passwd' is not a plain file name"),
])
def test_bad_label_files_are_named(line, message, demo_copy):
    root = demo_copy("resnet")
    (root / "imagenet" / "val_map.txt").write_text(line + "\n")
    with pytest.raises(DataError, match=message) as error:
        dataset.load(root)
    assert "val_map.txt" in str(error.value)


def test_bad_checkpoints_are_named(demo_copy):
    import torch
    import torchvision

    root = demo_copy("resnet")
    checkpoint = root / backend.CHECKPOINT
    torch.save(torchvision.models.resnet18().state_dict(), checkpoint)
    with pytest.raises(DataError, match="is not a torchvision ResNet-50 state dict"):
        backend.load(root, "cpu", "fp32")
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="is not a readable PyTorch state dict"):
        backend.load(root, "cpu", "fp32")
    checkpoint.unlink()
    with pytest.raises(DataError, match="resnet50-19c8e357.pth is missing"):
        backend.load(root, "cpu", "fp32")


def test_a_corrupt_image_fails_its_sample_alone_and_names_the_file(tmp_path, demo_copy):
    root = demo_copy("resnet")
    bad = dataset.load(root).path(3)
    bad.write_bytes(bad.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(DataError, match=f"{bad} cannot be decoded"):
        dataset.preprocess(bad)
    out = tmp_path / "run"
    assert cli.main(["run", "resnet", "--mode", "accuracy", "--n-count", "8", "--data", str(root),
                     "--out", str(out), "--check"]) == 1
    result = json.loads((out / "result.json").read_text())
    assert result["accuracy"]["metrics"]["total"] == 8
    report = (out / "report.txt").read_text()
    assert "1 of 8 samples failed in the SUT" in report and str(bad) in report


def test_demo_runs_offline_accuracy_and_performance(data, tmp_path):
    conf = tmp_path / "perf.conf"
    conf.write_text("resnet50.Offline.min_duration = 1000\nresnet50.Offline.min_query_count = 1\n"
                    "resnet50.Offline.target_qps = 150\n")  # well above the demo's 50 images/s on 2 cores
    assert cli.main(["run", "resnet", "--mode", "submission", "--n-count", "16", "--user-conf", str(conf),
                     "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    assert result["accuracy"]["metrics"]["total"] == 16
    text = (tmp_path / "run" / "accuracy" / "accuracy.txt").read_text()
    assert text.startswith("accuracy=") and text.endswith(", total=16\n")


def test_the_demo_labels_are_the_reference_s_varied_classes(data):
    labels = [label for _, label in dataset.read_val_map(data)]
    reference = backend.load_reference(data, "cpu", "fp32")
    ds = dataset.load(data)
    assert [int(reference.predict([ds[i]])[0][0]) for i in range(0, 64, 8)] == labels[::8]
    assert len(set(labels)) >= 10  # a classifier answering one class for every image would prove nothing


def test_the_demo_passes_and_a_wrong_normalisation_fails(data, demo_verdict, monkeypatch):
    ok, score = demo_verdict("resnet", data)
    assert ok and score["metrics"]["acc"] == 100.0 and score["targets"].startswith("demo targets")
    monkeypatch.setattr(dataset, "MEAN", np.full((3, 1, 1), 0.5, dtype=np.float32))  # not ImageNet's mean
    ok, score = demo_verdict("resnet", data)
    assert not ok and score["metrics"]["acc"] < 99
