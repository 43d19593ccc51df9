"""Reports: the text report of one run (printed and saved as report.txt), and reports over several
runs (``harness report``): markdown, a self-contained HTML page with charts, and normalised rows
(CSV/JSON: AccuracyMode PASS/FAIL with value/threshold ratio, PerformanceMode VALID/INVALID with the
reported result, compliance verdicts, per benchmark, scenario and accuracy variant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import HarnessError

DEMO_BANNER = ("*** DEMO TIER: random-weight model and synthetic data. These numbers exercise the "
               "harness; they are not MLPerf results. ***")


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check_status(check: dict[str, Any]) -> str:
    return "PASS" if check["passed"] else "NOT SCORED" if check["value"] is None else "FAIL"


def accuracy_section(acc: dict[str, Any]) -> str:
    head = (f"Accuracy ({acc['samples']:,} samples{'' if acc.get('full_dataset') else ', NOT the full dataset'}; "
            f"{acc.get('targets', 'MLPerf targets')})")
    rows = [["variant", "metric", "result", "target", "ratio", "status", "note"]]
    for name, variant in acc["variants"].items():
        for c in variant["checks"]:
            target = _num(c["target"]) + (f" .. {_num(c['upper'])}" if c.get("upper") is not None else "")
            rows.append([name, c["metric"], _num(c["value"]), target, f"{c['ratio']:.3f}", check_status(c),
                         c.get("note", "")])
    extra = [f"  {k} = {_num(v)}" for k, v in acc["metrics"].items()
             if not any(k == c["metric"] for v_ in acc["variants"].values() for c in v_["checks"])]
    problems = [f"  ! {p}" for p in acc.get("problems", [])]
    if isinstance(done := acc.get("completed"), dict):  # `harness evaluate` scored what the run could not
        extra.append(f"  scored after the run by `harness evaluate`: {', '.join(map(str, done.get('metrics', [])))} "
                     f"(the run's own scores: {done.get('partial')})")
    return "\n".join([head, table(rows), *extra, *problems])


def performance_section(perf: dict[str, Any], scenario: str) -> str:
    lines = [f"Performance ({scenario}): {perf['validity']}"]
    lines += [f"  - {reason}" for reason in perf["reasons"]]
    lines += [f"  {name.replace('_', ' ')}: {_num(value)}" for name, value in perf["metrics"].items()]
    lat = perf.get("latency_ns", {})
    if lat:
        lines.append("  latency (ms): " + ", ".join(f"{k} {v / 1e6:.3f}" for k, v in lat.items()))
    lines += [f"  {name}: {text}" for name, text in token_lines(perf.get("token_latency_ns", {}))]
    return "\n".join(lines)


def token_lines(tokens: dict[str, float]) -> list[tuple[str, str]]:
    """TTFT and TPOT (ms): their percentiles, then p99 against the bound and PASS/FAIL where one applies."""
    out = []
    for name, prefix in (("TTFT", "ttft_"), ("TPOT", "tpot_")):
        stats = [(k[len(prefix):], v) for k, v in tokens.items() if k.startswith(prefix) and not k.endswith("bound")]
        if not stats:
            continue
        text = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in stats) + " ms"
        bound = tokens.get(prefix + "bound")
        if bound is not None and prefix + "p99" in tokens:
            verdict = "PASS" if tokens[prefix + "p99"] < bound else "FAIL"
            text += f"; p99 against the bound {bound / 1e6:g} ms: {verdict}"
        out.append((name, text))
    return out


def compliance_section(checked: dict[str, Any]) -> str:
    needed = (f"required for {', '.join(checked['required_by'])}" if checked["required_by"] else
              "not required for this benchmark in this round")
    lines = [f"Compliance {checked['test']} ({needed}): {'PASS' if checked['passed'] else 'FAIL'}"]
    perf = checked.get("performance_check")
    if perf:
        lines.append(f"  performance: submission {_num(perf['reference'])}, this test {_num(perf['test'])}"
                     + (f", tolerance {perf['tolerance']:.0%}" if "tolerance" in perf else "")
                     + f": {'PASS' if perf['passed'] else 'FAIL'}")
    tokens = checked.get("token_check")
    if tokens:
        lines.append(f"  {checked['logged']} logged responses; " + ", ".join(
            f"{name.replace('_', ' ')} check: " + ("skipped" if name == "first_token" and tokens["first_token_skipped"]
                                                    else "PASS" if tokens[name]["passed"] else "FAIL")
            for name in ("first_token", "eos", "length")))
    acc = checked.get("accuracy_check")
    if acc:
        lines.append(f"  accuracy: {acc['num_perf_log_qsl_idx_match']} responses logged in performance mode "
                     f"matched by sample, {acc['num_perf_log_data_mismatch']} differ from the accuracy run")
        for d in acc.get("fallback", {}).get("deltas", []):
            lines.append(f"    {d['variant']} {d['metric']}: baseline {_num(d['baseline'])}, compliance "
                         f"{_num(d['compliance'])}, delta {d['delta_percent']:.3g}% (allowed "
                         f"{d['allowed_percent']}%): {'PASS' if d['passed'] else 'FAIL'}")
    lines += [f"  ! {reason}" for reason in checked["reasons"]]
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    s = result["settings"]
    head = (f"{result['benchmark']} ({', '.join(result['mlperf_names'])})  scenario={s['scenario']}  "
            f"mode={s['mode']}  round={result['round']}  dtype={s['dtype']}  device={s['device']}"
            f" x{s['n_devices']}  batch={s['batch_size']}"
            + (f"/{s['batch_tokens']} tokens" if s.get("batch_tokens") else ""))
    parts = [head, f"run folder: {result['run_dir']}"]
    if result.get("incomplete"):
        parts.insert(1, incomplete_line(result))
    if result.get("demo"):
        parts.insert(0, DEMO_BANNER)
    if s.get("null_backend"):
        parts.append("NULL BACKEND: no model ran; every response is empty (harness overhead measurement)")
    if result.get("evaluation_aid"):
        parts.append(f"EVALUATION AID, not a submission run: {result['evaluation_aid']}")
    for p in result.get("partitions", []):
        sut = p.get("sut", {})
        parts.append(f"partition {p['partition']} of {p['n_partitions']}: samples [{p['start']}, {p['stop']}), "
                     f"{sut.get('completed', 0)} completed, {sut.get('failed', 0)} failed -> {p['folder']}/")
    if result.get("accuracy"):
        parts.append(accuracy_section(result["accuracy"]))
    if result.get("performance"):
        parts.append(performance_section(result["performance"], s["scenario"]))
    if result.get("compliance"):
        parts.append(compliance_section(result["compliance"]))
    if result.get("demo"):
        parts.append(DEMO_BANNER)
    return "\n\n".join(parts) + "\n"


def incomplete_line(result: dict[str, Any]) -> str:
    return f"INCOMPLETE RUN: {result['incomplete']['reason']}. What follows is what finished before it ended."


# -- reports over several runs: rows (CSV/JSON), markdown, HTML -----------------------------------

ROW_FIELDS = ("run", "benchmark", "mlperf_name", "scenario", "mode", "round", "demo", "kind", "metric", "value",
              "threshold", "ratio", "status", "unit")


def main_result(result: dict[str, Any], mlperf_name: str | None = None) -> tuple[str, float, str] | None:
    """The performance result a submission reports: (metric, value, unit), or None without one.

    The round says which: its result field for the MLPerf name where it names one (e.g. inferred
    tokens/s for GPT-J), else the scenario's (samples/s for Offline and Server, the early-stopping
    latency for the stream scenarios).
    """
    from harness.evaluate import SCENARIO_METRICS
    from harness.rounds import load_round

    perf, scenario = result.get("performance"), result["settings"]["scenario"]
    if not perf:
        return None
    rnd = load_round(result["round"])
    rules = rnd.performance.get(mlperf_name or result["mlperf_names"][0])
    loadgen_key = (rules.result.get(scenario) if rules else None) or rnd.submission["result_field"][scenario]
    name = next(n for n, k in SCENARIO_METRICS[scenario].items() if k == loadgen_key)
    if name not in perf["metrics"]:
        return None
    value = float(perf["metrics"][name])
    return name, value, "ns" if name.endswith("_ns") else "tokens/s" if "tokens" in name else "samples/s"


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Normalised rows: accuracy (value, threshold, ratio, PASS/FAIL) per variant and metric, the
    performance result (VALID/INVALID) per variant, and a compliance verdict."""
    settings = result["settings"]
    base = {"run": result["run_dir"], "benchmark": result["benchmark"], "scenario": settings["scenario"],
            "mode": settings["mode"], "round": result["round"], "demo": bool(result.get("demo"))}
    out = []
    for name, variant in (result.get("accuracy") or {}).get("variants", {}).items():
        out += [base | {"mlperf_name": name, "kind": "AccuracyMode", "metric": c["metric"], "value": c["value"],
                        "threshold": c["target"], "ratio": round(c["ratio"], 4),
                        "status": check_status(c), "unit": ""} for c in variant["checks"]]
    found = main_result(result)
    if found:
        metric, value, unit = found
        out += [base | {"mlperf_name": name, "kind": "PerformanceMode", "metric": metric, "value": value,
                        "threshold": "", "ratio": "", "status": result["performance"]["validity"], "unit": unit}
                for name in result["mlperf_names"]]
    checked = result.get("compliance")
    if checked:
        out += [base | {"mlperf_name": name, "kind": "Compliance", "metric": checked["test"], "value": "",
                        "threshold": "", "ratio": "", "status": "PASS" if checked["passed"] else "FAIL", "unit": ""}
                for name in result["mlperf_names"]]
    return out


