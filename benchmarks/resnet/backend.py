"""ResNet-50 v1.5 in PyTorch: torchvision's topology with the reference's ``resnet50-19c8e357.pth``.

That checkpoint is torchvision's state dict: 1000 classes, so the predicted class needs no offset
(the reference's ``imagenet_pytorch`` profile post-processes with offset 0; only the TF/ONNX
graphs have a background class and subtract 1). The response is the arg-max class index as one
float32, as the reference responds. Inference runs in channels-last layout (faster on CPU and
GPU; the same function), with each batch norm folded into the convolution before it (the same
function up to float rounding; each batch norm no longer makes its own pass over the
activations: 1.5x the eager batch-1 throughput on one 2-core AVX2 machine, 1.1x on an AVX-512 one). ``load_reference`` runs the network as
the reference's PyTorch backend does (eager, NCHW, batch norms unfolded): the performance
scripts' baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import DataError

CHECKPOINT = "resnet50-19c8e357.pth"
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def load_state_dict(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLPerf ResNet-50 PyTorch checkpoint ({CHECKPOINT}, "
                        f"zenodo 4588417) there, or run without --data to use the demo tier")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise DataError(f"{path} is not a readable PyTorch state dict ({exc}): download {CHECKPOINT} again") from exc
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not a state dict: use the torchvision-format "
                        f"{CHECKPOINT}")
    return state


class ResnetBackend:
    def __init__(self, data_dir: Path, device: str, dtype: str, as_reference: bool = False) -> None:
        import torch
        import torchvision
        from torch.fx.experimental.optimization import fuse

        path = data_dir / CHECKPOINT
        model = torchvision.models.resnet50()
        state = load_state_dict(path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
            detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
            raise DataError(f"{path} is not a torchvision ResNet-50 state dict ({detail[:200]}): use "
                            f"{CHECKPOINT}") from exc
        self.device = torch.device(device)
        self.dtype = getattr(torch, TORCH_DTYPES[dtype])
        model = model.eval()
        self.layout = torch.contiguous_format if as_reference else torch.channels_last
        if not as_reference:
            model = fuse(model)  # conv + batch norm -> one conv
        self.model = model.to(self.device, self.dtype, memory_format=self.layout).eval()

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        batch = torch.from_numpy(np.stack(samples)).to(self.device, self.dtype, memory_format=self.layout)
        with torch.inference_mode():
            classes = self.model(batch).argmax(dim=1).to(torch.float32).cpu().numpy()
        return [classes[i:i + 1] for i in range(len(samples))]

    def warmup(self, sample: np.ndarray) -> None:
        self.predict([sample])


def load(data_dir: Path, device: str, dtype: str) -> ResnetBackend:
    return ResnetBackend(data_dir, device, dtype)


def load_reference(data_dir: Path, device: str, dtype: str) -> ResnetBackend:
    """The same network run as the reference runs it: eager, NCHW, each batch norm on its own."""
    return ResnetBackend(data_dir, device, dtype, as_reference=True)
