"""The evaluator sandbox through a real Docker engine (marker ``docker``): every language with a
passing and a failing program written as the code-generation tasks write their tests, and hostile
programs, each contained and reported as a failed program in bounded time.

The image is built once per module with the project's own script, `images/build.sh evaluator`
(honouring BASE_IMAGE), as a user would.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.sandbox import IMAGE, Job, Limits, Sandbox, check_available

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
HOSTILE_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    done = subprocess.run(["docker", "info"], capture_output=True, check=False) if _has_docker() else None
    if done is None or done.returncode != 0:
        pytest.fail("Docker engine not reachable (`docker info` failed): start the Docker daemon")
    # the evaluator installs Debian packages only: no wheelhouse to serve for it
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_WHEELS"}
    built = subprocess.run(["images/build.sh", "evaluator"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert built.returncode == 0, f"images/build.sh evaluator failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    check_available(IMAGE)
    return Sandbox(IMAGE, Limits())


def _has_docker() -> bool:
    from shutil import which

    return which("docker") is not None


# -- each language: one passing and one failing program, in the tasks' own test style ------------

CPP = """#include <bits/stdc++.h>
using namespace std;

/**
 * Write a function to find squares of individual elements in a list using lambda function.
 */
vector<int> squareNums(vector<int> nums) {
    vector<int> squares;
    transform(nums.begin(), nums.end(), back_inserter(squares), [](int x) { return x * %s; });
    return squares;
}

template <typename T> bool compare(T a, T b) { return a == b; }

int main(int argc, char* argv[]) {
    vector<int> x0 = squareNums(vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    if (!(compare(x0, {1, 4, 9, 16, 25, 36, 49, 64, 81, 100}))) {
        throw runtime_error("Exception -- test case 0 did not pass. x0 = ");
    }
    vector<int> x1 = squareNums(vector<int>{10, 20, 30});
    if (!(compare(x1, {100, 400, 900}))) {
        throw runtime_error("Exception -- test case 1 did not pass. x1 = ");
    }
    return 0;
}
"""

PYTHON = '''def square_nums(nums):
    return list(map(lambda x: x * %s, nums))


def check(candidate):
    assert candidate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
    assert candidate([10, 20, 30]) == [100, 400, 900]
    assert candidate([12, 15]) == [144, 225]


check(square_nums)
'''

PHP = """<?php

/**
 * You are an expert PHP programmer, and here is your task.
 * * Write a function to find squares of individual elements in a list using lambda function.
 */
function squareNums($nums){
    return array_map(function($x) { return $x * %s; }, $nums);
}

function compare($x, $y) {
    return $x == $y;
}

$arg00 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
$x0 = squareNums($arg00);
$v0 = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100];
if (!compare($x0, $v0)) {
    throw new Exception("Error at 1th assert statement.");
}
$arg10 = [10, 20, 30];
$x1 = squareNums($arg10);
$v1 = [100, 400, 900];
if (!compare($x1, $v1)) {
    throw new Exception("Error at 2th assert statement.");
}
"""

JAVASCRIPT = """/**
 * * Write a function to find squares of individual elements in a list using lambda function.
 */
function squareNums(nums) {
    return nums.map((x) => x * %s);
}

const _ = require("lodash")

function compare(object1, object2){
    return _.isEqual(object1, object2)
}

var arg00 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
var x0 = squareNums(arg00);
var v0 = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100];
if(!compare(x0, v0)){
    throw 'Error at 1th assert statement. Value = ' + JSON.stringify(x0)
}

var arg10 = [10, 20, 30];
var x1 = squareNums(arg10);
var v1 = [100, 400, 900];
if(!compare(x1, v1)){
    throw 'Error at 2th assert statement. Value = ' + JSON.stringify(x1)
}
"""

RUBY = """##
# Write a function to find squares of individual elements in a list using lambda function.
def square_nums(nums)
  nums.map { |x| x * %s }
end

arg00 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
x0 = square_nums(arg00)
v0 = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
if x0 != v0
    raise "Exception -- test case 0 did not pass."
end

arg10 = [10, 20, 30]
x1 = square_nums(arg10)
v1 = [100, 400, 900]
if x1 != v1
    raise "Exception -- test case 1 did not pass."
end
"""

# The tasks' TypeScript tests import node's assert, for which tsc finds no type declarations: a
# sound program compiles with status 2 (TS2307, JavaScript still emitted), which is exactly what
# the reference counts as compiled.
TYPESCRIPT = """/**
 * Write a function to find squares of individual elements in a list using lambda function.
 */
