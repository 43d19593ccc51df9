"""A submission tree for a round, validated as the round's submission checker validates it.

``harness submit --round v4.1 --division closed --submitter ORG --system SYSTEM.json RUN_DIR...
--out DIR`` takes finished run folders (accuracy and performance runs of each benchmark and
scenario, and the compliance runs of ``harness compliance``) and writes::

    DIR/submission/<division>/<submitter>/     the tree to hand to the checker (--input DIR/submission)
        systems/<system>.json
        code/<mlperf name>/<implementation>/   this harness's source for the benchmark
        measurements/<system>/<mlperf name>/<scenario>/
            mlperf.conf (the round LoadGen's embedded one), user.conf (the one used), README.md (how
            to reproduce), <system>_<implementation>_<scenario>.json (the implementation's five fields)
        results/<system>/<mlperf name>/<scenario>/accuracy/        summary, detail, accuracy.txt (+ hash=),
                                                                   the truncated mlperf_log_accuracy.json
        results/<system>/<mlperf name>/<scenario>/performance/run_1/   summary, detail
        compliance/<system>/<mlperf name>/<scenario>/TEST0x/       the verified compliance test
        documentation/calibration.md
    DIR/accuracy-logs/...                      the untruncated accuracy logs, at the same relative paths

Accuracy logs are truncated as the official tool does: the sha256 of the whole log is appended to
accuracy.txt as ``hash=<sha256>``, then the log keeps its first and last 4 KiB around ``...``.

Everything is checked before anything is written, and every problem is listed: demo-tier runs,
runs of another round, INVALID performance runs or runs with LoadGen errors, performance runs
configured shorter than the round's minimum duration, seeds other than the round's, too small an
Offline query or performance sample count, a Server latency target above the bound, equal-issue
mode off where the round requires it, an LLM run without token latencies or (Server) with a TTFT or
TPOT p99 at or over the round's bound, accuracy
below a target or above an upper limit, accuracy runs that did not cover the whole dataset,
samples that failed in the SUT, missing required scenarios or compliance tests for the system
type, failed compliance tests, a system description with missing or empty fields. The tree is
built in a hidden folder next to DIR, checked again (files over the size limit, empty folders,
hidden files, names with spaces) and only then moved into place; DIR must not exist.

Each benchmark is packaged under those of its MLPerf names (accuracy variants, e.g. bert-99 and
bert-99.9) whose targets its accuracy runs meet and that the system type allows; the others are
named in the summary, and a benchmark none of whose variants qualify is a problem.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import logs, registry
from harness.artifacts import artifacts
from harness.compliance import RAW
from harness.errors import HarnessError
from harness.evaluate import TOKEN_BOUNDS, sut_problems, sut_stats, token_latencies
from harness.report import main_result
from harness.rounds import Round, load_round
from harness.runs import Run, read_run
from harness.util import read_json, sha256_file

IMPLEMENTATION = "mlperf-harness"
TRUNCATION_MARK = "\n\n...\n\n"
WEIGHT_TRANSFORMS = {"fp32": "none", "fp16": "cast to fp16", "bf16": "cast to bf16"}


@dataclass
class Entry:
    """The runs of one benchmark and scenario."""

    benchmark: str
    scenario: str
    accuracy: Run | None = None
    performance: Run | None = None
    compliance: dict[str, Run] = field(default_factory=dict)


@dataclass
class Plan:
    """What goes into the tree, with every problem found and notes for the summary."""

    units: dict[tuple[str, str], Entry] = field(default_factory=dict)
    """(MLPerf name, scenario) -> its runs."""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- the system description --------------------------------------------------------------------

def read_system(path: Path) -> dict[str, Any]:
    system = read_json(path, f"system description {path} does not exist; write one with `harness system-template "
                             f"--out {path}` and fill it in", "a valid JSON system description")
    if not isinstance(system, dict):
        raise HarnessError(f"system description {path} must be a JSON object of fields")
    return system


def system_problems(system: dict[str, Any], rnd: Round, division: str, submitter: str) -> list[str]:
    rules = rnd.submission
    problems = [f"field {name!r} is missing" for name in rules["system_fields"] if name not in system]
    problems += [f"field {name!r} is empty" for name in rules["system_fields_nonempty"]
                 if name in system and not system[name]]
    if system.get("status") and str(system["status"]).lower() not in rules["system_statuses"]:
        problems.append(f"status {system['status']!r} is not one of {', '.join(rules['system_statuses'])}")
    if system.get("system_type") and system["system_type"] not in rules["system_types"]:
        problems.append(f"system_type {system['system_type']!r} is not one of {', '.join(rules['system_types'])}")
    if system.get("division") and system["division"] != division:
        problems.append(f"division is {system['division']!r} but the submission is {division!r}")
    if system.get("submitter") and str(system["submitter"]).lower() != submitter.lower():
        problems.append(f"submitter is {system['submitter']!r} but the submission is {submitter!r}")
    return problems


# -- which runs go where -----------------------------------------------------------------------

def collect(runs: list[Run], rnd: Round, allow_demo: bool) -> tuple[list[Entry], list[str]]:
    """Group run folders by benchmark and scenario; the problems of single runs."""
    entries: dict[tuple[str, str], Entry] = {}
    problems = []
    for run in runs:
        if run.incomplete:
            problems.append(f"{run.folder} is an incomplete run ({run.incomplete}); run it again")
            continue
        if run.round != rnd.name:  # not judged by this round's rules, which may not even have its benchmark
            problems.append(f"{run.folder} is a run of round {run.round}, not {rnd.name}: submit it with --round "
                            f"{run.round}")
            continue
        if run.result.get("demo") and not allow_demo:
            problems.append(f"{run.folder} ran on the demo tier (synthetic data, random weights); demo results "
                            f"are never submitted")
        if run.result.get("evaluation_aid") or run.result["settings"].get("null_backend"):
            problems.append(f"{run.folder} is not a submission run (a partitioned or merged evaluation aid, or "
                            f"--null-backend)")
        entry = entries.setdefault((run.benchmark, run.scenario), Entry(run.benchmark, run.scenario))
        slots = ([run.compliance["test"]] if run.compliance else
                 [kind for kind in ("accuracy", "performance") if getattr(run, f"{kind}_dir")])
        if not slots:
            problems.append(f"{run.folder} holds no LoadGen logs (no accuracy/ or performance/run_1/)")
        for slot in slots:
            taken = entry.compliance.get(slot) if run.compliance else getattr(entry, slot)
            if taken is not None:
                raise HarnessError(f"two {slot} runs for {run.benchmark} {run.scenario}: {taken.folder} and "
                                   f"{run.folder}; pass one")
            if run.compliance:
                entry.compliance[slot] = run
            else:
                setattr(entry, slot, run)
    return list(entries.values()), problems


def accuracy_misses(entry: Entry, name: str, rnd: Round) -> list[str]:
    """Why this scenario's accuracy run does not meet ``name``'s targets in the round ([] when it does);
    judged again from the run's metrics, not from its recorded verdict."""
    if entry.accuracy is None:
        return ["no accuracy run"]
    accuracy = entry.accuracy.result.get("accuracy") or {}
    metrics, samples = accuracy.get("metrics", {}), accuracy.get("samples", 0)
    dataset = registry.get(entry.benchmark).spec.dataset_size
    misses = []
    for target in rnd.targets(name):
        if target.metric not in metrics:
            misses.append(f"{entry.accuracy.folder} has no {target.metric}")
            continue
        if metrics[target.metric] is None:
            misses.append(f"{target.metric} was not scored in {entry.accuracy.folder}: "
                          f"{metrics.get('unscored', 'no reason given')}")
            continue
        check = target.check(float(metrics[target.metric]), samples, dataset)
        if not check.passed:
            misses.append(f"{target.metric} {check.value:.6g}, target {check.target:.6g}"
                          + (f" .. {check.upper:.6g}" if check.upper is not None else ""))
    return misses


