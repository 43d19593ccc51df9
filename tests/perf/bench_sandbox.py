"""Sandbox throughput: problems per second judged one container at a time vs several in parallel.

Prints, measured in this one run (the machine is noisy, so compare within a run), the problems/s
of N small programs in mixed languages (each a passing task-style program, every one in its own
container) with 1 worker and with --workers workers, and their ratio. Needs the evaluator image
(`docker compose build evaluator` or `images/build.sh evaluator`).

Usage: python tests/perf/bench_sandbox.py [--programs 24] [--workers 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.sandbox import IMAGE, Job, Limits, Sandbox, check_available  # noqa: E402

# small passing programs, one per language, in the style of the tasks' tests
PROGRAMS = {
    "python": "def add(a, b):\n    return a + b\n\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n\n\n"
              "check(add)\n",
    "ruby": "def add(a, b)\n  a + b\nend\n\nraise 'Exception -- test case 0 did not pass.' if add(2, 3) != 5\n",
    "php": "<?php\nfunction add($a, $b){\n    return $a + $b;\n}\nif (add(2, 3) != 5) {\n"
           "    throw new Exception(\"Error at 1th assert statement.\");\n}\n",
    "javascript": "function add(a, b) {\n    return a + b;\n}\nconst _ = require(\"lodash\")\n"
                  "if (!_.isEqual(add(2, 3), 5)) {\n    throw 'Error at 1th assert statement.'\n}\n",
    "cpp": "#include <bits/stdc++.h>\nusing namespace std;\nint add(int a, int b) { return a + b; }\n"
           "int main() {\n    if (add(2, 3) != 5) throw runtime_error(\"Exception -- test case 0 did not pass.\");\n}\n",
    "typescript": "const add = function (a: number, b: number) : number {\n    return a + b;\n}\n"
                  "import * as assert from 'assert'\nassert.deepEqual(add(2, 3), 5, \"Exception --- test case 0\");\n",
}


def measure(sandbox: Sandbox, jobs: list[Job], workers: int) -> float:
    began = time.monotonic()
    outcomes = sandbox.run_many(jobs, workers=workers)
    elapsed = time.monotonic() - began
    failed = [(job.language, o.result) for job, o in zip(jobs, outcomes) if not o.passed]
    assert not failed, failed
    return len(jobs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=24, help="how many programs (languages in turn)")
    parser.add_argument("--workers", type=int, default=4, help="containers at a time for the parallel run")
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    check_available(args.image)
    sandbox = Sandbox(args.image, Limits())
    languages = list(PROGRAMS)
    jobs = [Job(languages[i % len(languages)], PROGRAMS[languages[i % len(languages)]], 20.0)
            for i in range(args.programs)]
    sandbox.run("python", PROGRAMS["python"], 20.0)  # warm the engine's caches
    serial = measure(sandbox, jobs, 1)
    parallel = measure(sandbox, jobs, args.workers)
    print(f"{args.programs} programs ({', '.join(languages)}), each in its own container")
    print(f"  1 worker:   {serial:6.2f} problems/s")
    print(f"  {args.workers} workers: {parallel:6.2f} problems/s")
    print(f"  ratio:      {parallel / serial:6.2f}x")


if __name__ == "__main__":
    main()
