"""Read the tensors of a PyTorch checkpoint, whatever way it was saved, without running its code.

Reference checkpoints come in several shapes: a plain state dict, a training checkpoint holding
one (``{"model": ...}``), a TorchScript archive, or a whole ``nn.Module`` pickled with
``torch.save(model)``. The last needs the classes it was pickled from (for example the MLPerf
Training code) just to be unpickled. Here it is read with an unpickler that imports nothing
outside torch's tensor rebuilding: every other class becomes an inert placeholder that only
keeps its attributes, and the parameters and persistent buffers are collected from the module
tree, named as ``state_dict()`` names them. Nothing in the file is executed.
"""

from __future__ import annotations

import pickle
import re
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from harness.errors import DataError

# Globals a pickled module tree needs besides its own classes: tensor and parameter rebuilding,
# storages (handled by torch itself), dtypes and the containers nn.Module keeps its state in.
_ALLOWED = {
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "object"), ("copyreg", "_reconstructor"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"),
}
_STATE_KEYS = ("model", "state_dict", "model_state_dict", "best_model_state_dict")


class _Placeholder:
    """Stands in for any class or callable of the pickle: it accepts any arguments and keeps only
    the attributes the pickle sets (BUILD)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        import _compat_pickle
        import torch

        # protocol 2 pickles name Python 2 modules (__builtin__.set): translate as pickle does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        return type(name, (_Placeholder,), {"__module__": f"placeholder.{module}"})


_INERT = types.ModuleType("inert_pickle")
_INERT.Unpickler = _InertUnpickler  # type: ignore[attr-defined]
_INERT.load = lambda f, **kw: _InertUnpickler(f, **kw).load()  # type: ignore[attr-defined]


def module_tensors(module: Any, prefix: str = "") -> OrderedDict:
    """``state_dict()`` of a (possibly placeholder) module tree: parameters and persistent buffers."""
    out: OrderedDict = OrderedDict()
    skip = getattr(module, "_non_persistent_buffers_set", set())
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (getattr(module, kind, None) or {}).items():
            if tensor is not None and name not in skip:
                out[prefix + name] = tensor.detach() if hasattr(tensor, "detach") else tensor
    for name, child in (getattr(module, "_modules", None) or {}).items():
        if child is not None:
            out.update(module_tensors(child, f"{prefix}{name}."))
    return out


def _tensors_of(loaded: Any) -> dict:
    """A module tree, a state dict, or a training checkpoint holding either under a known key."""
    if hasattr(loaded, "_modules"):
        return module_tensors(loaded)
    if not isinstance(loaded, dict):
        return {}
    nested = next((loaded[k] for k in _STATE_KEYS
                   if isinstance(loaded.get(k), dict) or hasattr(loaded.get(k), "_modules")), None)
    return loaded if nested is None else _tensors_of(nested)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_state_dict(path: Path) -> OrderedDict:
    """The checkpoint's tensors by ``state_dict()`` name; a leading ``module.`` (DDP) is removed.

    Raises DataError naming the file when it is missing, unreadable or holds no tensors.
    """
    import torch

    if not path.is_file():
        raise DataError(f"{path} is missing")
    try:
        if _is_torchscript(path):
            loaded: Any = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_INERT)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise DataError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                        f"download it again") from exc
    state = _tensors_of(loaded)
    tensors = OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise DataError(f"{path} holds no tensors (a {type(loaded).__name__}); it is not a model checkpoint")
    if all(k.startswith("module.") for k in tensors):
        tensors = OrderedDict((k.removeprefix("module."), v) for k, v in tensors.items())
    return tensors


def load_weights_only(path: Path, what: str, fix: str) -> Any:
    """``torch.load(weights_only=True)`` of a file that holds tensors and plain containers only
    (a state dict, latents); a file that is missing or that torch refuses (damaged, or holding
    objects) raises a DataError saying it is not ``what``, and the ``fix``."""
    import torch

    if not path.is_file():
        raise DataError(f"{path} is missing: {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        # torch's refusal is a page of advice to load the file unsafely; keep its substance
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        why = (f"it holds {found.group(1)}, not only tensors" if found else detail.group(1).strip() if detail
               else (text.strip().splitlines() or [type(exc).__name__])[0][:200])
        raise DataError(f"{path} is not {what} ({why}): {fix}") from exc


def load_into(model: Any, state: dict, path: Path, problem: str, fix: str) -> None:
    """``model.load_state_dict(state)``; missing, unexpected or mis-shaped tensors raise a DataError
    that names ``path``, the ``problem``, torch's first complaint and the ``fix``."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise DataError(f"{path} {problem} ({detail[:200]}): {fix}") from exc
