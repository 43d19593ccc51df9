"""Provenance pieces on hand-made inputs: what differs, and manifests of another schema."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from harness import provenance
from harness.errors import HarnessError


def result(f1=90.0, rate=100.0, validity="VALID"):
    return {"round": "v4.1", "mlperf_names": ["bert-99", "bert-99.9"], "settings": {"scenario": "Offline"},
            "benchmark": "bert",
            "accuracy": {"metrics": {"f1": f1, "exact_match": 80.0}},
            "performance": {"validity": validity, "metrics": {"samples_per_second": rate}}}


def test_results_agree_within_the_round_delta_and_the_performance_tolerance():
    lines, differ = provenance.result_changes(result(), result(f1=90.05, rate=104.0), 0.05)
    assert not differ
    assert lines == ["accuracy bert-99 f1: 90.0 vs 90.05 (delta 0.0556%, allowed 1.0%)",
                     "accuracy bert-99.9 f1: 90.0 vs 90.05 (delta 0.0556%, allowed 0.1%)",
                     "performance samples_per_second: 100 vs 104 (4.0% apart, allowed 5%)"]
    lines, differ = provenance.result_changes(result(), result(f1=89.8, rate=106.0, validity="INVALID"), 0.05)
    assert differ
    assert lines[1].endswith("allowed 0.1%): DIFFERS") and not lines[0].endswith("DIFFERS")  # 0.22% apart
    assert "performance validity: VALID vs INVALID: DIFFERS" in lines
    assert lines[-1] == "performance samples_per_second: 100 vs 106 (6.0% apart, allowed 5%): DIFFERS"
    assert provenance.result_changes(result(), {**result(), "accuracy": None}, 0.05) == (
        ["accuracy: only one of the two runs has this result: DIFFERS",
         "performance samples_per_second: 100 vs 100 (0.0% apart, allowed 5%)"], True)


def test_input_and_environment_changes_are_named():
    a = {"files": {"dev.json": "a" * 64, "model/config.json": "b" * 64}}
    b = {"files": {"dev.json": "c" * 64, "model/vocab.txt": "d" * 64}}
    assert provenance.input_changes(a, b) == [f"changed: dev.json (sha256 {'a' * 12}.. -> {'c' * 12}..)",
                                              "removed: model/config.json", "added: model/vocab.txt"]
    left = {"harness": {"git_commit": "1"}, "loadgen": {"file_sha1": {"a": "1"}}, "packages": {"torch": "2.13.0"}}
    right = {"harness": {"git_commit": "2"}, "loadgen": {"file_sha1": {"a": "2"}}, "packages": {"numpy": "2.4.6"}}
    assert provenance.environment_changes(left, right) == [
        "harness git_commit: '1' -> '2'", "loadgen file_sha1: 1 vs 1 files, contents differ",
        "package numpy: None -> 2.4.6", "package torch: 2.13.0 -> None"]


def test_manifests_of_another_schema_or_none_are_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(HarnessError, match="schema 99, written by another version of the harness"):
        provenance.read(tmp_path)
    with pytest.raises(HarnessError, match="does not exist: pass a run folder made by `harness run`"):
        provenance.read(tmp_path / "none")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HarnessError, match="is not a JSON manifest"):
        provenance.read(tmp_path / "bad.json")


def test_diff_compares_runs_of_one_test_only(tmp_path, make_manifest):
    for name, bench in (("a", "bert"), ("b", "resnet")):
        (tmp_path / name).mkdir()
        manifest = make_manifest(bench)
        (tmp_path / name / "result.json").write_text(json.dumps(
            {"benchmark": bench, "mlperf_names": [], "round": "v4.1", "demo": True, "samples": 1,
             "settings": manifest["settings"]}))
        (tmp_path / name / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HarnessError, match="are not the same benchmark and scenario"):
        provenance.diff(tmp_path / "a", tmp_path / "b")
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    (tmp_path / "c" / "manifest.json").unlink()
    with pytest.raises(HarnessError, match="manifest.json does not exist"):
        provenance.diff(tmp_path / "a", tmp_path / "c")


def test_device_facts_read_the_vendor_tools_when_present(tmp_path, monkeypatch):
    """GPU and RNGD facts come from nvidia-smi and furiosa-smi (stand-ins here, with their output formats)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--query-gpu=name,driver_version,memory.total" ]; then\n'
        '  echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"; echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"\n'
        "else\n"
        '  echo "| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |"\n'
        "fi\n")
    (tools / "furiosa-smi").write_text("#!/bin/sh\necho '| Arch | Device | Firmware |'\necho '| rngd | npu0 | 2025.2.0 |'\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    facts = provenance.device_facts()
    assert facts["gpus"] == [{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB"}] * 2
    assert facts["cuda_driver_version"] == "12.4"
    assert facts["rngd"] == ["| Arch | Device | Firmware |", "| rngd | npu0 | 2025.2.0 |"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bare = provenance.device_facts()
    assert bare["gpus"] == [] and bare["rngd"] == [] and "cuda_driver_version" not in bare
    assert bare["cpu_count"] and bare["memory_kb"]


def _set(manifest: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    target = manifest
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return manifest


@pytest.mark.parametrize("path, value, message", [
    ("settings.turbo", True, "settings: unexpected field 'turbo'"),
    ("settings.n_devices", "2", "'n_devices' is str, expected int"),
    ("settings.mode", KeyError, "settings: 'mode' is missing"),
    ("benchmark", 123, "'benchmark' is int, expected str"),
    ("inputs", KeyError, "'inputs' is missing"),
    ("surprise", {}, "unexpected field 'surprise'"),
    ("user_conf.sha256", "../../../../tmp/planted", "'../../../../tmp/planted' is not a sha256 hex digest"),
    ("user_conf.text", "*.Offline.min_duration = 1\n", "the user.conf text does not have the sha256 recorded"),
    ("inputs.files", {"../outside.json": "0" * 64}, "'../outside.json' is not a relative path inside its folder"),
    ("inputs.files", {"/etc/passwd": "0" * 64}, "is not a relative path inside its folder"),
    ("inputs.files", {"dev.json": "not-a-digest"}, "'not-a-digest' is not a sha256 hex digest"),
    ("inputs.tree_sha256", "f" * 64, "the tree sha256 of its inputs is not that of the files it lists"),
    ("harness.code_sha256", "$(rm -rf ~)", "is not a sha256 hex digest"),
    ("image", {"name": "x"}, "image: 'git_commit' is missing"),
    ("round", "../../etc", "its benchmark and round differ from those of its settings"),
])
def test_crafted_manifests_are_refused_with_one_clear_error(tmp_path, make_manifest, capsys, path, value, message):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(_set(make_manifest("bert"), path, value)))
    with pytest.raises(HarnessError, match=re.escape(message)):
        provenance.read(folder)
    from harness import cli

    assert cli.main(["replay", str(folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and "Traceback" not in error


def test_a_well_formed_manifest_reads(tmp_path, make_manifest):
    (tmp_path / "manifest.json").write_text(json.dumps(make_manifest("bert")))
    assert provenance.read(tmp_path)["benchmark"] == "bert"
