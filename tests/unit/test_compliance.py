"""Compliance tests: audit.config handling and the verification rules, on hand-made logs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlperf_loadgen as lg
import numpy as np
import pytest

from harness import compliance, logs, settings, worker
from harness.errors import InvalidSettings
from harness.rounds import load_round
from harness.settings import RunConfig

TOLERANCES = load_round().tolerances


def detail(path: Path, **values) -> logs.Detail:
    path.write_text("".join(f':::MLLOG {json.dumps({"key": k, "value": v, "metadata": {"is_error": False}})}\n'
                            for k, v in values.items()))
    return logs.read_detail(path)


def accuracy_log(path: Path, entries: list[tuple[int, bytes]]) -> Path:
    path.write_text(json.dumps([{"seq_id": n, "qsl_idx": i, "data": d.hex().upper()}
                                for n, (i, d) in enumerate(entries)]))
    return path


# -- audit.config -------------------------------------------------------------------------------

def test_audit_configs_come_from_the_round_for_the_conf_key():
    rnd = load_round()
    assert rnd.audit_config("TEST01", "resnet50").splitlines()[-1] == "*.*.accuracy_log_sampling_target = 4096"
    assert rnd.audit_config("TEST01", "retinanet").splitlines()[-1] == "*.*.accuracy_log_sampling_target = 256"
    assert rnd.audit_config("TEST05", "bert") == "*.*.test05 = 1\n"
    # a line naming a conf key applies to that benchmark only, written with "*" as LoadGen reads it
    assert "*.Offline.min_query_count = 500" in rnd.audit_config("TEST04", "stable-diffusion-xl")
    assert "min_query_count" not in rnd.audit_config("TEST04", "resnet50")


def test_audit_lines_are_applied_to_test_settings_as_loadgen_would():
    s = lg.TestSettings()
    s.scenario, s.mode = lg.TestScenario.Offline, lg.TestMode.AccuracyOnly
    s.offline_expected_qps, s.min_duration_ms, s.min_query_count = 100, 600000, 24576
    applied = settings.apply_audit(s, load_round().audit_config("TEST01", "resnet50"), "Offline", 1024)
    assert s.mode == lg.TestMode.PerformanceOnly and s.accuracy_log_rng_seed == 720381539243781796
    # 4096 of the 1.1 x 600 s x 100 samples/s = 66000 samples the Offline query will hold
    assert applied["accuracy_log_probability"] == s.accuracy_log_probability == pytest.approx(4096 / 66000)
    settings.apply_audit(s, load_round().audit_config("TEST04", "resnet50"), "Offline", 1024)
    assert s.performance_issue_same and not s.performance_issue_unique and s.performance_issue_same_index == 3
    settings.apply_audit(s, load_round().audit_config("TEST05", "resnet50"), "Offline", 1024)
    assert s.test05


def offline(qps: float, duration_ms: int, min_queries: int, **more) -> lg.TestSettings:
    s = lg.TestSettings()
    s.offline_expected_qps, s.min_duration_ms, s.min_query_count = qps, duration_ms, min_queries
    for name, value in more.items():
        setattr(s, name, value)
    return s


def stream(scenario: str, duration_ms: int, min_queries: int, **more) -> lg.TestSettings:
    s = lg.TestSettings()
    s.min_duration_ms, s.min_query_count = duration_ms, min_queries
    for name, value in more.items():
        setattr(s, name, value)
    return s


@pytest.mark.parametrize("scenario, made, performance_count, expected", [
    # Offline: max(QPS x duration, the query: max(min_query_count, trunc(1.1 x duration_s x QPS)))
    ("Offline", offline(100, 600000, 24576), 1024, 66000),
    ("Offline", offline(10, 60000, 1024), 1024, 1024),
    # performance_issue_unique: the query holds the performance sample count, QPS x duration wins
    ("Offline", offline(100, 600000, 24576, performance_issue_unique=True), 1024, 60000),
    ("Offline", offline(1, 1000, 1, performance_issue_unique=True), 500, 500),
    ("Offline", offline(1, 1000, 1, performance_issue_unique=True, performance_sample_count_override=64), 500, 64),
    # Server: trunc(QPS x duration_ms / 1000), in that order: 8.7 x 60000 / 1000 = 521.99.. -> 521
    ("Server", stream("Server", 60000, 100, server_target_qps=8.7), 1024, 521),
    ("Server", stream("Server", 60000, 800, server_target_qps=8.7), 1024, 800),
    # SingleStream: QPS = 1 / expected latency
    ("SingleStream", stream("SingleStream", 600000, 1024, single_stream_expected_latency_ns=4_000_000), 1024, 150000),
    ("SingleStream", stream("SingleStream", 1000, 1024, single_stream_expected_latency_ns=4_000_000), 1024, 1024),
    # MultiStream: queries of samples_per_query samples
    ("MultiStream", stream("MultiStream", 600000, 662, multi_stream_expected_latency_ns=50_000_000,
                           multi_stream_samples_per_query=8), 1024, 96000),
    ("MultiStream", stream("MultiStream", 1000, 662, multi_stream_expected_latency_ns=50_000_000,
                           multi_stream_samples_per_query=8), 1024, 5296),
])
def test_expected_samples_are_those_loadgen_computes(scenario, made, performance_count, expected):
    assert settings.expected_samples(made, scenario, performance_count) == expected


def test_the_sampling_probability_is_loadgen_s_quotient_unclamped():
    s = stream("Server", 60000, 100, server_target_qps=8.7)
    applied = settings.apply_audit(s, load_round().audit_config("TEST01", "retinanet"), "Server", 64)
    assert applied["accuracy_log_probability"] == s.accuracy_log_probability == 256 / 521  # not 256 / 522
    few = stream("Server", 10000, 100, server_target_qps=1.0)
    settings.apply_audit(few, load_round().audit_config("TEST01", "resnet50"), "Server", 1024)
    assert few.accuracy_log_probability == 4096 / 100  # above 1: every response is logged, as in LoadGen


def test_scenario_lines_win_over_wildcards_and_bad_lines_are_named():
    assert settings.audit_values("*.*.mode = 1\n*.Server.mode = 2\n*.Offline.mode = 3  # note\n", "Server") == {
        "mode": "2"}
    with pytest.raises(InvalidSettings, match="'resnet50.mode = 2' is not"):
        settings.audit_values("resnet50.mode = 2", "Offline")
    with pytest.raises(InvalidSettings, match="audit key 'print_timestamps' cannot be applied"):
        settings.apply_audit(lg.TestSettings(), "*.*.print_timestamps = 1", "Offline", 1)


def test_an_audit_file_exists_only_while_the_test_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError):
        with worker.audit_config("*.*.mode = 2\n"):
            assert (tmp_path / "audit.config").read_text() == "*.*.mode = 2\n"
            raise RuntimeError("the test crashed")
    assert not (tmp_path / "audit.config").exists()
    with worker.audit_config(None):
        assert not (tmp_path / "audit.config").exists()


# -- TEST01 accuracy ----------------------------------------------------------------------------

def test_logged_responses_are_compared_by_sample_and_whole_payload(tmp_path):
    one, two = np.float32([1, 0.5]).tobytes(), np.float32([2, 0.25]).tobytes()
    reference = accuracy_log(tmp_path / "acc.json", [(0, one), (1, two), (2, b"")])
    same = accuracy_log(tmp_path / "same.json", [(1, two), (1, two), (0, one), (7, one)])
    checked = compliance.compare_accuracy(reference, same)
    assert checked["passed"] and checked["num_perf_log_qsl_idx_match"] == 3 and checked["num_missing_qsl_idxs"] == 1
    assert checked["text"].endswith("num_perf_log_data_mismatch = 0\nnum_missing_qsl_idxs = 1\nTEST PASS\n")
    # the same first element, another second one: the official first-element check would pass it
    other = accuracy_log(tmp_path / "other.json", [(0, np.float32([1, 0.75]).tobytes()), (2, b"")])
    checked = compliance.compare_accuracy(reference, other)
    assert not checked["passed"] and checked["mismatched_samples"] == [0] and checked["text"].endswith("TEST FAIL\n")
    assert not compliance.compare_accuracy(reference, accuracy_log(tmp_path / "none.json", [(9, one)]))["passed"]


# -- performance rules --------------------------------------------------------------------------

def check(tmp_path, test, scenario, ref, got, key=None, validity="VALID"):
    key = key or compliance.SCORE_KEYS[scenario]
    reference = detail(tmp_path / "ref.txt", effective_scenario=scenario, result_validity="VALID", **{key: ref})
    tested = detail(tmp_path / "test.txt", effective_scenario=scenario, result_validity=validity, **{key: got})
    return compliance.performance_check(test, reference, tested, TOLERANCES)


@pytest.mark.parametrize("test, scenario, ref, got, passed", [
    ("TEST01", "Offline", 100.0, 109.0, True), ("TEST01", "Offline", 100.0, 91.0, True),
    ("TEST01", "Offline", 100.0, 111.0, False), ("TEST01", "Offline", 100.0, 89.0, False),
    ("TEST01", "SingleStream", 5_000_000, 5_400_000, True), ("TEST01", "SingleStream", 5_000_000, 5_600_000, False),
    ("TEST01", "SingleStream", 150_000, 175_000, True),  # latencies up to 0.2 ms: 20%
    ("TEST04", "Offline", 100.0, 109.0, True), ("TEST04", "Offline", 100.0, 111.0, False),
    ("TEST04", "Offline", 100.0, 50.0, True),  # slower is never a result cache
    ("TEST04", "SingleStream", 5_000_000, 4_600_000, True), ("TEST04", "SingleStream", 5_000_000, 4_400_000, False),
    ("TEST05", "Server", 100.0, 96.0, True), ("TEST05", "Server", 100.0, 94.0, False),
    ("TEST05", "Server", 100.0, 150.0, True), ("TEST05", "MultiStream", 10_000_000, 10_400_000, True),
    ("TEST05", "MultiStream", 10_000_000, 10_600_000, False),
])
def test_performance_rules(tmp_path, test, scenario, ref, got, passed):
    checked = check(tmp_path, test, scenario, ref, got)
    assert checked["passed"] is passed
    assert checked["text"].splitlines()[-1] == ("TEST PASS" if passed else "TEST FAIL: Test score invalid")


def test_invalid_or_mismatched_runs_fail(tmp_path):
    checked = check(tmp_path, "TEST01", "Offline", 100.0, 100.0, validity="INVALID")
    assert not checked["passed"] and "TEST FAIL: Test results are invalid" in checked["text"]
    assert "TEST PASS" not in checked["text"]
    reference = detail(tmp_path / "r.txt", effective_scenario="Offline", result_validity="VALID",
                       result_samples_per_second=1.0)
    tested = detail(tmp_path / "t.txt", effective_scenario="Server", result_validity="VALID",
                    result_completed_samples_per_sec=1.0)
    assert "scenarios do not match" in compliance.performance_check("TEST04", reference, tested, TOLERANCES)["text"]


def test_accuracy_fallback_scores_both_logs_on_the_same_samples(tmp_path, demo_data):
    from harness import registry

    bench, data = registry.get("resnet"), demo_data("resnet")
    labels = [int(line.split()[1]) for line in (data / "imagenet" / "val_map.txt").read_text().splitlines()]
    right = {i: np.float32([labels[i]]).tobytes() for i in range(8)}
    wrong = {i: np.float32([(labels[i] + 1) % 1000]).tobytes() for i in range(8)}
    reference = accuracy_log(tmp_path / "acc.json", list(right.items()))  # 8 of 8 right
    sampled = accuracy_log(tmp_path / "t.json", [(i, right[i] if i < 3 else wrong[i]) for i in (0, 1, 2, 5)])
    fallback = compliance.accuracy_fallback(bench, load_round(), reference, sampled, data, tmp_path)
    delta = fallback["deltas"][0]  # baseline: the 4 logged samples of the accuracy run, all right
    assert (delta["baseline"], delta["compliance"], delta["allowed_percent"]) == (100.0, 75.0, 1.0)
    assert delta["delta_percent"] == pytest.approx(100 / 3) and not fallback["passed"]
    assert (tmp_path / "baseline_accuracy.txt").read_text().startswith("accuracy=100.000%, good=4, total=4")
    assert (tmp_path / "compliance_accuracy.txt").read_text().startswith("accuracy=75.000%, good=3, total=4")


def test_a_stray_audit_config_never_reaches_a_run(tmp_path, monkeypatch, demo_data):
    from harness import cli
    from harness.jobs import Job

    monkeypatch.chdir(tmp_path)  # where a user may have left one from a manual compliance run
    (tmp_path / "audit.config").write_text("*.*.mode = 1\n*.*.test05 = 1\n")
    (tmp_path / "short.conf").write_text("*.Offline.min_duration = 0\n*.Offline.target_qps = 1000\n")
    assert cli.main(["run", "resnet", "--mode", "performance", "--null-backend", "--user-conf", "short.conf",
                     "--data", str(demo_data("resnet")), "--out", "run"]) == 0
    text = (tmp_path / "run/performance/run_1/mlperf_log_detail.txt").read_text()
    assert "Found Audit Config" not in text and '"effective_test_mode", "value": "PerformanceOnly"' in text
    # and one inside a test's own folder stops that test before LoadGen starts
    job = Job("performance", str(tmp_path / "run/performance/run_1"), "performance", 0, 4, ["cpu"])
    (tmp_path / "run/performance/run_1/audit.config").write_text("*.*.mode = 1\n")
    with pytest.raises(worker.HarnessError, match="audit.config exists and would turn this run into a compliance"):
        worker.run(tmp_path / "run", job)


def test_compliance_input_errors(tmp_path, capsys):
    from harness import cli

    assert cli.main(["compliance", "resnet", "--test", "TEST09", "--results", str(tmp_path)]) == 2
    assert "unknown compliance test 'TEST09'; use one of TEST01, TEST04, TEST05" in capsys.readouterr().err
    assert cli.main(["compliance", "resnet", "--test", "TEST01", "--results", str(tmp_path / "nope")]) == 2
    assert "is not a folder; pass run folders" in capsys.readouterr().err
    run = tmp_path / "run"
    (run / "performance" / "run_1").mkdir(parents=True)
    (run / "performance" / "run_1" / "mlperf_log_detail.txt").write_text(":::MLLOG {}\n")
    settings = RunConfig(benchmark="bert", scenario="Offline", mode="performance", data_dir="/d", demo=False,
                         user_conf="/u")
    (run / "result.json").write_text(json.dumps({"benchmark": "bert", "mlperf_names": ["bert-99"], "round": "v4.1",
                                                 "demo": False, "samples": 10833,
                                                 "settings": dataclasses.asdict(settings)}))
    assert cli.main(["compliance", "resnet", "--test", "TEST04", "--results", str(run)]) == 2
    assert "(bert Offline performance) is not a resnet run to check against" in capsys.readouterr().err
    assert cli.main(["compliance", "bert", "--test", "TEST01", "--results", str(run)]) == 2
    assert "TEST01 needs one performance run and one accuracy run" in capsys.readouterr().err


# -- TEST06 -------------------------------------------------------------------------------------

def token_log(path: Path, entries: list[tuple[list[int], list[int] | None, int | None]]) -> Path:
    """An accuracy log as LoadGen writes it in token mode: data, token_data (not in Offline), token_count."""
    records = []
    for n, (data, first, count) in enumerate(entries):
        record = {"seq_id": n, "qsl_idx": n, "data": np.asarray(data, np.int32).tobytes().hex().upper()}
        if first is not None:
            record["token_data"] = np.asarray(first, np.int32).tobytes().hex().upper()
        if count is not None:
            record["token_count"] = count
        records.append(record)
    path.write_text(json.dumps(records))
    return path


def verify06(tmp_path, entries, scenario="Server"):
    out = tmp_path / "TEST06"
    checked = compliance.verify_tokens(token_log(tmp_path / "log.json", entries), out, scenario, "int32", 2)
    return checked, (out / "verify_accuracy.txt").read_text()


def test_test06_passes_streamed_outputs_with_one_eos_and_the_official_lines(tmp_path):
    checked, text = verify06(tmp_path, [([5, 6, 2], [5], 3), ([2, 2], [2], 2), ([2], [2], 1), ([7, 8], [7], 2)])
    assert checked["passed"] and not checked["reasons"]
    assert text == ("First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
                    "TEST06 verification complete\n")
    assert (tmp_path / "TEST06" / "accuracy" / logs.ACCURACY).is_file()


def test_test06_offline_skips_the_first_token_check(tmp_path):
    checked, text = verify06(tmp_path, [([5, 6], None, 2)], "Offline")
    assert checked["passed"] and text.startswith("First token check pass: Skipped\n")


@pytest.mark.parametrize(("entries", "failed", "line"), [
    ([([5, 6], [6], 2)], "first_token", "First token check pass: False"),  # streamed token is not the first
    ([([5, 6], None, 2)], "first_token", "First token check pass: False"),  # no FirstTokenComplete logged
    ([([5, 2, 2], [5], 3)], "eos", "EOS check pass: False"),  # EOS padding left in the output
    ([([5, 6, 2, 2, 2], [5], 5)], "eos", "EOS check pass: False"),
    ([([5, 6], [5], 3)], "length", "Sample length check pass: False"),  # n_tokens one too many
    ([([5, 6], [5], None)], "length", "Sample length check pass: False"),
])
def test_test06_fails_each_check_on_its_own(tmp_path, entries, failed, line):
    checked, text = verify06(tmp_path, [([9, 9], [9], 2)] + entries)
    assert not checked["passed"]
    assert line in text.splitlines() and text.endswith("TEST06 verification failed\n")
    assert [k for k, v in checked["token_check"].items() if isinstance(v, dict) and not v["passed"]] == [failed]
    assert checked["token_check"][failed]["samples"] == [1] and "samples 1" in checked["reasons"][0]


def test_test06_audit_settings_apply_and_record_what_loadgen_4_1_cannot_take():
    lg_settings = lg.TestSettings()
    applied = settings.apply_audit(lg_settings, load_round().audit_config("TEST06", "llama2-70b"), "Offline", 24576)
    assert lg_settings.min_duration_ms == 0 and lg_settings.min_query_count == 100
    assert applied["sample_concatenate_permutation"].startswith("0 (not applied:")
