"""End to end on the GPT-J demo tier: the CLI, one LoadGen process per test, real scoring."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil

import pytest

from harness import cli

pytestmark = pytest.mark.slow

# The v4.1 submission checker's accuracy patterns for gptj
CHECKER = {"ROUGE1": r".*'rouge1':\s([\d.]+).*", "ROUGE2": r".*'rouge2':\s([\d.]+).*",
           "ROUGEL": r".*'rougeL':\s([\d.]+).*", "GEN_LEN": r".*'gen_len':\s([\d.]+).*"}
PERF_CONF = """\
gptj.Offline.min_duration = 1000
gptj.Offline.min_query_count = 1
gptj.Offline.target_qps = 40
"""


def harness(*args: str) -> int:
    return cli.main(list(args))


@pytest.fixture(scope="module")
def accuracy_run(demo_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "accuracy"
    assert harness("run", "gptj", "--mode", "accuracy", "--n-count", "8", "--data", str(demo_data("gptj")),
                   "--out", str(out)) == 0
    return out


def test_accuracy_run_folder_and_table(accuracy_run, capsys):
    acc = accuracy_run / "accuracy"
    for name in ("mlperf_log_accuracy.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt", "accuracy.txt"):
        assert (acc / name).is_file(), name
    assert (acc / "mlperf_log_trace.json").stat().st_size == 0  # trace only on request
    text = (acc / "accuracy.txt").read_text()
    for key, pattern in CHECKER.items():
        assert any(re.match(pattern, line) for line in text.splitlines()), key
    result = json.loads((accuracy_run / "result.json").read_text())
    assert result["demo"] is True and result["samples"] == 8
    assert set(result["accuracy"]["variants"]) == {"gptj-99", "gptj-99.9"}
    assert result["accuracy"]["metrics"]["gen_num"] == 8
    report = (accuracy_run / "report.txt").read_text()
    assert "DEMO TIER" in report and re.search(r"variant\s+metric\s+result\s+target\s+ratio\s+status", report)
    # demo targets: the round's ratios of what the reference execution scores on the same 8 samples
    assert "demo targets: agreement with the reference execution" in report and "MLPerf v4.1" not in report
    assert re.search(r"gptj-99\.9\s+rouge1\s+100\s+99\.9\s+1\.001\s+PASS", report)
    assert result["accuracy"]["targets"] == "demo targets: agreement with the reference execution"


def test_evaluate_rescores_the_same(accuracy_run, capsys):
    assert harness("evaluate", str(accuracy_run)) == 0
    before = json.loads((accuracy_run / "result.json").read_text())["accuracy"]["metrics"]
    out = capsys.readouterr().out
    assert re.search(rf"gptj-99\s+rouge1\s+{re.escape(format(before['rouge1'], '.6g'))}\s", out)
    assert "differs" not in out


def test_evaluate_refuses_unknown_sample_indices(accuracy_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(accuracy_run, copy)
    log = copy / "accuracy" / "mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    next(e for e in entries if e["qsl_idx"] == 3)["qsl_idx"] = 99
    log.write_text(json.dumps(entries))
    assert harness("evaluate", str(copy)) == 2
    assert "outside the dataset of 8 samples: 99;" in capsys.readouterr().err


def test_short_performance_run_is_valid(demo_data, tmp_path):
    conf = tmp_path / "perf.conf"
    conf.write_text(PERF_CONF)
    out = tmp_path / "perf"
    assert harness("run", "gptj", "--mode", "performance", "--n-count", "8", "--user-conf", str(conf),
                   "--data", str(demo_data("gptj")), "--out", str(out)) == 0
    perf = json.loads((out / "result.json").read_text())["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    metrics = perf["metrics"]
    assert metrics["samples_per_second"] > 0
    assert metrics["tokens_per_second_inferred"] == pytest.approx(69 * metrics["samples_per_second"], rel=0.01)
    assert (out / "user.conf").read_text() == PERF_CONF
    assert "p99" in perf["latency_ns"]


def test_partitions_merge_to_the_whole(accuracy_run, demo_data, tmp_path, capsys):
    data = str(demo_data("gptj"))
    parts = tmp_path / "parts"
    # two partitions at once on one node, one per (cpu) device
    assert harness("run", "gptj", "--n-count", "8", "--n-partitions", "2", "--n-devices", "2",
                   "--data", data, "--out", str(parts)) == 0
    assert "EVALUATION AID" in capsys.readouterr().out
    partitions = json.loads((parts / "result.json").read_text())["partitions"]
    assert [(p["partition"], p["start"], p["stop"], p["sut"]["completed"]) for p in partitions] == [(0, 0, 4, 4), (1, 4, 8, 4)]
    merged = tmp_path / "merged"
    assert harness("merge", str(parts), "--out", str(merged)) == 0
    whole = json.loads((accuracy_run / "result.json").read_text())["accuracy"]["metrics"]
    assert json.loads((merged / "result.json").read_text())["accuracy"]["metrics"] == whole
    assert (merged / "accuracy" / "accuracy.txt").read_text() == (accuracy_run / "accuracy" / "accuracy.txt").read_text()

    # one partition alone, the same one twice, or a log missing a sample: refused, named
    assert harness("merge", str(parts / "partition-0-of-2"), "--out", str(tmp_path / "m2")) == 2
    assert "partition(s) 1 of 2 missing" in capsys.readouterr().err
    assert harness("merge", str(parts), str(parts / "partition-1-of-2"), "--out", str(tmp_path / "m3")) == 2
    assert "partition(s) 1 given more than once" in capsys.readouterr().err
    holed = tmp_path / "holed"
    shutil.copytree(parts, holed)
    log = holed / "partition-1-of-2" / "mlperf_log_accuracy.json"
    entries = [e for e in json.loads(log.read_text()) if e["qsl_idx"] != 1]
    log.write_text(json.dumps(entries))
    assert harness("merge", str(holed), "--out", str(tmp_path / "m4")) == 2
    assert "samples missing: 5" in capsys.readouterr().err
    # a partition run that did not finish, or whose partition.json was tampered with
    stopped = tmp_path / "stopped"
    shutil.copytree(parts, stopped)
    result = json.loads((stopped / "result.json").read_text()) | {"incomplete": {"reason": "stopped by SIGTERM"}}
    (stopped / "result.json").write_text(json.dumps(result))
    assert harness("merge", str(stopped), "--out", str(tmp_path / "m5")) == 2
    assert "did not finish (stopped by SIGTERM); run its partition(s) again" in capsys.readouterr().err
    moved = tmp_path / "moved"
    shutil.copytree(parts, moved)
    meta = moved / "partition-1-of-2" / "partition.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"start": 3}))  # overlapping partition 0
    assert harness("merge", str(moved), "--out", str(tmp_path / "m6")) == 2
    assert "samples [3, 8) are not partition 1 of 2 over 8" in capsys.readouterr().err
    assert not any((tmp_path / m).exists() for m in ("m2", "m4", "m5", "m6"))


@pytest.mark.parametrize("args, message", [
    (["run", "gpt-j"], "Did you mean 'gptj'"),
    (["run", "gptj", "--scenario", "offline"], "did you mean 'Offline'"),
    (["run", "gptj", "--n-count", "0"], "--n-count must be at least 1"),
    (["run", "gptj", "--n-count", "65"], "--n-count 65 is above the dataset size 64"),
    (["run", "gptj", "--n-partitions", "2", "--partition-offset", "2"], "--partition-offset 2 must be in [0, 2)"),
    (["run", "gptj", "--dtype", "int4"], "dtype 'int4' is unknown"),
    (["run", "gptj", "--device", "npu:0"], "device 'npu:0' is unknown"),
    (["run", "gptj", "--data", "/nonexistent"], "is not a folder"),
    (["evaluate", "/nonexistent"], "/nonexistent is not a folder; pass run folders"),
])
def test_bad_input_is_a_clear_error(args, message, demo_data, capsys):
    if "--data" not in args and args[0] == "run":
        args = args + ["--data", str(demo_data("gptj"))]
    assert harness(*args) == 2
    assert message in capsys.readouterr().err


def test_a_bad_user_conf_is_refused_before_loadgen_sees_it(demo_data, tmp_path, capsys):
    conf = tmp_path / "bad.conf"
    conf.write_text("gptj.Offline.target_qps = 40\ngptj.Offline.min_duration = -1\n")  # LoadGen: a segfault
    out = tmp_path / "run"
    assert harness("run", "gptj", "--mode", "performance", "--user-conf", str(conf), "--data",
                   str(demo_data("gptj")), "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert f"{conf}:2: 'gptj.Offline.min_duration = -1': min_duration must be a whole number of 0 or more" in error
    assert not out.exists()


def test_existing_run_folder_is_never_overwritten(demo_data, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert harness("run", "gptj", "--data", str(demo_data("gptj")), "--out", str(out)) == 2
    assert "already exists; nothing is overwritten" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"


def test_unwritable_run_folder(demo_data, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert harness("run", "gptj", "--data", str(demo_data("gptj")), "--out", str(blocker / "run")) == 2
    assert "choose a writable folder" in capsys.readouterr().err


def test_malformed_dataset_json(demo_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(demo_data("gptj"), data)
    (data / "cnn_eval.json").write_text("{not json")
    assert harness("run", "gptj", "--data", str(data), "--out", str(tmp_path / "r")) == 2
    assert "cnn_eval.json is not valid UTF-8 JSON" in capsys.readouterr().err


def test_loadgen_of_another_round_is_refused(demo_data, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "6.0.17")
    assert harness("run", "gptj", "--data", str(demo_data("gptj")), "--out", str(tmp_path / "r")) == 2
    assert "needs mlcommons-loadgen==4.1.30" in capsys.readouterr().err


def test_list_and_demo_data_commands(tmp_path, capsys):
    assert harness("list") == 0
    out = capsys.readouterr().out
    assert re.search(r"gptj\s+gptj-99, gptj-99\.9\s+SingleStream, Server, Offline\s+demo only\s+v4\.1", out)
    assert re.search(r"rnnt\s+rnnt\s+SingleStream, Server, Offline\s+demo only\s+v4\.0", out)  # its last round
    target = tmp_path / "demo"
    assert harness("demo-data", "gptj", "--out", str(target), "--seed", "3") == 0
    assert (target / "DEMO.json").is_file() and (target / "model" / "model.safetensors").is_file()
    assert harness("demo-data", "gptj", "--out", str(target)) == 2  # exists: refused
    assert "nothing is overwritten" in capsys.readouterr().err


@pytest.mark.parametrize("scenario", ["SingleStream", "Server"])
def test_accuracy_in_other_scenarios(scenario, demo_data, tmp_path):
    out = tmp_path / scenario
    assert harness("run", "gptj", "--scenario", scenario, "--n-count", "3", "--data", str(demo_data("gptj")),
                   "--out", str(out)) == 0
    accuracy = json.loads((out / "result.json").read_text())["accuracy"]
    assert accuracy["metrics"]["gen_num"] == 3 and accuracy["problems"] == []


def test_timeout_kills_a_test_and_says_so(demo_data, tmp_path, capsys):
    out = tmp_path / "slow"
    assert harness("run", "gptj", "--n-count", "2", "--timeout", "0.5", "--data", str(demo_data("gptj")),
                   "--out", str(out)) == 2
    assert "accuracy exceeded --timeout 0.5 s and was killed" in capsys.readouterr().err
    assert (out / "accuracy.log").exists()  # what the test printed before it was killed is kept


def test_trace_on_request_and_check_exit_code(demo_data, tmp_path):
    conf = tmp_path / "smoke.conf"
    conf.write_text("*.Offline.min_duration = 500\n*.Offline.target_qps = 1000\n*.Offline.min_query_count = 1\n")
    out = tmp_path / "traced"
    # the demo model fails the real accuracy targets: --check turns that into exit status 1
    assert harness("run", "gptj", "--mode", "submission", "--null-backend", "--trace", "--check", "--n-count", "4",
                   "--user-conf", str(conf), "--data", str(demo_data("gptj")), "--out", str(out)) == 1
    assert (out / "performance" / "run_1" / "mlperf_log_trace.json").stat().st_size > 0
    assert (out / "accuracy" / "mlperf_log_accuracy.json").is_file()
