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
    from harness import demo, registry

    built: dict[str, Path] = {}

    def get(benchmark_id: str) -> Path:
        if benchmark_id not in built:
            out = tmp_path_factory.getbasetemp() / "demo" / benchmark_id
            built[benchmark_id] = demo.build(registry.get(benchmark_id), out, seed=0)
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


@pytest.fixture
def demo_verdict():
    """Our backend (batched) over the first ``n`` samples of a demo folder, scored as a run is, against
    the demo's targets: ``demo_verdict("resnet", folder, n) -> (passed, evaluate.score(...))``. Resolve
    the demo folder before patching anything: it must be built by the unperturbed pipeline."""
    import numpy as np

    from harness import evaluate, registry
    from harness.rounds import load_round

    def verdict(benchmark_id: str, folder: Path, n: int | None = None, batch: int = 8) -> tuple[bool, dict]:
        bench = registry.get(benchmark_id)
        dataset = bench.dataset.load(folder)
        backend = bench.backend.load(folder, "cpu", "fp32")
        dtype = np.dtype(bench.spec.payload_dtype)
        indices = list(range(len(dataset) if n is None else n))
        outputs = {}
        for start in range(0, len(indices), batch):
            chunk = indices[start:start + batch]
            for index, out in zip(chunk, backend.predict([dataset[i] for i in chunk])):
                outputs[index] = np.frombuffer(np.ascontiguousarray(out, dtype=dtype).tobytes(), dtype=dtype)
        score = evaluate.score(bench, outputs, folder, load_round(), demo_tier=True)
        return all(variant["passed"] for variant in score["variants"].values()), score

    return verdict


@pytest.fixture
def make_manifest():
    """A manifest with every field the harness checks when it reads one: ``make_manifest("gptj", image)``."""
    import dataclasses
    import hashlib

    from harness.artifacts import listing_sha256
    from harness.settings import RunConfig

    def make(benchmark: str, image: dict | None = None, scenario: str = "Offline") -> dict:
        settings = RunConfig(benchmark=benchmark, scenario=scenario, mode="accuracy", data_dir="/d", demo=True,
                             user_conf="/u")
        return {"schema": 1, "command": ["harness", "run", benchmark], "benchmark": benchmark, "round": "v4.1",
                "settings": dataclasses.asdict(settings), "image": image, "loadgen": None, "device": {},
                "packages": {}, "harness": {"version": "0.1.0", "git_commit": None, "dirty": None,
                                            "code_sha256": "0" * 64},
                "user_conf": {"text": "", "sha256": hashlib.sha256(b"").hexdigest()},
                "inputs": {"data_dir": "/d", "demo": True, "tree_sha256": listing_sha256({}), "files": {}}}

    return make


@pytest.fixture
def needs_root():
    """For tests that act as several users: skipped for an ordinary user, a failure in CI (which runs as root)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root: it acts as several users (CI runs the suite as root)")
        pytest.skip("needs root: it acts as several users; CI runs it")
