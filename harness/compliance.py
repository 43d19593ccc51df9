"""Compliance tests: run them as the official procedure does, verify them as the official scripts do.

``harness compliance ID --test TEST01 --results RUN_DIR...`` takes the submission run (its
accuracy and performance logs, in one run folder or two) and runs one more LoadGen test with the
performance run's settings: performance mode, with the test's audit.config lines (round data, for
the benchmark's conf key). They reach LoadGen as the round's ``audit_via`` says: as the file, in
the test's own working directory while it runs and nowhere else, or, where the round's LoadGen
mishandles that file (4.1.30: see the round file), applied to its TestSettings by the harness
(``harness.worker``). A new run folder holds::

    run.json, user.conf    the submission run's settings and its exact user.conf
    manifest.json          provenance (``harness.provenance``)
    loadgen/               the compliance test's LoadGen logs (the official scripts' COMPLIANCE_DIR),
                           and audit_settings.json: what was applied
    TEST0x/                the verification, laid out as run_verification.py writes it and the
                           submission checker reads it (``harness submit`` copies it)
    TEST0x.log, result.json, report.txt

Verification, per test (the official scripts' rules; where the harness is stricter it says so):

* TEST01: the responses LoadGen logged in performance mode are compared by ``qsl_idx`` with the
  accuracy run's. The official default compares only the first element of each payload (for
  float32 detection rows that is the image index); here the whole payload must be equal, so a
  pass here is a pass there. Otherwise the accuracy run's responses for the same samples
  (``mlperf_log_accuracy_baseline.json``) and the logged ones are scored, and every target metric
  must agree within 1% (99% variants) or 0.1% (99.9% variants) as the checker computes it. The
  performance result must be within 10% of the submission's either way (20% for SingleStream
  latencies up to 0.2 ms and MultiStream up to 1.6 ms).
* TEST04: the same sample issued again and again must not be more than 10% faster than the
  submission run (20% for those small latencies; the official script decides "small" on the
  reciprocal of the latency, which gives 20% to nearly every stream run; here it is the latency).
* TEST05: with the round's alternative seeds, the result must not be more than 5% worse (20% for
  small latencies). Its LoadGen logs must show the test05 seeds.
* TEST06 (LLMs; accuracy checks only, the run's performance is recorded, not judged): in the
  about 100 responses LoadGen logged, outside Offline the streamed first token must be where the
  final output begins; no output may end in two or more EOS tokens (counted back from the end, its
  first token aside, as the official loop does); each output's length must equal the ``n_tokens``
  LoadGen recorded. ``verify_accuracy.txt`` has the official lines, which the checker greps.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from harness import datadir, evaluate, logs, provenance, registry, report, runner, settings
from harness.errors import DataError, HarnessError
from harness.jobs import Job
from harness.rounds import Round, load_round
from harness.runs import Run, read_run
from harness.settings import RunConfig
from harness.util import listing

TESTS = ("TEST01", "TEST04", "TEST05", "TEST06")
RAW = "loadgen"
SCORE_KEYS = {"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec",
              "SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}
SMALL_LATENCY_NS = {"SingleStream": 200_000, "MultiStream": 1_600_000}


@dataclasses.dataclass(frozen=True)
class Reference:
    """The submission run a compliance test is checked against."""

    performance: Run
    accuracy: Run | None

    @property
    def accuracy_log(self) -> Path:
        assert self.accuracy is not None and self.accuracy.accuracy_dir is not None
        return self.accuracy.accuracy_dir / logs.ACCURACY


def find_reference(bench_id: str, scenario: str | None, test: str, folders: list[Path]) -> Reference:
    """The performance run (and, for TEST01, the accuracy run) among the given run folders."""
    runs = [read_run(folder).finished() for folder in folders]
    wanted = f"{bench_id} {scenario}" if scenario else bench_id
    for run in runs:
        if run.benchmark != bench_id or (scenario and run.scenario != scenario) or run.compliance:
            raise HarnessError(f"{run.describe()} is not a {wanted} run to check against; pass the submission "
                               f"run's folder(s)")
    performance = [r for r in runs if r.performance_dir]
    accuracy = [r for r in runs if r.accuracy_dir]
    if len(performance) != 1 or (test == "TEST01" and len(accuracy) != 1):
        need = "one performance run and one accuracy run" if test == "TEST01" else "one performance run"
        raise HarnessError(f"{test} needs {need} of the submission (a --mode submission run folder has both); got "
                           f"{len(performance)} performance and {len(accuracy)} accuracy run(s) in "
                           f"{', '.join(str(f) for f in folders)}")
    if accuracy and accuracy[0].scenario != performance[0].scenario:
        raise HarnessError(f"{accuracy[0].describe()} and {performance[0].describe()} are of different scenarios")
    return Reference(performance[0], accuracy[0] if accuracy else None)


def run(bench_id: str, test: str, results: list[Path], scenario: str | None = None, out: Path | None = None,
        data: Path | None = None, timeout_s: float | None = None, echo: bool = True) -> dict[str, Any]:
    """Run compliance ``test`` against a submission run; write and return the compliance run's result."""
    bench = registry.get(bench_id)
    if test not in TESTS:
        raise HarnessError(f"unknown compliance test {test!r}; use one of {', '.join(TESTS)}")
    reference = find_reference(bench.spec.id, scenario, test, results)
    source = reference.performance
    config = RunConfig.from_json((source.folder / "run.json").read_text(), str(source.folder / "run.json"))
    rnd = load_round(config.round)
    rnd.check_loadgen()
    audit = rnd.audit_config(test, bench.spec.conf_key)
    data_dir = data or Path(config.data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} of {source.folder} is not here; pass --data DIR")
    config = dataclasses.replace(config, mode="performance", data_dir=str(data_dir.resolve()), trace=False,
                                 user_conf=str(source.folder / "user.conf"), timeout_s=timeout_s)
    devices = settings.devices(config)
    run_dir = datadir.new_run_dir(out, f"{bench.spec.id}-{config.scenario}-{test}")
    shutil.copyfile(config.user_conf, run_dir / "user.conf")
    config = dataclasses.replace(config, user_conf=str(run_dir / "user.conf"))
    (run_dir / "run.json").write_text(config.to_json())
    if config.demo and echo:
        print(report.DEMO_BANNER, flush=True)
    samples = source.result["samples"]
    result = runner.header(bench, config, run_dir, samples, rnd)
    with runner.finishing(run_dir, result, echo):
        inputs = provenance.input_facts(bench, data_dir, config.demo)
        runner.execute([Job(test, str(run_dir / RAW), "performance", 0, samples, devices, audit=audit)], run_dir,
                       timeout_s)
        performance = evaluate.performance(run_dir / RAW, config.scenario, rnd,
                                           rnd.test05_seeds if test == "TEST05" else None)
        checked = verify(test, bench, rnd, reference, run_dir / RAW, run_dir / test, data_dir)
        if performance["reasons"] and test != "TEST06":  # the run must be one the checker accepts (TEST06: not
            # judged, the checker reads no performance logs of it)
            checked["passed"] = False
            checked["reasons"] += [f"this run: {reason}" for reason in performance["reasons"]]
        applied = run_dir / RAW / "audit_settings.json"
        compliance = {"test": test, "audit_config": audit, "audit_via": rnd.audit_via,
                      "audit_settings": json.loads(applied.read_text()) if applied.is_file() else None,
                      "reference": list(dict.fromkeys(str(r.folder) for r in (source, reference.accuracy) if r)),
                      "required_by": [n for n in bench.spec.mlperf_names if test in rnd.compliance.get(n, ())]}
        result |= {"performance": performance, "compliance": compliance | checked}
        provenance.write(run_dir, provenance.manifest(bench, config, run_dir, inputs, result["image"]))
    runner.write_result(run_dir, result, echo)
    return result


