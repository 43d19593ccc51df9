"""The submission tree: layout, truncation, and every reason it refuses runs, on hand-made run folders."""

from __future__ import annotations

import hashlib
import dataclasses
import json
from pathlib import Path

import pytest

from harness import submission
from harness.errors import HarnessError
from harness.settings import RunConfig
from harness.rounds import load_round

ROUND = load_round()
SYSTEM = {name: "x" for name in ROUND.submission["system_fields"]} | {
    "division": "closed", "submitter": "Org", "status": "available", "system_type": "datacenter"}


def mllog(path: Path, values: dict, errors: tuple[str, ...] = ()) -> None:
    lines = [{"key": k, "value": v, "metadata": {"is_error": False}} for k, v in values.items()]
    lines += [{"key": "error_runtime", "value": e, "metadata": {"is_error": True}} for e in errors]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f":::MLLOG {json.dumps(line)}\n" for line in lines))
    (path.parent / "mlperf_log_summary.txt").write_text("Result is : VALID\n")


def performance_detail(scenario: str, **changes) -> dict:
    values = {f"effective_{k}": v for k, v in ROUND.seeds.items()} | {
        "result_validity": "VALID", "effective_scenario": scenario, "effective_min_duration_ms": 600000,
        "effective_performance_sample_count": 1024, "effective_samples_per_query": 24576,
        "effective_target_latency_ns": 15_000_000, "result_samples_per_second": 100.0,
        "result_completed_samples_per_sec": 100.0, "qsl_reported_total_count": 50000}
    return values | changes


def fake_run(folder: Path, scenario: str, *, acc: float = 76.5, samples: int = 50000, demo: bool = False,
             perf: dict | None = None, errors: tuple[str, ...] = (), failed: int = 0) -> Path:
    """A submission-mode run folder of resnet, as `harness run` leaves it."""
    settings = dataclasses.asdict(RunConfig(benchmark="resnet", scenario=scenario, mode="submission",
                                            data_dir="/data/resnet", demo=demo, user_conf="/u", device="cuda",
                                            batch_size=32))
    result = {"benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": demo, "settings": settings,
              "samples": samples, "image": None, "accuracy": {"samples": samples, "metrics": {"acc": acc}},
              "performance": {"validity": "VALID", "reasons": [], "metrics": {
                  "samples_per_second": 100.0, "completed_samples_per_second": 100.0}}}
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    (folder / "run.json").write_text(json.dumps(settings))
    (folder / "user.conf").write_text("resnet50.Offline.target_qps = 100\n")
    mllog(folder / "accuracy" / "mlperf_log_detail.txt", {"qsl_reported_total_count": samples})
    records = [{"seq_id": i, "qsl_idx": i, "data": "0000803F"} for i in range(400)]  # over 4 KiB
    (folder / "accuracy" / "mlperf_log_accuracy.json").write_text(json.dumps(records))
    (folder / "accuracy" / "accuracy.txt").write_text(f"accuracy={acc:.3f}%, good=1, total=1\n")
    (folder / "accuracy" / "sut_stats.json").write_text(json.dumps(
        {"issued": samples, "failed": failed, "errors": ["ValueError: boom"] if failed else []}))
    mllog(folder / "performance" / "run_1" / "mlperf_log_detail.txt",
          performance_detail(scenario, **(perf or {})), errors)
    return folder


def fake_compliance(folder: Path, test: str, reference: Path, *, passed: bool = True, **perf) -> Path:
    """A compliance run folder, as `harness compliance` leaves it."""
    scenario = json.loads((reference / "result.json").read_text())["settings"]["scenario"]
    seeds = ROUND.test05_seeds if test == "TEST05" else ROUND.seeds
    checked = {"test": test, "passed": passed, "reasons": [] if passed else ["performance: too fast"],
               "reference": [str(reference.resolve())]}
    result = {"benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": False, "samples": 50000,
              "compliance": checked, "settings": json.loads((reference / "run.json").read_text()) | {
                  "mode": "performance"}}
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    values = performance_detail(scenario, **({f"effective_{k}": v for k, v in seeds.items()} | perf))
    mllog(folder / "loadgen" / "mlperf_log_detail.txt", values)
    mllog(folder / test / "performance" / "run_1" / "mlperf_log_detail.txt", values)
    (folder / test / "verify_performance.txt").write_text("TEST PASS\n")
    if test == "TEST01":
        (folder / test / "verify_accuracy.txt").write_text("TEST PASS\n")
        (folder / test / "accuracy").mkdir()
        (folder / test / "accuracy" / "mlperf_log_accuracy.json").write_text("[]")
    return folder


