"""The SUT machinery against the real LoadGen, in process, with toy backends.

Bare TestSettings (no FromConfig) keep several tests in one process valid.
"""

from __future__ import annotations

import json
import threading
import time

import mlperf_loadgen as lg
import numpy as np
import pytest

from harness import logs
from harness.sut import SUT, BatchPolicy, NullBackend


class Echo:
    """Returns [index, index, ...] (length = index % 5 + 1) and records batch sizes."""

    def __init__(self, fail_on: int | None = None, hang_on: int | None = None):
        self.batches: list[list[int]] = []
        self.fail_on, self.hang_on = fail_on, hang_on
        self.release = threading.Event()

    def predict(self, samples):
        self.batches.append(list(samples))
        if self.fail_on in samples:
            raise ValueError(f"sample {self.fail_on} is poisoned")
        if self.hang_on in samples:
            self.release.wait(30)
        return [np.full(s % 5 + 1, s, dtype=np.int64) for s in samples]


@pytest.fixture
def run(loadgen_test):
    def run(replicas, policy, scenario="Offline", mode=lg.TestMode.AccuracyOnly, total=40, stall_timeout_s=30.0,
            configure=None, sample_length=None, get_sample=lambda i: i):
        factories = [r if callable(r) else (lambda r=r: r) for r in replicas]
        sut = SUT(get_sample, factories, policy, "int64", stall_timeout_s, sample_length)
        return sut.stats, loadgen_test(sut, total, scenario, mode, configure)
    return run


def accuracy_log(tmp_path):
    return {r.qsl_idx: np.frombuffer(r.data, np.int64).tolist() for r in logs.read_accuracy(tmp_path / logs.ACCURACY)}


def test_offline_batches_sorted_and_payloads_exact(run, tmp_path):
    echo = Echo()
    stats, _ = run([echo], BatchPolicy(8, sort_by_length=True), sample_length=lambda i: i)
    assert stats.completed == stats.issued == 40 and stats.failed == 0
    assert max(len(b) for b in echo.batches) == 8
    flat = [s for b in echo.batches for s in b]
    assert flat == sorted(flat, reverse=True)  # longest first: batches pad little
    assert accuracy_log(tmp_path) == {i: [i] * (i % 5 + 1) for i in range(40)}


def test_failed_batch_is_completed_empty_counted_and_reported(run, tmp_path):
    echo = Echo(fail_on=13)
    stats, _ = run([echo], BatchPolicy(4))
    assert stats.issued == 40 and stats.completed + stats.failed == 40
    assert stats.failed == 4 and 13 in stats.failed_indices
    assert "ValueError: sample 13 is poisoned" in stats.errors[0]
    outputs = accuracy_log(tmp_path)
    assert len(outputs) == 40 and outputs[13] == []
    assert outputs[12 if 12 not in stats.failed_indices else 20] != []


def test_a_sample_that_cannot_be_read_fails_alone(run, tmp_path):
    echo = Echo()
    stats, _ = run([echo], BatchPolicy(4), get_sample=lambda i: i if i != 13 else 1 / 0)
    assert stats.failed == 1 and stats.failed_indices == [13]
    assert stats.errors == ["sample 13: ZeroDivisionError: division by zero"]
    outputs = accuracy_log(tmp_path)
    assert outputs[13] == [] and all(outputs[i] == [i] * (i % 5 + 1) for i in range(40) if i != 13)
    assert 13 not in {s for b in echo.batches for s in b}


def test_watchdog_ends_a_stalled_run(run):
    echo = Echo(hang_on=5)
    try:
        stats, elapsed = run([echo], BatchPolicy(1), stall_timeout_s=1.0)
    finally:
        echo.release.set()
    assert stats.stalled and "no sample completed for" in stats.stalled and "sample indices 5" in stats.stalled
    assert stats.failed >= 1 and stats.completed + stats.failed == stats.issued
    assert elapsed < 10


def test_server_dynamic_batching_under_a_latency_budget(run):
    class Slow(Echo):
        def predict(self, samples):
            time.sleep(0.004)
            return super().predict(samples)

    slow = Slow()

    def server(s):
        s.server_target_qps = 2000
        s.server_target_latency_ns = 50_000_000
        s.min_query_count = 1000

    stats, _ = run([slow], BatchPolicy(16, max_wait_s=0.002), scenario="Server",
                   mode=lg.TestMode.PerformanceOnly, configure=server)
    assert stats.failed == 0 and stats.completed == stats.issued >= 1000
    assert max(len(b) for b in slow.batches) > 1  # queries arriving while a batch runs are batched


