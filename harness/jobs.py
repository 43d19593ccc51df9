"""A job is one LoadGen test: which mode, which slice of the dataset, on which devices."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    """``accuracy``, ``performance`` or ``partition-P-of-N``; also the name of its log file."""
    log_dir: str
    test_mode: str
    """``accuracy`` or ``performance`` (a submission run is one job of each)."""
    start: int
    stop: int
    """The job's samples are dataset indices [start, stop); LoadGen sees them as 0 .. stop-start-1."""
    devices: list[str]
    partition: int | None = None
    audit: str | None = None
    """audit.config text of a compliance test (how it reaches LoadGen: the round's ``audit_via``)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        return cls(**json.loads(text))


def partition_range(n_samples: int, n_partitions: int, partition: int) -> tuple[int, int]:
    """Contiguous, disjoint, covering slices; sizes differ by at most one."""
    return partition * n_samples // n_partitions, (partition + 1) * n_samples // n_partitions
