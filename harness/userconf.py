"""A LoadGen user.conf, checked line by line before LoadGen reads it.

LoadGen's own parser is lenient where it hurts: ``strtoull`` takes ``-5`` as 2^64 - 5 (a
negative ``min_duration`` crashes the test process), a whole-number key silently drops a
fraction, ``key=value`` without spaces is skipped, a comment after a value is an error that only
shows in the detail log, and a key it does not know is ignored. So every line is checked here
as LoadGen 4.1 tokenizes it (whitespace-separated ``key = value``; ``#`` as its own word starts a
comment), and every value against the type and range LoadGen gives it. Problems name the line;
keys LoadGen would ignore (unknown, or of another benchmark) are warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InvalidSettings
from harness.spec import SCENARIOS
from harness.util import suggest

UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Key:
    kind: str
    """``uint`` (a whole number, read with strtoull), ``bool`` (0 or 1) or ``float`` (strtod)."""
    low: float = 0
    high: float = UINT64_MAX
    low_open: bool = False
    """True: the value must be above ``low``, not equal to it."""
    what: str = ""


_SEED = Key("uint", what="a seed")
_MS = Key("uint", what="milliseconds")
KEYS: dict[str, Key] = {
    "mode": Key("uint", 0, 3, what="0 submission, 1 accuracy, 2 performance, 3 find peak performance"),
    "min_duration": _MS, "max_duration": _MS,
    "min_query_count": Key("uint", 1), "max_query_count": Key("uint"),
    "qsl_rng_seed": _SEED, "sample_index_rng_seed": _SEED, "schedule_rng_seed": _SEED,
    "accuracy_log_rng_seed": _SEED,
    "accuracy_log_probability": Key("float", 0, 100, what="percent"),
    "accuracy_log_sampling_target": Key("uint"),
    "print_timestamps": Key("bool"), "performance_issue_unique": Key("bool"), "performance_issue_same": Key("bool"),
    "performance_issue_same_index": Key("uint"), "performance_sample_count_override": Key("uint"),
    "sample_concatenate_permutation": Key("bool"),
    "test05": Key("bool"), "test05_qsl_rng_seed": _SEED, "test05_sample_index_rng_seed": _SEED,
    "test05_schedule_rng_seed": _SEED,
    "use_token_latencies": Key("bool"), "infer_token_latencies": Key("bool"),
    "token_latency_scaling_factor": Key("uint", 1),
    "ttft_latency": Key("uint", 0, UINT64_MAX // 10**6, what="milliseconds"),
    "tpot_latency": Key("uint", 0, UINT64_MAX // 10**6, what="milliseconds"),
    "target_latency_percentile": Key("float", 0, 100, low_open=True, what="percent"),
    "target_latency": Key("float", 0, UINT64_MAX / 10**6, low_open=True, what="milliseconds"),
    "samples_per_query": Key("uint", 1),
    "target_qps": Key("float", 0, float("inf"), low_open=True, what="queries per second"),
    "coalesce_queries": Key("bool"), "max_async_queries": Key("uint", 0, 2**31 - 1),
}
_UINT = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")
_FLOAT = re.compile(r"^[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def _value_problem(key: Key, text: str) -> str | None:
    if key.kind in ("uint", "bool"):
        if not _UINT.match(text):
            return "must be a whole number of 0 or more" + (" (0 or 1)" if key.kind == "bool" else "")
        value: float = int(text, 0)
        if key.kind == "bool" and value not in (0, 1):
            return "must be 0 or 1"
    else:
        if not _FLOAT.match(text):
            return "must be a number of 0 or more"
        value = float(text)
    low_ok = value > key.low if key.low_open else value >= key.low
    if not low_ok or value > key.high:
        bound = f"above {key.low:g}" if key.low_open else f"at least {key.low:g}"
        top = "" if key.high in (UINT64_MAX, float("inf")) else f" and at most {key.high:g}"
        return f"must be {bound}{top}" + (f" ({key.what})" if key.what else "")
    return None


def check(path: Path, conf_key: str) -> list[str]:
    """Warnings about ``path`` (keys LoadGen ignores); raise InvalidSettings naming every bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSettings(f"user.conf {path} cannot be read ({exc}); pass a readable text file") from exc
    problems, warnings = [], []
    for number, line in enumerate(lines, 1):
        words = line.split()
        where = f"{path}:{number}: {line.strip()!r}"
        if not words or words[0] == "#":
            continue
        if words[0].startswith("#"):  # LoadGen takes '#text' for a key, and the next word must be '='
            if len(words) > 1:
                problems.append(f"{where}: start a comment with '# ' (a space after #); LoadGen reads "
                                f"{words[0]!r} as a key")
            continue
        if len(words) < 3 or words[1] != "=":
            problems.append(f"{where}: expected 'model.scenario.key = value', with spaces around '='")
            continue
        if len(words) > 3:
            problems.append(f"{where}: LoadGen reads no comment after a value; put the comment on its own line")
            continue
        name, value = words[0], words[2]
        model, scenario, key = (name.split(".", 2) + ["", ""])[:3]
        if not key or (scenario not in SCENARIOS and scenario != "*"):
            problems.append(f"{where}: the key must be 'model.scenario.key' with a scenario of "
                            f"{', '.join(SCENARIOS)} or *")
            continue
        if key not in KEYS:
            warnings.append(f"{where}: LoadGen does not know the key {key!r} and ignores it{suggest(key, KEYS)}")
            continue
        if model not in (conf_key, "*"):
            warnings.append(f"{where}: applies to the benchmark {model!r}, not {conf_key!r}; LoadGen ignores it here")
            continue
        problem = _value_problem(KEYS[key], value)
        if problem:
            problems.append(f"{where}: {key} {problem}")
    if problems:
        raise InvalidSettings(f"user.conf {path} has {len(problems)} bad line(s):\n  - " + "\n  - ".join(problems))
    return warnings
