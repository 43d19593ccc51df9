"""Token streaming and continuous batching in the SUT, against the real LoadGen, with a toy engine."""

from __future__ import annotations

import json
import threading
import time

import mlperf_loadgen as lg
import numpy as np
import pytest

from harness import evaluate, logs, report
from harness.rounds import load_round
from harness.sut import SUT, BatchPolicy, Generator

EOS = 2


class Counting:
    """A Generator: sample i yields [100 + i, 5, 5, ..., EOS], i % 6 + 2 tokens, one per step; it
    records how many sequences ran together and whether any joined while others were decoding."""

    def __init__(self, fail_step: int | None = None, refuse: int | None = None, step_s: float = 0.0):
        self.running: dict[int, list[int]] = {}
        self.pending: dict[int, list[int]] = {}
        self.produced: dict[int, int] = {}
        self.widest = self.joined_midway = self.steps = 0
        self.fail_step, self.refuse, self.step_s = fail_step, refuse, step_s
        self.lock = threading.Lock()

    def __len__(self):
        return len(self.running) + len(self.pending)

    def footprint(self, prompt_length=None):
        lengths = [len(t) for t in (*self.running.values(), *self.pending.values())]
        if prompt_length is not None:
            lengths.append(prompt_length)
        return len(lengths) * max(lengths, default=0)

    def add(self, key, prompt):
        i = int(prompt[0])
        if i == self.refuse:
            raise ValueError(f"prompt {i} is too long")
        if self.running:
            self.joined_midway += 1
        self.pending[key] = [100 + i] + [5] * (i % 6) + [EOS]

    def step(self, on_first, on_done):
        self.steps += 1
        time.sleep(self.step_s)  # a device step: the GIL is free meanwhile
        if self.steps == self.fail_step:
            raise RuntimeError("device lost")
        for key, tokens in self.pending.items():
            on_first(key, tokens[0])
            self.running[key], self.produced[key] = tokens, 1
        self.pending = {}
        self.widest = max(self.widest, len(self.running))
        for key in list(self.running):
            tokens = self.running[key]
            self.produced[key] += 1
            if self.produced[key] >= len(tokens):
                del self.running[key]
                on_done(key, tokens)

    def clear(self):
        keys = list(self.running) + list(self.pending)
        self.running, self.pending = {}, {}
        return keys


@pytest.fixture
def run(tmp_path, loadgen_test):
    def run(engine, scenario, total=24, policy=BatchPolicy(4), mode=lg.TestMode.AccuracyOnly, configure=None):
        engines = engine if isinstance(engine, list) else [engine]
        sut = SUT(lambda i: np.array([i]), [lambda e=e: e for e in engines], policy, "int32", 30.0,
                  lambda i: i % 6 + 2, stream_first=scenario != "Offline")
        loadgen_test(sut, total, scenario, mode, configure, use_token_latencies=True, server_target_qps=200)
        return sut.stats, logs.read_accuracy(tmp_path / logs.ACCURACY), logs.read_detail(tmp_path / logs.DETAIL)
    return run


def expected(i):
    return [100 + i] + [5] * (i % 6) + [EOS]


def test_the_toy_engine_is_a_generator():
    assert isinstance(Counting(), Generator)


@pytest.mark.parametrize("scenario", ["Server", "SingleStream"])
def test_first_token_streams_before_the_whole_output_which_includes_it(run, scenario):
    engine = Counting()
    stats, records, detail = run(engine, scenario)
    assert not detail.errors, detail.errors  # LoadGen logs an error for a final response before its first token
    assert stats.completed == stats.issued == 24 and not stats.failed
    assert sorted(r.qsl_idx for r in records) == list(range(24))
    for r in records:
        data = np.frombuffer(r.data, np.int32).tolist()
        assert data == expected(r.qsl_idx)  # every token, the first included, one EOS, no padding
        assert np.frombuffer(r.token_data, np.int32).tolist() == [100 + r.qsl_idx]
        assert r.token_count == len(data)


def test_offline_sends_no_first_token_and_batches_continuously(run):
    engine = Counting()
    stats, records, detail = run(engine, "Offline", total=40, policy=BatchPolicy(5))
    assert not detail.errors and stats.completed == 40
    assert all(r.token_data is None and r.token_count == len(r.data) // 4 for r in records)
    assert engine.widest == 5  # the batch limit holds
    assert engine.joined_midway > 0  # sequences joined while others were decoding


def test_replicas_share_the_one_query(run):
    engines = [Counting(step_s=0.002), Counting(step_s=0.002)]
    stats, records, _ = run(engines, "Offline", total=40, policy=BatchPolicy(64))
    assert stats.completed == 40 and len(records) == 40
    # the first replica to wake does not take the whole query: a busy one leaves work to an idle one
    assert min(stats.by_replica) > 0 and all(e.steps for e in engines)


def test_token_budget_bounds_the_running_set(run):
    engine = Counting()
    run(engine, "Offline", total=40, policy=BatchPolicy(16, max_tokens=20))
    assert 1 < engine.widest <= 20 // 2


def test_a_failed_step_fails_its_sequences_and_the_engine_goes_on(run):
    engine = Counting(fail_step=3)
    stats, records, _ = run(engine, "Offline", total=30, policy=BatchPolicy(4))
    assert stats.failed >= 1 and stats.completed + stats.failed == 30
    assert "RuntimeError: device lost" in stats.errors[0]
    assert sum(1 for r in records if r.data) == stats.completed


def test_a_refused_prompt_fails_alone(run):
    engine = Counting(refuse=7)
    stats, records, _ = run(engine, "Offline", total=12)
    assert stats.failed == 1 and stats.failed_indices == [7] and "prompt 7 is too long" in stats.errors[0]
    assert {r.qsl_idx for r in records if r.data} == set(range(12)) - {7}


def test_token_latencies_are_in_the_detail_log(run):
    _, _, detail = run(Counting(), "Server", mode=lg.TestMode.PerformanceOnly, total=50)
    assert detail.get("result_first_token_99.00_percentile_latency_ns") is not None
    assert detail.get("result_time_per_output_token_99.00_percentile_ns") is not None
    assert json.dumps(detail.get("requested_use_token_latencies")) == "true"


def test_reports_name_the_token_bound_that_failed(run, tmp_path):
    def tight_tpot(settings):
        settings.ttft_latency = 10**9  # 1 s: met
        settings.tpot_latency = 1000  # 1 us: not met

    run(Counting(), "Server", mode=lg.TestMode.PerformanceOnly, total=50, configure=tight_tpot)
    perf = evaluate.performance(tmp_path, "Server", load_round())
    tokens = perf["token_latency_ns"]
    assert tokens["ttft_bound"] == 10**9 and tokens["tpot_bound"] == 1000 and tokens["ttft_p99"] < 10**9
    assert perf["validity"] == "INVALID"
    assert [r for r in perf["reasons"] if "p99" in r] == [
        f"TPOT p99 {tokens['tpot_p99'] / 1e6:.4g} ms is not below its bound of 0.001 ms"]
    assert perf["metrics"]["tokens_per_second"] > 0
    text = report.performance_section(perf, "Server")
    assert "TTFT: min" in text and "p99 against the bound 1000 ms: PASS" in text
    assert "p99 against the bound 0.001 ms: FAIL" in text


def test_offline_reports_no_token_latencies(run, tmp_path):
    run(Counting(), "Offline", mode=lg.TestMode.PerformanceOnly, total=30)
    perf = evaluate.performance(tmp_path, "Offline", load_round())
    assert perf["token_latency_ns"] == {} and perf["metrics"]["tokens_per_second"] > 0
