"""Reports over several runs: markdown (golden file), normalised rows, and input errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness import cli, report
from harness.errors import HarnessError

GOLDEN = Path(__file__).parent / "golden" / "report.md"
SETTINGS = {"dtype": "fp32", "device": "cuda:0", "n_devices": 2, "batch_size": 32, "batch_tokens": None}


def results(root: Path) -> list[Path]:
    """Three hand-made run folders: an accuracy + performance run, an INVALID Server run, a compliance run."""
    latency = {"min": 1_000_000, "p50": 2_500_000, "p99": 9_000_000}
    made = {
        "resnet-offline": {
            "benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": False,
            "settings": SETTINGS | {"scenario": "Offline", "mode": "submission"},
            "accuracy": {"samples": 50000, "metrics": {"acc": 76.1}, "variants": {"resnet": {"passed": True, "checks": [
                {"metric": "acc", "value": 76.1, "target": 75.6954, "upper": None, "ratio": 1.00534, "passed": True,
                 "note": ""}]}}, "problems": []},
            "performance": {"validity": "VALID", "reasons": [], "metrics": {"samples_per_second": 1234.5},
                            "latency_ns": latency}},
        "bert-server": {
            "benchmark": "bert", "mlperf_names": ["bert-99", "bert-99.9"], "round": "v4.1", "demo": True,
            "settings": SETTINGS | {"scenario": "Server", "mode": "performance"},
            "performance": {"validity": "INVALID", "reasons": ["latency constraint not met"],
                            "metrics": {"completed_samples_per_second": 80.25}, "latency_ns": latency}},
        "resnet-offline-TEST04": {
            "benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": False,
            "settings": SETTINGS | {"scenario": "Offline", "mode": "performance"},
            "performance": {"validity": "VALID", "reasons": [], "metrics": {"samples_per_second": 1300.0}},
            "compliance": {"test": "TEST04", "passed": False, "required_by": ["resnet"], "reasons": [
                "performance: test score 1300 against 1234.5 is outside the 10% tolerance"],
                "performance_check": {"passed": False, "reference": 1234.5, "test": 1300.0, "tolerance": 0.1}}},
    }
    folders = []
    for name, result in made.items():
        (root / name).mkdir()
        (root / name / "result.json").write_text(json.dumps(result | {"run_dir": str(root / name)}))
        folders.append(root / name)
    return folders


def test_markdown_matches_the_golden_file(tmp_path):
    text = report.markdown(report.load(results(tmp_path)))
    assert text == GOLDEN.read_text(), "report.markdown changed: compare with tests/unit/golden/report.md"


def test_rows_are_normalised_per_variant(tmp_path):
    folders = results(tmp_path)
    assert cli.main(["report", *map(str, folders), "--csv", str(tmp_path / "r.csv"), "--json",
                     str(tmp_path / "r.json")]) == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    as_json = json.loads((tmp_path / "r.json").read_text())
    assert [{k: str(v) for k, v in row.items()} for row in as_json] == rows  # the same rows, typed in JSON
    kinds = [(r["benchmark"], r["mlperf_name"], r["kind"], r["status"]) for r in rows]
    assert kinds == [("resnet", "resnet", "AccuracyMode", "PASS"), ("resnet", "resnet", "PerformanceMode", "VALID"),
                     ("bert", "bert-99", "PerformanceMode", "INVALID"), ("bert", "bert-99.9", "PerformanceMode", "INVALID"),
                     ("resnet", "resnet", "PerformanceMode", "VALID"), ("resnet", "resnet", "Compliance", "FAIL")]
    accuracy = rows[0]
    assert (accuracy["metric"], accuracy["value"], accuracy["threshold"], accuracy["ratio"]) == (
        "acc", "76.1", "75.6954", "1.0053")
    assert (rows[2]["metric"], rows[2]["value"], rows[2]["unit"]) == ("completed_samples_per_second", "80.25",
                                                                      "samples/s")


def test_no_runs_or_no_result_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["report"])
    assert "the following arguments are required: runs" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="no run folders given"):
        report.load([])
    (tmp_path / "half").mkdir()
    assert cli.main(["report", str(tmp_path / "half")]) == 2
    assert "has no result.json: it is not a finished run folder" in capsys.readouterr().err


def trace(path: Path, samples: int = 200) -> None:
    """A LoadGen-style trace: a begin and an end line per sample (LoadGen writes one event per line)."""
    lines = ['{"traceEvents":[', '{"name":"LogDetail","ph":"X","args":{"key":""loadgen_version""}},']
    for i in range(samples):
        start, latency = i * 5_000, 2_000_000 + (i % 17) * 100_000  # µs, ns
        lines.append(f'{{"name":"Sample","cat":"default","ph":"b","pid":1,"id":{i},"ts":{start},"args":{{'
                     f'"sample_seq":{i},"query_seq":{i},"sample_idx":{i % 50},"issue_start_ns":0,'
                     f'"complete_ns":{latency}}}}},')
        lines.append(f'{{"name":"Sample","cat":"default","ph":"e", "pid":1,"id":{i},"ts":{start + latency / 1000}}},')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n]}\n")


@pytest.mark.slow
def test_the_html_report_renders_its_tables_and_charts(tmp_path):
    import re
    import shutil
    import subprocess
    from collections import Counter

    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("rendering the HTML report needs Debian's chromium: apt-get install chromium (.ci/run does)")
    folders = results(tmp_path)
    trace(folders[0] / "performance" / "run_1" / "mlperf_log_trace.json")
    page = tmp_path / "report.html"
    assert cli.main(["report", *map(str, folders), "--html", str(page)]) == 0
    text = page.read_text()
    assert not re.search(r'(src|href)=["\'](https?:)?//', text)  # self-contained: nothing to fetch
    # a comparison across runs, latency statistics for two runs, per-sample latency and throughput from the trace
    assert text.count("<svg") == 5
    shot = tmp_path / "report.png"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,3600",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    colors = Counter(Image.open(shot).convert("RGB").getdata())
    assert colors[(200, 230, 201)] > 1000  # PASS and VALID cells of the tables
    assert colors[(255, 205, 210)] > 1000  # FAIL and INVALID cells
    assert colors[(31, 119, 180)] > 20000  # the charts' bars and lines