def verify(test: str, bench: registry.Benchmark, rnd: Round, reference: Reference, raw: Path, out: Path,
           data_dir: Path) -> dict[str, Any]:
    """Verify a finished compliance test in ``raw`` and write the checker's layout into ``out``."""
    if test == "TEST06":
        return verify_tokens(raw / logs.ACCURACY, out, reference.performance.scenario, bench.spec.payload_dtype,
                             bench.spec.eos_token_id)
    (out / "performance" / "run_1").mkdir(parents=True)
    for name in logs.SUMMARY_AND_DETAIL:
        shutil.copy2(raw / name, out / "performance" / "run_1" / name)
    perf = performance_check(test, logs.read_detail(reference.performance.performance_dir / logs.DETAIL),
                             logs.read_detail(raw / logs.DETAIL), rnd.tolerances)
    (out / "verify_performance.txt").write_text(perf.pop("text"))
    checked: dict[str, Any] = {"performance_check": perf}
    if test == "TEST01":
        (out / "accuracy").mkdir()
        shutil.copy2(raw / logs.ACCURACY, out / "accuracy" / logs.ACCURACY)
        accuracy = compare_accuracy(reference.accuracy_log, raw / logs.ACCURACY)
        (out / "verify_accuracy.txt").write_text(accuracy.pop("text"))
        if not accuracy["passed"]:
            accuracy["fallback"] = accuracy_fallback(bench, rnd, reference.accuracy_log, raw / logs.ACCURACY,
                                                     data_dir, out / "accuracy")
        checked["accuracy_check"] = accuracy
    accuracy = checked.get("accuracy_check")
    checked["passed"] = perf["passed"] and (accuracy is None or accuracy["passed"] or accuracy["fallback"]["passed"])
    checked["reasons"] = [] if checked["passed"] else failure_reasons(checked)
    return checked


