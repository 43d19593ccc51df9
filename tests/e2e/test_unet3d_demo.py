"""End to end on the 3D-UNet demo tier: an Offline submission run judged by agreement with the
reference execution's DICE, equal issue as the embedded mlperf.conf sets it, TEST01 and TEST05."""

from __future__ import annotations

import json
import re

import pytest

from harness import logs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(submission_and_compliance):
    return submission_and_compliance("unet3d", ("TEST01", "TEST05"))


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
