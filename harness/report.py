"""Human-readable report of a run's result.json: accuracy vs targets, performance validity."""

from __future__ import annotations

from typing import Any

DEMO_BANNER = ("*** DEMO TIER: random-weight model and synthetic data. These numbers exercise the "
               "harness; they are not MLPerf results. ***")


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def accuracy_section(acc: dict[str, Any]) -> str:
    head = f"Accuracy ({acc['samples']:,} samples{'' if acc.get('full_dataset') else ', NOT the full dataset'})"
    rows = [["variant", "metric", "result", "target", "ratio", "status", "note"]]
    for name, variant in acc["variants"].items():
        for c in variant["checks"]:
            target = _num(c["target"]) + (f" .. {_num(c['upper'])}" if c.get("upper") is not None else "")
            rows.append([name, c["metric"], _num(c["value"]), target, f"{c['ratio']:.3f}",
                         "PASS" if c["passed"] else "FAIL", c.get("note", "")])
    extra = [f"  {k} = {_num(v)}" for k, v in acc["metrics"].items()
             if not any(k == c["metric"] for v_ in acc["variants"].values() for c in v_["checks"])]
    problems = [f"  ! {p}" for p in acc.get("problems", [])]
    return "\n".join([head, table(rows), *extra, *problems])


def performance_section(perf: dict[str, Any], scenario: str) -> str:
    lines = [f"Performance ({scenario}): {perf['validity']}"]
    lines += [f"  - {reason}" for reason in perf["reasons"]]
    lines += [f"  {name.replace('_', ' ')}: {_num(value)}" for name, value in perf["metrics"].items()]
    lat = perf.get("latency_ns", {})
    if lat:
        lines.append("  latency (ms): " + ", ".join(f"{k} {v / 1e6:.3f}" for k, v in lat.items()))
    return "\n".join(lines)


def compliance_section(checked: dict[str, Any]) -> str:
    needed = (f"required for {', '.join(checked['required_by'])}" if checked["required_by"] else
              "not required for this benchmark in this round")
    perf = checked["performance_check"]
    lines = [f"Compliance {checked['test']} ({needed}): {'PASS' if checked['passed'] else 'FAIL'}",
             f"  performance: submission {_num(perf['reference'])}, this test {_num(perf['test'])}"
             + (f", tolerance {perf['tolerance']:.0%}" if "tolerance" in perf else "")
             + f": {'PASS' if perf['passed'] else 'FAIL'}"]
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
