"""Demo tier: a tiny random-weight SDXL pipeline of the real component classes, built offline.

The pipeline folder is what ``StableDiffusionXLPipeline.save_pretrained`` writes for SDXL's parts:
a ``UNet2DConditionModel`` with the ``text_time`` added embedding (pooled text + six size ids), an
``AutoencoderKL``, ``CLIPTextModel`` and ``CLIPTextModelWithProjection`` (both with SDXL's legacy
``eos_token_id`` 2, so the pooled token is the arg-max id, as in the real configs), the SDXL
scheduler config, and two CLIP tokenizers with the real CLIP BPE (open_clip's bundled merges; the
second pads with "!", as SDXL's second tokenizer does). Sizes are tiny: a 4 x 8 x 8 latent and
32 x 32 images, so 20 steps at guidance 8.0 run in well under a second per image on a CPU.

Scoring has its real inputs too: an open_clip folder (``open_clip_config.json`` of a tiny ViT with
QuickGELU, ``open_clip_model.safetensors``), the FID Inception state dict under its real name
(every tensor of the real one; those of the 64-feature block are random, the rest, which that
block never runs, are stored as one broadcast zero each), and ``val2014.npz`` statistics made from
synthetic pictures standing in for COCO's. The captions file has the real columns.

Ground truth: the reference execution's images (one prompt per call) are scored against these
statistics and captions (the tiny CLIP's text projection signed so that their score is positive,
``ground_truth``); a demo run PASSes when its CLIP score and FID are within the round's ratios of
the reference's (``harness.demo``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from benchmarks.sdxl.accuracy import CLIP_CONFIG, CLIP_DIR, CLIP_WEIGHTS, INCEPTION, STATISTICS, activations
from benchmarks.sdxl.backend import LATENTS
from benchmarks.sdxl.dataset import CAPTIONS, MODEL_DIR

N_SAMPLES = 16
LATENT_SIZE = 8
FID_FEATURES = 64  # pytorch-fid's smallest: the first block, so the demo's sqrtm is 64 x 64
N_STAT_IMAGES = 96
SUBJECTS = ("a red bus", "two dogs", "a man", "a kitchen", "a plate of food", "a train", "a cat", "three zebras",
            "a woman", "a clock tower", "a bowl of fruit", "a surfer", "a giraffe", "a laptop", "a teddy bear",
            "an elephant")
PLACES = ("on a city street", "in a grassy field", "next to a window", "at the beach", "on a wooden table",
          "under a cloudy sky", "near the station", "in a small room")
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs on a CPU. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput (10 to 45 images/s on 2 CPU cores):
# the one query holds target_qps x min_duration x 1.1 samples and must outlast min_duration.
# Server judges the 99th percentile: early stopping needs several hundred queries.
stable-diffusion-xl.Offline.min_duration = 2000
stable-diffusion-xl.Offline.min_query_count = 1
stable-diffusion-xl.Offline.target_qps = 70
stable-diffusion-xl.Server.min_duration = 3000
stable-diffusion-xl.Server.min_query_count = 480
stable-diffusion-xl.Server.target_qps = 10
stable-diffusion-xl.SingleStream.min_duration = 2000
stable-diffusion-xl.SingleStream.min_query_count = 16
stable-diffusion-xl.SingleStream.target_latency = 500
"""


def clip_bpe() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary and merges in the Hugging Face tokenizer's files, from open_clip's copy of the BPE."""
    import open_clip.tokenizer as tok

    merges = gzip.open(tok.default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    pieces = list(tok.bytes_to_unicode().values())
    vocab = pieces + [p + "</w>" for p in pieces] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {piece: i for i, piece in enumerate(vocab)}, merges


def tokenizers(work: Path) -> tuple:
    from transformers import CLIPTokenizer

    vocab, merges = clip_bpe()
    (work / "vocab.json").write_text(json.dumps(vocab))
    (work / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    common = dict(vocab_file=str(work / "vocab.json"), merges_file=str(work / "merges.txt"), model_max_length=77)
    return CLIPTokenizer(**common, pad_token="<|endoftext|>"), CLIPTokenizer(**common, pad_token="!")


def pipeline(work: Path, seed: int):
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32, bos_token_id=0,
                eos_token_id=2, pad_token_id=1)
    encoder = CLIPTextModel(CLIPTextConfig(**text))
    encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text | {"hidden_act": "gelu"}))
    unet = diffusers.UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), transformer_layers_per_block=(1, 1), use_linear_projection=True,
        cross_attention_dim=64, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32, norm_num_groups=8)
    vae = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=8,
        sample_size=LATENT_SIZE * 4, scaling_factor=0.13025, force_upcast=True)
    scheduler = diffusers.EulerDiscreteScheduler(  # SDXL base's scheduler config
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False, steps_offset=1,
        timestep_spacing="leading")
    tokenizer, tokenizer_2 = tokenizers(work)
    return diffusers.StableDiffusionXLPipeline(vae=vae, text_encoder=encoder, text_encoder_2=encoder_2,
                                               tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
                                               scheduler=scheduler, add_watermarker=False)


def clip_model(folder: Path, seed: int) -> None:
    """A tiny open_clip ViT (QuickGELU, OpenAI's preprocessing) saved as open_clip's Hugging Face layout."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    model_cfg = {"embed_dim": 32, "quick_gelu": True,
                 "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 32, "head_width": 16},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    torch.manual_seed(seed + 1)
    model = open_clip.CLIP(**{k: v for k, v in model_cfg.items() if k != "quick_gelu"}, quick_gelu=True)
    folder.mkdir()
    (folder / CLIP_CONFIG).write_text(json.dumps({
        "model_cfg": model_cfg,
        "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
                           "interpolation": "bicubic", "resize_mode": "shortest"}}, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / CLIP_WEIGHTS))


