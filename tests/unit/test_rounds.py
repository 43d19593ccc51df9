import importlib.metadata
import subprocess
import sys

import pytest

from harness import loadgen, registry
from harness.errors import HarnessError, RoundMismatch
from harness.rounds import default_round, load_round


def test_v41_gptj_targets_are_the_checker_values():
    rnd = load_round("v4.1")
    assert rnd.loadgen_version == "4.1.30"
    assert rnd.seeds["qsl_rng_seed"] == 3066443479025735752
    targets = {t.metric: t for t in rnd.targets("gptj-99")}
    assert targets["rouge1"].check(43.0, 13368, 13368).target == pytest.approx(42.556635)
    assert targets["rouge2"].check(20.0, 13368, 13368).target == pytest.approx(19.922265)
    assert targets["rougeL"].check(30.0, 13368, 13368).target == pytest.approx(29.688219)
    assert targets["gen_len"].check(0, 13368, 13368).target == pytest.approx(3615190.2)
    strict = {t.metric: t for t in rnd.targets("gptj-99.9")}
    assert strict["rouge1"].check(43.0, 13368, 13368).target == pytest.approx(42.943514)


def test_check_pass_fail_ratio_and_scaling():
    rnd = load_round("v4.1")
    rouge1 = next(t for t in rnd.targets("gptj-99") if t.metric == "rouge1")
    low = rouge1.check(40.0, 13368, 13368)
    assert not low.passed and low.ratio == pytest.approx(40.0 / 42.556635)
    assert rouge1.check(42.6, 10, 13368).passed  # not a per-sample total: never scaled
    gen_len = next(t for t in rnd.targets("gptj-99") if t.metric == "gen_len")
    half = gen_len.check(2_000_000, 6684, 13368)
    assert half.target == pytest.approx(3615190.2 / 2)
    assert half.passed and "scaled to 6684 of 13368" in half.note


def test_unknown_round_and_name():
    with pytest.raises(HarnessError, match="unknown round 'v9.9'; available: v4.0, v4.1"):
        load_round("v9.9")
    with pytest.raises(HarnessError, match="no accuracy targets for 'gptj-98'"):
        load_round().targets("gptj-98")


def test_loadgen_version_must_match_the_round(monkeypatch, tmp_path):
    rnd = load_round()
    assert rnd.check_loadgen() == "4.1.30"
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "6.0.17")
    monkeypatch.setenv("HARNESS_LOADGEN_DIR", str(tmp_path))
    with pytest.raises(RoundMismatch, match=r"round v4.1 needs mlcommons-loadgen==4.1.30, but 6.0.17 is installed and "
                                            r".*4.1.30 does not hold 4.1.30. Build it there: images/loadgen-build.sh"):
        rnd.check_loadgen()