def verify_tokens(log: Path, out: Path, scenario: str, dtype: str, eos: int | None) -> dict[str, Any]:
    """TEST06: the first-token, EOS and length checks of ``log``; writes ``out/verify_accuracy.txt`` and
    ``out/accuracy/`` as the official script does."""
    if eos is None:
        raise HarnessError("TEST06 needs the benchmark's EOS token id (BenchmarkSpec.eos_token_id)")
    kind = np.dtype(dtype)
    records = logs.read_accuracy(log)
    failures: dict[str, list[int]] = {"first_token": [], "eos": [], "length": []}
    for record in records:
        if len(record.data) % kind.itemsize or len(record.token_data or b"") % kind.itemsize:
            raise DataError(f"{log}: sample {record.qsl_idx} is not a whole number of {dtype} tokens")
        data = np.frombuffer(record.data, dtype=kind)
        if scenario != "Offline":
            first = np.frombuffer(record.token_data or b"", dtype=kind)
            common = min(len(first), len(data))
            if record.token_data is None or not np.array_equal(first[:common], data[:common]):
                failures["first_token"].append(record.qsl_idx)
        trailing = 0
        for token in data[:0:-1]:  # from the end back to the second token
            if token != eos:
                break
            trailing += 1
        if trailing >= 2:
            failures["eos"].append(record.qsl_idx)
        if record.token_count is None or record.token_count != len(data):
            failures["length"].append(record.qsl_idx)
    if not records:
        failures["length"].append(-1)  # nothing logged: nothing was verified
    passed = {k: not v for k, v in failures.items()}
    lines = [f"First token check pass: {passed['first_token'] if scenario != 'Offline' else 'Skipped'}",
             f"EOS check pass: {passed['eos']}", f"Sample length check pass: {passed['length']}",
             "TEST06 verification complete" if all(passed.values()) else "TEST06 verification failed"]
    (out / "accuracy").mkdir(parents=True)
    shutil.copy2(log, out / "accuracy" / logs.ACCURACY)
    (out / "verify_accuracy.txt").write_text("\n".join(lines) + "\n")
    labels = {"first_token": "the streamed first token is not where the output begins",
              "eos": "the output ends in two or more EOS tokens",
              "length": "the output's length differs from the n_tokens LoadGen recorded"}
    reasons = [f"{labels[k]} (samples {listing(v, 10)})" if v != [-1] else "LoadGen logged no response"
               for k, v in failures.items() if v]
    return {"passed": all(passed.values()), "reasons": reasons, "logged": len(records), "eos_token_id": eos,
            "token_check": {k: {"passed": passed[k], "samples": v[:100]} for k, v in failures.items()}
            | {"first_token_skipped": scenario == "Offline"}}


def compare_accuracy(reference_log: Path, test_log: Path) -> dict[str, Any]:
    """TEST01's accuracy comparison, by ``qsl_idx``, of whole payloads; the text of verify_accuracy.txt."""
    reference: dict[int, bytes] = {}
    duplicates = duplicate_mismatches = 0
    for record in logs.read_accuracy(reference_log):
        if record.qsl_idx in reference:
            duplicates += 1
            duplicate_mismatches += reference[record.qsl_idx] != record.data
        else:
            reference[record.qsl_idx] = record.data
    tested = logs.read_accuracy(test_log)
    matched = [r for r in tested if r.qsl_idx in reference]
    mismatched = [r.qsl_idx for r in matched if r.data != reference[r.qsl_idx]]
    counts = {"num_acc_log_entries": len(reference) + duplicates, "num_acc_log_duplicate_keys": duplicates,
              "num_acc_log_data_mismatch": duplicate_mismatches, "num_perf_log_entries": len(tested),
              "num_perf_log_qsl_idx_match": len(matched), "num_perf_log_data_mismatch": len(mismatched),
              "num_missing_qsl_idxs": len(tested) - len(matched)}
    passed = counts["num_perf_log_data_mismatch"] == 0 and counts["num_perf_log_qsl_idx_match"] > 0
    text = "".join(f"{k} = {v}\n" for k, v in counts.items()) + ("TEST PASS\n" if passed else "TEST FAIL\n")
    return {"passed": passed, **counts, "mismatched_samples": sorted(set(mismatched))[:100], "text": text}


