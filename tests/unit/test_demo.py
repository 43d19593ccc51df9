"""Demo folders without the reference's responses (made by an older harness): rebuilt when cached, named when given."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from harness import datadir, demo, evaluate, registry
from harness.errors import DataError
from harness.rounds import load_round


def test_a_cached_demo_without_the_reference_is_built_again(demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / "demo" / "bert-seed0"
    shutil.copytree(demo_data("bert"), stale)
    shutil.rmtree(stale / "reference")
    assert datadir.resolve(registry.get("bert"), None) == (stale.resolve(), True)
    assert "built by an older harness" in capsys.readouterr().out
    assert (stale / demo.REFERENCE_LOG).is_file()


def test_a_given_demo_without_the_reference_is_named(demo_copy):
    folder = demo_copy("bert")
    shutil.rmtree(folder / "reference")
    bench = registry.get("bert")
    with pytest.raises(DataError, match=r"is a demo folder without the reference's responses .*harness demo-data bert"):
        evaluate.score(bench, {0: np.zeros(768, np.float32)}, folder, load_round(), demo_tier=True)