def plan(runs: list[Run], rnd: Round, system: dict[str, Any], division: str, allow_demo: bool) -> Plan:
    """Decide the MLPerf names each benchmark is submitted under, and check every scenario's runs
    (also when no name qualifies, so that one refusal lists everything to fix)."""
    out = Plan()
    entries, out.problems = collect(runs, rnd, allow_demo)
    types = [t for t in str(system.get("system_type", "")).split(",") if t]
    kind = "+".join(types) or "(no system_type)"
    checks: list[str] = []
    for bench_id in sorted({e.benchmark for e in entries}):
        names = registry.get(bench_id).spec.mlperf_names
        scenarios = {e.scenario: e for e in entries if e.benchmark == bench_id}
        chosen, skipped, allowed = [], [], {}
        for name in names:
            allowed[name] = set().union(*(rnd.required_scenarios.get(t, {}).get(name, ()) for t in types))
            misses = [f"{s}: {why}" for s, e in sorted(scenarios.items()) for why in accuracy_misses(e, name, rnd)]
            if allowed[name] and not misses:
                chosen.append(name)
                out.units.update({(name, s): e for s, e in scenarios.items()})
            else:
                skipped.append(f"{name} not packaged: " + ("; ".join(misses) or f"not allowed for {kind} systems"))
        out.notes += skipped
        if not chosen:
            out.problems.append(f"{bench_id}: no MLPerf name qualifies ({'; '.join(skipped)})")
        for name in chosen or names[:1]:
            if division == "closed":
                checks += [f"{name}: the {s} scenario is required for {kind} systems and was not run"
                           for s in sorted(allowed[name] - scenarios.keys())]
            checks += [f"{name}: {s} is not a scenario of {kind} systems ({', '.join(sorted(allowed[name]))})"
                       for s in sorted(scenarios.keys() - allowed[name]) if allowed[name]]
            checks += [f"{bench_id} {s}: {p}" for s, e in sorted(scenarios.items())
                       for p in unit_problems(name, e, rnd, division)]
    out.problems += list(dict.fromkeys(checks))  # the variants of a benchmark share its runs
    return out


