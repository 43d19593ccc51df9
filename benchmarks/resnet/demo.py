"""Demo tier: ResNet-50 with random weights and synthetic JPEGs listed in a ``val_map.txt``.

The model is the real topology (torchvision ``resnet50``, saved as a state dict under the
reference checkpoint's file name), so the demo exercises exactly the real loading and inference
path. Images are deterministic for a seed: landscape, portrait and small (upscaled) sizes, some
grayscale JPEGs (OpenCV decodes them to three channels, as on the real set).

A random ResNet-50 gives nearly every image the same class: its pooled features share a large
common part, which the classifier's random rows turn into one winning class. So the classifier
here is centred and scaled on the features of a few demo images (each feature's mean removed by
the bias, each column divided by the feature's spread, floored at the median spread): the
predicted class then follows the picture, with dozens of classes over the demo set and margins
far above float rounding. The labels in ``val_map.txt`` are what the reference execution predicts
(``ground_truth``; see ``harness.demo``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.resnet.backend import CHECKPOINT
from benchmarks.resnet.dataset import IMAGES_DIR, N_CLASSES, VAL_MAP, preprocess

DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID only while target_qps stays above the throughput (15 to 50 images/s on 2 CPU
# cores): the one query holds target_qps x min_duration x 1.1 samples and must outlast min_duration.
# SingleStream and MultiStream likewise need a target_latency below the real one. Server and
# MultiStream judge the 99th percentile: early stopping then needs several hundred queries.
resnet50.Offline.min_duration = 2000
resnet50.Offline.min_query_count = 1
resnet50.Offline.target_qps = 150
resnet50.Server.min_duration = 3000
resnet50.Server.min_query_count = 480
resnet50.Server.target_qps = 8
resnet50.Server.target_latency = 1000
resnet50.SingleStream.min_duration = 2000
resnet50.SingleStream.min_query_count = 64
resnet50.SingleStream.target_latency = 20
resnet50.MultiStream.min_duration = 2000
resnet50.MultiStream.min_query_count = 480
resnet50.MultiStream.target_latency = 200
"""


def synthetic_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An RGB picture with structure (a gradient and a few boxes), so resizing has work to do."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    for _ in range(rng.integers(2, 6)):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        base[top:top + rng.integers(8, height // 2 + 9), left:left + rng.integers(8, width // 2 + 9)] = rng.integers(
            0, 256, size=3)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def centred_classifier(model, images: np.ndarray) -> None:
    """Centre and scale ``model.fc`` on the pooled features of ``images`` (float32 [N, 3, 224, 224])."""
    import torch

    body = torch.nn.Sequential(*list(model.children())[:-1])  # everything up to the pooled features
    with torch.no_grad():
        features = torch.flatten(body(torch.from_numpy(images)), 1)
        spread = features.std(dim=0)
        model.fc.weight.div_(spread.clamp(min=spread.median()))
        model.fc.bias.copy_(-(model.fc.weight @ features.mean(dim=0)))


def build(out: Path, seed: int = 0, n_samples: int = 64) -> None:
    """Write ``imagenet/`` (JPEGs + ``val_map.txt``), the checkpoint and a demo ``user.conf``."""
    import torch
    import torchvision
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = out / IMAGES_DIR
    folder.mkdir()
    lines = []
    for i in range(n_samples):
        height, width = ((rng.integers(300, 500), rng.integers(200, 300)) if i % 3 == 1 else  # portrait
                         (rng.integers(120, 240), rng.integers(120, 240)) if i % 5 == 2 else  # smaller than 256
                         (rng.integers(250, 400), rng.integers(350, 520)))                     # landscape
        image = Image.fromarray(synthetic_image(rng, int(height), int(width)))
        if i % 8 == 5:
            image = image.convert("L")
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        image.save(folder / name, format="JPEG", quality=90)
        lines.append(f"{name} {int(rng.integers(0, N_CLASSES))}")  # replaced by the reference's classes
    (folder / VAL_MAP).write_text("\n".join(lines) + "\n")
    torch.manual_seed(seed)
    model = torchvision.models.resnet50().eval()
    centred_classifier(model, np.stack([preprocess(folder / line.split()[0]) for line in lines[:16]]))
    torch.save(model.state_dict(), out / CHECKPOINT)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Label each image with the class the reference execution predicts for it."""
    path = out / IMAGES_DIR / VAL_MAP
    names = [line.split()[0] for line in path.read_text().splitlines()]
    path.write_text("".join(f"{name} {int(outputs[i][0])}\n" for i, name in enumerate(names)))
