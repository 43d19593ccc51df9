"""Readers for LoadGen's output files: summary, detail (MLLOG lines) and accuracy log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError
from harness.util import listing

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
ACCURACY = "mlperf_log_accuracy.json"
SUMMARY_AND_DETAIL = (SUMMARY, DETAIL)
_MLLOG = ":::MLLOG "


@dataclass
class Detail:
    values: dict[str, Any] = field(default_factory=dict)
    """First occurrence of each key, as the official log parser keeps it."""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def read_detail(path: Path) -> Detail:
    if not path.is_file():
        raise DataError(f"{path} is missing: the LoadGen test did not write its detail log")
    detail = Detail()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith(_MLLOG):
            continue
        try:
            entry = json.loads(line[len(_MLLOG):])
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number} is not a valid MLLOG line: {exc}") from exc
        key, value, meta = entry.get("key"), entry.get("value"), entry.get("metadata", {})
        detail.values.setdefault(key, value)
        if meta.get("is_error"):
            detail.errors.append(f"{key}: {value}")
        elif meta.get("is_warning"):
            detail.warnings.append(f"{key}: {value}")
    if not detail.values:
        raise DataError(f"{path} holds no ':::MLLOG' lines; it is not a LoadGen detail log")
    return detail


def read_summary(path: Path) -> dict[str, str]:
    """``key : value`` lines of mlperf_log_summary.txt, keys stripped (first occurrence wins)."""
    if not path.is_file():
        raise DataError(f"{path} is missing: the LoadGen test did not write its summary")
    out: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


@dataclass(frozen=True)
class AccuracyRecord:
    qsl_idx: int
    data: bytes
    token_data: bytes | None = None
    """Token mode outside Offline: the payload of the sample's ``FirstTokenComplete``."""
    token_count: int | None = None
    """Token mode: the ``n_tokens`` of the sample's final response."""


_HEX = re.compile(r"^[0-9A-Fa-f]*$")


def read_accuracy(path: Path) -> list[AccuracyRecord]:
    """All records of mlperf_log_accuracy.json, in file order, duplicates kept."""
    if not path.is_file():
        raise DataError(f"{path} is missing: run in accuracy mode to produce an accuracy log")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); a truncated log cannot be scored, "
                        f"use the untruncated original") from exc
    if not isinstance(entries, list):
        raise DataError(f"{path} must hold a JSON list of {{seq_id, qsl_idx, data}} records")
    records = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or "qsl_idx" not in entry or "data" not in entry:
            raise DataError(f"{path}: record {n} lacks qsl_idx or data")
        if not isinstance(entry["qsl_idx"], int) or isinstance(entry["qsl_idx"], bool):
            raise DataError(f"{path}: record {n} has qsl_idx {entry['qsl_idx']!r}, not a whole number")
        if not isinstance(entry["data"], str) or not _HEX.match(entry["data"]) or len(entry["data"]) % 2:
            raise DataError(f"{path}: record {n} (qsl_idx {entry['qsl_idx']}) has data that is not hex bytes")
        token_data, token_count = entry.get("token_data"), entry.get("token_count")
        if token_data is not None and (not isinstance(token_data, str) or not _HEX.match(token_data)
                                       or len(token_data) % 2):
            raise DataError(f"{path}: record {n} (qsl_idx {entry['qsl_idx']}) has token_data that is not hex bytes")
        if token_count is not None and (not isinstance(token_count, int) or isinstance(token_count, bool)):
            raise DataError(f"{path}: record {n} (qsl_idx {entry['qsl_idx']}) has token_count {token_count!r}, "
                            f"not a whole number")
        records.append(AccuracyRecord(entry["qsl_idx"], bytes.fromhex(entry["data"]),
                                      None if token_data is None else bytes.fromhex(token_data), token_count))
    return records


def write_accuracy(path: Path, entries: list[tuple[int, bytes | np.ndarray]]) -> None:
    """An accuracy log in LoadGen's format (``seq_id``, ``qsl_idx``, upper-case hex ``data``)."""
    def hex_bytes(data: bytes | np.ndarray) -> str:
        return (data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()).hex().upper()

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"seq_id": n, "qsl_idx": int(index), "data": hex_bytes(data)}
                                for n, (index, data) in enumerate(entries)], indent=0))


def decode_outputs(records: list[AccuracyRecord], dtype: str, sample_count: int,
                   path: Path | str = ACCURACY) -> dict[int, np.ndarray]:
    """qsl_idx -> payload array, first record per index (as the reference scripts de-duplicate).

    Raises when an index is outside the dataset, which means the log belongs to other data.
    """
    kind = np.dtype(dtype)
    unknown = sorted({r.qsl_idx for r in records if not 0 <= r.qsl_idx < sample_count})
    if unknown:
        raise DataError(f"{path} has sample indices outside the dataset of {sample_count} samples: "
                        f"{listing(unknown)}; was it produced with other data?")
    outputs: dict[int, np.ndarray] = {}
    for r in records:
        if r.qsl_idx in outputs:
            continue
        if len(r.data) % kind.itemsize:
            raise DataError(f"{path}: sample {r.qsl_idx} has {len(r.data)} bytes, not a whole number of {dtype}")
        outputs[r.qsl_idx] = np.frombuffer(r.data, dtype=kind)
    return outputs
