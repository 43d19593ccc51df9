"""Shared pytest fixtures. Tests never reach a model hub and never write outside tmp folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # its reaper image cannot be pulled offline


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path_factory, monkeypatch):
    """Results and demo caches go to tmp folders; ./data is never taken for real data."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("HARNESS_RESULTS", str(base / "results"))
    monkeypatch.setenv("HARNESS_CACHE", str(base / "cache"))
    monkeypatch.setenv("HARNESS_DATA", str(base / "no-real-data"))


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """Build each benchmark's demo tier once per session: ``demo_data("gptj") -> Path``."""
    from harness import datadir, registry

    built: dict[str, Path] = {}

    def get(benchmark_id: str) -> Path:
        if benchmark_id not in built:
            out = tmp_path_factory.getbasetemp() / "demo" / benchmark_id
            built[benchmark_id] = datadir.build_demo(registry.get(benchmark_id), out, seed=0)
        return built[benchmark_id]

    return get


@pytest.fixture
def demo_copy(demo_data, tmp_path):
    """A writable copy of a demo tier, for tests that damage it: ``demo_copy("bert") -> Path``."""
    def copy(benchmark_id: str) -> Path:
        out = tmp_path / f"{benchmark_id}-data"
        shutil.copytree(demo_data(benchmark_id), out)
        return out

    return copy
