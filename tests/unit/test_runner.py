"""How the runner starts its job processes."""

from __future__ import annotations

import os

from harness.jobs import Job
from harness.runner import job_env


def job(name: str, *devices: str) -> Job:
    return Job(name, f"/tmp/{name}", "accuracy", 0, 8, list(devices))


def test_cpu_replicas_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert job_env([job("accuracy", "cpu", "cpu")])["OMP_NUM_THREADS"] == "4"
    assert job_env([job(f"partition-{p}-of-3", "cpu") for p in range(3)])["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in job_env([job("accuracy", "cpu")])  # one replica: the library's default
    assert "OMP_NUM_THREADS" not in job_env([job("accuracy", "cuda:0", "cuda:1")])
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert job_env([job("accuracy", "cpu", "cpu")])["OMP_NUM_THREADS"] == "3"  # the user's choice stands
