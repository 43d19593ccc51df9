"""End to end on the RNN-T demo tier in round v4.0, with its own LoadGen (4.0.1, built from its
sdist beside the installed one): an Offline submission run judged by agreement with the reference
execution's WER, the v4.0 seeds from the round's mlperf.conf, TEST01 and TEST05, and a Server run."""

from __future__ import annotations

import json
import re

import pytest

from harness import cli, logs
from harness.rounds import load_round

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(submission_and_compliance):
    return submission_and_compliance("rnnt", ("TEST01", "TEST05"))


def test_the_v40_submission_run_agrees_with_the_reference_execution(runs):
    root, _ = runs
    result = json.loads((root / "run" / "result.json").read_text())
    assert result["round"] == "v4.0"
    checks = result["accuracy"]["variants"]["rnnt"]["checks"]
    assert [(c["metric"], c["passed"]) for c in checks] == [("accuracy", True)]
    assert result["accuracy"]["metrics"]["utterances"] == 11  # the one over 15 s is left out
    text = (root / "run" / "accuracy" / "accuracy.txt").read_text()
    assert re.fullmatch(r"Word Error Rate: [\d.e-]+%, accuracy=[\d.]+%\n", text)
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    detail = (root / "run" / "performance" / "run_1" / logs.DETAIL).read_text()
    assert '"key": "loadgen_version", "value": "4.0 @ NA"' in detail
    assert '"is_error": true' not in detail
    seeds = load_round("v4.0").seeds
    for key, value in seeds.items():
        assert f'"key": "effective_{key}", "value": {value}' in detail
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    assert manifest["packages"]["mlcommons-loadgen"] == "4.0.1" and manifest["loadgen"]["version"] == "4.0"


def test_test01_and_test05_on_the_v40_run(runs):
    root, checked = runs
    test01, test05 = checked["TEST01"]["compliance"], checked["TEST05"]["compliance"]
    assert test01["passed"], test01["reasons"]
    assert test01["accuracy_check"]["num_perf_log_data_mismatch"] == 0  # the same transcripts whatever the batch
    assert test05["passed"], test05["reasons"]
    detail = next((root / "TEST05").glob(f"**/{logs.DETAIL}")).read_text()
    assert f'"key": "effective_qsl_rng_seed", "value": {load_round("v4.0").test05_seeds["qsl_rng_seed"]}' in detail


def test_a_server_run_is_valid(demo_data, tmp_path):
    assert cli.main(["run", "rnnt", "--scenario", "Server", "--mode", "performance", "--data",
                     str(demo_data("rnnt")), "--out", str(tmp_path / "server")]) == 0
    result = json.loads((tmp_path / "server" / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    detail = next((tmp_path / "server").glob(f"**/{logs.DETAIL}")).read_text()
    assert '"key": "effective_target_latency_ns", "value": 1000000000' in detail  # rnnt.Server's, from v4.0's conf


def test_a_v40_run_replays_on_the_rounds_loadgen(runs, tmp_path):
    root, _ = runs
    assert cli.main(["replay", str(root / "run"), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "result.json").read_text())
    assert again["round"] == "v4.0" and again["replay_differences"] == []
    assert again["performance"]["loadgen_version"].startswith("4.0 @")


def test_rnnt_is_refused_in_another_round(demo_data, tmp_path, capsys):
    assert cli.main(["run", "rnnt", "--round", "v4.1", "--data", str(demo_data("rnnt")),
                     "--out", str(tmp_path / "x")]) == 2
    assert "rnnt is not part of round v4.1; it is part of v4.0 (--round v4.0)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