def load(folders: list[Path]) -> list[dict[str, Any]]:
    from harness.runs import read_run

    if not folders:
        raise HarnessError("no run folders given; pass one or more folders made by `harness run`")
    return [read_run(folder).result for folder in folders]


def overview(results: list[dict[str, Any]]) -> list[list[str]]:
    """One line per run: benchmark, scenario, mode, accuracy verdicts, performance validity and result."""
    lines = [["run", "benchmark", "scenario", "mode", "accuracy", "performance", "result", "compliance"]]
    for result in results:
        variants = (result.get("accuracy") or {}).get("variants", {})
        accuracy = ", ".join(f"{n} {'PASS' if v['passed'] else 'FAIL'}" for n, v in variants.items())
        found = main_result(result)
        tags = [tag for tag, on in (("demo", result.get("demo")), ("INCOMPLETE", result.get("incomplete"))) if on]
        lines.append([Path(result["run_dir"]).name + (f" ({', '.join(tags)})" if tags else ""), result["benchmark"],
                      result["settings"]["scenario"], result["settings"]["mode"], accuracy or "-",
                      (result.get("performance") or {}).get("validity", "-"),
                      f"{_num(found[1])} {found[2]}" if found else "-", compliance_verdict(result)])
    return lines


def compliance_verdict(result: dict[str, Any]) -> str:
    checked = result.get("compliance")
    return f"{checked['test']} {'PASS' if checked['passed'] else 'FAIL'}" if checked else "-"