@pytest.fixture
def runs(tmp_path):
    """A complete closed datacenter submission of resnet: Offline and Server, each with its 3 tests."""
    folders = []
    for scenario in ("Offline", "Server"):
        run = fake_run(tmp_path / scenario, scenario)
        folders += [run] + [fake_compliance(tmp_path / f"{scenario}-{t}", t, run) for t in ("TEST01", "TEST04", "TEST05")]
    return folders


def build(tmp_path, folders, system=SYSTEM, **options):
    path = tmp_path / "system.json"
    path.write_text(json.dumps(system))
    return submission.build("v4.1", options.pop("division", "closed"), "Org", path, folders, tmp_path / "out",
                            system_name="box", **options)


def refusal(tmp_path, folders, **options) -> str:
    with pytest.raises(HarnessError, match="refusing to build the submission") as error:
        build(tmp_path, folders, **options)
    assert not (tmp_path / "out").exists()  # nothing half-written
    return str(error.value)


def test_an_incomplete_run_is_refused(tmp_path, runs):
    result = json.loads((runs[0] / "result.json").read_text()) | {"incomplete": {"reason": "stopped by SIGTERM"}}
    (runs[0] / "result.json").write_text(json.dumps(result))
    assert f"{runs[0]} is an incomplete run (stopped by SIGTERM); run it again" in refusal(tmp_path, runs)


def test_the_tree_file_by_file(tmp_path, runs):
    done = build(tmp_path, runs)
    assert done["results"] == ["resnet Offline: 100.00 samples/s", "resnet Server: 100.00 samples/s"]
    tree = tmp_path / "out" / "submission"
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    expected = ["closed/Org/documentation/calibration.md", "closed/Org/systems/box.json"]
    for s in ("Offline", "Server"):
        expected += [f"closed/Org/results/box/resnet/{s}/accuracy/{f}" for f in
                     ("accuracy.txt", "mlperf_log_accuracy.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt")]
        expected += [f"closed/Org/results/box/resnet/{s}/performance/run_1/{f}"
                     for f in ("mlperf_log_detail.txt", "mlperf_log_summary.txt")]
        expected += [f"closed/Org/measurements/box/resnet/{s}/{f}"
                     for f in ("README.md", f"box_mlperf-harness_{s}.json", "mlperf.conf", "user.conf")]
        for t in ("TEST01", "TEST04", "TEST05"):
            expected += [f"closed/Org/compliance/box/resnet/{s}/{t}/{f}" for f in
                         ("performance/run_1/mlperf_log_detail.txt", "performance/run_1/mlperf_log_summary.txt",
                          "verify_performance.txt")]
        expected += [f"closed/Org/compliance/box/resnet/{s}/TEST01/{f}" for f in
                     ("accuracy/accuracy.txt", "accuracy/mlperf_log_accuracy.json", "verify_accuracy.txt")]
    code = [f for f in files if f.startswith("closed/Org/code/")]
    assert sorted(set(files) - set(code)) == sorted(expected)
    assert "closed/Org/code/resnet/mlperf-harness/benchmarks/resnet/backend.py" in code
    assert "closed/Org/code/resnet/mlperf-harness/harness/runner.py" in code
    assert not any("__pycache__" in f or "/tests/" in f and f.endswith(".pyc") for f in code)

    results = tree / "closed/Org/results/box/resnet/Offline/accuracy"
    original = tmp_path / "out/accuracy-logs/results/box/resnet/Offline/accuracy/mlperf_log_accuracy.json"
    full = (tmp_path / "Offline/accuracy/mlperf_log_accuracy.json").read_bytes()
    assert original.read_bytes() == full
    assert (results / "mlperf_log_accuracy.json").read_bytes() == full[:4096] + b"\n\n...\n\n" + full[-4096:]
    assert (results / "accuracy.txt").read_text() == \
        f"accuracy=76.500%, good=1, total=1\nhash={hashlib.sha256(full).hexdigest()}\n"
    test01 = tree / "closed/Org/compliance/box/resnet/Offline/TEST01/accuracy"
    assert (test01 / "accuracy.txt").read_text() == f"hash={hashlib.sha256(b'[]').hexdigest()}\n"
    assert (test01 / "mlperf_log_accuracy.json").read_text() == "[]"  # under 4 KiB: kept as it is
    measurements = tree / "closed/Org/measurements/box/resnet/Server"
    implementation = json.loads((measurements / "box_mlperf-harness_Server.json").read_text())
    assert set(implementation) == set(ROUND.submission["implementation_fields"]) and all(implementation.values())
    assert implementation["starting_weights_filename"] == "resnet50-19c8e357.pth"
    assert "*.*.qsl_rng_seed = 3066443479025735752" in (measurements / "mlperf.conf").read_text()
    assert "harness run resnet --scenario Server --mode performance --device cuda" in \
        (measurements / "README.md").read_text()