def performance_problems(log_dir: Path, name: str, scenario: str, dataset: int, rnd: Round,
                         seeds: dict[str, int]) -> list[str]:
    """What the checker rejects in a performance run, read from its detail log (and a QSL that is not
    the whole dataset, which the rules forbid and the v4.1 checker does not look at)."""
    detail = logs.read_detail(log_dir / logs.DETAIL)
    rules, limits = rnd.rules(name), rnd.submission
    found = [f"LoadGen error: {e}" for e in detail.errors]
    if detail.get("result_validity") != "VALID":
        found.append(f"the result is {detail.get('result_validity')}")
    found += [f"{key} is {detail.get(f'effective_{key}')}, the round needs {value}" for key, value in seeds.items()
              if detail.get(f"effective_{key}") != value]
    if (detail.get("effective_min_duration_ms") or 0) < limits["min_duration_ms"]:
        found.append(f"it was configured to run {detail.get('effective_min_duration_ms')} ms; a submission runs at "
                     f"least {limits['min_duration_ms']} ms (drop the shorter min_duration from the user.conf)")
    if detail.get("qsl_reported_total_count") != dataset:
        found.append(f"LoadGen drew from {detail.get('qsl_reported_total_count')} samples, not the whole dataset of "
                     f"{dataset} (run it without --n-count)")
    if (detail.get("effective_performance_sample_count") or 0) < rules.sample_count:
        found.append(f"performance sample count {detail.get('effective_performance_sample_count')} is below "
                     f"{rules.sample_count}")
    if scenario == "Offline" and (detail.get("effective_samples_per_query") or 0) < rules.offline_samples_per_query:
        found.append(f"the Offline query holds {detail.get('effective_samples_per_query')} samples, fewer than "
                     f"{rules.offline_samples_per_query} (raise target_qps)")
    if scenario == "Server" and rules.server_latency_ms is not None and \
            (detail.get("effective_target_latency_ns") or 0) > rules.server_latency_ms * 1e6:
        found.append(f"its latency bound {detail.get('effective_target_latency_ns')} ns is above the "
                     f"{rules.server_latency_ms} ms of the round")
    if rules.equal_issue and detail.get("effective_sample_concatenate_permutation") is not True:
        found.append(f"equal-issue mode (sample_concatenate_permutation) was off; the round requires it for {name}")
    if rules.server_ttft_ms is not None:
        if detail.get("requested_use_token_latencies") is not True:
            found.append(f"it did not measure token latencies (use_token_latencies); the round requires them for {name}")
        elif scenario == "Server":
            tokens = token_latencies(detail, scenario)
            for label, bound_ms in (("TTFT", rules.server_ttft_ms), ("TPOT", rules.server_tpot_ms)):
                value = tokens.get(TOKEN_BOUNDS[label][0])
                if value is None or value >= bound_ms * 1e6:
                    found.append(f"its {label} p99 of {value} ns is not below the round's {bound_ms} ms")
    return [f"{log_dir}: {p}" for p in found + sut_problems(sut_stats(log_dir))]


