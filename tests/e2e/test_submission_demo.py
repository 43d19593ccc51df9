"""Compliance and submission on real demo runs: BERT Offline, submission run + TEST01 + TEST05.

A demo run can never be submitted (random weights, 58 features, seconds long), so the tree is built
with the test-only ``allow_demo`` and the round's limits scaled to the demo: accuracy targets 0,
minimum duration 0.5 s, sample counts 1, dataset size 58, and compliance tolerances wide enough
for a shared CI machine's timing noise. Everything else is the real flow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from harness import cli, compliance, registry, submission
from harness.rounds import MetricTarget, PerformanceRules, load_round

pytestmark = pytest.mark.slow
SHORT = ("bert.Offline.min_duration = 500\nbert.Offline.min_query_count = 1\nbert.Offline.target_qps = 3000\n")


@pytest.fixture(scope="module")
def demo_scale():
    rnd = load_round()
    scaled = dataclasses.replace(
        rnd, accuracy={n: (MetricTarget("f1", 0.0, 1.0),) for n in ("bert-99", "bert-99.9")},
        performance={n: PerformanceRules(1, 1, 130) for n in ("bert-99", "bert-99.9")},
        submission=rnd.submission | {"min_duration_ms": 500}, tolerances={k: 5.0 for k in rnd.tolerances})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compliance, "load_round", lambda name: scaled)
        patch.setattr(submission, "load_round", lambda name: scaled)
        bench = registry.get("bert")
        patch.setitem(registry.discover(), "bert", dataclasses.replace(
            bench, spec=dataclasses.replace(bench.spec, dataset_size=58, performance_count=58)))
        yield scaled


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory, demo_scale):
    root = tmp_path_factory.mktemp("submission")
    (root / "short.conf").write_text(SHORT)
    assert cli.main(["run", "bert", "--mode", "submission", "--user-conf", str(root / "short.conf"),
                     "--data", str(demo_data("bert")), "--out", str(root / "run")]) == 0
    checked = {t: compliance.run("bert", t, [root / "run"], "Offline", root / t, echo=False) for t in ("TEST01", "TEST05")}
    return root, checked


def test_compliance_runs_verify_against_the_submission_run(runs):
    root, checked = runs
    test01 = checked["TEST01"]["compliance"]
    # the SUT gives the same bytes in performance mode as in accuracy mode
    assert test01["passed"] and test01["accuracy_check"]["num_perf_log_data_mismatch"] == 0
    assert test01["accuracy_check"]["num_perf_log_qsl_idx_match"] > 0
    assert test01["audit_settings"]["accuracy_log_rng_seed"] == 720381539243781796
    assert (root / "TEST01/TEST01/verify_accuracy.txt").read_text().endswith("TEST PASS\n")
    assert (root / "TEST01/TEST01/verify_performance.txt").read_text().endswith("TEST PASS\n")
    test05 = checked["TEST05"]
    assert test05["compliance"]["passed"] and test05["performance"]["validity"] == "VALID"
    seeds = load_round().test05_seeds
    detail = (root / "TEST05/loadgen/mlperf_log_detail.txt").read_text()
    assert f'"effective_schedule_rng_seed", "value": {seeds["schedule_rng_seed"]}' in detail
    assert not list(root.rglob("audit.config"))  # the settings reached LoadGen; no file was left anywhere
    assert "Compliance TEST05 (required for bert-99, bert-99.9): PASS" in (root / "TEST05/report.txt").read_text()


def test_the_tree_from_demo_runs(runs, tmp_path):
    root, _ = runs
    system = submission.system_template(load_round()) | {"submitter": "Org", "division": "open",
                                                         "system_type": "edge", "system_name": "ci box"}
    system = {k: v or "n/a" for k, v in system.items()}
    (tmp_path / "box.json").write_text(json.dumps(system))
    done = submission.build("v4.1", "open", "Org", tmp_path / "box.json", [root / "run", root / "TEST01",
                            root / "TEST05"], tmp_path / "out", allow_demo=True)
    assert len(done["results"]) == 1 and done["results"][0].startswith("bert-99 Offline: ")
    assert done["notes"] == ["bert-99.9 not packaged: not allowed for edge systems"]
    org = tmp_path / "out/submission/open/Org"
    accuracy = org / "results/box/bert-99/Offline/accuracy"
    assert sorted(p.name for p in accuracy.iterdir()) == ["accuracy.txt", "mlperf_log_accuracy.json",
                                                          "mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    full = (root / "run/accuracy/mlperf_log_accuracy.json").read_bytes()
    lines = (accuracy / "accuracy.txt").read_text().splitlines()
    assert lines[0].startswith('{"exact_match": ') and lines[1] == f"hash={hashlib.sha256(full).hexdigest()}"
    assert (accuracy / "mlperf_log_accuracy.json").stat().st_size <= 10240 < len(full)
    assert sorted(p.name for p in (org / "results/box/bert-99/Offline/performance/run_1").iterdir()) == [
        "mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    test01 = org / "compliance/box/bert-99/Offline/TEST01"
    assert sorted(str(p.relative_to(test01)) for p in test01.rglob("*") if p.is_file()) == [
        "accuracy/accuracy.txt", "accuracy/mlperf_log_accuracy.json", "performance/run_1/mlperf_log_detail.txt",
        "performance/run_1/mlperf_log_summary.txt", "verify_accuracy.txt", "verify_performance.txt"]
    assert (org / "compliance/box/bert-99/Offline/TEST05/verify_performance.txt").is_file()
    measurements = org / "measurements/box/bert-99/Offline"
    assert (measurements / "user.conf").read_text() == SHORT
    assert json.loads((measurements / "box_mlperf-harness_Offline.json").read_text())["weight_data_types"] == "fp32"
    assert (org / "code/bert-99/mlperf-harness/benchmarks/bert/dataset.py").is_file()
    assert json.loads((org / "systems/box.json").read_text())["system_type"] == "edge"
