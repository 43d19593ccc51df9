"""The MLPerf 3D-UNet (KiTS19) and its sliding-window inference, as the reference's SUTs run them.

The network is the reference's ``Unet3D``: an input block and four strided-convolution downsampling
blocks (filters 32, 64, 128, 256, 320), a bottleneck, five upsampling blocks (a 2x transposed
convolution, its output concatenated before the skip) and a 1x1x1 convolution to 3 classes; each
convolution block is Conv3d (no bias) + InstanceNorm3d (affine) + ReLU. Its weights come from the
MLPerf checkpoint (``3dunet_kits19_pytorch_checkpoint.pth``, the state dict under
``best_model_state_dict``), read by ``harness.checkpoint`` without running anything in it; the
widths are read from the tensors, so the demo's narrow network of the same topology loads alike.

Inference of one case (``inference_utils.py``): 128^3 windows at stride 64 along each axis (the
preprocessing makes them tile it exactly), each window's logits weighted by the reference's
Gaussian importance map (``scipy.signal.windows.gaussian(128, 16)`` outer products, cube-rooted,
scaled to a maximum of 1) and summed, divided by the summed weights, and the arg-max over the
classes: the uint8 label volume of the preprocessed shape is the response. Our backend runs the
windows of a case in batches, in PyTorch's channels-last layout (oneDNN's blocked 3-D
convolutions) with each block's normalisation kept in that layout (``norm_relu``), the summed
weights made once per volume shape and the arg-max by comparisons (``first_max``): labels as
eager NCDHW's but for float rounding (tested). ``load_reference`` runs one window at a time
through eager NCDHW PyTorch and finalizes in numpy, as the reference's PyTorch SUT does.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from benchmarks.unet3d.dataset import ROI, STRIDE
from harness.backends.hf import TORCH_DTYPES
from harness.checkpoint import load_into, read_state_dict
from harness.errors import DataError

CHECKPOINT = "3dunet_kits19_pytorch_checkpoint.pth"
N_CLASSES = 3
WINDOWS_PER_BATCH = {"cpu": 2, "cuda": 8}
NORM_MAPS_KEPT = 4
"""Weight maps kept per replica, by volume shape; each of the 43 cases has a shape of its own."""


def network(filters: list[int]):
    """The reference's Unet3D with these widths (5: input block, four downsampling levels)."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.InstanceNorm3d(cout, affine=True),
                             nn.ReLU())

    class Down(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.conv2 = block(cin, cout, stride), block(cout, cout, 1)

        def forward(self, x):
            return self.conv2(self.conv1(x))

    class Up(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.upsample_conv = nn.Sequential(nn.ConvTranspose3d(cin, cout, 2, 2, 0, bias=True), nn.Identity(),
                                               nn.Identity())
            self.conv1, self.conv2 = block(2 * cout, cout, 1), block(cout, cout, 1)

        def forward(self, x, skip):
            return self.conv2(self.conv1(torch.cat((self.upsample_conv(x), skip), dim=1)))

    class Output(nn.Module):
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.conv = nn.Sequential(nn.Conv3d(cin, N_CLASSES, 1, 1, 0, bias=True), nn.Identity(), nn.Identity())

        def forward(self, x):
            return self.conv(x)

    class Unet3D(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_block = Down(1, filters[0], 1)
            self.downsample = nn.ModuleList(Down(a, b, 2) for a, b in zip(filters[:-1], filters[1:]))
            self.bottleneck = Down(filters[-1], filters[-1], 2)
            ups = [filters[-1], *reversed(filters)]
            self.upsample = nn.ModuleList(Up(a, b) for a, b in zip(ups[:-1], ups[1:]))
            self.output = Output(filters[0])

        def forward(self, x):
            skips = [x := self.input_block(x)]
            for down in self.downsample:
                skips.append(x := down(x))
            x = self.bottleneck(x)
            for up, skip in zip(self.upsample, reversed(skips)):
                x = up(x, skip)
            return self.output(x)

    return Unet3D()


def filters_of(state: dict, path: Path) -> list[int]:
    try:
        return [int(state["input_block.conv1.0.weight"].shape[0]),
                *(int(state[f"downsample.{i}.conv1.0.weight"].shape[0]) for i in range(4))]
    except KeyError as exc:
        raise DataError(f"{path} has no {exc.args[0]} tensor: it is not the MLPerf 3D-UNet checkpoint; use "
                        f"{CHECKPOINT} (its best_model_state_dict)") from exc


def load_network(data_dir: Path):
    path = data_dir / CHECKPOINT
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLPerf 3D-UNet PyTorch checkpoint ({CHECKPOINT}, zenodo 5597155) "
                        f"there, or run without --data to use the demo tier")
    state = read_state_dict(path)
    model = network(filters_of(state, path))
    load_into(model, state, path, "is not the MLPerf 3D-UNet state dict", f"use {CHECKPOINT}")
    return model.eval()


@cache
def importance_map() -> np.ndarray:
    """float32 [128, 128, 128]: the reference's Gaussian weights of a window."""
    from scipy.signal.windows import gaussian

    line = gaussian(ROI, 0.125 * ROI)
    weights = np.cbrt(np.outer(np.outer(line, line), line).reshape(ROI, ROI, ROI))
    return (weights / weights.max()).astype(np.float32)


def windows(shape: tuple[int, ...]) -> list[tuple[slice, slice, slice]]:
    """The 128^3 windows at stride 64 over a [D, H, W] volume, depth first, width fastest."""
    starts = [range(0, (size - ROI) // STRIDE * STRIDE + 1, STRIDE) for size in shape]
    return [(slice(i, i + ROI), slice(j, j + ROI), slice(k, k + ROI))
            for i in starts[0] for j in starts[1] for k in starts[2]]


def first_max(scores, norm):
    """uint8 arg-max over the classes of ``scores / norm``, the first class winning ties as
    ``argmax`` picks it: the same labels from two comparisons, without ``argmax``'s slow
    reduction over the leading axis of a large volume."""
    import torch

    values = scores / norm
    labels = (values[1] > values[0]).to(torch.uint8)
    labels[values[2] > torch.maximum(values[0], values[1])] = 2
    return labels


class Unet3dBackend:
    """Sliding-window inference over ``forward`` (windows [B, 1, 128, 128, 128] -> logits [B, 3, ...]),
    ``per_batch`` windows at a time. ``reference``: as the reference's ``base_SUT``, a weight map
    summed window by window for each class, then divided and arg-maxed in numpy (its
    ``finalize``); else the map made once per volume shape (the same sums in the same order) and
    ``first_max`` (the same labels)."""

    def __init__(self, forward, device: str, per_batch: int, reference: bool = False) -> None:
        import torch

        self.forward = forward
        self.device = torch.device(device)
        self.per_batch = per_batch
        self.reference = reference
        self.weights = torch.from_numpy(importance_map()).to(self.device)
        self._norms: dict[tuple[int, ...], object] = {}

    def norm_map(self, shape: tuple[int, ...]):
        """The summed importance weights over a [D, H, W] volume, windows in sliding order."""
        import torch

        if shape not in self._norms:
            norm = torch.zeros(shape, dtype=torch.float32, device=self.device)
            for window in windows(shape):
                norm[window] += self.weights
            if len(self._norms) >= NORM_MAPS_KEPT:  # a real case's map is ~100 MB: keep the most recent few
                self._norms.pop(next(iter(self._norms)))
            self._norms[shape] = norm
        return self._norms[shape]

    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 [D, H, W] labels of one preprocessed image [1, D, H, W]."""
        import torch

        volume = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        if volume.ndim != 4 or volume.shape[0] != 1 or any(s < ROI or s % STRIDE for s in volume.shape[1:]):
            raise DataError(f"a preprocessed image of shape {tuple(volume.shape)} is not [1, D, H, W] with each side a "
                            f"multiple of {STRIDE} of at least {ROI}")
        shape = tuple(volume.shape[1:])
        scores = torch.zeros((N_CLASSES, *shape), dtype=torch.float32, device=self.device)
        # the reference sums a weight map for each of the 3 channels
        norm = torch.zeros((N_CLASSES, *shape), dtype=torch.float32, device=self.device) if self.reference else None
        todo = windows(shape)
        with torch.inference_mode():
            for at in range(0, len(todo), self.per_batch):
                batch = todo[at:at + self.per_batch]
                logits = self.forward(torch.stack([volume[(slice(None), *w)] for w in batch])).float()
                for window, patch in zip(batch, logits):
                    scores[(slice(None), *window)] += patch * self.weights
                    if norm is not None:
                        norm[(slice(None), *window)] += self.weights
            if norm is not None:  # finalized in numpy, as the reference's finalize()
                values = scores.cpu().numpy()
                values /= norm.cpu().numpy()
                return np.argmax(values, axis=0).astype(np.uint8)
            return first_max(scores, self.norm_map(shape)).cpu().numpy()

    def predict(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        return [self.segment(sample) for sample in samples]

    def warmup(self, sample: np.ndarray) -> None:
        import torch

        with torch.inference_mode():
            self.forward(torch.zeros((1, 1, ROI, ROI, ROI), device=self.device))


def norm_relu(norm):
    """InstanceNorm3d (affine) + ReLU that keep a channels-last tensor channels-last: PyTorch's
    instance norm copies such a tensor to NCDHW and back, which costs as much as the convolutions
    of the narrow levels. The statistics are InstanceNorm3d's (biased variance, its eps)."""
    import torch
    from torch import nn

    class NormRelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

        def forward(self, x):
            var, mean = torch.var_mean(x, dim=(2, 3, 4), keepdim=True, correction=0)
            scale = self.weight[None, :, None, None, None] * torch.rsqrt(var + self.eps)
            return torch.addcmul(self.bias[None, :, None, None, None] - mean * scale, x, scale).relu_()

    return NormRelu()


def torch_forward(data_dir: Path, device: str, dtype: str, channels_last: bool):
    """The network in PyTorch: eager NCDHW as the reference runs it, or in channels-last layout
    with each block's normalisation and ReLU kept in that layout (``norm_relu``)."""
    import torch
    from torch import nn

    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = load_network(data_dir)
    if channels_last:
        for block in [m for m in model.modules() if isinstance(m, nn.Sequential) and len(m) == 3]:
            if isinstance(block[1], nn.InstanceNorm3d):
                block[1], block[2] = norm_relu(block[1]), nn.Identity()
    model = model.to(torch.device(device), getattr(torch, TORCH_DTYPES[dtype]), memory_format=layout)
    dtype_ = next(model.parameters()).dtype
    return lambda windows: model(windows.to(dtype_).contiguous(memory_format=layout))


def load(data_dir: Path, device: str, dtype: str) -> Unet3dBackend:
    """PyTorch in channels-last layout (labels as the eager NCDHW layout's, but for rounding: tested),
    the windows of a case in batches, the normalisation map made once per shape."""
    forward = torch_forward(data_dir, device, dtype, channels_last=True)
    return Unet3dBackend(forward, device, WINDOWS_PER_BATCH.get(device.split(":")[0], 1))


def load_reference(data_dir: Path, device: str, dtype: str) -> Unet3dBackend:
    """The reference's way: PyTorch, eager NCDHW, one window per forward pass, the weight maps
    summed with the windows and finalized in numpy."""
    return Unet3dBackend(torch_forward(data_dir, device, dtype, channels_last=False), device, 1, reference=True)
