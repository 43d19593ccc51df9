"""Finished run folders read back: what ran (result.json) and where its LoadGen logs are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness import logs
from harness.errors import HarnessError


@dataclass(frozen=True)
class Run:
    folder: Path
    result: dict[str, Any]

    @property
    def benchmark(self) -> str:
        return self.result["benchmark"]

    @property
    def scenario(self) -> str:
        return self.result["settings"]["scenario"]

    @property
    def round(self) -> str:
        return self.result["round"]

    @property
    def compliance(self) -> dict[str, Any] | None:
        """The verification of a compliance run (``harness compliance``); None for other runs."""
        return self.result.get("compliance")

    @cached_property
    def accuracy_dir(self) -> Path | None:
        folder = self.folder / "accuracy"
        return folder if (folder / logs.ACCURACY).is_file() else None

    @cached_property
    def performance_dir(self) -> Path | None:
        folder = self.folder / "performance" / "run_1"
        return folder if self.compliance is None and (folder / logs.DETAIL).is_file() else None

    def describe(self) -> str:
        kind = f"{self.compliance['test']} compliance" if self.compliance else self.result["settings"]["mode"]
        return f"{self.folder} ({self.benchmark} {self.scenario} {kind})"


def read_run(folder: Path) -> Run:
    """A run folder made by ``harness run``, ``merge`` or ``compliance``; errors name what is wrong."""
    source = folder / "result.json"
    if not folder.is_dir():
        raise HarnessError(f"{folder} is not a folder; pass run folders made by `harness run`")
    if not source.is_file():
        raise HarnessError(f"{folder} has no result.json: it is not a finished run folder made by `harness run`")
    try:
        result = json.loads(source.read_text())
        result["benchmark"], result["round"], result["settings"]["scenario"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise HarnessError(f"{source} is not a result.json written by the harness ({exc!r})") from exc
    return Run(folder.resolve(), result)
