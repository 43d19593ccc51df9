"""Provenance: what a run was made of (``manifest.json``), and what differs between two runs.

Every run folder gets a manifest: the command line and resolved settings; the harness (version,
git commit and whether the tree was dirty, sha256 of the code that ran); the container image when
there is one (name, commit, lock hashes); LoadGen (version, build commit and the per-file SHA-1s
it logs); the round; the user.conf used (text and sha256); every data and model file used (sha256,
cached by path, size and mtime) and their tree hash; the device (CPU, memory, GPUs with driver,
RNGD devices); and the installed Python packages.

``harness replay MANIFEST`` reruns with the same settings after checking that nothing it depends
on changed; ``harness diff RUN_A RUN_B`` shows what changed between two runs and whether their
results agree (accuracy within the round's delta, performance within a tolerance).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import artifacts, loadgen, logs, registry, untrusted
from harness.errors import HarnessError, RoundMismatch
from harness.registry import Benchmark
from harness.rounds import load_round
from harness.settings import RunConfig
from harness.util import read_json

MANIFEST = "manifest.json"
SCHEMA = 1
"""Manifest layout version: a manifest of another layout is refused, not misread."""
_command: list[str] = []


def record_command(argv: list[str]) -> None:
    """The command line this process was started with (the CLI records it; manifests carry it)."""
    _command[:] = ["harness", *argv]


def harness_facts(bench: Benchmark) -> dict[str, Any]:
    """Version, git commit (and dirty flag) and the sha256 of the code that runs this benchmark."""
    root = registry.benchmarks_root().parent
    code = artifacts.file_hashes(root, ["harness", "benchmarks/__init__.py", f"benchmarks/{bench.spec.id}"])
    code = {path: digest for path, digest in code.items() if "__pycache__" not in path and "/tests/" not in path}
    commit, dirty = os.environ.get("HARNESS_IMAGE_COMMIT"), None
    if (root / ".git").exists() and shutil.which("git"):
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout.strip()
        commit = git("rev-parse", "HEAD") or commit
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"version": harness_version(), "git_commit": commit, "dirty": dirty,
            "code_sha256": artifacts.listing_sha256(code)}


def device_facts() -> dict[str, Any]:
    """CPU, memory and accelerators, from the operating system and the vendors' tools where present."""
    cpuinfo = _read("/proc/cpuinfo").splitlines()
    facts: dict[str, Any] = {
        "cpu_model": next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                          platform.processor()),
        "cpu_sockets": len({line for line in cpuinfo if line.startswith("physical id")}) or 1,
        "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_kb": next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                           if line.startswith("MemTotal:")), None),
        "os": next((line.split("=", 1)[1].strip('"') for line in _read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system()) + f", kernel {platform.release()}",
        "python": sys.version.split()[0],
    }
    gpus = _tool("nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
    facts["gpus"] = [dict(zip(("name", "driver", "memory"), (f.strip() for f in line.split(","))))
                     for line in gpus.splitlines() if line.strip()]
    if gpus:
        facts["cuda_driver_version"] = next((line.split("CUDA Version:")[1].split()[0]
                                             for line in _tool("nvidia-smi").splitlines() if "CUDA Version:" in line),
                                            None)
    rngd = _tool("furiosa-smi", "info")
    facts["rngd"] = rngd.splitlines()[:20] if rngd else []
    return facts


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _tool(*command: str) -> str:
    """A vendor tool's output, or "" when it is not installed or fails."""
    if shutil.which(command[0]) is None:
        return ""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def input_facts(bench: Benchmark, data_dir: Path, demo: bool, fresh: bool = False) -> dict[str, Any]:
    """sha256 of every data and model file the run reads (the whole folder for the demo tier);
    ``fresh``: read every file again instead of trusting the cache's size and mtime."""
    paths = [""] if demo else [a.path for a in artifacts.artifacts(bench)]
    files = artifacts.file_hashes(data_dir, paths, fresh=fresh)
    return {"data_dir": str(data_dir), "demo": demo, "tree_sha256": artifacts.listing_sha256(files), "files": files}


def loadgen_facts(log_dir: Path) -> dict[str, Any]:
    detail = logs.read_detail(log_dir / logs.DETAIL)
    version = str(detail.get("loadgen_version", ""))
    return {"version": version.split(" @ ")[0], "git_commit": version.partition(" @ ")[2] or None,
            "git_status": detail.get("loadgen_git_status_message"), "file_sha1": detail.get("loadgen_file_sha1")}


def packages(round_name: str | None = None) -> dict[str, str]:
    """Installed distributions by normalised name (PEP 503: ``mlcommons_loadgen`` -> ``mlcommons-loadgen``);
    with a round, its LoadGen where that is a build beside the installed one (``harness.loadgen``)."""
    found = dict(sorted((re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(), d.version)
                        for d in importlib.metadata.distributions() if d.metadata["Name"]))
    if round_name is not None:
        rnd = load_round(round_name)
        if loadgen.side_folder(rnd.loadgen_version) is not None and found.get(loadgen.DIST) != rnd.loadgen_version:
            found[loadgen.DIST] = rnd.loadgen_version
    return found


def manifest(bench: Benchmark, config, run_dir: Path, inputs: dict[str, Any], image: dict | None) -> dict[str, Any]:
    """The manifest of a finished run (``inputs``: as hashed before the run started)."""
    user_conf = Path(run_dir / "user.conf").read_bytes()
    log_dirs = sorted(run_dir.glob(f"**/{logs.DETAIL}"))
    return {
        "schema": SCHEMA, "command": _command or sys.argv, "benchmark": bench.spec.id, "round": config.round,
        "settings": dataclasses.asdict(config), "harness": harness_facts(bench), "image": image,
        "loadgen": loadgen_facts(log_dirs[0].parent) if log_dirs else None,
        "user_conf": {"text": user_conf.decode(errors="replace"), "sha256": hashlib.sha256(user_conf).hexdigest()},
        "inputs": inputs, "device": device_facts(), "packages": packages(config.round),
        "process": {"uid": os.getuid(), "gid": os.getgid()},  # in a container: whom the entrypoint ran it as
    }


def write(run_dir: Path, found: dict[str, Any]) -> None:
    (run_dir / MANIFEST).write_text(json.dumps(found, indent=2, default=str) + "\n")


TOP = {"schema": int, "command": list, "benchmark": str, "round": str, "settings": dict, "harness": dict,
       "image": (dict, type(None)), "loadgen": (dict, type(None)), "user_conf": dict, "inputs": dict,
       "device": dict, "packages": dict}
OPTIONAL = {"replay_of": str, "replay_differences": list, "process": dict}
IMAGE = {"name": (str, type(None)), "git_commit": (str, type(None)), "lock_sha256": (str, type(None)),
         "build_id": (str, type(None)), "locks": (list, type(None))}
IMAGE_COLLECTED = {"id": str, "repo_digests": list, "resolved": str}


def read(path: Path) -> dict[str, Any]:
    """A manifest (or the manifest of a run folder), checked field by field: it may come from
    anyone, so a manifest of another schema, with fields missing, unexpected or of the wrong type,
    with a digest that is not one, a file path that leaves its folder or a user.conf whose text
    does not match its sha256 is refused with one clear error."""
    if path.is_dir():
        path = path / MANIFEST
    found = read_json(path, f"{path} does not exist: pass a run folder made by `harness run`, or its "
                            f"manifest.json", "a JSON manifest")
    if not isinstance(found, dict) or found.get("schema") != SCHEMA:
        schema = found.get("schema") if isinstance(found, dict) else None
        raise HarnessError(f"{path} is a manifest of schema {schema!r}, written by another version of the harness; "
                           f"this one ({harness_version()}) reads schema {SCHEMA}: use the harness version that wrote "
                           f"it")
    where = str(path)
    untrusted.record(found, where, TOP, OPTIONAL)
    config = RunConfig.from_dict(found["settings"], where)
    if (found["benchmark"], found["round"]) != (config.benchmark, config.round):
        raise untrusted.fail(where, "its benchmark and round differ from those of its settings")
    conf = untrusted.record(found["user_conf"], f"{where} user_conf", {"text": str, "sha256": str})
    if untrusted.sha256_hex(conf["sha256"], f"{where} user_conf") != hashlib.sha256(conf["text"].encode()).hexdigest():
        raise untrusted.fail(where, "the user.conf text does not have the sha256 recorded with it")
    inputs = untrusted.record(found["inputs"], f"{where} inputs",
                              {"data_dir": str, "demo": bool, "tree_sha256": str, "files": dict})
    for name, digest in inputs["files"].items():
        untrusted.relative_path(name, f"{where} inputs")
        untrusted.sha256_hex(digest, f"{where} inputs {name}")
    if untrusted.sha256_hex(inputs["tree_sha256"], f"{where} inputs") != artifacts.listing_sha256(inputs["files"]):
        raise untrusted.fail(where, "the tree sha256 of its inputs is not that of the files it lists")
    facts = untrusted.record(found["harness"], f"{where} harness", {"version": str, "git_commit": (str, type(None)),
                             "dirty": (bool, type(None)), "code_sha256": str})
    untrusted.sha256_hex(facts["code_sha256"], f"{where} harness code_sha256")
    if found["image"] is not None:
        untrusted.record(found["image"], f"{where} image", IMAGE, IMAGE_COLLECTED)
    if found["loadgen"] is not None:
        untrusted.record(found["loadgen"], f"{where} loadgen", {"version": str, "git_commit": (str, type(None)),
                         "git_status": (str, type(None)), "file_sha1": (dict, type(None))})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in found["packages"].items()):
        raise untrusted.fail(where, "packages must map names to version strings")
    return found


