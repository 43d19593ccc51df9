"""``harness``: one command line for every benchmark.

    harness list
    harness demo-data ID --out DIR [--seed N]
    harness run ID --scenario Offline --mode accuracy [--n-count N] [--dtype fp32] [--device cpu] ...
    harness evaluate RUN_DIR [--data DIR]
    harness verify ID [--data DIR]
    harness prepare ID --from DIR [--data DIR]
    harness merge RUN_DIR... --out DIR [--data DIR]
    harness compliance ID --test TEST01|TEST04|TEST05 --results RUN_DIR... [--scenario S] [--out DIR]
    harness submit --division closed --submitter ORG --system SYSTEM.json RUN_DIR... --out DIR
    harness system-template --out SYSTEM.json
    harness replay MANIFEST [--force] [--out DIR]
    harness diff RUN_A RUN_B [--perf-tolerance 0.05]
    harness report RUN_DIR... [--html FILE] [--md FILE] [--csv FILE] [--json FILE]
    harness collect RESULTS...

Errors in the input (unknown names, bad numbers, missing or malformed files) print one message
that says what to do, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from harness import datadir, demo, evaluate, registry, report, runner, settings
from harness.errors import HarnessError, Interrupted
from harness.rounds import DEFAULT_ROUND, default_round, load_round
from harness.settings import RunConfig
from harness.spec import DTYPES, MODES, SCENARIOS
from harness.util import write_atomic


def cmd_list(args: argparse.Namespace) -> int:
    rows = [["id", "MLPerf names", "scenarios", "data", "round"]]
    for bench in registry.discover().values():
        folder = datadir.data_root() / bench.spec.id
        status = "real" if folder.is_dir() and not datadir.missing_real(bench, folder) else "demo only"
        rows.append([bench.spec.id, ", ".join(bench.spec.mlperf_names), ", ".join(bench.spec.scenarios), status,
                     default_round(bench.spec)])
    print(report.table(rows))
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    bench = registry.get(args.benchmark)
    out = demo.build(bench, args.out, args.seed)
    print(f"wrote the {bench.spec.id} demo tier (seed {args.seed}) to {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    bench = registry.get(args.benchmark)
    kind = settings.device_kind(args.device)
    config = RunConfig(
        benchmark=bench.spec.id, scenario=args.scenario, mode=args.mode, data_dir="", demo=False,
        user_conf=str((args.user_conf or bench.user_conf).resolve()), dtype=args.dtype, device=args.device,
        n_devices=args.n_devices, batch_size=args.batch_size or bench.spec.batch_size(kind),
        batch_tokens=args.batch_tokens or bench.spec.default_batch_tokens.get(kind),
        n_count=args.n_count, n_partitions=args.n_partitions, partition_offset=args.partition_offset,
        stall_timeout_s=args.stall_timeout or bench.spec.stall_timeout_s, batch_wait_ms=args.batch_wait_ms,
        timeout_s=args.timeout, trace=args.trace, null_backend=args.null_backend,
        round=args.round or default_round(bench.spec),
    )
    settings.validate(config, bench.spec)  # before any data is built or read
    data_dir, is_demo = datadir.resolve(bench, args.data, args.seed)
    if args.user_conf is None and (data_dir / "user.conf").is_file():  # the demo tier ships short-run settings
        config = replace(config, user_conf=str(data_dir / "user.conf"))
    result = runner.run(replace(config, data_dir=str(data_dir), demo=is_demo), args.out)
    return 1 if args.check and not passed(result) else 0


def passed(result: dict) -> bool:
    acc = result.get("accuracy")
    perf = result.get("performance")
    return (acc is None or all(v["passed"] for v in acc["variants"].values())) and (
        perf is None or perf["validity"] == "VALID")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from harness.runs import read_run

    run_dir = args.run_dir
    result = read_run(run_dir).finished().result
    bench = registry.get(result["benchmark"])
    data_dir = args.data or Path(result["settings"]["data_dir"])
    acc_dir = run_dir / "accuracy"
    accuracy = evaluate.accuracy(bench, acc_dir, data_dir, load_round(result["round"]), 0, result["samples"],
                                 result["demo"])
    text = bench.accuracy.accuracy_text(accuracy["metrics"])
    existing = acc_dir / "accuracy.txt"
    gaps = evaluate.newly_scored(result.get("accuracy"), accuracy)
    if gaps:  # e.g. a part only the evaluator image can score, left NOT SCORED by a run in a container
        partial = acc_dir / "accuracy.partial.txt"
        if existing.exists() and not partial.exists():
            existing.replace(partial)
        write_atomic(existing, text)
        result["accuracy"] = accuracy | {"completed": {"metrics": gaps, "partial": str(partial.relative_to(run_dir))}}
        runner.write_result(run_dir, result, echo=True)
        print(f"{run_dir}: {', '.join(gaps)} now scored; result.json, report.txt and {existing.relative_to(run_dir)} "
              f"updated (the run's own scores are in {partial.relative_to(run_dir)})")
        return 0
    if not existing.exists():
        existing.write_text(text)
    elif not existing.read_text().startswith(text):
        print(f"note: {existing} differs from this re-score; it is kept as it is")
    result["accuracy"] = accuracy
    print(report.render(result))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness import artifacts

    bench = registry.get(args.benchmark)
    print(artifacts.verify(bench, args.data or datadir.data_root() / bench.spec.id, args.full))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness import artifacts

    bench = registry.get(args.benchmark)
    print(artifacts.prepare(bench, args.source, args.data or datadir.data_root() / bench.spec.id))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness import partition

    result = partition.merge(args.dirs, args.out, args.data)
    runner.write_result(Path(result["run_dir"]), result, echo=True)
    return 0


def cmd_compliance(args: argparse.Namespace) -> int:
    from harness import compliance

    result = compliance.run(args.benchmark, args.test, args.results, args.scenario, args.out, args.data, args.timeout)
    return 0 if result["compliance"]["passed"] else 1


def cmd_submit(args: argparse.Namespace) -> int:
    from harness import submission

    done = submission.build(args.round, args.division, args.submitter, args.system, args.runs, args.out,
                            args.system_name, args.implementation)
    print(f"wrote the {done['round']} {done['division']} submission of {done['submitter']} ({done['system']}) to "
          f"{done['tree']}; untruncated accuracy logs in {Path(done['out']) / 'accuracy-logs'}")
    print("\n".join(["results:"] + [f"  {r}" for r in done["results"]] + [f"note: {n}" for n in done["notes"]]))
    return 0


def cmd_system_template(args: argparse.Namespace) -> int:
    from harness import submission

    if args.out.exists():
        raise HarnessError(f"{args.out} already exists; nothing is overwritten. Choose another --out")
    args.out.write_text(json.dumps(submission.system_template(load_round(args.round)), indent=2) + "\n")
    print(f"wrote {args.out}: fill in the empty fields; `harness submit` names any still missing or empty")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from harness import provenance

    result = provenance.replay(args.manifest, args.out, args.data, args.force)
    return 1 if args.check and not passed(result) else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from harness import provenance

    text, differ = provenance.diff(args.run_a, args.run_b, args.perf_tolerance)
    print(text, end="")
    return 1 if differ else 0


def cmd_collect(args: argparse.Namespace) -> int:
    from harness import collect

    done = collect.collect(args.results, collect.DockerEngine())
    print(done.summary())
    return 1 if done.unresolved else 0


def cmd_report(args: argparse.Namespace) -> int:
    results = report.load(args.runs)
    outputs = {args.html: lambda: report.html(results), args.md: lambda: report.markdown(results),
               args.json: lambda: json.dumps([row for r in results for row in report.rows(r)], indent=2) + "\n"}
    for path, render in outputs.items():
        if path is not None:
            path.write_text(render())
    if args.csv is not None:
        report.write_rows_csv(results, args.csv)
    written = [str(p) for p in (args.html, args.md, args.json, args.csv) if p is not None]
    if written:
        print(f"wrote {', '.join(written)}")
    else:
        print(report.table(report.overview(results)))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="harness", description="MLPerf Inference harness driven by the real LoadGen")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="benchmarks, their MLPerf names, scenarios and data status").set_defaults(fn=cmd_list)

    demo = sub.add_parser("demo-data", help="write a benchmark's demo tier (tiny model + synthetic data)")
    demo.add_argument("benchmark")
    demo.add_argument("--out", type=Path, required=True)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(fn=cmd_demo_data)

    run = sub.add_parser("run", help="run LoadGen tests into a new run folder")
    run.add_argument("benchmark")
    run.add_argument("--scenario", default="Offline", help=f"one of {', '.join(SCENARIOS)}")
    run.add_argument("--mode", default="accuracy", help=f"one of {', '.join(MODES)}")
    run.add_argument("--n-count", type=int, help="use the first N samples of the dataset")
    run.add_argument("--dtype", default="fp32", help=f"one of {', '.join(DTYPES)}")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    run.add_argument("--n-devices", type=int, default=1, help="replicas behind one LoadGen (one per device)")
    run.add_argument("--batch-size", type=int, help="largest batch a replica runs (default: the benchmark's)")
    run.add_argument("--batch-tokens", type=int,
                     help="cap on a batch's length: samples x longest sample, or their total where samples "
                          "are concatenated (default: the benchmark's for the device)")
    run.add_argument("--batch-wait-ms", type=float, help="Server: how long a partial batch waits to fill")
    run.add_argument("--n-partitions", type=int, default=1, help="split an accuracy run into P slices")
    run.add_argument("--partition-offset", type=int, default=0, help="first slice this command runs")
    run.add_argument("--user-conf", type=Path, help="LoadGen user.conf (default: the benchmark's)")
    run.add_argument("--data", type=Path, help="data folder (default: ./data/<id>, else the demo tier)")
    run.add_argument("--seed", type=int, default=0, help="seed of the demo tier when it is used")
    run.add_argument("--out", type=Path, help="run folder to create (default: a new one under ./results)")
    run.add_argument("--stall-timeout", type=float, help="end a run with no completed sample for this many s")
    run.add_argument("--timeout", type=float, help="kill a LoadGen test running longer than this many s")
    run.add_argument("--trace", action="store_true", help="also write LoadGen's (large) trace log")
    run.add_argument("--null-backend", action="store_true",
                     help="answer every sample at once with an empty payload (harness overhead, smoke tests)")
    run.add_argument("--round", help=f"MLPerf round (default: {DEFAULT_ROUND}, or the newest round that has the "
                                     f"benchmark)")
    run.add_argument("--check", action="store_true", help="exit 1 when accuracy FAILs or performance is INVALID")
    run.set_defaults(fn=cmd_run)

    ev = sub.add_parser("evaluate", help="re-score a run folder's accuracy log; a run with metrics it could not "
                                         "score (NOT SCORED) is completed in place")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--data", type=Path, help="data folder, if it moved since the run")
    ev.set_defaults(fn=cmd_evaluate)

    verify = sub.add_parser("verify", help="check a data folder against the benchmark's artifacts.toml")
    verify.add_argument("benchmark")
    verify.add_argument("--data", type=Path, help="data folder (default: ./data/<id>)")
    verify.add_argument("--full", action="store_true",
                        help="hash every file again (the hash cache trusts unchanged sizes and mtimes)")
    verify.set_defaults(fn=cmd_verify)

    prepare = sub.add_parser("prepare", help="copy real artifacts into a data folder, verified, atomically")
    prepare.add_argument("benchmark")
    prepare.add_argument("--from", dest="source", type=Path, required=True, help="folder holding the artifacts")
    prepare.add_argument("--data", type=Path, help="data folder to fill (default: ./data/<id>)")
    prepare.set_defaults(fn=cmd_prepare)

    merge = sub.add_parser("merge", help="merge partitioned accuracy runs and score the whole")
    merge.add_argument("dirs", type=Path, nargs="+")
    merge.add_argument("--out", type=Path, required=True)
    merge.add_argument("--data", type=Path, help="data folder, if not where the partitions recorded it")
    merge.set_defaults(fn=cmd_merge)

    comp = sub.add_parser("compliance", help="run a compliance test against a submission run and verify it")
    comp.add_argument("benchmark")
    comp.add_argument("--test", required=True, help="TEST01, TEST04 or TEST05 (the round says which are required)")
    comp.add_argument("--results", type=Path, nargs="+", required=True,
                      help="the submission run's folder(s): its accuracy and performance runs")
    comp.add_argument("--scenario", help="check that the results are of this scenario")
    comp.add_argument("--out", type=Path, help="run folder to create (default: a new one under ./results)")
    comp.add_argument("--data", type=Path, help="data folder, if not where the submission run recorded it")
    comp.add_argument("--timeout", type=float, help="kill the test if it runs longer than this many s")
    comp.set_defaults(fn=cmd_compliance)

    submit = sub.add_parser("submit", help="package runs into a submission tree the round's checker accepts")
    submit.add_argument("runs", type=Path, nargs="+", help="accuracy, performance and compliance run folders")
    submit.add_argument("--round", default=DEFAULT_ROUND)
    submit.add_argument("--division", default="closed", help="closed or open")
    submit.add_argument("--submitter", required=True, help="the organization, as its folder in the tree")
    submit.add_argument("--system", type=Path, required=True, help="system description JSON (harness system-template)")
    submit.add_argument("--system-name", help="the system's id in the tree (default: the JSON file's name)")
    submit.add_argument("--implementation", default="mlperf-harness", help="implementation name in the tree")
    submit.add_argument("--out", type=Path, required=True, help="folder to create: submission/ and accuracy-logs/")
    submit.set_defaults(fn=cmd_submit)

    template = sub.add_parser("system-template", help="write a system description with every required field")
    template.add_argument("--out", type=Path, required=True)
    template.add_argument("--round", default=DEFAULT_ROUND)
    template.set_defaults(fn=cmd_system_template)

    rerun = sub.add_parser("replay", help="rerun a run from its manifest, refusing if its inputs or code changed")
    rerun.add_argument("manifest", type=Path, help="a run folder or its manifest.json")
    rerun.add_argument("--out", type=Path, help="run folder to create (default: a new one under ./results)")
    rerun.add_argument("--data", type=Path, help="data folder, if not where the original run read it")
    rerun.add_argument("--force", action="store_true", help="run even when inputs, LoadGen, code or image differ")
    rerun.add_argument("--check", action="store_true", help="exit 1 when accuracy FAILs or performance is INVALID")
    rerun.set_defaults(fn=cmd_replay)

    compare = sub.add_parser("diff", help="what differs between two runs; exit 1 when their results differ")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--perf-tolerance", type=float, default=0.05,
                         help="allowed relative difference of the performance result (default 0.05)")
    compare.set_defaults(fn=cmd_diff)

    gather = sub.add_parser("collect", help="add the ID of the image each containerised run ran in (needs the "
                                            "Docker engine)")
    gather.add_argument("results", type=Path, nargs="+", help="results folders or run folders")
    gather.set_defaults(fn=cmd_collect)

    reports = sub.add_parser("report", help="compare runs in a table, or write HTML, markdown, CSV or JSON reports")
    reports.add_argument("runs", type=Path, nargs="+", help="run folders")
    reports.add_argument("--html", type=Path, help="a self-contained HTML page with tables and charts")
    reports.add_argument("--md", type=Path, help="markdown, for READMEs and pull requests")
    reports.add_argument("--csv", type=Path, help="normalised rows: PASS/FAIL, VALID/INVALID, value/threshold")
    reports.add_argument("--json", type=Path, help="the same rows as JSON")
    reports.set_defaults(fn=cmd_report)
    return top


def _terminated(signum: int, frame: object) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}", 128 + signum)


def main(argv: list[str] | None = None) -> int:
    from harness import provenance

    argv = sys.argv[1:] if argv is None else argv
    provenance.record_command(argv)
    args = parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None  # `docker stop`, a time limit
    try:
        return args.fn(args)
    except Interrupted as exc:
        print(f"error: {exc}; the test processes were stopped", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("error: interrupted by Ctrl-C", file=sys.stderr)
        return 130
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a report into a folder that is not writable, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check that the path exists and is writable", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
