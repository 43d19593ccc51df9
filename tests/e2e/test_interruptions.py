"""Runs that end early leave their folder marked incomplete, with the reason: a test process killed
(kill -9, as the out-of-memory killer does), the harness interrupted (Ctrl-C, SIGTERM) or killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli

pytestmark = pytest.mark.slow


def workers(parent: int) -> list[int]:
    """The LoadGen test processes (harness.worker) the harness process ``parent`` started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"harness.worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except OSError:
        return True


class Run:
    """``harness run gptj`` on the whole GPT-J demo (about 15 s of generation) in its own session."""

    def __init__(self, data: Path, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", "gptj", "--mode", "accuracy", "--data", str(data), "--out",
             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while not (self.workers() and (out / "accuracy" / "progress.json").is_file()):  # LoadGen is running
            assert self.proc.poll() is None and time.monotonic() < deadline, self.proc.communicate()
            time.sleep(0.2)
        self.worker = self.workers()[0]

    def workers(self) -> list[int]:
        return workers(self.proc.pid)

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err

    def result(self) -> dict:
        return json.loads((self.out / "result.json").read_text())


@pytest.fixture
def data(demo_data):
    return demo_data("gptj")


def test_a_killed_test_process_marks_the_run_incomplete(data, tmp_path):
    run = Run(data, tmp_path / "run")
    os.kill(run.worker, signal.SIGKILL)
    status, out, err = run.finish()
    assert status == 2 and "accuracy was killed by SIGKILL (out of memory, or killed by hand)" in err
    reason = run.result()["incomplete"]["reason"]
    assert "accuracy was killed by SIGKILL" in reason
    report = (tmp_path / "run" / "report.txt").read_text()
    assert "INCOMPLETE RUN: a LoadGen test failed" in report and "INCOMPLETE RUN" in out
    assert "accuracy" not in run.result()


@pytest.mark.parametrize("sent, status, reason", [
    (signal.SIGINT, 130, "interrupted by Ctrl-C (SIGINT)"),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
])
def test_an_interrupted_harness_stops_its_tests_and_says_so(data, tmp_path, capsys, sent, status, reason):
    run = Run(data, tmp_path / "run")
    if sent == signal.SIGINT:
        os.killpg(run.proc.pid, sent)  # Ctrl-C in a terminal signals the whole foreground group
    else:
        run.proc.send_signal(sent)  # `docker stop`, a batch system: the harness alone
    code, out, err = run.finish()
    assert code == status and reason in err and "the test processes were stopped" in err
    assert gone(run.worker)
    assert run.result()["incomplete"] == {"reason": reason}
    assert f"INCOMPLETE RUN: {reason}" in (tmp_path / "run" / "report.txt").read_text()
    # the commands that read run folders label it, or refuse it
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    assert "(demo, INCOMPLETE)" in capsys.readouterr().out
    assert cli.main(["diff", str(tmp_path / "run"), str(tmp_path / "run")]) == 2
    assert f"is an incomplete run ({reason})" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 2
    assert "is an incomplete run" in capsys.readouterr().err


def test_a_killed_harness_leaves_its_run_marked_incomplete(data, tmp_path):
    run = Run(data, tmp_path / "run")
    run.proc.kill()
    run.finish()
    try:
        assert "the harness ended before the run finished" in run.result()["incomplete"]["reason"]
    finally:
        for pid in run.workers() + [run.worker]:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
