"""RetinaNet data pipeline, checkpoint loading, payload and mAP scoring on hand-made inputs and the demo tier."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from benchmarks.retinanet import accuracy, backend, dataset, demo
from harness import cli
from harness.errors import DataError


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("retinanet")


def write_annotations(root, images, boxes, n_categories=2):
    path = root / dataset.ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    coco = {"categories": [{"id": i, "name": f"class {i}"} for i in range(n_categories)], "images": images,
            "annotations": [{"id": n + 1, "area": b["bbox"][2] * b["bbox"][3], "iscrowd": 0, **b}
                            for n, b in enumerate(boxes)]}
    path.write_text(json.dumps(coco))
    return root


# -- pre-processing -----------------------------------------------------------------------------

def test_constant_image_becomes_rgb_over_255(tmp_path):
    path = tmp_path / "flat.png"  # lossless, so the pixels are exactly these
    cv2.imwrite(str(path), np.full((300, 500, 3), (50, 100, 200), dtype=np.uint8))  # BGR
    out = dataset.preprocess(path, 300, 500)
    assert out.shape == (3, 800, 800) and out.dtype == np.float32 and out.flags.c_contiguous
    for channel, value in enumerate((200, 100, 50)):  # RGB
        assert np.allclose(out[channel], value / 255, atol=1e-7)


def test_resize_interpolates_in_float_without_keeping_the_aspect(tmp_path):
    # a 1 x 2 image [0, 255] stretched to 800 x 800: column x samples source (x + 0.5) / 400 - 0.5;
    # at x = 399 that is 0.49875 of the way from 0 to 255 = 127.18, which bytes would round to 127
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8))
    out = dataset.preprocess(path, 1, 2)
    assert out[:, :, 0].max() == 0 and np.allclose(out[:, :, 799], 1, atol=1e-6)
    assert np.allclose(out[:, :, 399], 0.49875, atol=1e-6) and np.allclose(out[:, :, 400], 0.50125, atol=1e-6)
    assert (out[:, 0, :] == out[:, 799, :]).all()  # one source row fills every row


def test_an_image_of_another_size_than_annotated_is_named(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((20, 30, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"a.png is 20 x 30 pixels but the annotations say 30 x 20"):
        dataset.preprocess(path, 30, 20)


# -- annotations --------------------------------------------------------------------------------

@pytest.mark.parametrize("damage, message", [
    (lambda c: "{", "is not valid UTF-8 JSON"),
    (lambda c: c | {"images": []}, "it lists no images"),
    (lambda c: c | {"images": c["images"] + c["images"][:1]}, "image ids repeat"),
    (lambda c: c | {"annotations": [c["annotations"][0] | {"image_id": 999}]}, "refers to an image id"),
    (lambda c: c | {"annotations": [c["annotations"][0] | {"category_id": 99}]}, "has category 99"),
    (lambda c: {"images": c["images"]}, "not a COCO annotation file"),
    (lambda c: c | {"images": [c["images"][0] | {"file_name": "../../../../etc/passwd"}]}, "not a plain file name"),
    (lambda c: c | {"images": [c["images"][0] | {"height": "480"}]}, "not a positive whole number"),
])
def test_bad_annotation_files_are_named(damage, message, demo_copy):
    root = demo_copy("retinanet")
    path = root / dataset.ANNOTATIONS
    damaged = damage(json.loads(path.read_text()))
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(DataError, match=message) as error:
        dataset.load(root)
    assert "openimages-mlperf.json" in str(error.value)


def test_missing_images_are_named(demo_copy):
    root = demo_copy("retinanet")
    gone = dataset.load(root).path(5)
    gone.unlink()
    with pytest.raises(DataError, match=rf"1 image\(s\) listed in .* e.g. {gone}"):
        dataset.load(root)


def test_demo_is_deterministic_and_varied(data, tmp_path):
    demo.build(tmp_path, seed=0, n_samples=24)
    images = json.loads((data / dataset.ANNOTATIONS).read_text())["images"]
    assert json.loads((tmp_path / dataset.ANNOTATIONS).read_text())["images"] == images
    assert [i["file_name"] for i in images] == sorted(i["file_name"] for i in images)
    assert [i["id"] for i in images] == list(range(1, 25))
    shapes = {cv2.imread(str(dataset.load(data).path(i)), cv2.IMREAD_UNCHANGED).shape for i in range(24)}
    assert any(len(s) == 2 for s in shapes)  # a grayscale JPEG
    assert any(s[0] > s[1] for s in shapes) and any(s[0] < s[1] for s in shapes)


# -- model and payload --------------------------------------------------------------------------

def test_payload_rows_are_normalised_yx_and_stop_below_the_threshold():
    boxes = np.array([[80, 40, 400, 200], [0, 0, 800, 800], [8, 8, 16, 16]], dtype=np.float32)  # x1 y1 x2 y2
    rows = backend.payload(7, boxes, np.array([0.9, 0.04, 0.5], np.float32), np.array([3, 1, 2]))
    assert rows.dtype == np.float32
    assert np.array_equal(rows, np.array([7, 0.05, 0.1, 0.25, 0.5, 0.9, 3], np.float32))  # 0.5 after 0.04: dropped
    assert backend.payload(0, np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0)).size == 0


def test_batched_payloads_are_the_bytes_of_single_images(data):
    ds = dataset.load(data)
    model = backend.load(data, "cpu", "fp32")
    samples = [ds[i] for i in (0, 1, 2)]
    batched = model.predict(samples)
    assert any(out.size for out in batched)
    for sample, out in zip(samples, batched):
        rows = out.reshape(-1, 7)
        assert (rows[:, 0] == sample.index).all() and (rows[:, 1:5] >= 0).all() and (rows[:, 1:5] <= 1).all()
        assert (np.diff(rows[:, 5]) <= 0).all() and (rows[:, 5] >= 0.05).all()
        assert out.tobytes() == model.predict([sample])[0].tobytes()


def training_key(key: str) -> str:
    """torchvision's key -> MLPerf Training's (``conv.2.0.weight`` -> ``conv.4.weight``; FPN ``.0.`` dropped)."""
    parts = key.split(".")
    if parts[1].endswith("_head") and parts[2] == "conv":
        return ".".join(parts[:3] + [str(2 * int(parts[3]))] + parts[5:])
    if parts[1] == "fpn" and parts[2] in ("inner_blocks", "layer_blocks"):
        return ".".join(parts[:4] + parts[5:])
    return key


def test_training_checkpoints_and_state_dicts_load_the_same_model(data, demo_copy):
    from harness.checkpoint import read_state_dict

    root = demo_copy("retinanet")
    sample = dataset.load(root)[3]
    expected = backend.load(root, "cpu", "fp32").predict([sample])[0]
    state = read_state_dict(root / backend.CHECKPOINT)
    assert "head.classification_head.conv.3.0.weight" in state
    renamed = {training_key(k): v for k, v in state.items()}
    assert "head.classification_head.conv.6.weight" in renamed and "backbone.fpn.inner_blocks.2.weight" in renamed
    for saved in ({"model": renamed, "epoch": 10}, dict(state)):
        torch.save(saved, root / backend.CHECKPOINT)
        assert backend.load(root, "cpu", "fp32").predict([sample])[0].tobytes() == expected.tobytes()


def test_bad_checkpoints_are_named(demo_copy):
    import torchvision

    root = demo_copy("retinanet")
    checkpoint = root / backend.CHECKPOINT
    torch.save(backend.build(backend.Architecture((1, 1, 1, 1), 8, 4, 16, 264)).state_dict(), checkpoint)
    with pytest.raises(DataError, match="predicts 264 classes but .* has 12 categories"):
        backend.load(root, "cpu", "fp32")
    torch.save(torchvision.models.resnet18().state_dict(), checkpoint)
    with pytest.raises(DataError, match="is not a RetinaNet ResNeXt-FPN checkpoint"):
        backend.load(root, "cpu", "fp32")
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="is not a readable PyTorch checkpoint"):
        backend.load(root, "cpu", "fp32")
    checkpoint.unlink()
    with pytest.raises(DataError, match="resnext50_32x4d_fpn.pth is missing"):
        backend.load(root, "cpu", "fp32")


# -- scoring ------------------------------------------------------------------------------------

def rows(index, height, width, *boxes):
    """Payload rows from (x, y, w, h, score, label) in pixels."""
    return np.array([[index, y / height, x / width, (y + h) / height, (x + w) / width, s, c]
                     for x, y, w, h, s, c in boxes], dtype=np.float32).reshape(-1)


@pytest.fixture
def scored(tmp_path):
    images = [{"id": 11, "file_name": "a.jpg", "height": 100, "width": 200},
              {"id": 12, "file_name": "b.jpg", "height": 200, "width": 200},
              {"id": 13, "file_name": "c.jpg", "height": 100, "width": 100}]
    boxes = [{"image_id": 11, "category_id": 0, "bbox": [10, 20, 50, 40]},
             {"image_id": 12, "category_id": 1, "bbox": [0, 0, 100, 100]},
             {"image_id": 13, "category_id": 0, "bbox": [5, 5, 30, 30]}]
    return write_annotations(tmp_path, images, boxes)


def test_map_against_hand_computed_values(scored):
    exact = rows(0, 100, 200, (10, 20, 50, 40, 0.9, 0))
    overlap_72 = rows(1, 200, 200, (0, 0, 100, 72, 0.8, 1))  # IoU 0.72: a match at 0.50 .. 0.70, 5 of 10
    # class 0: one of two boxes found -> precision 1 up to recall 0.5: 51 of the 101 recall points
    # class 1: AP 1 at 5 of the 10 IoU thresholds -> 0.5; mAP = (51/101 + 0.5) / 2 = 50.2475...%
    metrics = accuracy.score({0: exact, 1: overlap_72, 2: np.zeros(0, np.float32)}, scored)
    assert metrics == {"mAP": 50.248, "images": 3, "detections": 2}
    assert accuracy.accuracy_text(metrics) == "mAP=50.248%\n"
    # scoring only the two images with detections: class 0 is fully found
    assert accuracy.score({0: exact, 1: overlap_72}, scored)["mAP"] == 75.0


def test_scorer_refuses_payloads_of_other_data(scored):
    assert accuracy.score({0: np.zeros(0, np.float32)}, scored) == {"mAP": 0.0, "images": 1, "detections": 0}
    with pytest.raises(DataError, match="sample 0 has 6 floats, not rows of 7"):
        accuracy.score({0: np.zeros(6, np.float32)}, scored)
    with pytest.raises(DataError, match="the payload of sample 1 names image index 0"):
        accuracy.score({1: rows(0, 100, 200, (10, 20, 50, 40, 0.9, 0))}, scored)


# -- runs ---------------------------------------------------------------------------------------

def test_a_corrupt_image_fails_its_sample_alone_and_names_the_file(tmp_path, demo_copy):
    root = demo_copy("retinanet")
    bad = dataset.load(root).path(2)
    bad.write_bytes(bad.read_bytes()[:200])  # a truncated JPEG
    out = tmp_path / "run"
    assert cli.main(["run", "retinanet", "--mode", "accuracy", "--n-count", "4", "--data", str(root),
                     "--out", str(out), "--check"]) == 1
    result = json.loads((out / "result.json").read_text())
    assert result["accuracy"]["metrics"]["images"] == 4
    report = (out / "report.txt").read_text()
    assert "1 of 4 samples failed in the SUT" in report and str(bad) in report


def test_demo_runs_offline_accuracy_and_performance(data, tmp_path):
    # target_qps well above the demo's throughput (about 5.5 images/s on 2 cores): the one
    # Offline query holds target_qps x 1.1 s of samples and must outlast min_duration
    conf = tmp_path / "perf.conf"
    conf.write_text("retinanet.Offline.min_duration = 1000\nretinanet.Offline.min_query_count = 1\n"
                    "retinanet.Offline.target_qps = 30\n")
    assert cli.main(["run", "retinanet", "--mode", "submission", "--n-count", "4", "--user-conf", str(conf),
                     "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    assert result["accuracy"]["metrics"]["images"] == 4 and result["accuracy"]["metrics"]["detections"] > 0
    assert (tmp_path / "run" / "accuracy" / "accuracy.txt").read_text().startswith("mAP=")


def test_the_demo_boxes_are_the_reference_s_detections_of_several_sizes(data):
    coco = json.loads((data / dataset.ANNOTATIONS).read_text())
    reference = backend.load_reference(data, "cpu", "fp32")
    ds = dataset.load(data)
    found = accuracy.detections({1: reference.predict([ds[1]])[0]}, coco["images"])
    truth = [a for a in coco["annotations"] if a["image_id"] == coco["images"][1]["id"]]
    assert [(d["category_id"], d["bbox"]) for d in found] == [(a["category_id"], a["bbox"]) for a in truth]
    boxes = coco["annotations"]
    assert len({a["image_id"] for a in boxes}) >= 12 and len({a["category_id"] for a in boxes}) >= 6
    sizes = {round(a["bbox"][2]) for a in boxes} | {round(a["bbox"][3]) for a in boxes}
    assert len(sizes) >= 20 and max(sizes) > 4 * min(sizes)


def test_the_demo_passes_and_a_wrong_scale_fails(data, demo_verdict, monkeypatch):
    ok, score = demo_verdict("retinanet", data, n=8, batch=4)
    assert ok and score["metrics"]["mAP"] == 100.0
    original = dataset.preprocess
    # pixels / 256 instead of / 255: a wrong normalisation constant
    monkeypatch.setattr(dataset, "preprocess", lambda *args: original(*args) * np.float32(255 / 256))
    ok, score = demo_verdict("retinanet", data, n=8, batch=4)
    assert not ok and score["metrics"]["mAP"] < 99
