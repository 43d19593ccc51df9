"""user.conf lines checked before LoadGen reads them: bad values name their line, ignored keys warn."""

from __future__ import annotations

import pytest

from harness import registry, userconf
from harness.errors import InvalidSettings


def check(tmp_path, text: str, conf_key: str = "gptj") -> list[str]:
    path = tmp_path / "user.conf"
    path.write_text(text)
    return userconf.check(path, conf_key)


@pytest.mark.parametrize("line, message", [
    ("gptj.Offline.min_duration = -5000", "user.conf:2: 'gptj.Offline.min_duration = -5000': min_duration must be a "
                                          "whole number of 0 or more"),
    ("gptj.Offline.target_qps = fast", "target_qps must be a number of 0 or more"),
    ("gptj.Offline.target_qps = 0", "target_qps must be above 0"),
    ("gptj.Server.target_latency = -1", "target_latency must be a number of 0 or more"),
    ("gptj.Offline.min_query_count = 0", "min_query_count must be at least 1"),
    ("gptj.Offline.min_duration = 600000.5", "min_duration must be a whole number"),  # strtoull would drop .5
    ("*.Server.target_latency_percentile = 120", "target_latency_percentile must be above 0 and at most 100"),
    ("*.*.performance_issue_unique = 2", "performance_issue_unique must be 0 or 1"),
    ("*.*.mode = 7", "mode must be at least 0 and at most 3"),
    ("*.*.qsl_rng_seed = 18446744073709551616", "qsl_rng_seed must be at least 0"),  # 2^64 does not fit
    ("gptj.Offline.min_duration=5000", "expected 'model.scenario.key = value', with spaces around '='"),
    ("gptj.Offline.min_duration =", "expected 'model.scenario.key = value'"),
    ("gptj.Offline.min_duration = 5000 # five s", "LoadGen reads no comment after a value"),
    ("#no space before this comment", "start a comment with '# '"),
    ("gptj.min_duration = 5000", "the key must be 'model.scenario.key'"),
    ("gptj.offline.min_duration = 5000", "with a scenario of SingleStream, MultiStream, Server, Offline or *"),
])
def test_a_bad_line_is_named_before_loadgen_reads_it(tmp_path, line, message):
    with pytest.raises(InvalidSettings) as error:
        check(tmp_path, f"# fine\n{line}\ngptj.Offline.target_qps = 30\n")
    assert message in str(error.value) and "has 1 bad line(s)" in str(error.value)


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(InvalidSettings) as error:
        check(tmp_path, "gptj.Offline.min_duration = -1\ngptj.Offline.target_qps = x\n")
    assert "has 2 bad line(s)" in str(error.value) and ":1:" in str(error.value) and ":2:" in str(error.value)


def test_keys_loadgen_would_ignore_are_warnings(tmp_path):
    warnings = check(tmp_path, "gptj.Offline.min_durations = 5000\nresnet50.Offline.target_qps = 40\n"
                               "# gptj.Offline.target_qps = nonsense in a comment\n\n*.*.accuracy_log_probability = 1.5\n")
    assert len(warnings) == 2
    assert "does not know the key 'min_durations' and ignores it (did you mean 'min_duration'" in warnings[0]
    assert "applies to the benchmark 'resnet50', not 'gptj'; LoadGen ignores it here" in warnings[1]


def test_values_loadgen_accepts_pass(tmp_path):
    assert check(tmp_path, "gptj.Offline.min_duration = 0x10\n*.Server.target_qps = 1.5e2\n"
                           "*.*.qsl_rng_seed = 18446744073709551615\n*.SingleStream.target_latency = .5\n") == []


@pytest.mark.parametrize("bench_id", sorted(registry.discover()))
def test_the_benchmarks_and_their_demos_ship_clean_user_confs(bench_id, tmp_path):
    bench = registry.get(bench_id)
    assert userconf.check(bench.user_conf, bench.spec.conf_key) == []
    assert check(tmp_path, bench.demo.DEMO_USER_CONF, bench.spec.conf_key) == []