def test_an_existing_output_is_never_touched(tmp_path, runs):
    (tmp_path / "out").mkdir()
    with pytest.raises(HarnessError, match="already exists; nothing is overwritten"):
        build(tmp_path, runs)
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("cooling"), "field 'cooling' is missing"),
    (lambda s: s.update(host_storage_type=""), "field 'host_storage_type' is empty"),
    (lambda s: s.update(status="beta"), "status 'beta' is not one of available, preview, rdi"),
    (lambda s: s.update(system_type="cloud"), "system_type 'cloud' is not one of"),
    (lambda s: s.update(submitter="Other"), "submitter is 'Other' but the submission is 'Org'"),
])
def test_system_description_problems_are_named(tmp_path, runs, damage, message):
    system = dict(SYSTEM)
    damage(system)
    assert message in refusal(tmp_path, runs, system=system)


@pytest.mark.parametrize("run_options, message", [
    ({"demo": True}, "ran on the demo tier"),
    ({"perf": {"result_validity": "INVALID"}}, "the result is INVALID"),
    ({"errors": ("Ending early: Ran out of generated queries",)}, "LoadGen error: error_runtime: Ending early"),
    ({"perf": {"effective_min_duration_ms": 60000}}, "configured to run 60000 ms; a submission runs at least 600000"),
    ({"perf": {"effective_qsl_rng_seed": 1}}, "qsl_rng_seed is 1, the round needs 3066443479025735752"),
    ({"perf": {"effective_samples_per_query": 1000}}, "the Offline query holds 1000 samples, fewer than 24576"),
    ({"perf": {"effective_performance_sample_count": 64}}, "performance sample count 64 is below 1024"),
    ({"acc": 70.0}, "resnet: no MLPerf name qualifies (resnet not packaged: Offline: acc 70, target 75.6954)"),
    ({"samples": 1000}, "the accuracy run covered 1000 samples, not the whole dataset of 50000"),
    ({"perf": {"qsl_reported_total_count": 5000}}, "LoadGen drew from 5000 samples, not the whole dataset of 50000"),
    ({"failed": 3}, "3 of 50000 samples failed in the SUT (first error: ValueError: boom)"),
])
def test_each_refusal_reason(tmp_path, runs, run_options, message):
    runs[0] = fake_run(tmp_path / "bad", "Offline", **run_options)
    for n in (1, 2, 3):  # the compliance runs now point at the replaced run
        result = json.loads((runs[n] / "result.json").read_text())
        result["compliance"]["reference"] = [str(runs[0].resolve())]
        (runs[n] / "result.json").write_text(json.dumps(result))
    assert message in refusal(tmp_path, runs)


