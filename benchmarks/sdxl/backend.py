"""SDXL 1.0 base as the reference's ``backend_pytorch.py`` runs it, batched.

The pipeline folder (``model/``) is diffusers' layout: ``unet``, ``vae``, ``text_encoder`` (CLIP
ViT-L), ``text_encoder_2`` (OpenCLIP ViT-bigG, with projection), ``tokenizer``, ``tokenizer_2`` and
``scheduler``. Each part is loaded by its own class from safetensors only (``model_index.json``
names classes to import, so it is not read), fp32 or the snapshot's fp16 variant.

Generation as the reference: the caption's token ids (``dataset.py``) through both text encoders
(the penultimate hidden states concatenated, the pooled projection of the second), the negative
prompt likewise, EulerDiscreteScheduler, 20 steps, guidance 8.0, the pipeline's default size
(1024 x 1024 for SDXL) and the one initial latent ``latents/latents.pt`` for every prompt. The
response is the image as uint8 HWC: diffusers' [0, 1] output x 255, rounded half to even.

Batching: a batch of prompts is one pipeline call, whose UNet runs 2 x batch rows (classifier-free
guidance stacks the negative and positive rows); the negative prompt's embeddings are computed once.
``load_reference`` runs one prompt per call and encodes the negative prompt each time, as the
reference does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.sdxl.dataset import MODEL_DIR, load_tokenizers, tokenize
from harness.backends.hf import TORCH_DTYPES
from harness.checkpoint import load_weights_only
from harness.errors import DataError

LATENTS = Path("latents") / "latents.pt"
NEGATIVE_PROMPT = "normal quality, low quality, worst quality, low res, blurry, nsfw, nude"
STEPS = 20
GUIDANCE = 8.0
PARTS = {"unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "text_encoder": "CLIPTextModel",
         "text_encoder_2": "CLIPTextModelWithProjection", "scheduler": "EulerDiscreteScheduler"}


def _weights_variant(folder: Path, part: str) -> str | None:
    """None for a part saved at its own precision, "fp16" for a snapshot of diffusers' fp16 variant."""
    files = [p.name for p in (folder / part).glob("*.safetensors")]
    if any(not name.endswith(".fp16.safetensors") for name in files):
        return None
    if files:
        return "fp16"
    raise DataError(f"{folder / part} has no .safetensors weights: the SDXL pipeline folder needs its {part} part "
                    f"in safetensors (pickled .bin weights are not loaded); copy the snapshot's {part} folder")


