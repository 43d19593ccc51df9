"""Manifest, replay and diff on real demo runs (BERT, seconds each)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from harness import cli

pytestmark = pytest.mark.slow
SHORT = "bert.Offline.min_duration = 500\nbert.Offline.min_query_count = 1\nbert.Offline.target_qps = 3000\n"


def test_manifest_replay_and_diff(tmp_path, demo_copy, capsys):
    data = demo_copy("bert")
    (tmp_path / "short.conf").write_text(SHORT)
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli.main(["run", "bert", "--mode", "submission", "--user-conf", str(tmp_path / "short.conf"),
                     "--data", str(data), "--out", str(first)]) == 0
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["schema"] == 1 and manifest["command"][:3] == ["harness", "run", "bert"]
    assert manifest["settings"]["benchmark"] == "bert"
    harness = manifest["harness"]
    assert harness["version"] and harness["git_commit"] and len(harness["code_sha256"]) == 64
    assert harness["dirty"] in (True, False)
    assert manifest["loadgen"]["version"] == "4.1.30" and len(manifest["loadgen"]["file_sha1"]) > 10
    assert manifest["user_conf"] == {"text": SHORT, "sha256": hashlib.sha256(SHORT.encode()).hexdigest()}
    dev = (data / "dev-v1.1.json").read_bytes()
    assert manifest["inputs"]["files"]["dev-v1.1.json"] == hashlib.sha256(dev).hexdigest()
    assert "model/model.pytorch" in manifest["inputs"]["files"] and len(manifest["inputs"]["tree_sha256"]) == 64
    assert manifest["device"]["cpu_count"] >= 1 and manifest["device"]["cpu_model"]
    assert manifest["packages"]["mlcommons-loadgen"] == "4.1.30" and manifest["packages"]["torch"]
    capsys.readouterr()

    (data / "dev-v1.1.json").write_bytes(dev + b"\n")  # still the same questions, another file
    assert cli.main(["replay", str(first), "--out", str(second)]) == 2
    error = capsys.readouterr().err
    assert "refusing to replay" in error and "input changed: dev-v1.1.json" in error and "--force" in error
    assert not second.exists()

    assert cli.main(["replay", str(first / "manifest.json"), "--force", "--out", str(second)]) == 0
    replayed = json.loads((second / "result.json").read_text())
    assert replayed["replay_of"] == str(first)
    assert [d.split(" (")[0] for d in replayed["replay_differences"]] == ["input changed: dev-v1.1.json"]
    assert json.loads((second / "manifest.json").read_text())["replay_of"] == str(first)
    capsys.readouterr()
    cli.main(["diff", str(first), str(second)])
    text = capsys.readouterr().out
    assert "settings: same" in text and "user.conf: same" in text and "environment: same" in text
    assert "inputs:\n  changed: dev-v1.1.json (sha256" in text
    assert "accuracy bert-99 f1:" in text and "delta 0%" in text  # the same features, the same model

    # a file changed in place, its size and mtime kept: the hash cache cannot see it, replay must
    weights = data / "model" / "model.pytorch"
    stat = weights.stat()
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    capsys.readouterr()
    assert cli.main(["replay", str(second), "--out", str(tmp_path / "third")]) == 2
    error = capsys.readouterr().err
    assert "refusing to replay" in error and "input changed: model/model.pytorch" in error
    assert not (tmp_path / "third").exists()
