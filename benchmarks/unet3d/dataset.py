"""KiTS19 cases, preprocessed as the reference's ``preprocess.py``, once, into a cache of arrays.

Data folder layout: ``inference_cases.json`` (the reference's ``meta/inference_cases.json``: the
43 case names in LoadGen order, case_00400 being a copy of case_00185) and
``kits19/data/<case>/imaging.nii.gz`` + ``segmentation.nii.gz`` for each, as KiTS19 ships them
(the copy made as the reference's ``cp -Rf``), and the model (see ``backend.py``).

Preprocessing of one case, in the reference's order: both volumes as stored (no reorientation),
the spacing from the header's ``pixdim[1:4]``; resampled to spacing [1.6, 1.2, 1.2] with SciPy's
``zoom`` (linear for the image with the raw minimum outside, nearest for the label, grid_mode off)
unless the spacing is that already; HU clipped to [-79, 304] and normalised (x - 101) / 76.9; every
axis under 128 padded to 128 by repeating its edges; then each axis made a multiple of 64 (at
least 128): cropped when it is less than 32 past one, else padded with -2.2 (label 0), split
front/back as the reference splits them. The result, image float32 and label uint8 [1, D, H, W], is
kept in ``$HARNESS_CACHE/unet3d`` under the sha256 of the two files (arrays, never pickles); later
runs read it from there without reading the volumes again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

from harness import datadir
from harness.errors import DataError
from harness.samples import HeldDataset
from harness.util import store_cache

CASES_FILE = "inference_cases.json"
CASES_DIR = Path("kits19") / "data"
IMAGE, LABEL = "imaging.nii.gz", "segmentation.nii.gz"
TARGET_SPACING = (1.6, 1.2, 1.2)
ROI = 128
STRIDE = ROI // 2  # the sliding window's 0.5 overlap
HU_RANGE = (-79.0, 304.0)
MEAN, STD = 101.0, 76.9
PAD_VALUE = -2.2
CACHE_VERSION = "1"  # part of the cache key: bump when preprocessing changes
CASE_NAME = re.compile(r"case_\d{5}")


def read_cases(data_dir: Path) -> list[str]:
    """The case names in LoadGen order; each must be a KiTS19 case with both volumes present."""
    path = data_dir / CASES_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the reference's meta/inference_cases.json there with the KiTS19 "
                        f"cases under {data_dir / CASES_DIR} (see benchmarks/unet3d/README.md), or run without "
                        f"--data for the demo tier")
    try:
        cases = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a JSON list of case names ({exc})") from exc
    if not isinstance(cases, list) or not cases or not all(isinstance(c, str) for c in cases):
        raise DataError(f"{path} must be a non-empty JSON list of case names such as \"case_00000\"")
    for case in cases:
        if not CASE_NAME.fullmatch(case):
            raise DataError(f"{path} names {case!r}, which is not a KiTS19 case name (case_ and five digits)")
        for name in (IMAGE, LABEL):
            if not (data_dir / CASES_DIR / case / name).is_file():
                raise DataError(f"{path} names {case}, but {data_dir / CASES_DIR / case / name} is missing: an "
                                f"unknown case, or one not downloaded (case_00400 is the reference's copy of "
                                f"case_00185: `cp -R case_00185 case_00400`)")
    return cases


def read_nifti(path: Path, kind: str) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """(array as stored, spacing from pixdim[1:4], affine); a volume that is not 3-D or whose affine
    or spacing is unusable is named."""
    import nibabel

    try:
        volume = nibabel.load(str(path))
        data = np.asarray(volume.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for a damaged file
        raise DataError(f"{path} is not a readable NIfTI volume ({exc}): download the case again") from exc
    if data.ndim != 3:
        raise DataError(f"{path} has {data.ndim} dimensions of shape {data.shape}; a KiTS19 {kind} is one 3-D volume")
    affine = np.asarray(volume.affine, dtype=np.float64)
    spacing = tuple(float(v) for v in volume.header["pixdim"][1:4])
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DataError(f"{path} has an unusable affine (not finite or singular): download the case again")
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise DataError(f"{path} has the voxel spacing {spacing} in its header; spacings must be positive")
    return data, spacing, affine


def zoom_factors(spacing: tuple[float, float, float]) -> np.ndarray:
    return np.asarray(spacing, dtype=np.float64) / np.asarray(TARGET_SPACING)


def resample(image: np.ndarray, label: np.ndarray, spacing: tuple[float, float, float]):
    from scipy.ndimage import zoom

    if list(spacing) == list(TARGET_SPACING):  # compared as the reference compares (exactly)
        return image, label
    factors = zoom_factors(spacing)
    return (zoom(image, factors, order=1, mode="constant", cval=float(image.min()), grid_mode=False),
            zoom(label, factors, order=0, mode="constant", cval=int(label.min()), grid_mode=False))


def min_pads(size: int) -> tuple[int, int]:
    """Edge padding of an axis shorter than the ROI, front and back."""
    missing = max(ROI - size, 0)
    return missing // 2, missing - missing // 2


def window_adjustment(size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((crop front, crop back), (pad front, pad back)) that make an axis a multiple of the stride
    of at least the ROI: cropped when it is less than half a stride past one, else padded."""
    over = size % STRIDE
    crop = (over // 2, over - over // 2) if over < STRIDE // 2 else (0, 0)
    size -= sum(crop)
    pad = (STRIDE - size % STRIDE) % STRIDE
    if size + pad < ROI:
        pad += STRIDE
    return crop, (pad // 2, pad - pad // 2)


def preprocess(image: np.ndarray, label: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """One case: image float32 and label uint8, both [1, D, H, W] (see the module docstring)."""
    image, label = resample(image.astype(np.float32), label.astype(np.uint8), spacing)
    image = ((np.clip(image, *HU_RANGE) - MEAN) / STD).astype(np.float32)
    pads = [min_pads(s) for s in image.shape]
    image, label = np.pad(image, pads, mode="edge"), np.pad(label, pads, mode="edge")
    adjust = [window_adjustment(s) for s in image.shape]
    crop = tuple(slice(front, size - back) for size, ((front, back), _) in zip(image.shape, adjust))
    pads = [pad for _, pad in adjust]
    image = np.pad(image[crop], pads, mode="constant", constant_values=PAD_VALUE)
    label = np.pad(label[crop], pads, mode="constant", constant_values=0)
    return image[np.newaxis].astype(np.float32), label[np.newaxis].astype(np.uint8)


def preprocess_case(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    image, spacing, affine = read_nifti(folder / IMAGE, "imaging volume")
    label, _, label_affine = read_nifti(folder / LABEL, "segmentation")
    if image.shape != label.shape:
        raise DataError(f"{folder}: the imaging volume has shape {image.shape} and the segmentation {label.shape}; "
                        f"they must be the same grid")
    if not np.allclose(affine, label_affine, atol=1e-4):
        raise DataError(f"{folder}: the imaging volume and the segmentation have different affines; they must be "
                        f"the same grid")
    return preprocess(image, label, spacing)


def case_key(folder: Path) -> str:
    """The cache key of a case: its two files' sha256 (``harness.artifacts.file_hashes``, which
    hashes a file again only when its size or mtime changed) and the preprocessing version."""
    from harness.artifacts import file_hashes

    hashes = file_hashes(folder, [IMAGE, LABEL])
    return hashlib.sha256(f"{CACHE_VERSION}/{hashes[IMAGE]}/{hashes[LABEL]}".encode()).hexdigest()


def load_case(data_dir: Path, case: str) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessed (image, label) of a case, from the cache or made (and cached) now."""
    folder = data_dir / CASES_DIR / case
    path = datadir.cache_root() / "unet3d" / f"{case_key(folder)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as cached:
                return cached["image"], cached["label"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is made again
    image, label = preprocess_case(folder)
    buffer = io.BytesIO()
    np.savez(buffer, image=image, label=label)
    store_cache(path, buffer.getvalue())
    return image, label


class Dataset(HeldDataset):
    """QSL samples: each case's preprocessed image float32 [1, D, H, W], held while LoadGen has it loaded."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.cases = read_cases(data_dir)
        super().__init__(len(self.cases), lambda index: load_case(data_dir, self.cases[index])[0])


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
