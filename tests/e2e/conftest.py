"""Fixtures of the end-to-end demo runs."""

from __future__ import annotations

import dataclasses

import pytest

from harness import cli, compliance
from harness.rounds import load_round


@pytest.fixture(scope="module")
def wide_tolerances():
    """Performance runs of seconds on a shared 2-core machine: compliance's performance comparisons
    get tolerances wider than its timing noise (everything else is the round's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compliance, "load_round", lambda name: dataclasses.replace(
            load_round(name), tolerances={k: 5.0 for k in load_round(name).tolerances}))
        yield


@pytest.fixture(scope="module")
def submission_and_compliance(demo_data, tmp_path_factory, wide_tolerances):
    """``run(benchmark, tests) -> (root, {test: result})``: an Offline submission run of the demo
    tier into ``root/run``, then each compliance test against it into ``root/<test>``."""
    def run(benchmark: str, tests: tuple[str, ...]):
        root = tmp_path_factory.mktemp(benchmark)
        assert cli.main(["run", benchmark, "--scenario", "Offline", "--mode", "submission", "--data",
                         str(demo_data(benchmark)), "--out", str(root / "run")]) == 0
        return root, {t: compliance.run(benchmark, t, [root / "run"], "Offline", root / t, echo=False)
                      for t in tests}

    return run