def unit_problems(name: str, entry: Entry, rnd: Round, division: str) -> list[str]:
    found = []
    dataset = registry.get(entry.benchmark).spec.dataset_size
    if entry.performance is None:
        found.append("no performance run")
    else:
        found += performance_problems(entry.performance.performance_dir, name, entry.scenario, dataset, rnd,
                                      rnd.seeds)
    if entry.accuracy is None:
        return found + ["no accuracy run"]
    acc = entry.accuracy.accuracy_dir
    detail = logs.read_detail(acc / logs.DETAIL)
    found += [f"{acc}: {p}" for p in [f"LoadGen error: {e}" for e in detail.errors] + sut_problems(sut_stats(acc))]
    if detail.get("qsl_reported_total_count") != dataset:
        found.append(f"{acc}: the accuracy run covered {detail.get('qsl_reported_total_count')} samples, not the "
                     f"whole dataset of {dataset} (run it without --n-count)")
    if not (acc / "accuracy.txt").is_file():
        found.append(f"{acc}: accuracy.txt is missing; write it with `harness evaluate {entry.accuracy.folder}`")
    found += [f"{acc}: {p}" for p in sample_problems(entry, name, rnd)]
    for test in rnd.compliance.get(name, ()) if division == "closed" else ():
        run = entry.compliance.get(test)
        if run is None:
            found.append(f"compliance {test} is required: run `harness compliance {entry.benchmark} --test {test} "
                         f"--results <the submission run folder>`")
            continue
        if not run.compliance["passed"]:
            found.append(f"compliance {test} failed in {run.folder}: {'; '.join(run.compliance['reasons'])}")
        if entry.performance and str(entry.performance.folder) not in run.compliance["reference"]:
            found.append(f"compliance {test} in {run.folder} was checked against {run.compliance['reference'][0]}, "
                         f"not against the performance run submitted, {entry.performance.folder}")
        if test != "TEST06":  # TEST06 is judged on its accuracy log alone; the checker reads no performance of it
            seeds = rnd.test05_seeds if test == "TEST05" else rnd.seeds
            found += performance_problems(run.folder / RAW, name, entry.scenario, dataset, rnd, seeds)
    return found


def sample_files(entry: Entry, name: str, rnd: Round) -> list[str]:
    """The files of the round's sample outputs the checker requires in the accuracy folder (paths
    relative to it), as the benchmark's ``accuracy.save_samples`` names them."""
    ids = rnd.accuracy_samples.get(name, ())
    accuracy = registry.get(entry.benchmark).accuracy
    if not ids or not hasattr(accuracy, "sample_files"):
        return []
    return [f"{accuracy.SAMPLES_DIR}/{file}" for file in accuracy.sample_files(ids)]