def accuracy_fallback(bench: registry.Benchmark, rnd: Round, reference_log: Path, test_log: Path, data_dir: Path,
                      out: Path) -> dict[str, Any]:
    """Score the accuracy run's and the compliance run's responses for the same samples and compare
    every target metric: |1 - baseline / compliance| x 100 within 1% (0.1% for 99.9% variants)."""
    tested = logs.read_accuracy(test_log)
    indices = {r.qsl_idx for r in tested}
    dtype, count = bench.spec.payload_dtype, bench.spec.dataset_size
    baseline = [r for r in logs.read_accuracy(reference_log) if r.qsl_idx in indices]
    scores = {}
    for name, records in (("baseline", baseline), ("compliance", tested)):
        metrics = bench.accuracy.score(logs.decode_outputs(records, dtype, count, test_log), data_dir)
        (out / f"{name}_accuracy.txt").write_text(bench.accuracy.accuracy_text(metrics))
        scores[name] = metrics
    deltas, passed = [], True
    for variant in bench.spec.mlperf_names:
        allowed = 0.1 if "99.9" in variant else 1.0
        for target in rnd.targets(variant):
            base, comp = float(scores["baseline"][target.metric]), float(scores["compliance"][target.metric])
            delta = abs(1 - base / comp) * 100 if base and comp else float("inf")
            deltas.append({"variant": variant, "metric": target.metric, "baseline": base, "compliance": comp,
                           "delta_percent": delta, "allowed_percent": allowed, "passed": delta <= allowed})
            passed &= delta <= allowed
    return {"passed": passed, "samples": len(indices), "deltas": deltas}


def performance_check(test: str, reference: logs.Detail, tested: logs.Detail,
                      tolerances: dict[str, float]) -> dict[str, Any]:
    """The performance rule of a test (tolerances: the round's); the text of verify_performance.txt
    (``TEST PASS`` when passed)."""
    scenario = reference.get("effective_scenario")
    problems = [f"{who} results are invalid" for who, detail in (("Reference", reference), ("Test", tested))
                if detail.get("result_validity") != "VALID"]
    if tested.get("effective_scenario") != scenario:
        problems.append(f"Test and reference scenarios do not match ({tested.get('effective_scenario')} vs "
                        f"{scenario})")
    key = SCORE_KEYS.get(scenario, "")
    ref, got = reference.get(key), tested.get(key)
    if ref is None or got is None:
        problems.append(f"a log lacks {key or 'a result'}")
    lines = [f"reference score = {ref}", f"test score = {got}"]
    if problems:
        return {"passed": False, "reference": ref, "test": got, "problems": problems,
                "text": "\n".join(lines + [f"TEST FAIL: {p}" for p in problems]) + "\n"}
    ref, got = float(ref), float(got)
    latency = scenario in SMALL_LATENCY_NS
    small = latency and ref <= SMALL_LATENCY_NS[scenario]
    tolerance = tolerances["small_latency" if small else test]
    if test == "TEST01":
        passed = ref * (1 - tolerance) < got < ref * (1 + tolerance)
    elif test == "TEST04":  # compared as rates: the repeated sample must not be more than the tolerance faster
        passed = (1e9 / got < 1e9 / ref * (1 + tolerance)) if latency else got < ref * (1 + tolerance)
    else:  # TEST05: not more than the tolerance worse
        passed = got < ref * (1 + tolerance) if latency else got > ref * (1 - tolerance)
    lines.append("TEST PASS" if passed else "TEST FAIL: Test score invalid")
    return {"passed": passed, "reference": ref, "test": got, "tolerance": tolerance, "problems": [],
            "text": "\n".join(lines) + "\n"}


def failure_reasons(checked: dict[str, Any]) -> list[str]:
    """Why a verified compliance test failed, one line per reason."""
    reasons = [f"performance: {p}" for p in checked["performance_check"].get("problems", [])]
    perf = checked["performance_check"]
    if not perf["passed"] and not perf.get("problems"):
        reasons.append(f"performance: test score {perf['test']:.6g} against {perf['reference']:.6g} is outside "
                       f"the {perf['tolerance']:.0%} tolerance")
    acc = checked.get("accuracy_check")
    if acc and not acc["passed"]:
        fallback = acc.get("fallback", {})
        if not fallback.get("passed"):
            failed = [f"{d['variant']} {d['metric']} {d['delta_percent']:.3g}% > {d['allowed_percent']}%"
                      for d in fallback.get("deltas", []) if not d["passed"]]
            reasons.append(f"accuracy: {acc['num_perf_log_data_mismatch']} logged responses differ from the "
                           f"accuracy run (samples {listing(acc['mismatched_samples'], 10)}) and the scores differ "
                           f"beyond the allowed delta: {', '.join(failed)}")
    return reasons
