"""Fixtures for the SUT tests: one short real LoadGen test around a SUT."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.sut import QSL, SUT, SutStats


@pytest.fixture
def loadgen_test(tmp_path: Path):
    """``loadgen_test(sut, total, scenario, mode, configure=None, **settings) -> seconds``: run LoadGen
    over ``sut`` and a QSL of ``total`` samples, logs in tmp_path; min_duration 100 ms, every sample
    in one query or at least once, then ``settings`` (TestSettings attributes) and ``configure``."""
    import mlperf_loadgen as lg

    def run(sut: SUT, total: int, scenario: str, mode, configure: Callable | None = None, **values) -> float:
        qsl = QSL(total, total, lambda ix: None, lambda ix: None, SutStats())
        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, scenario)
        settings.mode = mode
        settings.min_duration_ms = 100
        settings.min_query_count = total
        settings.offline_expected_qps = 1000
        for name, value in values.items():
            setattr(settings, name, value)
        if configure:
            configure(settings)
        log = lg.LogSettings()
        log.log_output.outdir = str(tmp_path)
        log.enable_trace = False
        began = time.monotonic()
        lg.StartTestWithLogSettings(sut.start(), qsl.start(), settings, log)
        elapsed = time.monotonic() - began
        sut.stop()
        qsl.stop()
        return elapsed

    return run