def sample_problems(entry: Entry, name: str, rnd: Round) -> list[str]:
    missing = [f for f in sample_files(entry, name, rnd) if not (entry.accuracy.accuracy_dir / f).is_file()]
    if not missing:
        return []
    return [f"the round's sample outputs {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} are missing: "
            f"an accuracy run of the whole dataset writes them (`harness evaluate {entry.accuracy.folder}` writes "
            f"them for a run that has none)"]


# -- writing the tree --------------------------------------------------------------------------

def truncate_accuracy_log(log: Path, keep: Path, limit: int) -> str:
    """As the official tool: move the whole log to ``keep``, leave its first and last ``limit`` bytes
    around ``...`` in its place; return the sha256 of the whole log (for ``hash=``)."""
    digest = sha256_file(log)
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(log, keep)
    data = log.read_bytes()
    if len(data) >= limit:
        log.write_bytes(data[:limit] + TRUNCATION_MARK.encode() + data[-limit:])
    return digest


def hash_line(accuracy_txt: Path, digest: str) -> None:
    text = accuracy_txt.read_text() if accuracy_txt.is_file() else ""
    accuracy_txt.write_text(text + ("" if not text or text.endswith("\n") else "\n") + f"hash={digest}\n")


def reproduce(bench_id: str, settings: dict[str, Any], mode: str) -> str:
    """The `harness run` command line that repeats a run with these settings."""
    args = [f"harness run {bench_id}", f"--scenario {settings['scenario']}", f"--mode {mode}",
            f"--device {settings['device']}", f"--n-devices {settings['n_devices']}", f"--dtype {settings['dtype']}",
            f"--batch-size {settings['batch_size']}", "--user-conf user.conf", "--data DATA_DIR"]
    if settings.get("batch_tokens"):
        args.append(f"--batch-tokens {settings['batch_tokens']}")
    return " ".join(args)


def measurements_readme(name: str, entry: Entry, system_name: str) -> str:
    settings = entry.performance.result["settings"]
    image = entry.performance.result.get("image")
    lines = [f"# {name}, {entry.scenario}, {system_name}", "",
             f"Run with the mlperf-harness `{entry.benchmark}` benchmark"
             + (f", image `{image['name']}` (commit {image['git_commit']}, lock sha256 {image['lock_sha256']}"
                + (f", ID {image['id']}" if image.get("id") else "") + ")" if image else "") + ".", "", "## Reproduce", "",
             "DATA_DIR holds the benchmark's real data (see its README and artifacts.toml); user.conf is the one in",
             "this folder.", "", "```sh",
             reproduce(entry.benchmark, entry.accuracy.result["settings"], "accuracy"),
             reproduce(entry.benchmark, settings, "performance")]
    lines += [f"harness compliance {entry.benchmark} --test {test} --results ACCURACY_RUN PERFORMANCE_RUN"
              for test in sorted(entry.compliance)]
    return "\n".join(lines + ["```", ""])


def implementation_json(bench_id: str, dtype: str) -> dict[str, str]:
    model = next((a.path for a in artifacts(registry.get(bench_id)) if a.kind == "model"), "")
    return {"input_data_types": dtype, "retraining": "No", "starting_weights_filename": model,
            "weight_data_types": dtype, "weight_transformations": WEIGHT_TRANSFORMS[dtype]}


def copy_code(target: Path, bench_id: str) -> None:
    """This harness's source for one benchmark: the core and the benchmark's folder."""
    root = registry.benchmarks_root().parent
    skip = shutil.ignore_patterns("__pycache__", ".*", "*.pyc")
    shutil.copytree(root / "harness", target / "harness", ignore=skip)
    shutil.copytree(root / "benchmarks" / bench_id, target / "benchmarks" / bench_id, ignore=skip)
    shutil.copy2(root / "benchmarks" / "__init__.py", target / "benchmarks" / "__init__.py")
    (target / "README.md").write_text(f"# mlperf-harness, {bench_id}\n\nThe harness core (`harness/`) and the "
                                      f"benchmark (`benchmarks/{bench_id}/`) that produced these results; run "
                                      f"`harness run {bench_id} --help` for the options.\n")


