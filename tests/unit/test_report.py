"""Reports over several runs: markdown (golden file), normalised rows, and input errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness import cli, report
from harness.errors import HarnessError

GOLDEN = Path(__file__).parent / "golden" / "report.md"
SETTINGS = {"dtype": "fp32", "device": "cuda:0", "n_devices": 2, "batch_size": 32, "batch_tokens": None,
            "data_dir": "/data", "demo": False, "user_conf": "/u"}


def results(root: Path) -> list[Path]:
    """Three hand-made run folders: an accuracy + performance run, an INVALID Server run, a compliance run."""
    latency = {"min": 1_000_000, "p50": 2_500_000, "p99": 9_000_000}
    made = {
        "resnet-offline": {
            "benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": False, "samples": 50000,
            "settings": SETTINGS | {"benchmark": "resnet", "scenario": "Offline", "mode": "submission"},
            "accuracy": {"samples": 50000, "metrics": {"acc": 76.1}, "variants": {"resnet": {"passed": True, "checks": [
                {"metric": "acc", "value": 76.1, "target": 75.6954, "upper": None, "ratio": 1.00534, "passed": True,
                 "note": ""}]}}, "problems": [], "targets": "MLPerf v4.1 targets"},
            "performance": {"validity": "VALID", "reasons": [], "metrics": {"samples_per_second": 1234.5},
                            "latency_ns": latency}},
        "bert-server": {
            "benchmark": "bert", "mlperf_names": ["bert-99", "bert-99.9"], "round": "v4.1", "demo": True, "samples": 10833,
            "settings": SETTINGS | {"benchmark": "bert", "scenario": "Server", "mode": "performance"},
            "performance": {"validity": "INVALID", "reasons": ["latency constraint not met"],
                            "metrics": {"completed_samples_per_second": 80.25}, "latency_ns": latency}},
        "resnet-offline-TEST04": {
            "benchmark": "resnet", "mlperf_names": ["resnet"], "round": "v4.1", "demo": False, "samples": 50000,
            "settings": SETTINGS | {"benchmark": "resnet", "scenario": "Offline", "mode": "performance"},
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


def test_a_report_into_a_path_that_cannot_be_written_is_a_clear_error(tmp_path, capsys):
    folders = results(tmp_path)
    (tmp_path / "a-file").write_text("")  # a parent that is a file fails even for root, who may write anywhere
    for option in ("--html", "--md", "--csv", "--json"):
        assert cli.main(["report", *map(str, folders), option, str(tmp_path / "a-file" / "report.out")]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: {tmp_path / 'a-file' / 'report.out'}: Not a directory; check that the path")
        assert "Traceback" not in error


def test_incomplete_runs_are_labelled_in_every_report(tmp_path, capsys):
    folders = results(tmp_path)
    made = json.loads((folders[1] / "result.json").read_text()) | {"incomplete": {"reason": "stopped by SIGTERM"}}
    (folders[1] / "result.json").write_text(json.dumps(made))
    assert cli.main(["report", *map(str, folders), "--md", str(tmp_path / "r.md"), "--html",
                     str(tmp_path / "r.html")]) == 0
    label = "INCOMPLETE RUN: stopped by SIGTERM."
    assert label in (tmp_path / "r.md").read_text() and label in (tmp_path / "r.html").read_text()
    assert "bert-server (demo, INCOMPLETE)" in (tmp_path / "r.md").read_text()
    assert label in report.render(report.load([folders[1]])[0])


def test_result_fields_that_could_build_paths_or_pages_are_checked(tmp_path, capsys):
    folders = results(tmp_path)
    made = json.loads((folders[0] / "result.json").read_text())
    for change, message in (({"settings": made["settings"] | {"n_devices": "<script>"}}, "'n_devices' is str"),
                            ({"round": "../../etc/passwd"}, "is not a round's name"),
                            ({"benchmark": "../resnet"}, "unknown benchmark '../resnet'"),
                            ({"mlperf_names": ["../../x"]}, "MLPerf names ['../../x'] are not resnet's"),
                            ({"compliance": {"test": "../TEST01"}}, "its compliance section names no known test"),
                            ({"settings": made["settings"] | {"scenario": "../Offline"}}, "scenario '../Offline'"),
                            ({"accuracy": made["accuracy"] | {"targets": 7}}, "'targets' is int, expected str"),
                            ({"accuracy": made["accuracy"] | {"variants": {"resnet": {"passed": True, "checks": [
                                {"metric": "acc", "value": "<b>76</b>", "target": 75.7, "ratio": 1.0,
                                 "passed": True}]}}}}, "'value' is str, expected int or float"),
                            ({"performance": made["performance"] | {"reasons": [{"x": 1}]}}, "reasons not text")):
        (folders[0] / "result.json").write_text(json.dumps(made | change))
        assert cli.main(["report", str(folders[0])]) == 2
        assert message in capsys.readouterr().err
    # where a run is now, not where its result.json says it was
    (folders[0] / "result.json").write_text(json.dumps(made | {"run_dir": "/etc"}))
    assert report.load([folders[0]])[0]["run_dir"] == str(folders[0].resolve())


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
