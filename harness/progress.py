"""Live progress of running LoadGen tests.

Each test process (``harness.worker``) rewrites ``progress.json`` in its log folder every second:
samples issued, completed and failed, seconds elapsed, the samples LoadGen is expected to issue
and its minimum duration. The runner reads them while it waits: on a terminal one ``tqdm`` bar per
test (completed / expected, samples/s, elapsed against the minimum duration); otherwise (a
container, CI) a plain line per test every ``HARNESS_PROGRESS_S`` seconds (default 30), and one
when the tests end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

FILE = "progress.json"


def reporter(folder: Path, snapshot: Callable[[], dict[str, Any]], interval_s: float = 1.0) -> threading.Event:
    """Write ``snapshot()`` to ``folder/progress.json`` every ``interval_s`` until the returned event is set."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(interval_s):
            write(folder, snapshot())
        write(folder, snapshot())

    threading.Thread(target=loop, name="progress", daemon=True).start()
    return done


def write(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / f".{FILE}.tmp"
    try:
        tmp.write_text(json.dumps(state))
        tmp.replace(folder / FILE)  # readers never see half a file
    except OSError:
        pass  # progress is a courtesy; a full disk must not end the test


def read(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def describe(state: dict[str, Any]) -> str:
    completed, expected, elapsed = state["completed"], state.get("expected"), state["elapsed_s"]
    rate = completed / elapsed if elapsed > 0 else 0.0
    parts = [f"{completed}/{expected or '?'} samples" + (f" ({completed / expected:.0%})" if expected else ""),
             f"{rate:.1f} samples/s", f"{elapsed:.0f} s elapsed" + (f" of at least {state['min_duration_s']:.0f} s"
                                                                   if state.get("min_duration_s") else "")]
    if expected and rate and completed < expected:
        parts.append(f"ETA {(expected - completed) / rate:.0f} s")
    if state.get("failed"):
        parts.append(f"{state['failed']} failed")
    return ", ".join(parts)


class Display:
    """Shows the progress of a group of tests, by their names and log folders."""

    def __init__(self, tests: list[tuple[str, Path]], stream: TextIO, interval_s: float | None = None) -> None:
        self.tests, self.stream = tests, stream
        self.terminal = stream.isatty()
        self.interval_s = interval_s if interval_s is not None else float(os.environ.get("HARNESS_PROGRESS_S", 30))
        self.last = time.monotonic()
        self.bars: dict[str, Any] = {}

    def update(self) -> None:
        states = [(name, read(folder)) for name, folder in self.tests]
        if self.terminal:
            from tqdm import tqdm

            for position, (name, state) in enumerate(states):
                if state is None:
                    continue
                bar = self.bars.get(name)
                if bar is None:
                    bar = self.bars[name] = tqdm(total=state.get("expected") or None, desc=f"  {name}", unit="sample",
                                                 position=position, file=self.stream, dynamic_ncols=True, leave=True)
                bar.total = state.get("expected") or bar.total
                bar.n = state["completed"]
                bar.set_postfix_str(f"{state['elapsed_s']:.0f}/{state.get('min_duration_s') or 0:.0f} s"
                                    + (f", {state['failed']} failed" if state.get("failed") else ""), refresh=False)
                bar.refresh()
        elif time.monotonic() - self.last >= self.interval_s:
            self.last = time.monotonic()
            for name, state in states:
                if state is not None:
                    print(f"  progress {name}: {describe(state)}", file=self.stream, flush=True)

    def close(self) -> None:
        """The final state of every test: the bars' last redraw, or one last plain line."""
        if not self.terminal:
            self.last = -float("inf")  # due now
        self.update()
        for bar in self.bars.values():
            bar.close()
