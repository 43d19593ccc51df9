"""The OpenImages v6 MLPerf validation subset, as the reference's ``openimages-800-retinanet`` reads it.

Data folder layout (the reference's ``openimages_mlperf.sh`` output): ``openimages/annotations/
openimages-mlperf.json`` (COCO format: categories 0..263, images with id, file_name, height and
width, boxes as [x, y, w, h] in pixels) and the images under ``openimages/validation/data/``.
LoadGen sample i is the i-th entry of the file's ``images`` list, which is also how the accuracy
script maps ``qsl_idx`` back to an image.

Pre-processing is the reference's ``pre_process_openimages_retinanet`` (``maybe_resize``):
OpenCV decode (BGR), to float32 FIRST, BGR to RGB, resize to 800 x 800 with INTER_LINEAR (aspect
ratio not kept, interpolated in float, so nothing is rounded to bytes), /255, HWC to CHW. It runs
when LoadGen loads samples (untimed); loaded samples stay in memory until LoadGen unloads them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harness.errors import DataError
from harness.untrusted import is_plain_name
from harness.samples import HeldDataset

ROOT = "openimages"
ANNOTATIONS = f"{ROOT}/annotations/openimages-mlperf.json"
IMAGES_DIR = f"{ROOT}/validation/data"
SIZE = 800  # the model's input, height = width


class Sample(NamedTuple):
    index: int
    """Dataset index; the payload carries it, as the reference writes the QSL index into each row."""
    pixels: np.ndarray
    """float32 [3, 800, 800], RGB in [0, 1]."""


def read_annotations(path: Path) -> dict[str, Any]:
    """The COCO-format annotation file, checked for what the QSL and the scorer rely on.

    Parsed once per process and file version: every replica, the QSL and the scorer share it.
    """
    if not path.is_file():
        raise DataError(f"{path} is missing: put the OpenImages MLPerf annotations there (see "
                        f"benchmarks/retinanet/README.md), or run without --data for the demo tier")
    stat = path.stat()
    return _parse(path.resolve(), stat.st_mtime_ns, stat.st_size)


@cache
def _parse(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid UTF-8 JSON ({exc}); download or regenerate it") from exc
    problem = _first_problem(coco)
    if problem:
        raise DataError(f"{path}: {problem}; the annotation file does not match its images: use the "
                        f"openimages-mlperf.json made with them")
    return coco


def _first_problem(coco: Any) -> str | None:
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list)
                                             for k in ("images", "categories", "annotations")):
        return "it is not a COCO annotation file ('images', 'categories' and 'annotations' lists)"
    if not coco["images"]:
        return "it lists no images"
    for n, image in enumerate(coco["images"]):
        if not isinstance(image, dict) or not {"id", "file_name", "height", "width"} <= image.keys():
            return f"images[{n}] lacks id, file_name, height or width"
        if not is_plain_name(image["file_name"]):
            return (f"images[{n}] has file_name {image['file_name']!r}, not a plain file name in "
                    f"{IMAGES_DIR} (a path that leads elsewhere is refused)")
        if not all(isinstance(image[k], int) and not isinstance(image[k], bool) and image[k] > 0
                   for k in ("height", "width")):
            return f"images[{n}] has a height or width that is not a positive whole number"
    image_ids = {image["id"] for image in coco["images"]}
    if len(image_ids) != len(coco["images"]):
        return "image ids repeat"
    category_ids = {c.get("id") for c in coco["categories"] if isinstance(c, dict)}
    for n, box in enumerate(coco["annotations"]):
        if not isinstance(box, dict) or box.get("image_id") not in image_ids:
            return f"annotations[{n}] refers to an image id that 'images' lacks"
        if box.get("category_id") not in category_ids:
            return f"annotations[{n}] has category {box.get('category_id')!r}, which 'categories' lacks"
        if not (isinstance(box.get("bbox"), list) and len(box["bbox"]) == 4):
            return f"annotations[{n}] has no [x, y, w, h] bbox"
    return None


def preprocess(path: Path, height: int, width: int) -> np.ndarray:
    """One image as the reference feeds it: float32 [3, 800, 800]; checks the annotated size."""
    import cv2

    bgr = cv2.imread(str(path))
    if bgr is None:
        raise DataError(f"{path} cannot be decoded as an image (corrupt, truncated or not an image): replace it "
                        f"with the original OpenImages file")
    if bgr.shape[:2] != (height, width):
        raise DataError(f"{path} is {bgr.shape[0]} x {bgr.shape[1]} pixels but the annotations say {height} x "
                        f"{width}: boxes would be scaled wrongly; the annotation file does not match the images")
    image = cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    image /= np.float32(255)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


class Dataset(HeldDataset):
    """QSL samples: pre-processed images, held while LoadGen has them loaded."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.annotation_file = data_dir / ANNOTATIONS
        self.images = read_annotations(self.annotation_file)["images"]
        folder = data_dir / IMAGES_DIR
        missing = [image["file_name"] for image in self.images if not (folder / image["file_name"]).is_file()]
        if missing:
            raise DataError(f"{len(missing)} image(s) listed in {self.annotation_file} are missing, e.g. "
                            f"{folder / missing[0]}: restore them, or use the annotation file made for the images "
                            f"present")
        super().__init__(len(self.images), self._preprocess)

    def path(self, index: int) -> Path:
        return self.data_dir / IMAGES_DIR / self.images[index]["file_name"]

    def _preprocess(self, index: int) -> np.ndarray:
        image = self.images[index]
        return preprocess(self.path(index), image["height"], image["width"])

    def __getitem__(self, index: int) -> Sample:
        return Sample(index, super().__getitem__(index))


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
