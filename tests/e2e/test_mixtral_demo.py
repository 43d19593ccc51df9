"""End to end on the Mixtral demo tier: Server and Offline submission runs whose MBXP answers run in
the evaluator's sandbox, TEST06, and the QSL's own performance sample count.

The evaluator image is built here (images/build.sh, cached) as the MBXP scoring needs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness import cli

pytestmark = [pytest.mark.slow, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluator():
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_WHEELS"}  # it installs no wheels
    done = subprocess.run(["images/build.sh", "evaluator"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"images/build.sh evaluator failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def runs(demo_data, evaluator, tmp_path_factory):
    root = tmp_path_factory.mktemp("mixtral")
    data = str(demo_data("mixtral"))
    for scenario in ("Server", "Offline"):
        assert cli.main(["run", "mixtral", "--scenario", scenario, "--mode", "submission", "--data", data,
                         "--out", str(root / scenario)]) == 0
    return root


@pytest.mark.parametrize("scenario", ["Server", "Offline"])
def test_submission_runs_pass_with_every_metric_scored(runs, scenario):
    result = json.loads((runs / scenario / "result.json").read_text())
    checks = result["accuracy"]["variants"]["mixtral-8x7b"]["checks"]
    assert {c["metric"]: c["passed"] for c in checks} == dict.fromkeys(
        ("rouge1", "rouge2", "rougeL", "gsm8k", "mbxp", "tokens_per_sample"), True)
    metrics = result["accuracy"]["metrics"]
    assert 0 < metrics["mbxp"] < 100 and metrics["mbxp_skipped"] == 1 and "unscored" not in metrics
    text = (runs / scenario / "accuracy" / "accuracy.txt").read_text()
    assert re.search(r"'gsm8k': [\d.]+, 'mbxp': [\d.]+, .*'tokens_per_sample': [\d.]+\}", text)
    perf = result["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    detail = (runs / scenario / "performance" / "run_1" / "mlperf_log_detail.txt").read_text()
    # no count in LoadGen 4.1.30's embedded mlperf.conf: the QSL's own (the whole demo set)
    assert '"key": "effective_performance_sample_count", "value": 24' in detail
    if scenario == "Server":
        tokens = perf["token_latency_ns"]
        assert 0 < tokens["ttft_p99"] < tokens["ttft_bound"] == 2e9 and 0 < tokens["tpot_p99"] < 2e8


def test_test06_on_the_server_run(runs, tmp_path):
    assert cli.main(["compliance", "mixtral", "--test", "TEST06", "--results", str(runs / "Server"),
                     "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "TEST06" / "verify_accuracy.txt").read_text() == (
        "First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
        "TEST06 verification complete\n")
