"""RetinaNet ResNeXt50-32x4d FPN, MLPerf Training's model, run as torchvision's RetinaNet.

Checkpoint: the reference's ``resnext50_32x4d_fpn.pth`` (zenodo 6617981, mAP 0.3755), a whole
model pickled from MLPerf Training's ``single_stage_detector/ssd/model`` code. Its tensors are read
without that code (``harness.checkpoint``); a state dict or the training checkpoint ``{"model":
...}`` (zenodo 6605272) is accepted too. MLPerf Training's modules are copies of torchvision's, so
the tensors load into torchvision's classes by name (torchvision renames the older
``conv.0``/``inner_blocks.0`` keys itself). What the reference model does, and this one too:

* transform: normalise with the ImageNet mean and std, bilinear resize to 800 x 800 (a no-op on
  the pre-processed input), no padding (800 is a multiple of 32);
* backbone: ResNeXt with frozen batch norm; FPN on layers 2-4 with P6 and P7 computed from P5;
* anchors: sizes 32..512 x 3 octave scales x 3 aspect ratios; heads of 4 convolutions + ReLU;
* detections: sigmoid > 0.05, the top 1000 per level, boxes decoded (clip log(1000/16)) and
  clipped to the image, class-wise NMS at IoU 0.5, the best 300.

The size comes from the tensors' shapes (blocks per stage, groups, width per group, FPN channels,
classes): the real checkpoint is ResNeXt50-32x4d, 256 channels, 264 classes; the demo tier's model
is the same code, smaller.

Convolutions run in channels-last layout (faster on CPU and GPU; the same function); the
reference's NCHW layout is ``load_reference``.

Response, as ``PostProcessOpenImagesRetinanet`` writes it: per detection in score order, stopping
at the first score below 0.05, seven float32 ``[qsl_idx, ymin/800, xmin/800, ymax/800, xmax/800,
score, label]``; an image without detections gets an empty payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.retinanet.dataset import ANNOTATIONS, SIZE, Sample, read_annotations
from harness.checkpoint import load_into, read_state_dict
from harness.errors import DataError

CHECKPOINT = "resnext50_32x4d_fpn.pth"
SCORE_THRESHOLD = 0.05
ANCHORS_PER_LOCATION = 9
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Architecture:
    layers: tuple[int, ...]
    groups: int
    width_per_group: int
    channels: int
    num_classes: int


def architecture(state: dict, path: Path) -> Architecture:
    """The model's size, read off its tensors' shapes."""
    try:
        layers = tuple(1 + max(int(k.split(".")[3]) for k in state if k.startswith(f"backbone.body.layer{n}."))
                       for n in (1, 2, 3, 4))
        width, per_group = state["backbone.body.layer1.0.conv2.weight"].shape[:2]
        logits = state["head.classification_head.cls_logits.weight"].shape
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a RetinaNet ResNeXt-FPN checkpoint (no {exc}): use the reference's "
                        f"{CHECKPOINT}") from exc
    return Architecture(layers, width // per_group, per_group, logits[1], logits[0] // ANCHORS_PER_LOCATION)


def build(arch: Architecture):
    """torchvision's RetinaNet with MLPerf Training's configuration, at the given size."""
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.resnet import Bottleneck, ResNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    body = ResNet(Bottleneck, list(arch.layers), groups=arch.groups, width_per_group=arch.width_per_group,
                  norm_layer=FrozenBatchNorm2d)
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [512, 1024, 2048],
                               arch.channels, extra_blocks=LastLevelP6P7(arch.channels, arch.channels))
    return RetinaNet(backbone, arch.num_classes, min_size=SIZE, max_size=SIZE, fixed_size=(SIZE, SIZE),
                     score_thresh=SCORE_THRESHOLD, nms_thresh=0.5, detections_per_img=300, topk_candidates=1000)


def payload(index: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One image's response: float32 rows [index, ymin, xmin, ymax, xmax (over 800), score, label]."""
    low = np.flatnonzero(scores < SCORE_THRESHOLD)
    n = int(low[0]) if low.size else len(scores)
    rows = np.empty((n, 7), dtype=np.float32)
    rows[:, 0] = index
    rows[:, 1:5] = boxes[:n, [1, 0, 3, 2]].astype(np.float32) / np.float32(SIZE)
    rows[:, 5] = scores[:n]
    rows[:, 6] = labels[:n]
    return rows.reshape(-1)


class RetinanetBackend:
    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch

        path = data_dir / CHECKPOINT
        if not path.is_file():
            raise DataError(f"{path} is missing: put the MLPerf RetinaNet PyTorch model ({CHECKPOINT}, zenodo "
                            f"6617981) there, or run without --data to use the demo tier")
        state = read_state_dict(path)
        arch = architecture(state, path)
        categories = len(read_annotations(data_dir / ANNOTATIONS)["categories"])
        if arch.num_classes != categories:
            raise DataError(f"{path} predicts {arch.num_classes} classes but {data_dir / ANNOTATIONS} has "
                            f"{categories} categories: the model and the dataset do not belong together")
        model = build(arch)
        load_into(model, state, path, "does not fit a RetinaNet ResNeXt-FPN", f"use the reference's {CHECKPOINT}")
        self.device = torch.device(device)
        self.dtype = getattr(torch, TORCH_DTYPES[dtype])
        layout = torch.contiguous_format if as_reference else torch.channels_last
        self.model = model.to(self.device, self.dtype, memory_format=layout).eval()

    def predict(self, samples: list[Sample]) -> list[np.ndarray]:
        import torch

        batch = torch.from_numpy(np.stack([s.pixels for s in samples])).to(self.device, self.dtype)
        with torch.inference_mode():
            detections = self.model(batch)
        return [payload(s.index, d["boxes"].float().cpu().numpy(), d["scores"].float().cpu().numpy(),
                        d["labels"].cpu().numpy()) for s, d in zip(samples, detections)]

    def warmup(self, sample: Sample) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> RetinanetBackend:
    return RetinanetBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> RetinanetBackend:
    """The same model run as the reference runs it: NCHW layout (the reference's batch is one image)."""
    return RetinanetBackend(data_dir, device, dtype, as_reference=True)