def write(stage: Path, found: Plan, rnd: Round, system: dict[str, Any], system_name: str, division: str,
          submitter: str, implementation: str) -> Path:
    """Write the tree under ``stage``; return the submitter folder."""
    root = stage / "submission" / division / submitter
    originals = stage / "accuracy-logs"
    limit, conf = rnd.submission["truncate_bytes"], rnd.embedded_mlperf_conf()
    (root / "systems").mkdir(parents=True)
    (root / "systems" / f"{system_name}.json").write_text(json.dumps(system, indent=2) + "\n")
    for (name, scenario), entry in sorted(found.units.items()):
        where = Path(system_name) / name / scenario
        acc = root / "results" / where / "accuracy"
        acc.mkdir(parents=True)
        for file in (*logs.SUMMARY_AND_DETAIL, logs.ACCURACY, "accuracy.txt", *sample_files(entry, name, rnd)):
            source = entry.accuracy.accuracy_dir / file
            if source.is_symlink():  # a run folder is untrusted: a link would pull in a file from elsewhere
                raise HarnessError(f"{source} is a symbolic link, not a file the run wrote: package runs as "
                                   f"`harness run` made them")
            (acc / file).parent.mkdir(exist_ok=True)
            shutil.copy2(source, acc / file)
        hash_line(acc / "accuracy.txt", truncate_accuracy_log(
            acc / logs.ACCURACY, originals / "results" / where / "accuracy" / logs.ACCURACY, limit))
        perf = root / "results" / where / "performance" / "run_1"
        perf.mkdir(parents=True)
        for file in logs.SUMMARY_AND_DETAIL:
            shutil.copy2(entry.performance.performance_dir / file, perf / file)
        meas = root / "measurements" / where
        meas.mkdir(parents=True)
        settings = entry.performance.result["settings"]
        (meas / "mlperf.conf").write_text(conf)
        shutil.copy2(entry.performance.folder / "user.conf", meas / "user.conf")
        (meas / "README.md").write_text(measurements_readme(name, entry, system_name))
        (meas / f"{system_name}_{implementation}_{scenario}.json").write_text(
            json.dumps(implementation_json(entry.benchmark, settings["dtype"]), indent=2) + "\n")
        for test, run in sorted(entry.compliance.items()):
            target = root / "compliance" / where / test
            shutil.copytree(run.folder / test, target)
            if (target / "accuracy" / logs.ACCURACY).is_file():  # TEST01, TEST06: truncated, hash in accuracy.txt
                hash_line(target / "accuracy" / "accuracy.txt", truncate_accuracy_log(
                    target / "accuracy" / logs.ACCURACY,
                    originals / "compliance" / where / test / "accuracy" / logs.ACCURACY, limit))
        code = root / "code" / name / implementation
        if not code.exists():
            copy_code(code, entry.benchmark)
    (root / "documentation").mkdir()
    (root / "documentation" / "calibration.md").write_text(
        "# Calibration\n\nNo quantization: every result runs the published weights, cast to the data type named in "
        "its measurements JSON (weight_data_types); no calibration data set was used.\n")
    return root


def hygiene_problems(tree: Path, limit: int) -> list[str]:
    """What the checker rejects in any tree: big files, empty folders, hidden files, spaces, caches."""
    found = []
    for folder, dirs, files in os.walk(tree):
        here = Path(folder)
        if not dirs and not files:
            found.append(f"{here.relative_to(tree)} is an empty folder")
        for name in dirs + files:
            if name.startswith(".") or " " in name or name == "__pycache__":
                found.append(f"{(here / name).relative_to(tree)}: hidden, cache or space in the name")
        found += [f"{(here / f).relative_to(tree)} is over {limit} bytes" for f in files
                  if (here / f).stat().st_size > limit]
    return found