def test_replicas_share_one_queue(run):
    a, b = Echo(), Echo()

    class Slow(Echo):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def predict(self, samples):
            time.sleep(0.01)
            return self.inner.predict(samples)

    stats, _ = run([Slow(a), Slow(b)], BatchPolicy(2))
    assert stats.completed == 40 and sum(stats.by_replica) == 40
    assert a.batches and b.batches and min(stats.by_replica) > 0  # both replicas served the one LoadGen


def test_null_backend_performance_run_is_valid(run, tmp_path):
    def fast(s):
        s.offline_expected_qps = 2_000_000  # 220k samples: the single query outlasts min_duration

    stats, _ = run([NullBackend()], BatchPolicy(64), mode=lg.TestMode.PerformanceOnly, configure=fast)
    assert stats.failed == 0
    detail = logs.read_detail(tmp_path / logs.DETAIL)
    assert detail.get("result_validity") == "VALID", json.dumps(detail.values)[:500]


def test_each_replica_is_built_on_the_thread_that_serves_it(run):
    built_on, served_on = [], set()

    class Recorder(Echo):
        def predict(self, samples):
            served_on.add(threading.get_ident())
            return super().predict(samples)

    def build():
        built_on.append(threading.get_ident())
        return Recorder()

    stats, _ = run([build, build], BatchPolicy(4))
    assert stats.completed == 40
    assert len(set(built_on)) == 2 and threading.get_ident() not in built_on
    assert served_on <= set(built_on)


def test_the_first_replica_is_built_before_the_others_start(run):
    """Its imports must finish first: concurrent first imports of a package can fail."""
    events, lock = [], threading.Lock()

    def build(i):
        with lock:
            events.append(("start", i))
        time.sleep(0.05)  # were the builds concurrent, another start would land in here
        with lock:
            events.append(("end", i))
        return Echo()

    stats, _ = run([lambda i=i: build(i) for i in range(3)], BatchPolicy(4))
    assert stats.completed == 40
    assert events[:2] == [("start", 0), ("end", 0)]
    assert sorted(events[2:]) == [("end", 1), ("end", 2), ("start", 1), ("start", 2)]


def test_a_first_replica_that_fails_leaves_the_others_unbuilt():
    built = []

    def broken():
        raise RuntimeError("no such checkpoint")

    sut = SUT(lambda i: i, [broken, lambda: built.append(1) or NullBackend()], BatchPolicy(1), "int64", 1.0)
    with pytest.raises(RuntimeError, match="no such checkpoint"):
        sut.start()
    assert built == [] and sut.handle is None


def test_a_replica_that_fails_to_load_stops_the_start():
    def broken():
        raise RuntimeError("no such checkpoint")

    sut = SUT(lambda i: i, [NullBackend, broken], BatchPolicy(1), "int64", 1.0)
    with pytest.raises(RuntimeError, match="no such checkpoint"):
        sut.start()
    assert sut.handle is None


def test_sut_needs_a_replica():
    with pytest.raises(ValueError):
        SUT(lambda i: i, [], BatchPolicy(1), "int64", 1.0)


def test_token_budget_caps_padded_batches(run):
    echo = Echo()
    lengths = {i: 10 + i for i in range(40)}
    stats, _ = run([echo], BatchPolicy(8, sort_by_length=True, max_tokens=200),
                   sample_length=lengths.__getitem__)
    assert stats.completed == 40
    for batch in echo.batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 200 or len(batch) == 1
    assert len(echo.batches[0]) == 4  # longest first: 4 x 49 = 196 <= 200 < 5 x 49
    assert max(len(b) for b in echo.batches) == 8  # short samples still fill a batch


def test_token_budget_of_concatenated_samples_counts_their_total(run):
    echo = Echo()
    lengths = {i: 100 * (1 + i % 7) for i in range(30)}  # groups of 100 to 700 pairs
    stats, _ = run([echo], BatchPolicy(64, sort_by_length=True, max_tokens=1000, padded=False), total=30,
                   sample_length=lengths.__getitem__)
    assert stats.completed == 30
    assert sorted(i for b in echo.batches for i in b) == list(range(30))
    for batch in echo.batches:
        assert sum(lengths[i] for i in batch) <= 1000 or len(batch) == 1
    # a batch that padding would not allow: [300, 200, 200, 200] costs 900, padded 1200
    assert any(len(b) * max(lengths[i] for i in b) > 1000 for b in echo.batches)
