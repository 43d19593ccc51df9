"""Discovers benchmarks: every folder ``benchmarks/<id>/`` (not starting with ``_``) is one.

Discovery fails loudly: a folder that lacks a required file, does not import, or exports no
valid ``BENCHMARK`` aborts with the folder's path, instead of the benchmark quietly vanishing.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from harness.errors import HarnessError, UnknownBenchmark
from harness.spec import BenchmarkSpec

REQUIRED_FILES = (
    "__init__.py", "dataset.py", "backend.py", "accuracy.py", "demo.py",
    "artifacts.toml", "user.conf", "README.md", "compose.yaml",
)


@dataclass(frozen=True)
class Benchmark:
    """A discovered benchmark: its spec plus its modules, imported on first use."""

    spec: BenchmarkSpec
    folder: Path

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"benchmarks.{self.spec.id}.{name}")

    @property
    def dataset(self) -> ModuleType:
        return self.module("dataset")

    @property
    def backend(self) -> ModuleType:
        return self.module("backend")

    @property
    def accuracy(self) -> ModuleType:
        return self.module("accuracy")

    @property
    def demo(self) -> ModuleType:
        return self.module("demo")

    @property
    def user_conf(self) -> Path:
        return self.folder / "user.conf"


def benchmarks_root() -> Path:
    import benchmarks

    return Path(next(iter(benchmarks.__path__)))


@cache
def discover() -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for folder in sorted(p for p in benchmarks_root().iterdir() if p.is_dir()):
        if folder.name.startswith(("_", ".")):
            continue
        missing = [f for f in REQUIRED_FILES if not (folder / f).exists()]
        if missing:
            raise HarnessError(f"benchmark folder {folder} lacks {', '.join(missing)}; every benchmark "
                               f"folder needs {', '.join(REQUIRED_FILES)}")
        try:
            package = importlib.import_module(f"benchmarks.{folder.name}")
        except Exception as exc:  # report any import failure with the folder that caused it
            raise HarnessError(f"benchmark folder {folder} failed to import: {exc!r}") from exc
        spec = getattr(package, "BENCHMARK", None)
        if not isinstance(spec, BenchmarkSpec):
            raise HarnessError(f"{folder}/__init__.py must define BENCHMARK = BenchmarkSpec(...)")
        if spec.id != folder.name:
            raise HarnessError(f"{folder}: BENCHMARK.id is {spec.id!r} but the folder is {folder.name!r}")
        found[spec.id] = Benchmark(spec, folder)
    return found


def get(name: str) -> Benchmark:
    found = discover()
    if name in found:
        return found[name]
    aliases = {alias: b.spec.id for b in found.values() for alias in (*b.spec.mlperf_names, b.spec.conf_key)}
    if name in aliases:
        hint = f"Did you mean {aliases[name]!r}? ({name!r} is an MLPerf name of it.)"
    else:
        close = difflib.get_close_matches(name, list(found) + list(aliases), n=3, cutoff=0.5)
        close_ids = list(dict.fromkeys(aliases.get(c, c) for c in close))
        hint = f"Did you mean {', '.join(map(repr, close_ids))}?" if close_ids else ""
    raise UnknownBenchmark(f"unknown benchmark {name!r}. {hint} Available: {', '.join(found)}".replace(".  ", ". "))
