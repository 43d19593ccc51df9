"""Live progress: what a test process writes and how the runner shows it, on a terminal and not."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import termios
import time

from harness import progress


def state(**changes):
    return {"issued": 50, "completed": 40, "failed": 0, "elapsed_s": 4.0, "expected": 100,
            "min_duration_s": 600.0} | changes


def test_the_line_says_how_far_how_fast_and_how_long():
    assert progress.describe(state()) == \
        "40/100 samples (40%), 10.0 samples/s, 4 s elapsed of at least 600 s, ETA 6 s"
    assert progress.describe(state(expected=None, failed=2, min_duration_s=0)) == \
        "40/? samples, 10.0 samples/s, 4 s elapsed, 2 failed"


def test_a_test_process_reports_until_told_to_stop(tmp_path):
    counter = {"n": 0}

    def snapshot():
        counter["n"] += 1
        return state(completed=counter["n"])

    done = progress.reporter(tmp_path, snapshot, interval_s=0.05)
    time.sleep(0.3)
    done.set()
    time.sleep(0.2)
    final = progress.read(tmp_path)["completed"]
    assert final >= 3 and final == counter["n"]  # the last snapshot is written when it stops
    assert not list(tmp_path.glob(".*.tmp"))


def test_plain_lines_when_not_on_a_terminal(tmp_path):
    progress.write(tmp_path, state())
    out = io.StringIO()
    display = progress.Display([("accuracy", tmp_path), ("missing", tmp_path / "none")], out, interval_s=0)
    display.update()
    display.close()
    line = "  progress accuracy: 40/100 samples (40%), 10.0 samples/s, 4 s elapsed of at least 600 s, ETA 6 s\n"
    assert out.getvalue() == line * 2  # and the final state when the tests end
    quiet = io.StringIO()
    display = progress.Display([("accuracy", tmp_path)], quiet, interval_s=3600)
    display.update()
    assert quiet.getvalue() == ""  # not yet due
    display.close()
    assert quiet.getvalue() == line


def test_a_run_shows_its_progress(tmp_path, demo_data, capsys):
    from harness import cli

    (tmp_path / "short.conf").write_text("*.Offline.min_duration = 0\n*.Offline.target_qps = 500\n")
    assert cli.main(["run", "resnet", "--mode", "performance", "--null-backend", "--user-conf",
                     str(tmp_path / "short.conf"), "--data", str(demo_data("resnet")), "--out", str(tmp_path / "r")]) == 0
    # the embedded mlperf.conf asks for 24576 samples in the one Offline query
    assert "  progress performance: 24576/24576 samples (100%)" in capsys.readouterr().out


def read_terminal(master: int) -> str:
    """Everything written to the terminal so far."""
    shown = b""
    while select.select([master], [], [], 0.2)[0]:
        shown += os.read(master, 65536)
    return shown.decode(errors="replace")


def test_a_live_bar_on_a_terminal(tmp_path):
    progress.write(tmp_path, state())
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    with os.fdopen(slave, "w") as terminal:
        display = progress.Display([("performance", tmp_path)], terminal)
        assert display.terminal
        display.update()
        first = read_terminal(master)
        progress.write(tmp_path, state(completed=100, elapsed_s=9.0))
        display.close()
        last = read_terminal(master)
    os.close(master)
    assert "performance" in first and "40/100" in first and "4/600 s" in first
    assert "\r" in last and "100/100" in last and "9/600 s" in last  # redrawn in place
