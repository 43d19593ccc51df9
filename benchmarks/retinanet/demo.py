"""Demo tier: a small random-weight RetinaNet and synthetic OpenImages-style JPEGs with annotations.

The model is the real code (``backend.build``: torchvision's RetinaNet with a ResNeXt FPN
backbone) at a smaller size, one bottleneck per stage and 16 FPN channels, pickled whole with
``torch.save(model)`` under the reference checkpoint's name, as the reference's file is; the real
loading path reads it. Its classification layer is calibrated on a few demo images so that
random weights still produce tens of detections per image above the 0.05 threshold, of several
sizes and classes, which exercises the payload, NMS and the scorer.

The data is ``openimages/annotations/openimages-mlperf.json`` in the real export's schema
(real OpenImages class names as categories 0..K-1, 1-based image ids in file-name order, boxes in
pixels with the OpenImages flags, IsGroupOf as ``iscrowd``) and the JPEGs it lists under
``openimages/validation/data``: landscape, portrait and small sizes, one grayscale, each with
coloured boxes painted in. Its boxes are what the reference execution detects (``ground_truth``;
see ``harness.demo``), as the scorer reads them back. Deterministic for a seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.retinanet import backend
from benchmarks.retinanet.dataset import ANNOTATIONS, IMAGES_DIR, preprocess

CLASSES = ("Airplane", "Bicycle", "Bus", "Cat", "Dog", "Flowerpot", "Guitar", "Human face", "Lamp", "Tomato",
           "Train", "Wine glass")
ARCHITECTURE = backend.Architecture(layers=(1, 1, 1, 1), groups=8, width_per_group=4, channels=16,
                                    num_classes=len(CLASSES))
LOGIT_STD, LOGIT_MEAN = 1.0, -7.5  # random logits spread so that a few in 10^4 of the scores pass 0.05
CALIBRATION_IMAGES = 4

DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID only while target_qps stays above the throughput (a few images/s on 2 CPU
# cores): the one query holds target_qps x min_duration x 1.1 samples and must outlast min_duration.
# SingleStream and MultiStream likewise need a target_latency below the real one. Server and
# MultiStream judge the 99th percentile: early stopping then needs several hundred queries.
retinanet.Offline.min_duration = 3000
retinanet.Offline.min_query_count = 1
retinanet.Offline.target_qps = 8
retinanet.Server.min_duration = 3000
retinanet.Server.min_query_count = 480
retinanet.Server.target_qps = 2
retinanet.Server.target_latency = 2000
retinanet.SingleStream.min_duration = 2000
retinanet.SingleStream.min_query_count = 16
retinanet.SingleStream.target_latency = 100
retinanet.MultiStream.min_duration = 2000
retinanet.MultiStream.min_query_count = 480
retinanet.MultiStream.target_latency = 1000
"""


