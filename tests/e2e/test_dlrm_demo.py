"""End to end on the DLRM-v2 demo tier: an Offline submission run judged by agreement with the
reference execution's AUC, batches capped by their pairs, TEST01 and TEST05, and a Server run on
two replicas sharing one mapping of the snapshot."""

from __future__ import annotations

import json
import re

import pytest

from harness import cli, logs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(submission_and_compliance):
    return submission_and_compliance("dlrm", ("TEST01", "TEST05"))


def test_the_submission_run_agrees_with_the_reference_execution(runs):
    root, _ = runs
    result = json.loads((root / "run" / "result.json").read_text())
    for name in ("dlrm-v2-99", "dlrm-v2-99.9"):
        checks = result["accuracy"]["variants"][name]["checks"]
        assert [(c["metric"], c["passed"]) for c in checks] == [("AUC", True)]
    assert result["accuracy"]["metrics"]["queries"] == 74 and result["accuracy"]["metrics"]["total"] == 20001
    text = (root / "run" / "accuracy" / "accuracy.txt").read_text()
    assert re.fullmatch(r"AUC=\d+\.\d{3}%, accuracy=\d+\.\d{3}%, good=\d+, total=20001, queries=74\n", text)
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    detail = (root / "run" / "performance" / "run_1" / logs.DETAIL).read_text()
    assert '"key": "effective_performance_sample_count", "value": 204800' in detail  # the embedded conf's override
    assert '"key": "qsl_reported_performance_count", "value": 74' in detail  # of a QSL of 74 samples
    assert '"is_error": true' not in detail


def test_test01_and_test05_on_the_submission_run(runs):
    root, checked = runs
    test01, test05 = checked["TEST01"]["compliance"], checked["TEST05"]["compliance"]
    assert test01["passed"], test01["reasons"]
    assert test05["passed"], test05["reasons"]


def test_a_server_run_on_two_replicas_is_valid(demo_data, tmp_path):
    assert cli.main(["run", "dlrm", "--scenario", "Server", "--mode", "performance", "--n-devices", "2", "--data",
                     str(demo_data("dlrm")), "--out", str(tmp_path / "server")]) == 0
    result = json.loads((tmp_path / "server" / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    stats = json.loads(next((tmp_path / "server").glob("**/sut_stats.json")).read_text())
    assert stats["failed"] == 0 and all(n > 0 for n in stats["by_replica"])
    detail = next((tmp_path / "server").glob(f"**/{logs.DETAIL}")).read_text()
    assert '"key": "effective_target_latency_ns", "value": 60000000' in detail