def test_server_latency_bound_missing_scenarios_and_compliance(tmp_path, runs):
    runs[4] = fake_run(tmp_path / "slow", "Server", perf={"effective_target_latency_ns": 20_000_000})
    text = refusal(tmp_path, runs)
    assert "latency bound 20000000 ns is above the 15 ms of the round" in text
    assert "compliance TEST01 in" in text and "was checked against" in text  # the tests were of another run
    text = refusal(tmp_path, runs[:3] + [runs[4]])  # no TEST05 for Offline, no tests for Server
    assert "compliance TEST05 is required: run `harness compliance resnet --test TEST05" in text
    assert text.count("compliance TEST0") == 4
    assert "resnet: the Server scenario is required for datacenter systems and was not run" in refusal(
        tmp_path, runs[:4])


@pytest.mark.parametrize("scenario, changes, message", [
    ("Server", {}, None),
    ("Offline", {"result_first_token_99.00_percentile_latency_ns": 9e9}, None),  # Offline has no TTFT bound
    ("Server", {"result_first_token_99.00_percentile_latency_ns": 2_000_000_000},
     "its TTFT p99 of 2000000000 ns is not below the round's 2000 ms"),
    ("Server", {"result_time_per_output_token_99.00_percentile_ns": 250_000_000},
     "its TPOT p99 of 250000000 ns is not below the round's 200 ms"),
    ("Offline", {"requested_use_token_latencies": False},
     "it did not measure token latencies (use_token_latencies); the round requires them for llama2-70b-99"),
    ("Server", {"effective_sample_concatenate_permutation": False},
     "equal-issue mode (sample_concatenate_permutation) was off; the round requires it for llama2-70b-99"),
])
def test_llm_performance_runs_need_token_latencies_under_the_bounds(tmp_path, scenario, changes, message):
    values = performance_detail(scenario, **{
        "effective_performance_sample_count": 24576, "qsl_reported_total_count": 24576,
        "requested_use_token_latencies": True, "effective_sample_concatenate_permutation": True,
        "result_first_token_99.00_percentile_latency_ns": 1_999_000_000,
        "result_time_per_output_token_99.00_percentile_ns": 199_000_000} | changes)
    mllog(tmp_path / "mlperf_log_detail.txt", values)
    found = submission.performance_problems(tmp_path, "llama2-70b-99", scenario, 24576, ROUND, ROUND.seeds)
    assert found == ([f"{tmp_path}: {message}"] if message else [])


def test_failed_and_mismatched_compliance_runs(tmp_path, runs):
    runs[1] = fake_compliance(tmp_path / "failed", "TEST01", runs[0], passed=False)
    runs[3] = fake_compliance(tmp_path / "seeds", "TEST05", runs[0], effective_schedule_rng_seed=7)
    text = refusal(tmp_path, runs)
    assert "compliance TEST01 failed in" in text and "performance: too fast" in text
    assert "seeds/loadgen: schedule_rng_seed is 7, the round needs 5435552105434836064" in text


def test_runs_that_cannot_be_sorted_out_are_errors(tmp_path, runs):
    with pytest.raises(HarnessError, match="two accuracy runs for resnet Offline: .* and .*again; pass one"):
        build(tmp_path, runs + [fake_run(tmp_path / "again", "Offline")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="has no result.json"):
        build(tmp_path, runs + [tmp_path / "empty"])
    other = fake_run(tmp_path / "old", "Offline")
    result = json.loads((other / "result.json").read_text()) | {"round": "v4.0"}
    (other / "result.json").write_text(json.dumps(result))
    assert "is a run of round v4.0, not v4.1" in refusal(tmp_path, runs[1:] + [other])


def test_variants_are_packaged_where_their_targets_and_system_type_allow(tmp_path):
    edge = SYSTEM | {"system_type": "edge"}
    run = fake_run(tmp_path / "run", "Offline")
    text = refusal(tmp_path, [run], system=edge)
    assert "resnet: the SingleStream scenario is required for edge systems" in text
    assert "resnet: the MultiStream scenario is required" in text
    # open: no required scenarios or compliance tests
    done = build(tmp_path, [run], system=SYSTEM | {"division": "open"}, division="open")
    assert done["results"] == ["resnet Offline: 100.00 samples/s"]
    assert (tmp_path / "out/submission/open/Org/results").is_dir()


def test_hygiene_of_the_built_tree(tmp_path):
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / ".hidden").write_text("x")
    (tmp_path / "t" / "two words.txt").write_text("x")
    (tmp_path / "t" / "big.log").write_bytes(b"x" * 2048)
    assert sorted(submission.hygiene_problems(tmp_path / "t", 1024)) == [
        ".hidden: hidden, cache or space in the name", "a is an empty folder", "big.log is over 1024 bytes",
        "two words.txt: hidden, cache or space in the name"]