def harness_version() -> str:
    try:
        return importlib.metadata.version("mlperf-harness")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# -- what differs ------------------------------------------------------------------------------

IMAGE_SOURCE = ("name", "git_commit", "lock_sha256")
"""What an image was built from; its build ID and image ID differ for any rebuild, an auditor's too."""
ENVIRONMENT = {"harness": ("version", "git_commit", "dirty", "code_sha256"),
               "image": (*IMAGE_SOURCE, "build_id", "id"), "loadgen": ("version", "git_commit", "file_sha1"),
               "device": ("cpu_model", "cpu_count", "cpus_usable", "gpus", "cuda_driver_version", "rngd")}


def _changes(a: dict, b: dict) -> list[str]:
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def input_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Files added, removed or changed between two input listings (by path relative to the data folder)."""
    old, new = a.get("files", {}), b.get("files", {})
    found = [f"changed: {p} (sha256 {old[p][:12]}.. -> {new[p][:12]}..)" for p in sorted(old.keys() & new.keys())
             if old[p] != new[p]]
    found += [f"removed: {p}" for p in sorted(old.keys() - new.keys())]
    found += [f"added: {p}" for p in sorted(new.keys() - old.keys())]
    return found


def environment_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    found = []
    for section, keys in ENVIRONMENT.items():
        left, right = a.get(section) or {}, b.get(section) or {}
        for key in keys:
            if left.get(key) != right.get(key):
                shown = (f"{len(left.get(key) or {})} vs {len(right.get(key) or {})} files, contents differ"
                         if key == "file_sha1" else f"{left.get(key)!r} -> {right.get(key)!r}")
                found.append(f"{section} {key}: {shown}")
    packages_a, packages_b = a.get("packages", {}), b.get("packages", {})
    found += [f"package {name}: {packages_a.get(name)} -> {packages_b.get(name)}"
              for name in sorted(set(packages_a) | set(packages_b)) if packages_a.get(name) != packages_b.get(name)]
    return found


def result_changes(a: dict[str, Any], b: dict[str, Any], perf_tolerance: float) -> tuple[list[str], bool]:
    """Accuracy (target metrics within the round's delta: 1%, 0.1% for 99.9% variants) and performance
    (validity, and the reported result within ``perf_tolerance``); returns lines and whether they differ."""
    lines, differ = [], False
    for kind, compare in (("accuracy", _accuracy_changes), ("performance", _performance_changes)):
        if a.get(kind) and b.get(kind):
            found = compare(a, b, perf_tolerance)
        elif a.get(kind) or b.get(kind):
            found = [(f"{kind}: only one of the two runs has this result", False)]
        else:
            found = []
        lines += [line + ("" if same else ": DIFFERS") for line, same in found]
        differ |= not all(same for _, same in found)
    return lines, differ


def _accuracy_changes(a: dict[str, Any], b: dict[str, Any], _: float) -> list[tuple[str, bool]]:
    found = []
    rnd = load_round(a["round"])
    for name in a["mlperf_names"]:
        allowed = 0.1 if "99.9" in name else 1.0
        for target in rnd.targets(name):
            x, y = a["accuracy"]["metrics"].get(target.metric), b["accuracy"]["metrics"].get(target.metric)
            delta = abs(1 - y / x) * 100 if x and y is not None else (0.0 if x == y else float("inf"))
            found.append((f"accuracy {name} {target.metric}: {x} vs {y} (delta {delta:.3g}%, allowed {allowed}%)",
                          delta <= allowed))
    return found


def _performance_changes(a: dict[str, Any], b: dict[str, Any], tolerance: float) -> list[tuple[str, bool]]:
    from harness.report import main_result

    validity = a["performance"]["validity"], b["performance"]["validity"]
    found = [] if validity[0] == validity[1] else [(f"performance validity: {validity[0]} vs {validity[1]}", False)]
    results = main_result(a), main_result(b)
    if results[0] and results[1]:
        (metric, x, _), (_, y, _) = results
        change = abs(y / x - 1) if x else float("inf")
        found.append((f"performance {metric}: {x:.6g} vs {y:.6g} ({change:.1%} apart, allowed {tolerance:.0%})",
                      change <= tolerance))
    return found


def diff(run_a: Path, run_b: Path, perf_tolerance: float = 0.05) -> tuple[str, bool]:
    """A readable account of what differs between two run folders; True when their results differ."""
    from harness.runs import read_run

    runs = [read_run(run_a).finished(), read_run(run_b).finished()]
    if runs[0].benchmark != runs[1].benchmark or runs[0].scenario != runs[1].scenario:
        raise HarnessError(f"{runs[0].describe()} and {runs[1].describe()} are not the same benchmark and scenario; "
                           f"diff compares runs of one test")
    manifests = [read(run.folder) for run in runs]
    # where user.conf and the data were is not a difference; what they held is (user.conf, inputs)
    settings = [{k: v for k, v in m["settings"].items() if k not in ("user_conf", "data_dir")} for m in manifests]
    sections = {
        "settings": _changes(*settings),
        "user.conf": [] if manifests[0]["user_conf"]["sha256"] == manifests[1]["user_conf"]["sha256"] else
        ["the LoadGen settings files differ"],
        "inputs": input_changes(manifests[0]["inputs"], manifests[1]["inputs"]),
        "environment": environment_changes(*manifests),
    }
    results, differ = result_changes(runs[0].result, runs[1].result, perf_tolerance)
    text = [f"diff {runs[0].folder} {runs[1].folder}"]
    for name, lines in sections.items():
        text.append(f"{name}: {'same' if not lines else ''}".rstrip())
        text += [f"  {line}" for line in lines]
    text.append(f"results: {'DIFFER beyond tolerance' if differ else 'agree within tolerance'}")
    text += [f"  {line}" for line in results]
    return "\n".join(text) + "\n", differ


# -- replay ------------------------------------------------------------------------------------

def replay_changes(original: dict[str, Any], bench: Benchmark, data_dir: Path, demo: bool,
                   image: dict | None) -> tuple[list[str], dict[str, Any]]:
    """What would make a rerun differ from the original: inputs (every file read and hashed again,
    not taken from the hash cache), LoadGen, the harness code, the image."""
    inputs = input_facts(bench, data_dir, demo, fresh=True)
    found = [f"input {change}" for change in input_changes(original["inputs"], inputs)]
    rnd = load_round(original["round"])
    try:
        rnd.check_loadgen()  # the build of the round a rerun runs on: installed, or beside it
        loadgen = rnd.logged_loadgen_version
    except RoundMismatch:
        loadgen = f"no LoadGen {rnd.loadgen_version}"
    if original.get("loadgen") and original["loadgen"]["version"] != loadgen:
        found.append(f"LoadGen {original['loadgen']['version']} ran the original, a rerun would run {loadgen}")
    now = harness_facts(bench)
    for key in ("version", "code_sha256"):
        if original["harness"].get(key) != now[key]:
            found.append(f"harness {key}: {original['harness'].get(key)} -> {now[key]}")
    for key in IMAGE_SOURCE:
        if (original.get("image") or {}).get(key) != (image or {}).get(key):
            found.append(f"image {key}: {(original.get('image') or {}).get(key)} -> {(image or {}).get(key)}")
    return found, inputs


def replay(source: Path, out: Path | None = None, data: Path | None = None, force: bool = False,
           echo: bool = True) -> dict[str, Any]:
    """Rerun a manifest's benchmark with its settings into a new run folder linked to the original.

    Refuses, listing every difference, when an input file, LoadGen, the harness code or the image
    differs from the original, unless ``force``.
    """
    from harness import datadir, runner

    original = read(source)
    origin = source if source.is_dir() else source.parent
    bench = registry.get(original["benchmark"])
    config = RunConfig.from_dict(original["settings"], str(source))
    data_dir = data.resolve() if data else Path(config.data_dir)
    if not data_dir.is_dir():
        raise HarnessError(f"the data folder {data_dir} of the original run is not here; pass --data DIR")
    changes, inputs = replay_changes(original, bench, data_dir, config.demo, runner.image_info())
    if changes and not force:
        raise HarnessError(f"refusing to replay {origin}: {len(changes)} difference(s) from the original:\n  - "
                           + "\n  - ".join(changes) + "\nrestore them, or pass --force to run anyway")
    conf = datadir.cache_root() / "replay" / f"{original['user_conf']['sha256']}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(original["user_conf"]["text"])
    config = dataclasses.replace(config, data_dir=str(data_dir), user_conf=str(conf))
    return runner.run(config, out, echo=echo, inputs=inputs,
                      extra={"replay_of": str(origin), "replay_differences": changes})