def build(round_name: str, division: str, submitter: str, system_path: Path, run_dirs: list[Path], out: Path,
          system_name: str | None = None, implementation: str = IMPLEMENTATION,
          allow_demo: bool = False) -> dict[str, Any]:
    """Validate the runs, write the tree into ``out`` (which must not exist) and return a summary.

    ``allow_demo`` packages demo-tier runs: for the harness's own tests only, never offered by the CLI.
    """
    rnd = load_round(round_name)
    if rnd.submission.get("layout") != "v4":
        raise HarnessError(f"round {rnd.name} uses the submission layout {rnd.submission.get('layout')!r}, which this "
                           f"harness does not write yet")
    if division not in rnd.submission["divisions"]:
        raise HarnessError(f"division {division!r} is not one of {', '.join(rnd.submission['divisions'])}")
    if out.exists():
        raise HarnessError(f"{out} already exists; nothing is overwritten. Choose a new --out")
    if not submitter or any(c in submitter for c in " /."):
        raise HarnessError(f"submitter {submitter!r} must be a folder name without spaces, dots or slashes")
    system = read_system(system_path)
    system_name = system_name or system_path.stem
    found = plan([read_run(d) for d in run_dirs], rnd, system, division, allow_demo)
    problems = [f"{system_path}: {p}" for p in system_problems(system, rnd, division, submitter)] + found.problems
    if problems:
        raise HarnessError(f"refusing to build the submission; {len(problems)} problem(s):\n  - "
                           + "\n  - ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        write(stage, found, rnd, system, system_name, division, submitter, implementation)
        problems = hygiene_problems(stage / "submission", rnd.submission["max_file_bytes"])
        if problems:
            raise HarnessError("refusing the built tree:\n  - " + "\n  - ".join(problems))
        stage.rename(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {"out": str(out), "tree": str(out / "submission"), "round": rnd.name, "division": division,
            "submitter": submitter, "system": system_name, "notes": found.notes,
            "results": [f"{name} {scenario}: {reported(entry, name)}"
                        for (name, scenario), entry in sorted(found.units.items())]}


def reported(entry: Entry, name: str) -> str:
    """The result as the checker reports it (``report.main_result``), latencies in ms."""
    found = main_result(entry.performance.result, name)
    if found is None:
        return "no result"
    _, value, unit = found
    return f"{value / 1e6:.3f} ms" if unit == "ns" else f"{value:,.2f} {unit}"


def system_template(rnd: Round) -> dict[str, Any]:
    """Every field the round's checker requires, with what this machine tells filled in; the rest
    is left empty for the submitter (``harness submit`` names every empty required field)."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.provenance import device_facts

    machine = device_facts()
    try:
        framework = f"PyTorch {version('torch')}, mlcommons-loadgen {version('mlcommons-loadgen')}"
    except PackageNotFoundError:
        framework = ""
    gpus = machine["gpus"]
    return {name: "" for name in rnd.submission["system_fields"]} | {
        "division": "closed", "status": "available", "number_of_nodes": "1",
        "host_processor_model_name": machine["cpu_model"], "host_processors_per_node": str(machine["cpu_sockets"]),
        "host_processor_core_count": str(machine["cpu_count"] or ""),
        "host_memory_capacity": f"{round(machine['memory_kb'] / 2**20)} GB" if machine["memory_kb"] else "",
        "operating_system": machine["os"], "framework": framework,
        # a string: the checker rejects a number 0 as an empty field
        "accelerators_per_node": str(len(gpus)), "accelerator_model_name": gpus[0]["name"] if gpus else "N/A",
        "accelerator_memory_capacity": gpus[0]["memory"] if gpus else "N/A"}