def markdown_table(lines: list[list[str]]) -> str:
    escape = [[cell.replace("|", "\\|") for cell in line] for line in lines]
    return "\n".join(["| " + " | ".join(escape[0]) + " |", "|" + "---|" * len(escape[0])]
                     + ["| " + " | ".join(line) + " |" for line in escape[1:]])


def markdown(results: list[dict[str, Any]]) -> str:
    parts = ["# MLPerf Inference runs", markdown_table(overview(results))]
    for result in results:
        s = result["settings"]
        parts.append(f"## {Path(result['run_dir']).name}\n\n{result['benchmark']} ({', '.join(result['mlperf_names'])}),"
                     f" {s['scenario']}, {s['mode']}, round {result['round']}, {s['dtype']} on {s['device']} x"
                     f"{s['n_devices']}" + (f"\n\n> **{DEMO_BANNER.strip('* ')}**" if result.get("demo") else "")
                     + (f"\n\n> **{incomplete_line(result)}**" if result.get("incomplete") else ""))
        accuracy = [r for r in rows(result) if r["kind"] == "AccuracyMode"]
        if accuracy:
            parts.append(f"Accuracy, {result['accuracy'].get('targets', 'MLPerf targets')}:")
            parts.append(markdown_table([["variant", "metric", "result", "target", "ratio", "status"]] + [
                [r["mlperf_name"], r["metric"], _num(r["value"]), _num(r["threshold"]), f"{r['ratio']:.3f}",
                 r["status"]] for r in accuracy]))
        perf = result.get("performance")
        if perf:
            text = f"Performance: **{perf['validity']}**" + "".join(f"\n- {reason}" for reason in perf["reasons"])
            latency = perf.get("latency_ns", {})
            parts.append(text + ("\n\n" + markdown_table([["latency", "ms"]] + [[k, f"{v / 1e6:.3f}"]
                                                                           for k, v in latency.items()])
                                 if latency else ""))
        if result.get("compliance"):
            parts.append("```\n" + compliance_section(result["compliance"]) + "\n```")
    return "\n\n".join(parts) + "\n"


