"""CLIP score and FID as the reference's v4.1 ``tools/accuracy_coco.py`` computes them.

Each sample's payload is its image, uint8 [H, W, 3] (H = W); the first record per sample counts,
as the reference skips repeated ``qsl_idx``. A failed sample (empty payload) is left out of both
scores and counted in ``failed`` (the run is INVALID for it anyway).

* CLIP score: open_clip's ViT-B-32 with OpenAI's weights, from ``clip/`` in the data folder (an
  ``open_clip_config.json`` with QuickGELU, as OpenAI's weights need, and
  ``open_clip_model.safetensors``). Per image: its validation transform (bicubic resize of the short
  side to 224, centre crop, OpenAI's normalisation), the caption through ``open_clip.tokenize``
  (77 tokens), both embeddings L2-normalised, 100 x their cosine, not clamped; the score is the mean.
* FID: pytorch-fid's InceptionV3 (the reference's ``inception.py`` is pytorch-fid 0.3.0's) with its
  weights from ``inception/pt_inception-2015-12-05-6726825d.pth`` in the data folder, loaded as
  plain tensors (pytorch-fid would fetch them from a URL and unpickle them unrestricted). Images
  as ``ToTensor`` makes them, Inception's own bilinear resize to 299 and [-1, 1] scaling, the
  activations average-pooled where they are not 1 x 1, their mean and covariance against ``mu``
  and ``sigma`` of ``val2014.npz``, and pytorch-fid's Frechet distance. The feature dimension is the
  statistics file's (2048 for the reference's; pytorch-fid also offers 64, 192 and 768).

``accuracy.txt`` is the line the reference prints, which the submission checker parses.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.sdxl.dataset import read_captions
from harness.checkpoint import load_weights_only
from harness.errors import DataError

CLIP_DIR = "clip"
CLIP_CONFIG = "open_clip_config.json"
CLIP_WEIGHTS = "open_clip_model.safetensors"
INCEPTION = Path("inception") / "pt_inception-2015-12-05-6726825d.pth"
STATISTICS = "val2014.npz"
SAMPLES_DIR = "images"  # next to the accuracy log: the round's sample images, for the submission
FID_DIMS = (64, 192, 768, 2048)
BATCH = 16  # images per CLIP / Inception forward pass


def images(outputs: dict[int, np.ndarray]) -> tuple[dict[int, np.ndarray], int]:
    """(index -> uint8 [H, W, 3], failed count); a payload that is not a square RGB image is refused."""
    found, failed = {}, 0
    for index, payload in outputs.items():
        if payload.size == 0:
            failed += 1
            continue
        side = math.isqrt(payload.size // 3)
        if side * side * 3 != payload.size:
            raise DataError(f"sample {index}'s response holds {payload.size} bytes, not a square RGB image "
                            f"(H x H x 3): the accuracy log is not from this benchmark")
        found[index] = np.asarray(payload, dtype=np.uint8).reshape(side, side, 3)
    return found, failed


def _keys(config: dict, prefix: str = "model_cfg") -> list[str]:
    """Every key of a nested config, dotted (``model_cfg.text_cfg.hf_model_name``)."""
    found = []
    for key, value in config.items():
        found.append(f"{prefix}.{key}")
        if isinstance(value, dict):
            found += _keys(value, f"{prefix}.{key}")
    return found


def load_clip(data_dir: Path):
    """(model, validation transform) of the open_clip folder ``clip/``."""
    import open_clip

    folder = data_dir / CLIP_DIR
    for name in (CLIP_CONFIG, CLIP_WEIGHTS):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} is missing: put open_clip's ViT-B-32 OpenAI weights there (the "
                            f"timm/vit_base_patch32_clip_224.openai snapshot: {CLIP_CONFIG} and {CLIP_WEIGHTS}), "
                            f"see benchmarks/sdxl/README.md")
    try:
        config = json.loads((folder / CLIP_CONFIG).read_text())
        quick_gelu = config["model_cfg"].get("quick_gelu")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{folder / CLIP_CONFIG} is not an open_clip config with a model_cfg ({exc})") from exc
    named = [key for key in _keys(config["model_cfg"]) if key.rsplit(".", 1)[-1].startswith(("hf_", "timm_"))]
    if named:
        # open_clip would build such a tower from a Hugging Face or timm model found by name, not from this folder
        raise DataError(f"{folder / CLIP_CONFIG} sets {', '.join(named)}: a tower taken from another model by name; the "
                        f"reference's CLIP is open_clip's own ViT-B-32, whose config names none")
    if quick_gelu is not True:
        raise DataError(f"{folder / CLIP_CONFIG} does not set model_cfg.quick_gelu: OpenAI's CLIP weights were trained "
                        f"with QuickGELU, and the reference builds the model with it; use the config of the "
                        f"timm/vit_base_patch32_clip_224.openai snapshot")
    try:
        model, _, transform = open_clip.create_model_and_transforms(f"local-dir:{folder}", weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DataError(f"{folder} is not a loadable open_clip model ({str(exc)[:300]}): copy it again") from exc
    return model.eval(), transform


def clip_scores(pictures: list[np.ndarray], captions: list[str], data_dir: Path) -> list[float]:
    """100 x the cosine of each image's and its caption's CLIP embeddings."""
    import open_clip
    import torch
    from PIL import Image

    model, transform = load_clip(data_dir)
    scores: list[float] = []
    with torch.inference_mode():
        for at in range(0, len(pictures), BATCH):
            batch = torch.stack([transform(Image.fromarray(p)) for p in pictures[at:at + BATCH]])
            image = model.encode_image(batch).float()
            text = model.encode_text(open_clip.tokenize(captions[at:at + BATCH])).float()
            image /= image.norm(dim=-1, keepdim=True)
            text /= text.norm(dim=-1, keepdim=True)
            scores += (100 * (image * text).sum(dim=-1)).tolist()
    return scores


def load_statistics(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``sigma`` of the reference images (``val2014.npz``), checked for shape."""
    path = data_dir / STATISTICS
    if not path.is_file():
        raise DataError(f"{path} is missing: put the reference's FID statistics (text_to_image/tools/val2014.npz) "
                        f"there, see benchmarks/sdxl/README.md")
    try:
        with np.load(path, allow_pickle=False) as stats:
            mu, sigma = np.asarray(stats["mu"], np.float64), np.asarray(stats["sigma"], np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not an .npz of FID statistics with mu and sigma ({exc}): use the reference's "
                        f"val2014.npz") from exc
    dims = mu.shape[0] if mu.ndim == 1 else None
    if dims not in FID_DIMS or sigma.shape != (dims, dims) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise DataError(f"{path} holds mu of shape {mu.shape} and sigma of shape {sigma.shape}: FID statistics are a "
                        f"mean of D features and their D x D covariance, D one of InceptionV3's "
                        f"{', '.join(map(str, FID_DIMS))} (2048 for the reference's val2014.npz)")
    return mu, sigma


