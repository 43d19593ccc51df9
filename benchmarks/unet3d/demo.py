"""Demo tier: a narrow random-weight 3D-UNet of the real topology and synthetic KiTS19-style cases.

The network is the reference's Unet3D (input block, four strided downsampling levels, bottleneck,
five upsampling levels, 1x1x1 output) at widths 4, 8, 8, 16, 16, saved as the MLPerf checkpoint is
(a training checkpoint with ``best_model_state_dict``). Its output convolution is centred on a
demo window (each class's mean logit removed, divided by its spread), so the predicted classes
follow the volume's structure instead of one class winning everywhere.

The cases are NIfTI volumes of CT-like values (air, a body, brighter organs) with their spacing in
the header, in several shapes and spacings that take every preprocessing path: resampled to one or
two windows per axis, edge-padded to 128, cropped to a multiple of 64; case_00400 is a copy of
case_00185, as in the reference's list. Ground truth (``ground_truth``): the reference execution's
labels, taken back to each case's own grid (the padding removed, the crop restored from the edge,
nearest-neighbour resampling), written as its segmentation. The reference's DICE against them is
then its own score, a little under 1: the padding and the cropped edges do not come back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from benchmarks.unet3d.backend import CHECKPOINT, network
from benchmarks.unet3d.dataset import (CASES_DIR, CASES_FILE, IMAGE, LABEL, ROI, TARGET_SPACING, min_pads, preprocess,
                                       read_nifti, window_adjustment, zoom_factors)

FILTERS = [4, 8, 8, 16, 16]
# (case, shape as stored, spacing): resampled to one window, and to two along the first axis; edge padding
# at the target spacing; resampling that needs padding and a crop; and the reference's duplicate.
# Finer than the target spacing, as KiTS19's in-plane spacing is, so that labels taken back to a
# case's grid come through preprocessing unchanged (nearest-neighbour at the same sample points).
CASES = (
    ("case_00000", (160, 160, 160), (1.28, 0.96, 0.96)),
    ("case_00003", (240, 160, 160), (1.28, 0.96, 0.96)),
    ("case_00005", (50, 100, 110), (1.6, 1.2, 1.2)),
    ("case_00185", (150, 200, 170), (1.2, 0.9, 1.0)),
)
DUPLICATE = ("case_00400", "case_00185")
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput (about one case/s on 2 CPU cores):
# the one query holds target_qps x min_duration x 1.1 samples, rounded up to whole rounds of the
# cases (equal issue), and must outlast min_duration. SingleStream judges the 90th percentile.
3d-unet.Offline.min_duration = 1000
3d-unet.Offline.min_query_count = 5
3d-unet.Offline.target_qps = 4
3d-unet.SingleStream.min_duration = 1000
3d-unet.SingleStream.min_query_count = 10
3d-unet.SingleStream.target_latency = 500
"""


def synthetic_volume(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """int16 HU: air around an elliptic body, with two brighter organs and a small brighter lesion."""
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij"))
    volume = np.full(shape, -1000.0)
    volume[(grid ** 2).sum(axis=0) < 0.8] = 20.0
    for _ in range(2):
        centre, radius = rng.uniform(-0.4, 0.4, size=3), rng.uniform(0.15, 0.3, size=3)
        volume[(((grid - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(axis=0) < 1] = 180.0
        lesion = centre + rng.uniform(-0.1, 0.1, size=3)
        volume[(((grid - lesion[:, None, None, None]) / 0.08) ** 2).sum(axis=0) < 1] = 260.0
    return np.clip(volume + rng.normal(0, 4, shape), -1024, 3000).astype(np.int16)


def write_case(folder: Path, image: np.ndarray, label: np.ndarray, spacing) -> None:
    import nibabel

    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*spacing, 1.0])
    nibabel.save(nibabel.Nifti1Image(image, affine), str(folder / IMAGE))
    nibabel.save(nibabel.Nifti1Image(label.astype(np.uint8), affine), str(folder / LABEL))


def centre_output(model, image: np.ndarray) -> None:
    """Remove each class's mean logit on a window of ``image`` and divide by its spread."""
    import torch

    conv = model.output.conv[0]
    with torch.no_grad():
        window = torch.from_numpy(image[np.newaxis, :, :ROI, :ROI, :ROI])
        logits = model(window)[0].flatten(1)
        mean, spread = logits.mean(dim=1), logits.std(dim=1).clamp(min=1e-6)
        conv.weight.div_(spread[:, None, None, None, None])
        conv.bias.sub_(mean).div_(spread)


def build(out: Path, seed: int = 0) -> None:
    """Write ``inference_cases.json``, the cases under ``kits19/data`` and the checkpoint."""
    import torch

    rng = np.random.default_rng(seed)
    for case, shape, spacing in CASES:
        write_case(out / CASES_DIR / case, synthetic_volume(rng, shape), np.zeros(shape, np.uint8), spacing)
    shutil.copytree(out / CASES_DIR / DUPLICATE[1], out / CASES_DIR / DUPLICATE[0])
    (out / CASES_FILE).write_text(json.dumps([case for case, _, _ in CASES] + [DUPLICATE[0]]))
    torch.manual_seed(seed)
    model = network(FILTERS).eval()
    image, spacing, _ = read_nifti(out / CASES_DIR / CASES[0][0] / IMAGE, "imaging volume")
    centre_output(model, preprocess(image, np.zeros(image.shape, np.uint8), spacing)[0])
    torch.save({"epoch": 0, "best_model_state_dict": model.state_dict()}, out / CHECKPOINT)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def to_case_grid(labels: np.ndarray, shape: tuple[int, ...], spacing) -> np.ndarray:
    """Labels of the preprocessed grid taken back to a case's own grid (see the module docstring)."""
    from scipy.ndimage import zoom

    resampled = list(spacing) != list(TARGET_SPACING)  # as dataset.resample decides
    zoomed = [int(round(s * f)) for s, f in zip(shape, zoom_factors(spacing))] if resampled else list(shape)
    volume = labels
    for axis, size in enumerate(zoomed):
        front, back = min_pads(size)
        (crop_front, crop_back), (pad_front, pad_back) = window_adjustment(size + front + back)
        keep = [slice(None)] * 3
        keep[axis] = slice(pad_front, volume.shape[axis] - pad_back)
        volume = volume[tuple(keep)]
        widths = [(0, 0)] * 3
        widths[axis] = (crop_front, crop_back)
        volume = np.pad(volume, widths, mode="edge")
        keep[axis] = slice(front, volume.shape[axis] - back)
        volume = volume[tuple(keep)]
    if resampled:
        volume = zoom(volume, [s / z for s, z in zip(shape, zoomed)], order=0, grid_mode=False)
    return volume


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Write each case's segmentation: the reference's labels on the case's own grid."""
    from benchmarks.unet3d.dataset import load_case, read_cases

    for index, case in enumerate(read_cases(out)):
        folder = out / CASES_DIR / case
        image, spacing, _ = read_nifti(folder / IMAGE, "imaging volume")
        grid = load_case(out, case)[0].shape[1:]
        labels = to_case_grid(outputs[index].reshape(grid), image.shape, spacing)
        write_case(folder, image, labels, spacing)