def write_rows_csv(results: list[dict[str, Any]], path: Path) -> None:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for result in results:
            writer.writerows(rows(result))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: left; }
th { background: #eee; }
td.PASS, td.VALID { background: #c8e6c9; }
td.FAIL, td.INVALID { background: #ffcdd2; }
.demo { background: #fff3cd; padding: 0.5em; border: 1px solid #e0c36c; }
section { margin-bottom: 2.5em; }
"""


def html_table(lines: list[list[str]], status_column: int | None = None) -> str:
    from html import escape

    head = "".join(f"<th>{escape(c)}</th>" for c in lines[0])
    body = "".join("<tr>" + "".join(
        f"<td class=\"{escape(c.split()[0]) if i == status_column and c else ''}\">{escape(c)}</td>"
        for i, c in enumerate(line)) + "</tr>" for line in lines[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def html(results: list[dict[str, Any]]) -> str:
    """One self-contained page: a comparison of the runs, then each run's tables and charts."""
    from html import escape

    from harness import plots

    parts = [f"<h1>MLPerf Inference runs</h1>{html_table(overview(results), status_column=5)}"]
    compared = [(Path(r["run_dir"]).name, main_result(r)) for r in results]
    compared = [(name, found) for name, found in compared if found]
    units = {found[2] for _, found in compared}
    if len(compared) > 1 and len(units) == 1:
        parts.append(plots.comparison([n for n, _ in compared], [f[1] for _, f in compared], units.pop()))
    for result in results:
        s, name = result["settings"], Path(result["run_dir"]).name
        section = [f"<h2>{escape(name)}</h2><p>{escape(result['benchmark'])} "
                   f"({escape(', '.join(result['mlperf_names']))}), {escape(s['scenario'])}, {escape(s['mode'])}, "
                   f"round {escape(result['round'])}, {escape(s['dtype'])} on {escape(s['device'])} x{s['n_devices']}"
                   f"</p>"]
        if result.get("demo"):
            section.append(f"<p class=\"demo\">{escape(DEMO_BANNER)}</p>")
        if result.get("incomplete"):
            section.append(f"<p class=\"demo\">{escape(incomplete_line(result))}</p>")
        accuracy = [r for r in rows(result) if r["kind"] == "AccuracyMode"]
        if accuracy:
            section.append(f"<p>Accuracy, {escape(result['accuracy'].get('targets', 'MLPerf targets'))}:</p>")
            section.append(html_table([["variant", "metric", "result", "target", "ratio", "status"]] + [
                [r["mlperf_name"], r["metric"], _num(r["value"]), _num(r["threshold"]), f"{r['ratio']:.3f}",
                 r["status"]] for r in accuracy], status_column=5))
        perf = result.get("performance")
        if perf:
            section.append(html_table([["performance", "reasons"], [perf["validity"], "; ".join(perf["reasons"]) or
                                                                    "-"]], status_column=0))
            section.append(html_table([["metric", "value"]] + [[k.replace("_", " "), _num(v)]
                                                             for k, v in perf["metrics"].items()]))
            tokens = token_lines(perf.get("token_latency_ns", {}))
            if tokens:
                section.append(html_table([["token latency", "statistics"]] + [list(t) for t in tokens]))
            if perf.get("latency_ns"):
                section.append(plots.latency_percentiles(perf["latency_ns"], f"{name}: latency statistics"))
            ends, latencies = plots.trace_samples(Path(result["run_dir"]) / "performance/run_1/mlperf_log_trace.json")
            if latencies:
                section.append(plots.latency_histogram(latencies, f"{name}: latency of every sample (trace)"))
            if len(ends) > 1:
                section.append(plots.throughput(ends, f"{name}: throughput (trace)"))
        if result.get("compliance"):
            section.append(f"<pre>{escape(compliance_section(result['compliance']))}</pre>")
        parts.append("<section>" + "".join(section) + "</section>")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>MLPerf Inference runs</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
