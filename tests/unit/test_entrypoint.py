"""The images' entrypoint without a container: the harness runs its knobs ask for, and whom results belong to."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def entrypoint(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("entrypoint", ROOT / "images" / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CHECKOUT", tmp_path / "checkout-compose.yaml")
    for knob in ("SCENARIO", "MODE", "N_COUNT", "DATA_TYPE", "DEVICE", "N_DEVICES", "N_PARTITIONS",
                 "PARTITION_OFFSET", "BATCH_SIZE", "HARNESS_ARGS"):
        monkeypatch.delenv(knob, raising=False)
    monkeypatch.setenv("BENCHMARK", "gptj")
    return module


def test_the_default_job_is_accuracy_then_performance(entrypoint):
    harness = [sys.executable, "-m", "harness", "run", "gptj"]
    assert entrypoint.benchmark_job([]) == [harness + ["--mode", "accuracy", "--scenario", "Offline"],
                                            harness + ["--mode", "performance", "--scenario", "Offline"]]


def test_knobs_become_harness_options(entrypoint, monkeypatch):
    for name, value in {"SCENARIO": "Server", "MODE": "accuracy", "N_COUNT": "8", "N_DEVICES": "2",
                        "HARNESS_ARGS": "--batch-wait-ms 3 --trace"}.items():
        monkeypatch.setenv(name, value)
    assert entrypoint.benchmark_job(["--check"]) == [[
        sys.executable, "-m", "harness", "run", "gptj", "--mode", "accuracy", "--scenario", "Server",
        "--n-count", "8", "--n-devices", "2", "--batch-wait-ms", "3", "--trace", "--check"]]


def test_results_belong_to_their_folder_s_owner_or_else_to_the_checkout_s(entrypoint, tmp_path, needs_root):
    results = tmp_path / "results"
    results.mkdir()
    assert entrypoint.owner(results) == (0, 0)  # root's folder, no checkout: root's
    entrypoint.CHECKOUT.write_text("")
    os.chown(entrypoint.CHECKOUT, 4321, 4321)  # a checkout cloned by somebody else
    assert entrypoint.owner(results) == (4321, 4321)
    assert (results.stat().st_uid, results.stat().st_gid) == (4321, 4321)  # the folder is handed to them
    assert entrypoint.owner(results) == (4321, 4321)


def test_what_was_written_is_handed_over_links_untouched(entrypoint, tmp_path, needs_root):
    made = tmp_path / "run"
    (made / "accuracy").mkdir(parents=True)
    (made / "accuracy" / "log").write_text("")
    outside = tmp_path / "outside"
    outside.write_text("")
    (made / "link").symlink_to(outside)
    entrypoint.hand_over([made], 4321, 4321)
    assert {p.lstat().st_uid for p in [made, *made.rglob("*")]} == {4321}
    assert outside.stat().st_uid == 0  # a link is chowned itself, never what it points to


def test_the_tests_hand_over_the_pytest_folder_they_used(entrypoint, tmp_path):
    assert entrypoint.basetemp(["-q"], tmp_path) == tmp_path / ".pytest-tmp"
    args = ["--basetemp", "/c/.pytest-tmp", "-p", "no:cacheprovider", "--basetemp", "/c/.pytest-tmp/inner-7", "-q"]
    assert entrypoint.basetemp(args, tmp_path) == Path("/c/.pytest-tmp/inner-7")  # the last one, as pytest takes it
    assert entrypoint.basetemp(["--basetemp=tmp"], tmp_path) == tmp_path / "tmp"


def test_an_engine_image_runs_harness_commands_as_root_and_hands_over_what_they_made_or_replaced(
        entrypoint, tmp_path, monkeypatch, needs_root):
    results = tmp_path / "results"
    (results / "run").mkdir(parents=True)
    for name in ("result.json", "kept.txt"):
        (results / "run" / name).write_text("before")
    os.chown(results / "run" / "kept.txt", 0, 0)  # root's before the command: stays root's
    os.chown(results, 4321, 4321)
    os.chown(results / "run", 4321, 4321)
    os.chown(results / "run" / "result.json", 4321, 4321)
    monkeypatch.setattr(entrypoint, "RESULTS", results)
    monkeypatch.setenv("HARNESS_ENGINE", "1")
    ran = []

    def command(commands, uid, gid, groups):
        ran.append((commands, uid))
        partial = results / "run" / ".result.json.partial"
        partial.write_text("after")
        partial.replace(results / "run" / "result.json")  # what `harness evaluate` does
        (results / "run" / "accuracy.txt").write_text("new")
        return 0

    monkeypatch.setattr(entrypoint, "run", command)
    assert entrypoint.main(["harness", "evaluate", "run"]) == 0
    assert ran == [([[sys.executable, "-m", "harness", "evaluate", "run"]], 0)]
    owners = {p.name: p.stat().st_uid for p in (results / "run").iterdir()}
    assert owners == {"result.json": 4321, "accuracy.txt": 4321, "kept.txt": 0}
    monkeypatch.delenv("HARNESS_ENGINE")  # a benchmark image's harness command runs as the results' owner
    assert entrypoint.main(["harness", "verify", "gptj"]) == 0 and ran[-1][1] == 4321