const square_nums = function (nums: Array<number>) : Array<number>  {
    return nums.map((x: number) => x * %s);
}

import * as assert from 'assert'

let actual_1 = square_nums([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
let expected_1 = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100];
assert.deepEqual(actual_1, expected_1, "Exception --- test case 0 failed to pass");

let actual_2 = square_nums([10, 20, 30]);
let expected_2 = [100, 400, 900];
assert.deepEqual(actual_2, expected_2, "Exception --- test case 1 failed to pass");
"""

PROGRAMS = {"cpp": CPP, "python": PYTHON, "php": PHP, "javascript": JAVASCRIPT, "ruby": RUBY,
            "typescript": TYPESCRIPT}
# (language, right answer?): the failing program doubles instead of squaring
CASES = [(language, right) for language in PROGRAMS for right in (True, False)]
LANGUAGE_TIMEOUT_S = 20.0  # the tasks' own


@pytest.fixture(scope="module")
def language_outcomes(sandbox) -> dict:
    """Every language case, judged in one batch of two workers (this machine's cores)."""
    def program(language: str, right: bool) -> str:
        return PROGRAMS[language].replace("%s", ("$x" if language == "php" else "x") if right else "2")

    jobs = [Job(language, program(language, right), LANGUAGE_TIMEOUT_S) for language, right in CASES]
    return dict(zip(CASES, sandbox.run_many(jobs, workers=2)))


@pytest.mark.parametrize("language, right", CASES, ids=[f"{lang}-{'pass' if r else 'fail'}" for lang, r in CASES])
def test_each_language(language_outcomes, language, right):
    outcome = language_outcomes[(language, right)]
    assert outcome.passed is right, outcome
    assert not outcome.timed_out and outcome.seconds < 30
    assert outcome.compiled is ({"cpp": True, "typescript": True}.get(language)), outcome
    if right:
        assert outcome.result == "passed"
    else:
        expected = {"cpp": "Exception -- test case 0 did not pass", "python": "failed: ",
                    "php": "Error at 1th assert statement", "javascript": "Error at 1th assert statement",
                    "ruby": "Exception -- test case 0 did not pass",
                    "typescript": "Exception --- test case 0 failed to pass"}[language]
        assert expected in outcome.result, outcome


def test_the_compile_rules(sandbox):
    """C++ that does not compile fails as not compiled; TypeScript that tsc accepts with status 0
    is not counted as compiled either: the reference's rule is status 2, exactly."""
    broken = sandbox.run("cpp", "int main() { return undeclared; }\n", 20)
    assert not broken.passed and broken.compiled is False
    assert broken.result.startswith("compilation failed: exit status 1") and "undeclared" in broken.result
    clean = sandbox.run("typescript", "let total: number = [1, 2].length;\n", 20)
    assert not clean.passed and clean.compiled is False and "status 0" in clean.result


# -- hostile programs --------------------------------------------------------------------------


def hostile(sandbox: Sandbox, language: str, program: str):
    """Judge a hostile program; it must end as a failed program, within its timeout + slack."""
    began = time.monotonic()
    outcome = sandbox.run(language, program, HOSTILE_TIMEOUT_S)
    elapsed = time.monotonic() - began
    assert not outcome.passed, outcome
    compile_s = 10 if language in ("cpp", "typescript") else 0
    assert elapsed < HOSTILE_TIMEOUT_S + compile_s + 6, (elapsed, outcome)
    return outcome


@pytest.mark.parametrize("program", [
    "while True:\n    pass\n",
    # swallows the alarm that ends a Python program: the runner's own timer kills it
    "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
], ids=["busy-loop", "alarm-swallowing-loop"])
def test_an_infinite_loop_times_out(sandbox, program):
    outcome = hostile(sandbox, "python", program)
    assert outcome.timed_out and outcome.result == "timed out"
    assert outcome.seconds < HOSTILE_TIMEOUT_S + 4


def test_a_fork_bomb_is_contained(sandbox):
    outcome = hostile(sandbox, "ruby", "loop { fork rescue nil }\n")  # every process forks forever
    assert outcome.timed_out
    after = sandbox.run("ruby", "raise 'x' unless 1 + 1 == 2\n", 20)  # and nothing of it is left in the way
    assert after.passed, after


FORK_COUNT = r"""#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

int main() {
    for (int n = 0; n < 1000; ++n) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "fork refused after %d processes: %s\n", n, strerror(errno));
            return 1;
        }
        if (pid == 0) {  // a sleeper that lets go of the output, so the verdict need not wait for it
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            sleep(60);
            _exit(0);
        }
    }
    return 0;
}
"""


def test_processes_are_limited(sandbox):
    outcome = hostile(sandbox, "cpp", FORK_COUNT)
    assert "fork refused after" in outcome.result and "Resource temporarily unavailable" in outcome.result
    count = int(outcome.result.split("fork refused after ")[1].split()[0])
    assert count < Limits().pids


def test_filling_the_disk_ends_in_enospc(sandbox):
    program = ("chunk = b'\\0' * (1 << 20)\n"
               "for i in range(10 ** 6):\n"
               "    with open(f'/work/fill-{i}', 'wb') as f:\n"
               "        for _ in range(8):\n"
               "            f.write(chunk)\n")
    outcome = hostile(sandbox, "python", program)
    assert outcome.result == "failed: [Errno 28] No space left on device", outcome


def test_a_file_bigger_than_the_file_limit_is_refused(sandbox):
    outcome = hostile(sandbox, "ruby", "File.open('/work/big', 'wb') { |f| 64.times { f.write(\"\\0\" * (1 << 20)) } }\n")
    assert "SIGXFSZ" in outcome.result or "File too large" in outcome.result, outcome


@pytest.fixture
def listener():
    """A TCP port listening on every address of this machine: what a networked container could reach."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _bridge_gateway() -> str:
    done = subprocess.run(["docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "172.17.0.1"


def test_there_is_no_network(sandbox, listener):
    program = ("import socket\n"
               "assert [name for _, name in socket.if_nameindex()] == ['lo'], socket.if_nameindex()\n"
               f"socket.create_connection(({_bridge_gateway()!r}, {listener}), timeout=2).close()\n")
    outcome = hostile(sandbox, "python", program)
    assert outcome.result == "failed: [Errno 101] Network is unreachable", outcome


def test_the_host_is_not_visible(sandbox, tmp_path):
    token = secrets.token_hex(16)
    marker = tmp_path / "marker.txt"
    marker.write_text(token)
    # passes (a breach) if it can read any of these host files
    program = ("import socket\n"
               f"for path in ({str(marker)!r}, {str(ROOT / 'README.md')!r}, {str(ROOT / '.git' / 'HEAD')!r}):\n"
               "    try:\n"
               "        open(path).read()\n"
               "        break\n"
               "    except OSError:\n"
               "        pass\n"
               "else:\n"
               f"    assert open('/etc/hostname').read().strip() == {socket.gethostname()!r}, 'not the host'\n")
    outcome = hostile(sandbox, "python", program)
    assert outcome.result == "failed: not the host", outcome
    reader = sandbox.run("javascript", f"require('fs').readFileSync({str(marker)!r});\n", HOSTILE_TIMEOUT_S)
    assert not reader.passed and "ENOENT" in reader.result, reader


def test_memory_exhaustion_is_contained(sandbox):
    # touches 2 GiB (a limit that did not hold would let it pass), 64 MiB at a time
    program = "chunks = []\nfor _ in range(32):\n    chunks.append(b'\\x01' * (64 << 20))\n"
    outcome = hostile(sandbox, "python", program)
    assert "killed" in outcome.result and "out of memory" in outcome.result, outcome


def test_run_many_in_parallel_keeps_the_order(sandbox):
    jobs = [Job("python", f"assert {i} % 3 != 0, 'job {i}'\n", 20) for i in range(8)]
    outcomes = sandbox.run_many(jobs, workers=4)
    assert [o.passed for o in outcomes] == [i % 3 != 0 for i in range(8)]
    assert [o.result for o in outcomes if not o.passed] == ["failed: job 0", "failed: job 3", "failed: job 6"]


def test_the_host_timer_kills_a_container_that_outlives_it(sandbox):
    """With no slack on this side, its timer fires before the runner's own: the container is
    killed by name and gone, and the call returns in time."""
    tight = Sandbox(sandbox.image, Limits(startup_slack_s=0.3))
    began = time.monotonic()
    outcome = tight.run("python", "while True:\n    pass\n", 2.0)
    assert outcome.timed_out and outcome.result == "timed out" and time.monotonic() - began < 10
    for _ in range(20):  # the engine removes it (--rm) a moment after it ends
        left = subprocess.run(["docker", "ps", "-a", "--filter", "name=mlperf-sandbox-", "--format", "{{.Names}}"],
                              capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
