"""A PyTorch network through ONNX Runtime: the same function, exported once per key, cache damage healed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import onnxrt


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()


EXAMPLE = torch.zeros(2, 3, 16, 16)


def test_the_session_computes_the_network_for_any_batch_size():
    module = network()
    session = onnxrt.Session(lambda: module, EXAMPLE, "tiny", "key-a", threads=1)
    batch = np.random.default_rng(0).standard_normal((5, 3, 16, 16), dtype=np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(batch)).numpy()
    for size in (1, 5):  # exported at 2; the batch axis is dynamic
        out = session.run(batch[:size])
        assert out.shape == (size, 5) and out.dtype == np.float32
        assert np.allclose(out, expected[:size], rtol=1e-5, atol=1e-6)


def test_a_key_is_exported_once_and_another_key_again(monkeypatch):
    exports, builds = [], []
    real = onnxrt.export
    monkeypatch.setattr(onnxrt, "export", lambda *args: exports.append(1) or real(*args))
    for key in ("key-b", "key-b", "key-c"):
        onnxrt.Session(lambda: builds.append(1) or network(), EXAMPLE, "tiny", key, threads=1)
    assert len(exports) == 2 and len(builds) == 2  # a cached export needs no module
    assert onnxrt.cache_path("tiny", "key-b").is_file() and onnxrt.cache_path("tiny", "key-c").is_file()
    assert onnxrt.cache_path("tiny", "key-b") != onnxrt.cache_path("tiny", "key-c")
    assert not list(onnxrt.cache_path("tiny", "key-b").parent.glob("*.partial-*"))


def test_a_damaged_cached_file_is_exported_again_and_replaced():
    path = onnxrt.cache_path("tiny", "key-d")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"cut short")
    session = onnxrt.Session(network, EXAMPLE, "tiny", "key-d", threads=1)
    assert session.run(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 5)
    assert path.stat().st_size > 1000


def test_an_unwritable_cache_only_costs_an_export(monkeypatch, tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("HARNESS_CACHE", str(blocked))
    session = onnxrt.Session(network, EXAMPLE, "tiny", "key-e", threads=1)
    assert session.run(np.zeros((3, 3, 16, 16), np.float32)).shape == (3, 5)
    assert blocked.read_text() == "a file where the cache folder should be"


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_reach_the_session(threads):
    session = onnxrt.Session(network, EXAMPLE, "tiny", "key-f", threads=threads)
    assert session._session.get_session_options().intra_op_num_threads == threads
