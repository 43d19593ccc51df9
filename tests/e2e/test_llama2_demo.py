"""End to end on the Llama-2 demo tier: a streamed Server submission run, TEST06, the reports."""

from __future__ import annotations

import json
import re

import pytest

from harness import cli

pytestmark = pytest.mark.slow


def harness(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture(scope="module")
def server_run(demo_data, tmp_path_factory):
    """``--mode submission`` in Server with the demo's user.conf: accuracy, then performance."""
    out = tmp_path_factory.mktemp("llama2") / "server"
    assert harness("run", "llama2", "--scenario", "Server", "--mode", "submission", "--data",
                   str(demo_data("llama2")), "--out", str(out)) == 0
    return out


def test_server_submission_run_streams_and_passes(server_run):
    result = json.loads((server_run / "result.json").read_text())
    assert all(v["passed"] for v in result["accuracy"]["variants"].values())
    perf = result["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    tokens = perf["token_latency_ns"]
    assert tokens["ttft_bound"] == 2e9 and tokens["tpot_bound"] == 2e8  # v4.1 Server bounds
    assert 0 < tokens["ttft_p99"] < tokens["ttft_bound"] and 0 < tokens["tpot_p99"] < tokens["tpot_bound"]
    assert perf["metrics"]["tokens_per_second"] > 0
    text = (server_run / "accuracy" / "accuracy.txt").read_text()
    assert re.search(r"'tokens_per_sample':\s[\d.]+", text) and re.search(r"'rouge1':\s[\d.]+", text)
    report = (server_run / "report.txt").read_text()
    assert re.search(r"llama2-70b-99\s+tokens_per_sample\s+[\d.]+\s+[\d.]+ \.\. [\d.]+\s+[\d.]+\s+PASS", report)
    assert "TTFT: min" in report and "p99 against the bound 2000 ms: PASS" in report
    assert "p99 against the bound 200 ms: PASS" in report


def test_test06_runs_and_verifies_as_the_official_script(server_run, tmp_path):
    assert harness("compliance", "llama2", "--test", "TEST06", "--results", str(server_run),
                   "--out", str(tmp_path / "c")) == 0
    verified = tmp_path / "c" / "TEST06"
    assert (verified / "verify_accuracy.txt").read_text() == (
        "First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
        "TEST06 verification complete\n")
    assert (verified / "accuracy" / "mlperf_log_accuracy.json").is_file()
    result = json.loads((tmp_path / "c" / "result.json").read_text())
    assert result["compliance"]["passed"] and result["compliance"]["logged"] >= 100
    applied = json.loads((tmp_path / "c" / "loadgen" / "audit_settings.json").read_text())
    assert applied["min_query_count"] == 100 and applied["mode"] == 2


def test_html_report_shows_token_latencies(server_run, tmp_path):
    page = tmp_path / "r.html"
    assert harness("report", str(server_run), "--html", str(page)) == 0
    html = page.read_text()
    assert "token latency" in html and "TTFT" in html and "TPOT" in html