def load_inception(data_dir: Path, dims: int):
    """pytorch-fid's InceptionV3 up to the block of ``dims`` features, with the data folder's weights."""
    from pytorch_fid import inception

    path = data_dir / INCEPTION
    state = load_weights_only(path, "the FID Inception state dict", "put pytorch-fid's FID Inception weights "
                              "(pt_inception-2015-12-05-6726825d.pth) there, see benchmarks/sdxl/README.md")
    try:
        with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: state):
            model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
    except Exception as exc:  # noqa: BLE001 - unreadable, wrong keys or shapes: the same advice
        raise DataError(f"{path} is not the FID Inception state dict ({str(exc)[:300]}): use pytorch-fid's "
                        f"pt_inception-2015-12-05-6726825d.pth") from exc
    return model.eval()


def activations(pictures: list[np.ndarray], model) -> np.ndarray:
    """float64 [N, D]: the Inception features of each image, as pytorch-fid's ``get_activations``."""
    import torch
    from torch.nn.functional import adaptive_avg_pool2d

    rows = []
    with torch.inference_mode():
        for at in range(0, len(pictures), BATCH):
            batch = torch.from_numpy(np.stack(pictures[at:at + BATCH])).permute(0, 3, 1, 2).float() / 255
            features = model(batch)[0]
            if features.shape[2] != 1 or features.shape[3] != 1:
                features = adaptive_avg_pool2d(features, output_size=(1, 1))
            rows.append(features.squeeze(3).squeeze(2).double().numpy())
    return np.concatenate(rows)


def fid(pictures: list[np.ndarray], data_dir: Path) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance
    from scipy.linalg import LinAlgWarning

    mu_ref, sigma_ref = load_statistics(data_dir)
    features = activations(pictures, load_inception(data_dir, mu_ref.shape[0]))
    mu, sigma = np.mean(features, axis=0), np.cov(features, rowvar=False)
    try:
        with warnings.catch_warnings():  # fewer images than features: a singular covariance, which sqrtm
            warnings.simplefilter("ignore", LinAlgWarning)  # says; the result is checked for being real
            return float(calculate_frechet_distance(mu_ref, sigma_ref, mu, sigma))
    except ValueError as exc:  # a covariance product whose square root is far from real
        raise DataError(f"the Frechet distance of {len(pictures)} images cannot be computed ({exc}): score more "
                        f"images") from exc


def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict[str, float | int | str | None]:
    captions = [caption for _, caption in read_captions(data_dir)]
    found, failed = images(outputs)
    order = sorted(found)
    pictures = [found[i] for i in order]
    metrics: dict[str, float | int | str | None] = {
        "clip_score": float(np.mean(clip_scores(pictures, [captions[i] for i in order], data_dir)))
        if pictures else 0.0,
        "fid_score": None, "images": len(pictures), "failed": failed}
    if len(pictures) >= 2:
        metrics["fid_score"] = fid(pictures, data_dir)
    else:
        metrics["unscored"] = f"fid_score: FID compares covariances and needs 2 or more images, not {len(pictures)}"
    return metrics


def save_samples(outputs: dict[int, np.ndarray], data_dir: Path, ids: list[int], folder: Path) -> None:
    """The round's sample images as the reference's ``--compliance-images-path`` writes them:
    ``captions.txt`` (``<id>  <caption>`` per line, two spaces) and ``<id>.png`` for each id the
    run answered; ids beyond the dataset in use (a demo, a partial run) are left out."""
    from PIL import Image

    captions = [caption for _, caption in read_captions(data_dir)]
    present = [i for i in ids if i < len(captions)]
    (folder / "captions.txt").write_text("".join(f"{i}  {captions[i]}\n" for i in present))
    found, _ = images({i: outputs[i] for i in present if i in outputs})
    for i, picture in found.items():
        Image.fromarray(picture).save(folder / f"{i}.png")


def sample_files(ids: list[int]) -> list[str]:
    """What ``save_samples`` writes for a run of the whole dataset, as the checker looks for it."""
    return ["captions.txt", *(f"{i}.png" for i in ids)]


def accuracy_text(metrics: dict) -> str:
    """The reference's printed line, which the checker's regexes read (plain floats, not numpy's repr)."""
    fid_value = metrics["fid_score"]
    return (f"Accuracy Results: {{'FID_SCORE': {None if fid_value is None else float(fid_value)!r}, "
            f"'CLIP_SCORE': {float(metrics['clip_score'])!r}}}\n")
