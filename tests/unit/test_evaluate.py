"""Performance verdicts: LoadGen's validity plus what the harness knows (SUT failures, seeds, errors)."""

import json

import pytest

from harness import evaluate, logs
from harness.errors import HarnessError
from harness.rounds import load_round


def line(key, value, error=False):
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "metadata": {"is_error": error, "is_warning": False}})


def write_detail(folder, validity="VALID", seed=3066443479025735752, extra=()):
    rows = [line("result_validity", validity), line("result_samples_per_second", 12.5),
            line("result_inferred_tokens_per_second", 862.5),
            line("result_99.00_percentile_latency_ns", 2_000_000), line("effective_qsl_rng_seed", seed),
            *extra]
    (folder / logs.DETAIL).write_text("\n".join(rows) + "\n")


def test_valid_run(tmp_path):
    write_detail(tmp_path)
    perf = evaluate.performance(tmp_path, "Offline", load_round())
    assert perf["validity"] == "VALID" and perf["reasons"] == []
    assert perf["metrics"] == {"samples_per_second": 12.5, "tokens_per_second_inferred": 862.5}
    assert perf["latency_ns"] == {"p99": 2_000_000}


def test_failed_samples_make_a_valid_loadgen_run_invalid(tmp_path):
    write_detail(tmp_path)
    stats = {"issued": 10, "failed": 2, "errors": ["ValueError: boom\nTraceback ..."], "stalled": None}
    (tmp_path / "sut_stats.json").write_text(json.dumps(stats))
    perf = evaluate.performance(tmp_path, "Offline", load_round())
    assert perf["loadgen_validity"] == "VALID" and perf["validity"] == "INVALID"
    assert perf["reasons"] == ["2 of 10 samples failed in the SUT (first error: ValueError: boom)"]


def test_stall_loadgen_errors_wrong_seeds_and_unmet_checks_are_reasons(tmp_path):
    extra = [line("error_invalid_config", "Multiple conf files are used", error=True),
             line("result_min_duration_met", False), line("result_invalid_reason", "Reduce target QPS ")]
    write_detail(tmp_path, validity="INVALID", seed=1, extra=extra)
    (tmp_path / "sut_stats.json").write_text(json.dumps({"stalled": "watchdog: no sample completed for 60 s"}))
    reasons = evaluate.performance(tmp_path, "Offline", load_round())["reasons"]
    assert "min duration not met" in reasons and "LoadGen: Reduce target QPS" in reasons
    assert "LoadGen error: error_invalid_config: Multiple conf files are used" in reasons
    assert any("qsl_rng_seed is 1, round v4.1 needs 3066443479025735752" in r for r in reasons)
    assert "watchdog: no sample completed for 60 s" in reasons


def test_a_metric_the_scorer_could_not_compute_fails_its_target_and_says_why(tmp_path):
    from types import SimpleNamespace

    from harness import report

    metrics = {"rouge1": 46.0, "rouge2": 24.0, "rougeL": 31.0, "gsm8k": 75.0, "mbxp": None, "tokens_per_sample": 145.0,
               "unscored": "mbxp: no Docker engine"}
    bench = SimpleNamespace(spec=SimpleNamespace(id="m", mlperf_names=("mixtral-8x7b",), dataset_size=15000),
                            accuracy=SimpleNamespace(score=lambda outputs, data_dir: metrics))
    result = evaluate.score(bench, {0: None}, tmp_path, load_round())
    variant = result["variants"]["mixtral-8x7b"]
    assert not variant["passed"]
    unscored = [c for c in variant["checks"] if not c["passed"]]
    assert len(unscored) == 1 and unscored[0]["metric"] == "mbxp" and unscored[0]["value"] is None
    assert unscored[0]["note"] == "NOT SCORED: mbxp: no Docker engine" and unscored[0]["target"] == 59.5188
    text = report.accuracy_section(result)
    assert "mbxp" in text and "n/a" in text and "NOT SCORED" in text


def test_a_re_score_completes_only_what_was_not_scored_and_only_from_the_same_data():
    recorded = {"samples": 24, "metrics": {"rouge1": 46.0, "gsm8k": 75.0, "mbxp": None, "mbxp_skipped": 1,
                                           "unscored": "mbxp: no Docker engine"}}
    rescored = {"samples": 24, "metrics": {"rouge1": 46.0 + 1e-12, "gsm8k": 75.0, "mbxp": 62.5, "mbxp_skipped": 1}}
    assert evaluate.newly_scored(recorded, rescored) == ["mbxp"]
    assert evaluate.newly_scored(rescored, rescored) == []  # nothing was left out: a plain re-score
    assert evaluate.newly_scored(None, rescored) == []
    still = {"samples": 24, "metrics": recorded["metrics"] | {"unscored": "mbxp: the engine is still not there"}}
    assert evaluate.newly_scored(recorded, still) == []
    other = {"samples": 24, "metrics": rescored["metrics"] | {"gsm8k": 70.0}}
    with pytest.raises(HarnessError, match=r"complete mbxp, but it gives gsm8k another value .* pass that one with "
                                           r"--data"):
        evaluate.newly_scored(recorded, other)
    with pytest.raises(HarnessError, match="the sample count"):
        evaluate.newly_scored(recorded, rescored | {"samples": 16})