def inception_weights(path: Path, seed: int) -> None:
    """Every tensor of the FID Inception's state dict; the first block's random, each other one zero."""
    import torch
    import torchvision

    skeleton = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    generator = torch.Generator().manual_seed(seed + 2)
    state = {}
    for key, value in skeleton.state_dict().items():
        if not key.startswith(("Conv2d_1a_3x3.", "Conv2d_2a_3x3.", "Conv2d_2b_3x3.")):
            state[key] = torch.zeros((), dtype=value.dtype).expand(value.shape)  # one element on disk
        elif key.endswith("conv.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith("running_var") or key.endswith("bn.weight"):
            state[key] = torch.ones_like(value)
        else:
            state[key] = torch.zeros_like(value)
    path.parent.mkdir()
    torch.save(state, path)


def captions(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{SUBJECTS[i % len(SUBJECTS)]} {PLACES[int(rng.integers(len(PLACES)))]}" for i in range(N_SAMPLES)]


def stand_in_pictures(seed: int, side: int) -> list[np.ndarray]:
    """Pictures with structure (gradients and boxes), standing in for the COCO images of val2014.npz."""
    rng = np.random.default_rng(seed + 3)
    y, x = np.mgrid[0:side, 0:side] / side
    pictures = []
    for _ in range(N_STAT_IMAGES):
        base = np.stack([x * rng.uniform(0, 255), y * rng.uniform(0, 255), (x + y) * rng.uniform(0, 127)], axis=-1)
        for _ in range(int(rng.integers(1, 4))):
            top, left, size = (int(v) for v in rng.integers(0, side // 2, size=3))
            base[top:top + size + 4, left:left + size + 4] = rng.integers(0, 256, size=3)
        pictures.append(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))
    return pictures


def build(out: Path, seed: int = 0) -> None:
    """Write ``model/``, ``latents/latents.pt``, ``captions/captions_source.tsv``, ``clip/``, the FID
    Inception weights, ``val2014.npz`` and a demo ``user.conf``."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    from benchmarks.sdxl.accuracy import load_inception

    pipe = pipeline(out, seed)
    pipe.save_pretrained(out / MODEL_DIR, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        (out / name).unlink()
    (out / LATENTS).parent.mkdir()
    # as the reference's tools/latent.py: a CPU generator seeded once, one latent for every prompt
    torch.save(randn_tensor((1, 4, LATENT_SIZE, LATENT_SIZE), generator=torch.Generator().manual_seed(seed),
                            dtype=torch.float32), out / LATENTS)
    (out / CAPTIONS).parent.mkdir()
    rows = ["id\timage_id\tcaption\theight\twidth\tfile_name\tcoco_url"]
    for i, caption in enumerate(captions(seed)):
        image_id = 100000 + 37 * i
        rows.append(f"{70 + 11 * i}\t{image_id}\t{caption}\t480\t640\tCOCO_val2014_{image_id:012d}.jpg\t"
                    f"http://images.cocodataset.org/val2014/COCO_val2014_{image_id:012d}.jpg")
    (out / CAPTIONS).write_text("\n".join(rows) + "\n")
    clip_model(out / CLIP_DIR, seed)
    inception_weights(out / INCEPTION, seed)
    features = activations(stand_in_pictures(seed, LATENT_SIZE * 4), load_inception(out, FID_FEATURES))
    np.savez(out / STATISTICS, mu=features.mean(axis=0), sigma=np.cov(features, rowvar=False))
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Sign the demo CLIP's text projection so that the reference's images score positive.

    A random CLIP's cosines of images and captions have either sign, and the round's CLIP target is a
    ratio window around the reference's score; negating the text projection flips every score's
    sign and nothing else. The reference's images are otherwise judged by their own CLIP score and
    FID against the demo's captions and statistics (``harness.demo`` records them)."""
    from safetensors.torch import load_file, save_file

    from benchmarks.sdxl.accuracy import clip_scores, images
    from benchmarks.sdxl.dataset import read_captions

    found, _ = images(outputs)
    texts = [caption for _, caption in read_captions(out)]
    if np.mean(clip_scores([found[i] for i in sorted(found)], [texts[i] for i in sorted(found)], out)) < 0:
        weights = load_file(str(out / CLIP_DIR / CLIP_WEIGHTS))
        weights["text_projection"] = -weights["text_projection"]
        save_file(weights, str(out / CLIP_DIR / CLIP_WEIGHTS))