def test_a_rounds_loadgen_beside_the_installed_one_is_found_and_activated(tmp_path, monkeypatch):
    """v4.0's LoadGen (4.0.1, built from its sdist by make setup) lives beside the installed 4.1.30;
    a folder that does not hold the version it is named for is not taken for it."""
    rnd = load_round("v4.0")
    assert rnd.check_loadgen() == "4.0.1" and loadgen.side_folder("4.0.1") is not None
    code = ("import sys; from harness import loadgen; loadgen.activate('4.0.1', 'v4.0'); "
            "import mlperf_loadgen, importlib.metadata as m; print(mlperf_loadgen.__file__, m.version('mlcommons-loadgen'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(loadgen.root() / "4.0.1")) and out[1] == "4.0.1"
    (tmp_path / "4.0.1" / "mlcommons_loadgen-4.1.30.dist-info").mkdir(parents=True)
    (tmp_path / "4.0.1" / "mlcommons_loadgen-4.1.30.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mlcommons-loadgen\nVersion: 4.1.30\n")
    monkeypatch.setenv("HARNESS_LOADGEN_DIR", str(tmp_path))
    with pytest.raises(RoundMismatch, match="does not hold 4.0.1"):
        rnd.check_loadgen()


def test_v40_round_brings_its_mlperf_conf_and_rnnt_rules():
    rnd = load_round("v4.0")
    conf = rnd.embedded_mlperf_conf()
    assert conf == rnd.mlperf_conf and "*.*.qsl_rng_seed = 13281865557512327830" in conf
    assert "rnnt.Server.target_latency = 1000" in conf and "rnnt.Offline.min_query_count = 2513" in conf
    assert rnd.seeds["schedule_rng_seed"] == 7575108116881280410 and rnd.audit_via == "file"
    (target,) = rnd.targets("rnnt")
    assert target.bounds(2513, 2513)[0] == pytest.approx(91.62252)  # (100 - 7.452) x 0.99
    assert rnd.rules("rnnt").server_latency_ms == 1000 and rnd.compliance["rnnt"] == ("TEST01", "TEST05")
    assert rnd.required_scenarios["datacenter"]["rnnt"] == ("Server", "Offline")


def test_a_benchmark_outside_a_round_is_refused_by_name():
    rnnt, gptj = registry.get("rnnt").spec, registry.get("gptj").spec
    assert default_round(rnnt) == "v4.0" and default_round(gptj) == "v4.1"
    with pytest.raises(RoundMismatch, match=r"^rnnt is not part of round v4.1; it is part of v4.0 \(--round v4.0\)$"):
        load_round("v4.1").check_benchmark(rnnt)
    with pytest.raises(RoundMismatch, match="gptj is not part of round v4.0; it is part of v4.1"):
        load_round("v4.0").check_benchmark(gptj)


def test_v41_compliance_and_submission_rules():
    rnd = load_round("v4.1")
    assert rnd.compliance["resnet"] == ("TEST01", "TEST04", "TEST05") and rnd.compliance["gptj-99"] == ()
    assert rnd.compliance["retinanet"] == rnd.compliance["bert-99.9"] == ("TEST01", "TEST05")
    assert rnd.test05_seeds["qsl_rng_seed"] == 16799458546791641818
    assert rnd.rules("retinanet").offline_samples_per_query == 24576 and rnd.rules("bert-99").server_latency_ms == 130
    assert rnd.rules("gptj-99").result["Offline"] == "result_inferred_tokens_per_second"
    assert "bert-99.9" not in rnd.required_scenarios["edge"]  # datacenter only in v4.1
    assert rnd.submission["min_duration_ms"] == 600000 and len(rnd.submission["system_fields"]) == 35
    assert "*.*.accuracy_log_sampling_target = 100" in rnd.audit_config("TEST06", "llama2-70b")
    with pytest.raises(HarnessError, match="no compliance test 'TEST09'"):
        rnd.audit_config("TEST09", "llama2-70b")


def test_the_embedded_mlperf_conf_is_the_rounds():
    conf = load_round().embedded_mlperf_conf()
    assert "*.*.test05_qsl_rng_seed = 16799458546791641818" in conf
    assert "retinanet.Server.target_latency = 100" in conf and "\0" not in conf


def test_v41_sdxl_ranges_and_sample_images_are_the_checker_values():
    rnd = load_round("v4.1")
    targets = {t.metric: t for t in rnd.targets("stable-diffusion-xl")}
    clip, fid = targets["clip_score"], targets["fid_score"]
    assert clip.bounds(5000, 5000)[:2] == pytest.approx((31.68631873, 31.81331801), abs=1e-8)
    assert fid.bounds(5000, 5000)[:2] == pytest.approx((23.01085758, 23.95007626), abs=1e-8)
    assert not fid.check(24.0, 5000, 5000).passed and not clip.check(31.6, 5000, 5000).passed
    assert fid.check(23.5, 5000, 5000).passed and clip.check(31.75, 5000, 5000).passed
    assert rnd.accuracy_samples["stable-diffusion-xl"] == (4655, 2569, 1303, 109, 4509, 3009, 2179, 1826, 2094, 3340)
    assert rnd.compliance["stable-diffusion-xl"] == ("TEST01", "TEST04")
    assert rnd.rules("stable-diffusion-xl").server_latency_ms == 20000
