"""Merge the accuracy logs of a partitioned evaluation and score the whole.

An evaluation aid, not a submission flow: MLPerf accuracy logs for a submission come from ONE
LoadGen over the whole dataset. Partitions (``--n-partitions P --partition-offset O``) split the
first N samples into P contiguous slices; each slice ran as its own accuracy test, possibly on
other devices or nodes. Merging refuses to score unless every sample appears exactly once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

from harness import datadir, evaluate, logs, registry, untrusted
from harness.errors import DataError, HarnessError
from harness.jobs import partition_range
from harness.rounds import load_round
from harness.runs import read_run
from harness.settings import RunConfig
from harness.util import listing, read_json

META = "partition.json"
SAME = ("benchmark", "round", "n_partitions", "n_samples", "payload_dtype", "demo")


FIELDS = {"benchmark": str, "round": str, "n_partitions": int, "partition": int, "start": int, "stop": int,
          "n_samples": int, "payload_dtype": str, "data_dir": str, "demo": bool}


def read_meta(path: Path) -> dict[str, Any]:
    """A partition.json, checked: its fields, its benchmark's payload type, and a slice that is the
    one ``partition_range`` gives its partition (so no sample can be placed twice or outside)."""
    meta = untrusted.record(read_json(path, f"{path} is missing", "a partition.json"), str(path), FIELDS)
    bench = registry.get(meta["benchmark"])
    load_round(meta["round"])
    if meta["payload_dtype"] != bench.spec.payload_dtype:
        raise untrusted.fail(str(path), f"payload_dtype {meta['payload_dtype']!r} is not {bench.spec.id}'s")
    if not 0 <= meta["partition"] < meta["n_partitions"] <= meta["n_samples"] or (meta["start"], meta["stop"]) != \
            partition_range(meta["n_samples"], meta["n_partitions"], meta["partition"]):
        raise untrusted.fail(str(path), f"samples [{meta['start']}, {meta['stop']}) are not partition "
                                        f"{meta['partition']} of {meta['n_partitions']} over {meta['n_samples']}")
    return meta


def find_partitions(dirs: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for d in dirs:
        if not d.is_dir():
            raise HarnessError(f"{d} is not a folder; pass run folders of partitioned accuracy runs")
        run = d if (d / "result.json").is_file() else d.parent
        if (run / "result.json").is_file() and (reason := read_run(run).incomplete):
            raise HarnessError(f"{run} did not finish ({reason}); run its partition(s) again before merging")
        metas = [d / META] if (d / META).is_file() else sorted(d.glob(f"*/{META}"))
        if not metas:
            raise HarnessError(f"{d} holds no partition ({META}); pass run folders made with --n-partitions")
        found += [(m.parent, read_meta(m)) for m in metas]
    return found


def check_partitions(parts: list[tuple[Path, dict[str, Any]]]) -> None:
    first = parts[0][1]
    for folder, meta in parts[1:]:
        differ = [k for k in SAME if meta.get(k) != first.get(k)]
        if differ:
            raise HarnessError(f"{folder} does not belong with {parts[0][0]}: they differ in {', '.join(differ)}")
    seen = Counter(meta["partition"] for _, meta in parts)
    dupes = sorted(p for p, n in seen.items() if n > 1)
    if dupes:
        folders = [str(f) for f, m in parts if m["partition"] in dupes]
        raise HarnessError(f"partition(s) {listing(dupes)} given more than once: {', '.join(folders)}")
    missing = sorted(set(range(first["n_partitions"])) - set(seen))
    if missing:
        raise HarnessError(f"partition(s) {listing(missing)} of {first['n_partitions']} missing; run them with "
                           f"--n-partitions {first['n_partitions']} --partition-offset <p> and pass their folders")


def merged_outputs(parts: list[tuple[Path, dict[str, Any]]]) -> tuple[list[logs.AccuracyRecord], dict]:
    """Accuracy records in dataset indices; raises naming missing or duplicated samples."""
    records: list[logs.AccuracyRecord] = []
    for folder, meta in sorted(parts, key=lambda fm: fm[1]["partition"]):
        size = meta["stop"] - meta["start"]
        local = logs.read_accuracy(folder / logs.ACCURACY)
        outside = sorted({r.qsl_idx for r in local if not 0 <= r.qsl_idx < size})
        if outside:
            raise DataError(f"{folder / logs.ACCURACY} has sample indices {listing(outside)} outside its "
                            f"partition of {size} samples")
        records += [dataclasses.replace(r, qsl_idx=meta["start"] + r.qsl_idx) for r in local]
    n = parts[0][1]["n_samples"]
    counts = Counter(r.qsl_idx for r in records)
    missing = sorted(set(range(n)) - set(counts))
    duplicated = sorted(i for i, c in counts.items() if c > 1)
    problems = []
    if missing:
        problems.append(f"samples missing: {listing(missing)}")
    if duplicated:
        problems.append(f"samples duplicated: {listing(duplicated)}")
    if problems:
        raise DataError(f"refusing to score {n} samples: " + "; ".join(problems))
    return records, parts[0][1]


def merge(dirs: list[Path], out: Path, data: Path | None = None) -> dict[str, Any]:
    parts = find_partitions(dirs)
    check_partitions(parts)
    records, meta = merged_outputs(parts)
    bench = registry.get(meta["benchmark"])
    data_dir = data or Path(meta["data_dir"])
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} recorded by the partitions is not here; pass --data DIR")
    run_dir = datadir.new_run_dir(out, "merge")
    acc_dir = run_dir / "accuracy"
    acc_dir.mkdir()
    logs.write_accuracy(acc_dir / logs.ACCURACY, [(r.qsl_idx, r.data) for r in records])
    rnd = load_round(meta["round"])
    outputs = logs.decode_outputs(records, meta["payload_dtype"], meta["n_samples"], acc_dir / logs.ACCURACY)
    accuracy = evaluate.score(bench, outputs, data_dir, rnd, meta["demo"])
    evaluate.save_samples(bench, outputs, data_dir, rnd, acc_dir)
    accuracy["problems"] = [f"{folder.name}: {p}" for folder, _ in parts
                            for p in evaluate.sut_problems(evaluate.sut_stats(folder))]
    (acc_dir / "accuracy.txt").write_text(bench.accuracy.accuracy_text(accuracy["metrics"]))
    run_json = parts[0][0].parent / "run.json"
    settings = dataclasses.asdict(RunConfig.from_json(run_json.read_text(), str(run_json)))
    return {
        "benchmark": bench.spec.id, "mlperf_names": list(bench.spec.mlperf_names), "round": rnd.name,
        "demo": meta["demo"], "run_dir": str(run_dir), "samples": meta["n_samples"], "settings": settings,
        "evaluation_aid": f"merged {len(parts)} partitions; not a submission run",
        "merged_from": [str(folder) for folder, _ in parts], "accuracy": accuracy,
    }
