"""Checks for fields read from files somebody else may have written.

Manifests, ``run.json``, ``result.json``, ``partition.json``, accuracy logs and data folders reach
an auditor from elsewhere. Every field taken from them is checked here before it is used: a
digest must be a hex digest, a name a plain name, a relative path must stay inside its folder,
and a record must have exactly the keys it should, of the types it should. Each check raises one
``HarnessError`` that names the file, the field and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from harness.errors import HarnessError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def fail(where: str, problem: str) -> HarnessError:
    return HarnessError(f"{where}: {problem}; it was not written by this harness, or it was changed since")


def sha256_hex(value: Any, where: str) -> str:
    """A sha256 as 64 lower-case hex digits."""
    if not isinstance(value, str) or not _HEX64.match(value):
        raise fail(where, f"{value!r} is not a sha256 hex digest")
    return value


def is_plain_name(value: Any) -> bool:
    """A file or folder name, not a path: not empty, not '.' or '..', no '/', '\\' or NUL in it."""
    return isinstance(value, str) and value not in ("", ".", "..") and not any(c in value for c in "/\\\0")


def relative_path(value: Any, where: str) -> str:
    """A relative POSIX path that stays inside its folder: plain names joined by '/'."""
    if not isinstance(value, str) or not value:
        raise fail(where, f"{value!r} is not a relative path")
    path = PurePosixPath(value)
    if path.is_absolute() or str(path) != value or not all(is_plain_name(part) for part in path.parts):
        raise fail(where, f"{value!r} is not a relative path inside its folder")
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def is_a(value: Any, kind: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not a number and an int is a float."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int))


def record(value: Any, where: str, required: Mapping[str, type | tuple[type, ...]],
           optional: Mapping[str, type | tuple[type, ...]] | None = None, extra: bool = False) -> dict[str, Any]:
    """A JSON object with every ``required`` key, any ``optional`` ones, each of its type; other keys
    are refused unless ``extra``."""
    if not isinstance(value, dict):
        raise fail(where, f"expected a JSON object, found {type(value).__name__}")
    optional = optional or {}
    problems = [f"{key!r} is missing" for key in required if key not in value]
    if not extra:
        problems += [f"unexpected field {key!r}" for key in value if key not in required and key not in optional]
    for key, kind in {**required, **optional}.items():
        if key in value and not is_a(value[key], kind):
            problems.append(f"{key!r} is {type(value[key]).__name__}, expected {_type_name(kind)}")
    if problems:
        raise fail(where, "; ".join(problems))
    return value
