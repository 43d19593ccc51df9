"""End to end on the 3D-UNet demo tier: an Offline submission run judged by agreement with the
reference execution's DICE, equal issue as the embedded mlperf.conf sets it, TEST01 and TEST05."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from harness import cli, compliance, logs
from harness.rounds import load_round

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wide_tolerances():
    """Performance runs of seconds on a shared 2-core machine: compliance's performance comparisons
    get tolerances wider than its timing noise (everything else is the round's)."""
    rnd = load_round()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compliance, "load_round", lambda name: dataclasses.replace(
            rnd, tolerances={k: 5.0 for k in rnd.tolerances}))
        yield


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory, wide_tolerances):
    root = tmp_path_factory.mktemp("unet3d")
    assert cli.main(["run", "unet3d", "--scenario", "Offline", "--mode", "submission", "--data",
                     str(demo_data("unet3d")), "--out", str(root / "run")]) == 0
    checked = {t: compliance.run("unet3d", t, [root / "run"], "Offline", root / t, echo=False)
               for t in ("TEST01", "TEST05")}
    return root, checked


def test_the_submission_run_agrees_with_the_reference_execution(runs):
    root, _ = runs
    result = json.loads((root / "run" / "result.json").read_text())
    for name in ("3d-unet-99", "3d-unet-99.9"):
        checks = result["accuracy"]["variants"][name]["checks"]
        assert [(c["metric"], c["passed"]) for c in checks] == [("mean", True)]
    assert result["accuracy"]["metrics"]["cases"] == 5
    text = (root / "run" / "accuracy" / "accuracy.txt").read_text()
    assert re.fullmatch(r"Accuracy: mean = \d\.\d{5}, kidney = \d\.\d{4}, tumor = \d\.\d{4}\n", text)
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    detail = (root / "run" / "performance" / "run_1" / logs.DETAIL).read_text()
    assert '"key": "effective_sample_concatenate_permutation", "value": true' in detail  # equal issue
    assert '"key": "effective_performance_sample_count", "value": 5' in detail  # the QSL's: every case


def test_test01_and_test05_on_the_submission_run(runs):
    root, checked = runs
    test01, test05 = checked["TEST01"]["compliance"], checked["TEST05"]["compliance"]
    assert test01["passed"], test01["reasons"]
    assert test01["accuracy_check"]["num_perf_log_data_mismatch"] == 0  # the same labels whatever the batch
    assert test05["passed"], test05["reasons"]
    assert (root / "TEST01" / "TEST01" / "verify_accuracy.txt").read_text().endswith("TEST PASS\n")