def load_pipeline(data_dir: Path, device: str, dtype: str):
    """The StableDiffusionXLPipeline of ``data_dir/model``, each part checked and named when missing."""
    import diffusers
    import torch
    import transformers

    folder = data_dir / MODEL_DIR
    for part in PARTS:
        if not (folder / part).is_dir():
            raise DataError(f"{folder / part} is missing: the SDXL pipeline folder needs its {part} part "
                            f"({PARTS[part]}); copy the whole stable-diffusion-xl-base-1.0 snapshot "
                            f"(see benchmarks/sdxl/README.md), or run without --data for the demo tier")
    torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
    for library in (diffusers, transformers):  # a run's log is not a terminal
        library.utils.logging.disable_progress_bar()
    parts = {}
    for part, name in PARTS.items():
        try:
            if part == "scheduler":
                parts[part] = diffusers.EulerDiscreteScheduler.from_pretrained(str(folder / part))
            elif part.startswith("text_encoder"):
                parts[part] = getattr(transformers, name).from_pretrained(
                    str(folder / part), dtype=torch_dtype, use_safetensors=True, local_files_only=True,
                    variant=_weights_variant(folder, part))
            else:
                parts[part] = getattr(diffusers, name).from_pretrained(
                    str(folder / part), torch_dtype=torch_dtype, use_safetensors=True, local_files_only=True,
                    variant=_weights_variant(folder, part), low_cpu_mem_usage=False)
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise DataError(f"{folder / part} is not a loadable {name} ({str(exc)[:300]}): copy the snapshot's {part} "
                            f"folder again") from exc
    tokenizer, tokenizer_2 = load_tokenizers(data_dir)
    pipe = diffusers.StableDiffusionXLPipeline(tokenizer=tokenizer, tokenizer_2=tokenizer_2, add_watermarker=False,
                                               **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_latents(data_dir: Path, unet_config) -> "torch.Tensor":  # noqa: F821 - torch is imported lazily
    """The initial latent, float32 [1, C, S, S] for the UNet's C input channels and sample size S."""
    import torch

    path = data_dir / LATENTS
    latents = load_weights_only(path, "a readable tensor file", "put the reference's latents.pt (text_to_image/tools/"
                                "latent.py, seed 0) there, or run without --data for the demo tier")
    shape = (1, unet_config.in_channels, unet_config.sample_size, unet_config.sample_size)
    if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != shape:
        found = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise DataError(f"{path} holds {found}, but this pipeline's UNet starts from one latent of shape {shape}: use "
                        f"the latents.pt made for this model (the reference's is (1, 4, 128, 128))")
    return latents.float()


def to_payload(image: "torch.Tensor") -> np.ndarray:  # noqa: F821
    """One [3, H, W] image in [0, 1] as the reference's post-processing makes it: uint8 [H, W, 3]."""
    return (image.cpu().permute(1, 2, 0).float().numpy() * 255).round().astype(np.uint8)


class SdxlBackend:
    """Batched generation; ``as_reference``: one prompt per call, the negative prompt encoded each time."""

    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch

        self.device = torch.device(device)
        self.pipe = load_pipeline(data_dir, device, dtype)
        self.as_reference = as_reference
        self.latents = load_latents(data_dir, self.pipe.unet.config).to(self.device, self.pipe.unet.dtype)
        self.negative_ids = torch.from_numpy(tokenize([self.pipe.tokenizer, self.pipe.tokenizer_2],
                                                      [NEGATIVE_PROMPT])).to(self.device)
        self.negative = None if as_reference else self.encode(self.negative_ids)

    def encode(self, ids: "torch.Tensor") -> tuple:  # noqa: F821
        """(embeddings [B, 77, D1 + D2], pooled [B, P]) of token ids [B, 2, 77], as the reference's
        ``encode_tokens``: each encoder's penultimate hidden states, the second encoder's projection."""
        import torch

        states = []
        pooled = None
        with torch.inference_mode():
            for row, encoder in enumerate((self.pipe.text_encoder, self.pipe.text_encoder_2)):
                out = encoder(ids[:, row], output_hidden_states=True)
                pooled = out[0]
                states.append(out.hidden_states[-2])
        dtype = self.pipe.text_encoder_2.dtype
        return torch.cat(states, dim=-1).to(dtype), pooled.to(dtype)

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        if self.as_reference and len(samples) > 1:
            return [image for sample in samples for image in self.predict([sample])]
        n = len(samples)
        embeds, pooled = self.encode(torch.from_numpy(np.stack(samples)).to(self.device))
        negative, negative_pooled = self.negative or self.encode(self.negative_ids)
        with torch.inference_mode():
            images = self.pipe(prompt_embeds=embeds, pooled_prompt_embeds=pooled,
                               negative_prompt_embeds=negative.expand(n, -1, -1),
                               negative_pooled_prompt_embeds=negative_pooled.expand(n, -1),
                               guidance_scale=GUIDANCE, num_inference_steps=STEPS, output_type="pt",
                               latents=self.latents.expand(n, -1, -1, -1)).images
        return [to_payload(image) for image in images]

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> SdxlBackend:
    return SdxlBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> SdxlBackend:
    """The reference's way: one prompt per pipeline call, its negative prompt encoded with it."""
    return SdxlBackend(data_dir, device, dtype, as_reference=True)