def synthetic_image(rng: np.random.Generator, height: int, width: int, boxes: list[list[float]]) -> np.ndarray:
    """A gradient background with each box painted in its own colour (RGB uint8)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    for left, top, w, h in boxes:
        image[int(top):int(top + h), int(left):int(left + w)] = rng.integers(0, 256, size=3)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def random_boxes(rng: np.random.Generator, height: int, width: int) -> list[list[float]]:
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        w, h = rng.uniform(0.1, 0.6) * width, rng.uniform(0.1, 0.6) * height
        boxes.append([round(float(rng.uniform(0, width - w)), 2), round(float(rng.uniform(0, height - h)), 2),
                      round(float(w), 2), round(float(h), 2)])
    return boxes


def build_model(seed: int, images: list[np.ndarray]):
    """The random-weight model, its class scores calibrated on ``images`` (float32 [3, 800, 800]).

    At the initialisation used for training the head's features vanish and every score sits at
    0.01, below the threshold. Here the head's convolutions keep their input's variance (He
    initialisation), and the classification layer is rescaled so that each anchor-class logit
    varies over the images with standard deviation LOGIT_STD around LOGIT_MEAN.
    """
    import torch

    torch.manual_seed(seed)
    model = backend.build(ARCHITECTURE).eval()
    head = model.head.classification_head
    for layer in head.conv.modules():
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    with torch.no_grad():
        raw = []
        for pixels in images:
            normalised, _ = model.transform([torch.from_numpy(pixels)])  # as in the forward pass
            features = model.backbone(normalised.tensors).values()
            raw.append(torch.cat([head.cls_logits(head.conv(f)).flatten(2) for f in features], dim=2)[0])
        raw = torch.cat(raw, dim=1)
        mean, scale = raw.mean(dim=1), LOGIT_STD / raw.std(dim=1)
        head.cls_logits.weight.mul_(scale[:, None, None, None])
        head.cls_logits.bias.copy_(LOGIT_MEAN - scale * (mean - head.cls_logits.bias))
    return model


def build(out: Path, seed: int = 0, n_samples: int = 24) -> None:
    """Write ``openimages/`` (annotations + JPEGs), the pickled model and a demo ``user.conf``."""
    import torch
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = out / IMAGES_DIR
    folder.mkdir(parents=True)
    (out / ANNOTATIONS).parent.mkdir(parents=True)
    names = sorted(f"{rng.integers(0, 2**63):016x}" for _ in range(n_samples))
    images, annotations = [], []
    for n, name in enumerate(names):
        height, width = ((int(rng.integers(480, 640)), int(rng.integers(300, 420))) if n % 3 == 1 else  # portrait
                         (int(rng.integers(120, 240)), int(rng.integers(160, 300))) if n % 5 == 2 else  # small
                         (int(rng.integers(360, 480)), int(rng.integers(500, 640))))                    # landscape
        boxes = random_boxes(rng, height, width)
        picture = Image.fromarray(synthetic_image(rng, height, width, boxes))
        (picture.convert("L") if n % 8 == 5 else picture).save(folder / f"{name}.jpg", format="JPEG", quality=90)
        images.append({"id": n + 1, "file_name": f"{name}.jpg", "height": height, "width": width,
                       "license": None, "coco_url": None})
        for box in boxes:
            group = int(rng.random() < 0.1)
            annotations.append({"id": len(annotations) + 1, "image_id": n + 1,
                                "category_id": int(rng.integers(0, len(CLASSES))), "bbox": box,
                                "area": box[2] * box[3], "iscrowd": group, "IsOccluded": int(rng.random() < 0.3),
                                "IsInside": 0, "IsDepiction": 0, "IsTruncated": int(rng.random() < 0.2),
                                "IsGroupOf": group})
    coco = {"info": {"dataset": "openimages_mlperf", "version": "v6"}, "licenses": [],
            "categories": [{"id": i, "name": name, "supercategory": None} for i, name in enumerate(CLASSES)],
            "images": images, "annotations": annotations}
    (out / ANNOTATIONS).write_text(json.dumps(coco))
    calibration = [preprocess(folder / i["file_name"], i["height"], i["width"]) for i in images[:CALIBRATION_IMAGES]]
    torch.save(build_model(seed, calibration), out / backend.CHECKPOINT)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Replace the boxes with what the reference execution detects, in pixels of each image, as the
    scorer reads the payloads (so the reference's own detections overlap them exactly)."""
    from benchmarks.retinanet.accuracy import detections

    coco = json.loads((out / ANNOTATIONS).read_text())
    found = detections(outputs, coco["images"])
    coco["annotations"] = [{"id": n + 1, "image_id": d["image_id"], "category_id": d["category_id"], "bbox": d["bbox"],
                            "area": d["bbox"][2] * d["bbox"][3], "iscrowd": 0, "IsOccluded": 0, "IsInside": 0,
                            "IsDepiction": 0, "IsTruncated": 0, "IsGroupOf": 0} for n, d in enumerate(found)]
    (out / ANNOTATIONS).write_text(json.dumps(coco))
