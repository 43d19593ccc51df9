"""ResNet-50 v1.5: torchvision's topology with the reference's ``resnet50-19c8e357.pth``.

That checkpoint is torchvision's state dict: 1000 classes, so the predicted class needs no offset
(the reference's ``imagenet_pytorch`` profile post-processes with offset 0; only the TF/ONNX
graphs have a background class and subtract 1). The response is the arg-max class index as one
float32, as the reference responds.

On CPU at fp32 the network runs in ONNX Runtime (``harness/onnxrt.py``: the same weights and
graph, exported once per checkpoint and cached; the reference offers that runtime too, profile
``resnet50-onnxruntime``).
Its kernels fuse each batch norm, activation and residual add into the convolution and keep a
blocked layout across the network, and a sample's logits are the same bytes whatever it is
batched with (tested). Elsewhere (CUDA, fp16, bf16) PyTorch runs it in channels-last layout with
each batch norm folded into the convolution before it (the same function up to float rounding).
``load_reference`` runs the network as the reference's PyTorch backend does (eager, NCHW, batch
norms unfolded): the performance scripts' baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.checkpoint import load_into, load_weights_only
from harness.errors import DataError

CHECKPOINT = "resnet50-19c8e357.pth"
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def checkpoint(data_dir: Path) -> Path:
    path = data_dir / CHECKPOINT
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLPerf ResNet-50 PyTorch checkpoint ({CHECKPOINT}, "
                        f"zenodo 4588417) there, or run without --data to use the demo tier")
    return path


def load_state_dict(path: Path) -> dict:
    state = load_weights_only(path, "a readable PyTorch state dict", f"download {CHECKPOINT} again")
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not a state dict: use the torchvision-format "
                        f"{CHECKPOINT}")
    return state


def network(data_dir: Path):
    """torchvision's ResNet-50 holding the checkpoint in ``data_dir``, in eval mode."""
    import torchvision

    path = checkpoint(data_dir)
    model = torchvision.models.resnet50()
    load_into(model, load_state_dict(path), path, "is not a torchvision ResNet-50 state dict", f"use {CHECKPOINT}")
    return model.eval()


def _classes(logits: np.ndarray) -> list[np.ndarray]:
    classes = logits.argmax(axis=1).astype(np.float32)
    return [classes[i:i + 1] for i in range(len(classes))]


class ResnetBackend:
    """PyTorch: channels-last with folded batch norms, or eager NCHW as the reference runs it."""

    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch
        from torch.fx.experimental.optimization import fuse

        model = network(data_dir)
        self.device = torch.device(device)
        self.dtype = getattr(torch, TORCH_DTYPES[dtype])
        self.layout = torch.contiguous_format if as_reference else torch.channels_last
        if not as_reference:
            model = fuse(model)  # conv + batch norm -> one conv
        self.model = model.to(self.device, self.dtype, memory_format=self.layout).eval()

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        batch = torch.from_numpy(np.stack(samples)).to(self.device, self.dtype, memory_format=self.layout)
        with torch.inference_mode():
            return _classes(self.model(batch).float().cpu().numpy())

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample])


class OnnxResnetBackend:
    """ONNX Runtime on CPU at fp32, on as many threads as torch's pool has (the replica's share)."""

    def __init__(self, data_dir: Path) -> None:
        import torch

        from harness.artifacts import file_hashes
        from harness.onnxrt import Session

        checkpoint(data_dir)  # a missing file is named before it is hashed
        key = file_hashes(data_dir, [CHECKPOINT])[CHECKPOINT]
        self.session = Session(lambda: network(data_dir), torch.zeros(2, 3, 224, 224), "resnet50", key,
                               torch.get_num_threads())

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        return _classes(self.session.run(np.stack(samples)))

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> ResnetBackend | OnnxResnetBackend:
    if device == "cpu" and dtype == "fp32":
        return OnnxResnetBackend(data_dir)
    return ResnetBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> ResnetBackend:
    """The same network run as the reference runs it: eager, NCHW, each batch norm on its own."""
    return ResnetBackend(data_dir, device, dtype, as_reference=True)