def test_cli_errors_name_the_problem(tmp_path, runs, capsys):
    from harness import cli

    assert cli.main(["system-template", "--out", str(tmp_path / "box.json")]) == 0
    template = json.loads((tmp_path / "box.json").read_text())
    assert set(template) == set(ROUND.submission["system_fields"]) and template["framework"].startswith("PyTorch")
    assert cli.main(["system-template", "--out", str(tmp_path / "box.json")]) == 2
    assert "already exists; nothing is overwritten" in capsys.readouterr().err
    args = ["submit", "--submitter", "Org", "--system", str(tmp_path / "box.json"), *map(str, runs),
            "--out", str(tmp_path / "out")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "field 'submitter' is empty" in err and "field 'system_type' is empty" in err
    assert cli.main(args[:4] + [str(tmp_path / "none.json")] + args[5:]) == 2
    assert "does not exist; write one with `harness system-template" in capsys.readouterr().err
    assert cli.main(["submit", "--division", "network", *args[1:]]) == 2
    assert "division 'network' is not one of closed, open" in capsys.readouterr().err
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    assert cli.main(["submit", "--submitter", "Org", "--system", str(tmp_path / "system.json"), *map(str, runs),
                     "--out", str(tmp_path / "tree")]) == 0
    assert "results:\n  resnet Offline: 100.00 samples/s\n  resnet Server: 100.00 samples/s" in capsys.readouterr().out


def test_a_run_folder_without_logs_is_named(tmp_path, runs):
    empty = tmp_path / "nologs"
    empty.mkdir()
    made = json.loads((runs[0] / "result.json").read_text())
    (empty / "result.json").write_text(json.dumps(made | {"settings": made["settings"] | {"mode": "accuracy"}}))
    assert f"{empty} holds no LoadGen logs (no accuracy/ or performance/run_1/)" in refusal(tmp_path, runs + [empty])


def test_a_tree_that_fails_its_final_check_leaves_nothing_behind(tmp_path, runs, monkeypatch):
    monkeypatch.setattr(submission, "hygiene_problems", lambda tree, limit: ["code/x is an empty folder"])
    with pytest.raises(HarnessError, match="refusing the built tree:\n  - code/x is an empty folder"):
        build(tmp_path, runs)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_an_unscored_metric_is_a_miss_that_says_why(tmp_path):
    from harness.runs import Run

    run = Run(tmp_path, {"accuracy": {"samples": 50000, "metrics": {"acc": None, "unscored": "acc: no labels"}}})
    entry = submission.Entry("resnet", "Offline", accuracy=run)
    assert submission.accuracy_misses(entry, "resnet", ROUND) == [f"acc was not scored in {tmp_path}: acc: no labels"]


def test_a_linked_file_in_a_run_folder_is_refused_not_copied(tmp_path, runs):
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("not the run's")
    accuracy_txt = runs[0] / "accuracy" / "accuracy.txt"
    accuracy_txt.unlink()
    accuracy_txt.symlink_to(secret)
    with pytest.raises(HarnessError, match="accuracy.txt is a symbolic link, not a file the run wrote"):
        build(tmp_path, runs)
    assert not (tmp_path / "out").exists()


def rnnt_run(folder: Path, scenario: str) -> Path:
    """A v4.0 rnnt submission-mode run folder: the resnet one made over for rnnt, its seeds v4.0's."""
    v40 = load_round("v4.0")
    fake_run(folder, scenario)
    result = json.loads((folder / "result.json").read_text())
    settings = result["settings"] | {"benchmark": "rnnt", "round": "v4.0", "data_dir": "/data/rnnt", "batch_size": 16}
    result |= {"benchmark": "rnnt", "mlperf_names": ["rnnt"], "round": "v4.0", "samples": 2513, "settings": settings,
               "accuracy": {"samples": 2513, "metrics": {"accuracy": 92.5, "wer": 7.5, "utterances": 2513}}}
    (folder / "result.json").write_text(json.dumps(result))
    (folder / "run.json").write_text(json.dumps(settings))
    (folder / "user.conf").write_text("rnnt.Offline.target_qps = 100\n")
    (folder / "accuracy" / "accuracy.txt").write_text("Word Error Rate: 7.5%, accuracy=92.5%\n")
    mllog(folder / "accuracy" / "mlperf_log_detail.txt", {"qsl_reported_total_count": 2513})
    mllog(folder / "performance" / "run_1" / "mlperf_log_detail.txt", performance_detail(
        scenario, **{f"effective_{k}": v for k, v in v40.seeds.items()}, effective_performance_sample_count=2513,
        effective_samples_per_query=2513, effective_target_latency_ns=1_000_000_000, qsl_reported_total_count=2513))
    return folder


def rnnt_compliance(folder: Path, test: str, reference: Path) -> Path:
    v40 = load_round("v4.0")
    fake_compliance(folder, test, reference)
    result = json.loads((folder / "result.json").read_text())
    result |= {"benchmark": "rnnt", "mlperf_names": ["rnnt"], "round": "v4.0", "samples": 2513}
    (folder / "result.json").write_text(json.dumps(result))
    seeds = v40.test05_seeds if test == "TEST05" else v40.seeds
    scenario = result["settings"]["scenario"]
    values = performance_detail(scenario, **{f"effective_{k}": v for k, v in seeds.items()},
                                effective_performance_sample_count=2513, effective_samples_per_query=2513,
                                effective_target_latency_ns=1_000_000_000, qsl_reported_total_count=2513)
    mllog(folder / "loadgen" / "mlperf_log_detail.txt", values)
    mllog(folder / test / "performance" / "run_1" / "mlperf_log_detail.txt", values)
    return folder


def test_a_v40_rnnt_tree_carries_the_rounds_mlperf_conf(tmp_path):
    """Round v4.0: its rnnt runs (Offline and Server, TEST01 and TEST05) in its own tree, whose
    measurements carry v4.0's mlperf.conf (LoadGen 4.0.1 embeds none); v4.1 refuses them."""
    folders = []
    for scenario in ("Offline", "Server"):
        run = rnnt_run(tmp_path / scenario, scenario)
        folders += [run] + [rnnt_compliance(tmp_path / f"{scenario}-{t}", t, run) for t in ("TEST01", "TEST05")]
    system = {name: "x" for name in load_round("v4.0").submission["system_fields"]} | {
        "division": "closed", "submitter": "Org", "status": "available", "system_type": "datacenter"}
    (tmp_path / "system.json").write_text(json.dumps(system))
    done = submission.build("v4.0", "closed", "Org", tmp_path / "system.json", folders, tmp_path / "out",
                            system_name="box")
    assert done["round"] == "v4.0"
    assert done["results"] == ["rnnt Offline: 100.00 samples/s", "rnnt Server: 100.00 samples/s"]
    tree = tmp_path / "out" / "submission" / "closed" / "Org"
    conf = (tree / "measurements/box/rnnt/Offline/mlperf.conf").read_text()
    assert conf == load_round("v4.0").mlperf_conf and "*.*.qsl_rng_seed = 13281865557512327830" in conf
    assert (tree / "results/box/rnnt/Server/accuracy/accuracy.txt").read_text().startswith(
        "Word Error Rate: 7.5%, accuracy=92.5%\nhash=")
    assert (tree / "compliance/box/rnnt/Offline/TEST05/verify_performance.txt").is_file()
    with pytest.raises(HarnessError, match="is a run of round v4.0, not v4.1"):
        submission.build("v4.1", "closed", "Org", tmp_path / "system.json", folders, tmp_path / "other",
                         system_name="box")
