"""A PyTorch network run by ONNX Runtime on CPU, exported to ONNX once per content and cached.

The export is the same function (the same weights and graph, computed by other kernels): ONNX
Runtime pre-packs the weights, fuses each convolution with its activation and residual add and
keeps activations in a blocked layout across the graph, where PyTorch's eager mode reorders at
every convolution. The exported file is cached under the harness cache folder, keyed by what the
caller says the weights are (e.g. the checkpoint's sha256) and the exporter's versions, because
exporting takes seconds and every LoadGen test is a new process; a cache that cannot be read or
written only costs time. The batch axis is dynamic; whether a sample's bytes depend on what it is
batched with is for each benchmark to test (TEST01 compares accuracy- and performance-mode bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.datadir import cache_root
from harness.util import store_cache

FORMAT = 1  # bump when the export's options change, so that older cached files are not reused


def export(module: Any, example: Any) -> bytes:
    """``module`` (eval mode) as an ONNX model with input ``x`` (first axis dynamic) and output ``y``."""
    import torch

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        # quiet: the exporter prints its progress and warns of torch's own internals; a test's log
        # should hold what the test itself says
        warnings.simplefilter("ignore")
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(module, (example,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False)
        return path.read_bytes()


def cache_path(name: str, key: str) -> Path:
    import onnxscript
    import torch

    digest = hashlib.sha256(f"{FORMAT}/{key}/{torch.__version__}/{onnxscript.__version__}".encode()).hexdigest()
    return cache_root() / "onnx" / f"{name}-{digest[:24]}.onnx"


class Session:
    """ONNX Runtime's CPU session over the module ``build()`` returns, exported (or read from the
    cache): ``run(batch) -> y``. ``key`` names the weights, so ``build`` (loading a checkpoint)
    runs only when the cache has no export of them; ``threads`` is the replica's share of the
    cores, as torch's own pool would get."""

    def __init__(self, build: Callable[[], Any], example: Any, name: str, key: str, threads: int) -> None:
        path = cache_path(name, key)
        try:
            self._session = self._open(path.read_bytes(), threads)
        except Exception:  # noqa: BLE001 - absent, cut short or unreadable: export again
            model = export(build(), example)
            self._session = self._open(model, threads)
            store_cache(path, model)

    @staticmethod
    def _open(model: bytes, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: the graph optimiser's notes are not problems
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(["y"], {"x": batch})[0]
