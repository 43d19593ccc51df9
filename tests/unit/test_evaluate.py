"""Performance verdicts: LoadGen's validity plus what the harness knows (SUT failures, seeds, errors)."""

import json

from harness import evaluate, logs
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
