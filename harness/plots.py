"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG (no network at view time)."""

from __future__ import annotations

import io
import json
from pathlib import Path

COLOR = "#1f77b4"
"""The bars' and lines' colour (matplotlib's first colour), which the report's tests look for."""


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: without the XML declaration and doctype


def _figure(width: float = 6.0, height: float = 2.8):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def latency_percentiles(latency_ns: dict[str, float], title: str) -> str:
    """Bars of LoadGen's latency statistics (min, mean, percentiles, max) in milliseconds."""
    fig = _figure()
    ax = fig.subplots()
    names = list(latency_ns)
    ax.bar(names, [latency_ns[n] / 1e6 for n in names], color=COLOR)
    ax.set_ylabel("latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def trace_samples(trace: Path) -> tuple[list[float], list[float]]:
    """(completion times in s, latencies in ns) of every sample in a LoadGen trace; empty without one.

    LoadGen's trace is not valid JSON as a whole (some values are quoted twice), but each sample's
    begin and end events are one line of JSON each: those are read.
    """
    ends: list[float] = []
    latencies: list[float] = []
    if not trace.is_file():
        return ends, latencies
    with trace.open(errors="replace") as lines:
        for line in lines:
            if not line.startswith('{"name":"Sample"'):
                continue
            try:
                event = json.loads(line.rstrip().rstrip(","))
            except json.JSONDecodeError:
                continue
            if event.get("ph") == "e":
                ends.append(event["ts"] / 1e6)
            elif event.get("ph") == "b" and "complete_ns" in event.get("args", {}):
                latencies.append(event["args"]["complete_ns"] - event["args"]["issue_start_ns"])
    return ends, latencies


def throughput(ends: list[float], title: str, buckets: int = 50) -> str:
    """Completed samples per second over the test, in ``buckets`` intervals."""
    start = min(ends)
    width = max((max(ends) - start) / buckets, 1e-3)
    counts = [0] * (int((max(ends) - start) / width) + 1)
    for t in ends:
        counts[int((t - start) / width)] += 1
    fig = _figure()
    ax = fig.subplots()
    ax.plot([i * width for i in range(len(counts))], [c / width for c in counts], color=COLOR, marker="o",
            markersize=3)
    ax.set_xlabel("time since the first completion (s)")
    ax.set_ylabel("samples completed per second")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _svg(fig)


def latency_histogram(latencies_ns: list[float], title: str) -> str:
    """The distribution of every sample's latency (from the trace)."""
    fig = _figure()
    ax = fig.subplots()
    ax.hist([v / 1e6 for v in latencies_ns], bins=50, color=COLOR)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def comparison(labels: list[str], values: list[float], unit: str) -> str:
    """Horizontal bars of one result across runs."""
    fig = _figure(height=0.5 + 0.4 * len(labels))
    ax = fig.subplots()
    ax.barh(labels[::-1], values[::-1], color=COLOR)
    if min(values) > 0 and max(values) / min(values) > 100:
        ax.set_xscale("log")  # a null-backend run next to a real one
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)
