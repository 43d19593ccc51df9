"""ImageNet 2012 validation as the reference's PyTorch profile (``imagenet_pytorch``) reads it.

Data folder layout: ``imagenet/val_map.txt`` (``<file> <label>`` per line, labels 0..999, in
LoadGen sample order) with the image files it names under ``imagenet/``, and the model (see
``backend.py``). Pre-processing is the reference's ``pre_process_imagenet_pytorch``: OpenCV
decode, BGR to RGB, PIL bilinear resize of the short side to 256, centre crop 224, scale to
[0, 1], normalise with the ImageNet mean and std, NCHW float32. It runs when LoadGen loads
samples (untimed); loaded samples stay in memory until LoadGen unloads them.

The two normalisation steps are computed with numpy in float32, as torchvision's ``to_tensor``
and ``normalize`` compute them (exactly rounded element-wise operations, so the same bits), to
keep torch's thread pool out of LoadGen's threads.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.untrusted import is_plain_name
from harness.samples import HeldDataset

IMAGES_DIR = "imagenet"
VAL_MAP = "val_map.txt"
N_CLASSES = 1000
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def read_val_map(data_dir: Path) -> list[tuple[str, int]]:
    """(file name, label) per sample, in order; every problem names the file and line."""
    path = data_dir / IMAGES_DIR / VAL_MAP
    if not path.is_file():
        raise DataError(f"{path} is missing: put the ImageNet 2012 validation images and their val_map.txt in "
                        f"{data_dir / IMAGES_DIR} (see benchmarks/resnet/README.md), or run without --data for "
                        f"the demo tier")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = re.split(r"\s+", line.strip())
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected '<image file> <label>', got {line.strip()!r}")
        if not is_plain_name(fields[0]):
            raise DataError(f"{path}:{number}: {fields[0]!r} is not a plain file name: val_map.txt names files in "
                            f"{path.parent}, never a path that leads elsewhere")
        label = int(fields[1])
        if not 0 <= label < N_CLASSES:
            raise DataError(f"{path}:{number}: label {label} is not an ImageNet class (0..{N_CLASSES - 1}); "
                            f"is this a 1001-class (background = 0) label file? Use the 0-based val_map.txt")
        entries.append((fields[0], label))
    if not entries:
        raise DataError(f"{path} lists no images")
    return entries


def preprocess(path: Path) -> np.ndarray:
    """One image as the reference's PyTorch profile feeds it: float32 [3, 224, 224]."""
    import cv2
    import torchvision.transforms.functional as F
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    bgr = cv2.imread(str(path))
    if bgr is None:
        raise DataError(f"{path} cannot be decoded as an image (corrupt, truncated or not an image): replace it "
                        f"with the original ImageNet file")
    image = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    image = F.center_crop(F.resize(image, 256, InterpolationMode.BILINEAR), 224)
    chw = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    return np.ascontiguousarray((chw - MEAN) / STD)


class Dataset(HeldDataset):
    """QSL samples: pre-processed images, held while LoadGen has them loaded."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.entries = read_val_map(data_dir)
        folder = data_dir / IMAGES_DIR
        missing = [name for name, _ in self.entries if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{len(missing)} image(s) listed in {folder / VAL_MAP} are missing, e.g. "
                            f"{folder / missing[0]}: restore them, or use a val_map.txt that lists only the "
                            f"images present")
        super().__init__(len(self.entries), lambda index: preprocess(self.path(index)))

    def path(self, index: int) -> Path:
        return self.data_dir / IMAGES_DIR / self.entries[index][0]


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
