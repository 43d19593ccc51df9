"""End to end on the Llama-2 demo tier: streamed Server and two-replica Offline submission runs,
TEST06 on each, the reports, and the closed submission tree they make.

The tree is built as in ``test_submission_demo``: with the test-only ``allow_demo`` and the round's
limits scaled to the demo (accuracy targets 0, minimum duration 1 s, sample counts of the 24-row
demo). The LLM rules stay as the round has them: equal-issue mode, token latencies measured, and
the Server TTFT/TPOT p99 under 2000/200 ms.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from harness import cli, registry, submission
from harness.errors import HarnessError
from harness.rounds import MetricTarget, load_round

pytestmark = pytest.mark.slow
NAMES = ("llama2-70b-99", "llama2-70b-99.9")


def harness(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory):
    """``--mode submission`` (accuracy, then performance) with the demo's user.conf: Server on one
    replica, Offline on two behind one LoadGen; then TEST06 against each."""
    root = tmp_path_factory.mktemp("llama2")
    data = str(demo_data("llama2"))
    assert harness("run", "llama2", "--scenario", "Server", "--mode", "submission", "--data", data,
                   "--out", str(root / "Server")) == 0
    assert harness("run", "llama2", "--scenario", "Offline", "--mode", "submission", "--n-devices", "2",
                   "--data", data, "--out", str(root / "Offline")) == 0
    for scenario in ("Server", "Offline"):
        assert harness("compliance", "llama2", "--test", "TEST06", "--results", str(root / scenario),
                       "--out", str(root / f"{scenario}-TEST06")) == 0
    return root


def test_server_submission_run_streams_and_passes(runs):
    result = json.loads((runs / "Server" / "result.json").read_text())
    assert all(v["passed"] for v in result["accuracy"]["variants"].values())
    perf = result["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    tokens = perf["token_latency_ns"]
    assert tokens["ttft_bound"] == 2e9 and tokens["tpot_bound"] == 2e8  # v4.1 Server bounds
    assert 0 < tokens["ttft_p99"] < tokens["ttft_bound"] and 0 < tokens["tpot_p99"] < tokens["tpot_bound"]
    assert perf["metrics"]["tokens_per_second"] > 0
    text = (runs / "Server" / "accuracy" / "accuracy.txt").read_text()
    assert re.search(r"'tokens_per_sample':\s[\d.]+", text) and re.search(r"'rouge1':\s[\d.]+", text)
    report = (runs / "Server" / "report.txt").read_text()
    assert re.search(r"llama2-70b-99\s+tokens_per_sample\s+[\d.]+\s+[\d.]+ \.\. [\d.]+\s+[\d.]+\s+PASS", report)
    assert "TTFT: min" in report and "p99 against the bound 2000 ms: PASS" in report
    assert "p99 against the bound 200 ms: PASS" in report


def test_offline_on_two_replicas_reproduces_the_reference(runs):
    result = json.loads((runs / "Offline" / "result.json").read_text())
    assert result["settings"]["n_devices"] == 2
    assert all(v["passed"] for v in result["accuracy"]["variants"].values())  # same tokens as batch-1 greedy
    perf = result["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    assert perf["metrics"]["tokens_per_second"] > 0 and not perf["token_latency_ns"]  # no TTFT/TPOT in Offline
    stats = json.loads((runs / "Offline" / "performance" / "run_1" / "sut_stats.json").read_text())
    assert stats["devices"] == ["cpu", "cpu"] and stats["failed"] == 0
    assert min(stats["by_replica"]) > 0 and sum(stats["by_replica"]) == stats["completed"]  # both replicas served
    detail = (runs / "Offline" / "performance" / "run_1" / "mlperf_log_detail.txt").read_text()
    assert '"key": "result_tokens_per_second"' in detail  # the round's Offline result field


@pytest.mark.parametrize("scenario, first_token", [("Server", "True"), ("Offline", "Skipped")])
def test_test06_runs_and_verifies_as_the_official_script(runs, scenario, first_token):
    checked = runs / f"{scenario}-TEST06"
    assert (checked / "TEST06" / "verify_accuracy.txt").read_text() == (
        f"First token check pass: {first_token}\nEOS check pass: True\nSample length check pass: True\n"
        "TEST06 verification complete\n")
    assert (checked / "TEST06" / "accuracy" / "mlperf_log_accuracy.json").is_file()
    result = json.loads((checked / "result.json").read_text())
    assert result["compliance"]["passed"] and result["compliance"]["logged"] >= 100
    applied = json.loads((checked / "loadgen" / "audit_settings.json").read_text())
    assert applied["min_query_count"] == 100 and applied["mode"] == 2


def test_html_report_shows_token_latencies(runs, tmp_path):
    page = tmp_path / "r.html"
    assert harness("report", str(runs / "Server"), "--html", str(page)) == 0
    html = page.read_text()
    assert "token latency" in html and "TTFT" in html and "TPOT" in html


@pytest.fixture
def demo_scale(monkeypatch):
    rnd = load_round()
    targets = tuple(MetricTarget(t.metric, 0.0, 1.0) for t in rnd.targets(NAMES[0]))
    scaled = dataclasses.replace(
        rnd, accuracy={n: targets for n in NAMES},
        performance={n: dataclasses.replace(rnd.rules(n), sample_count=24, offline_samples_per_query=24)
                     for n in NAMES},
        submission=rnd.submission | {"min_duration_ms": 1000})
    monkeypatch.setattr(submission, "load_round", lambda name: scaled)
    bench = registry.get("llama2")
    monkeypatch.setitem(registry.discover(), "llama2", dataclasses.replace(
        bench, spec=dataclasses.replace(bench.spec, dataset_size=24, performance_count=24)))


def test_closed_submission_needs_and_places_test06(runs, demo_scale, tmp_path):
    system = submission.system_template(load_round()) | {"submitter": "Org", "division": "closed",
                                                         "system_type": "datacenter", "system_name": "ci box"}
    (tmp_path / "box.json").write_text(json.dumps({k: v or "n/a" for k, v in system.items()}))
    scenarios = [runs / "Server", runs / "Offline"]
    with pytest.raises(HarnessError) as refused:
        submission.build("v4.1", "closed", "Org", tmp_path / "box.json", scenarios + [runs / "Server-TEST06"],
                         tmp_path / "refused", allow_demo=True)
    assert "compliance TEST06 is required: run `harness compliance llama2 --test TEST06" in str(refused.value)
    assert not (tmp_path / "refused").exists()
    done = submission.build("v4.1", "closed", "Org", tmp_path / "box.json",
                            scenarios + [runs / "Server-TEST06", runs / "Offline-TEST06"], tmp_path / "out",
                            allow_demo=True)
    assert sorted(r.split(":")[0] for r in done["results"]) == [
        f"{n} {s}" for n in NAMES for s in ("Offline", "Server")]
    org = tmp_path / "out/submission/closed/Org"
    for name in NAMES:
        for scenario in ("Server", "Offline"):
            test06 = org / "compliance/box" / name / scenario / "TEST06"
            assert sorted(str(p.relative_to(test06)) for p in test06.rglob("*") if p.is_file()) == [
                "accuracy/accuracy.txt", "accuracy/mlperf_log_accuracy.json", "verify_accuracy.txt"]
            lines = (test06 / "verify_accuracy.txt").read_text().splitlines()
            assert lines[1:3] == ["EOS check pass: True", "Sample length check pass: True"]
            assert (test06 / "accuracy/accuracy.txt").read_text().startswith("hash=")
            perf = org / "results/box" / name / scenario / "performance/run_1/mlperf_log_detail.txt"
            assert '"requested_use_token_latencies", "value": true' in perf.read_text()
