"""COCO bbox mAP as the reference's ``accuracy-openimages.py`` computes and prints it.

Per sample (first record per ``qsl_idx``), the payload's 7-float rows are scaled back to the
image's annotated pixel size and handed to pycocotools as [x, y, w, h] boxes with the label as
category id; an empty payload (no detection, or a failed sample) still puts its image in the
evaluation. Only the images scored are evaluated (``params.imgIds``), so a subset run scores its
subset. mAP is COCOeval's stats[0] (IoU 0.50:0.95, all areas, 100 detections) x 100, judged on
the printed 3-decimal value as the checker reads it. With no detection at all the reference's
script stops on an error inside pycocotools; here that is mAP 0.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from benchmarks.retinanet.dataset import ANNOTATIONS, read_annotations
from harness.errors import DataError


def detections(outputs: dict[int, np.ndarray], images: list[dict]) -> list[dict]:
    """pycocotools result records for the decoded payloads (dataset index -> float32 rows)."""
    records = []
    for index, data in outputs.items():
        if data.size % 7:
            raise DataError(f"the payload of sample {index} has {data.size} floats, not rows of 7")
        rows = data.reshape(-1, 7)
        stray = rows[rows[:, 0] != index, 0]
        if stray.size:
            raise DataError(f"the payload of sample {index} names image index {int(stray[0])}: the accuracy log "
                            f"does not belong to this dataset")
        image = images[index]
        # in float32, as the reference scales each np.float32 value by the annotated int size
        scale = np.array([image["height"], image["width"], image["height"], image["width"]], dtype=np.float32)
        ymin, xmin, ymax, xmax = (rows[:, 1:5] * scale).T
        boxes = np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=1).tolist()
        for box, score, label in zip(boxes, rows[:, 5].tolist(), rows[:, 6].tolist()):
            records.append({"image_id": image["id"], "category_id": int(label), "score": score, "bbox": box})
    return records


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco = read_annotations(data_dir / ANNOTATIONS)
    records = detections(outputs, coco["images"])
    if not records:
        return {"mAP": 0.0, "images": len(outputs), "detections": 0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and tables
        truth = COCO()  # the parsed file, with copies of the boxes COCOeval marks up
        truth.dataset = coco | {"annotations": [dict(box) for box in coco["annotations"]]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(records), iouType="bbox")
        evaluation.params.imgIds = sorted({coco["images"][i]["id"] for i in outputs})
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # the checker reads the printed value, rounded to 3 decimals: judge that value
    return {"mAP": round(100.0 * float(evaluation.stats[0]), 3), "images": len(outputs), "detections": len(records)}


def accuracy_text(metrics: dict[str, float | int]) -> str:
    return f"mAP={metrics['mAP']:.3f}%\n"
