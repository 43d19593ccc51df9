"""Small helpers shared by the core."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.5)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def listing(items: Sequence[object], limit: int = 20) -> str:
    """``1, 2, 3 ... (57 in all)``: a readable head of a long list for error messages."""
    head = ", ".join(map(str, items[:limit]))
    return head + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_cache(path: Path, data: bytes) -> None:
    """Write a cache file atomically (a concurrent reader, another process or replica thread, sees
    all of it or nothing); a cache that cannot be written only costs recomputing next time."""
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):  # e.g. the cache folder is a file: nothing was written
            partial.unlink()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a reader (or a harness killed while writing) never sees half a file."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


def read_json(path: Path, missing: str, kind: str) -> Any:
    """JSON from ``path``: a missing file raises ``HarnessError(missing)``, a malformed one says it is
    not ``kind``."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise HarnessError(missing) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path} is not {kind} ({exc})") from exc
