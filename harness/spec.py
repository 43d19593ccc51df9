"""BenchmarkSpec: everything the core needs to know about a benchmark, as validated data.

A benchmark folder exports ``BENCHMARK = BenchmarkSpec(...)`` from its ``__init__.py``. The
official MLPerf names and the LoadGen conf key are fields here; no other part of the core uses
them. Accuracy targets are not here: they belong to a round (see ``harness.rounds``).
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

import numpy as np

from harness.errors import InvalidSettings

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MODES = ("accuracy", "performance", "submission")
DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class BenchmarkSpec:
    id: str
    """Folder name, compose service and report key; a Python identifier (``gptj``)."""
    mlperf_names: tuple[str, ...]
    """Submission names of the accuracy variants (``gptj-99``, ``gptj-99.9``)."""
    conf_key: str
    """Model key of LoadGen's embedded mlperf.conf (``gptj``). A wrong key silently gives wildcards."""
    datacenter_scenarios: tuple[str, ...]
    edge_scenarios: tuple[str, ...]
    dataset_size: int
    """Samples in the full real dataset; an accuracy run must cover all of them for a submission."""
    performance_count: int
    """Samples LoadGen keeps loaded during a performance run (clamped to the dataset in use)."""
    payload_dtype: str
    """numpy dtype of the response bytes; the scorer decodes the accuracy log with the same dtype."""
    devices: tuple[str, ...] = ("cpu", "cuda")
    """Device kinds its backend runs on (``cpu``, ``cuda``, ``rngd``)."""
    default_batch_size: int | dict[str, int] = 1
    """Largest batch a replica runs: one number, or one per device kind (``{"cpu": 1, "cuda": 8}``,
    a kind not listed gets 1), as the best batch differs between a CPU and an accelerator."""
    default_batch_tokens: dict[str, int] = field(default_factory=dict)
    """Per device kind (``cpu``, ``cuda``): cap on a batch's length (see ``padded_batches``)."""
    padded_batches: bool = True
    """Whether a batch's samples are padded to the longest, so that its length is samples x longest
    sample length, or concatenated, so that it is their total length (DLRM's user-item pairs)."""
    eos_token_id: int | None = None
    """LLMs: the tokenizer's end-of-sequence id (TEST06 counts trailing EOS tokens)."""
    stall_timeout_s: float = 600.0
    """Default watchdog: a run with outstanding samples and no completion for this long is ended."""
    description: str = ""
    scenarios: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        problems = []
        if not self.id.isidentifier() or keyword.iskeyword(self.id):
            problems.append(f"id {self.id!r} must be a Python identifier (e.g. 'unet3d', not '3d-unet')")
        if not self.mlperf_names:
            problems.append("mlperf_names is empty")
        for s in self.datacenter_scenarios + self.edge_scenarios:
            if s not in SCENARIOS:
                problems.append(f"unknown scenario {s!r}; allowed: {', '.join(SCENARIOS)}")
        if self.dataset_size <= 0 or not 0 < self.performance_count <= self.dataset_size:
            problems.append("need 0 < performance_count <= dataset_size")
        try:
            np.dtype(self.payload_dtype)
        except TypeError:
            problems.append(f"payload_dtype {self.payload_dtype!r} is not a numpy dtype")
        sizes = self.default_batch_size
        if min(sizes.values() if isinstance(sizes, dict) else [sizes], default=1) < 1 or self.stall_timeout_s <= 0:
            problems.append("default_batch_size and stall_timeout_s must be positive")
        if problems:
            raise InvalidSettings(f"benchmark spec {self.id!r}: " + "; ".join(problems))
        ordered = tuple(s for s in SCENARIOS if s in self.datacenter_scenarios + self.edge_scenarios)
        object.__setattr__(self, "scenarios", ordered)

    def batch_size(self, device_kind: str | None) -> int:
        """The default batch size on a device kind (``cpu``, ``cuda``, ``rngd``)."""
        if isinstance(self.default_batch_size, dict):
            return self.default_batch_size.get(device_kind or "", 1)
        return self.default_batch_size
