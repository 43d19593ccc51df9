#!/usr/bin/env python3
"""Judge one model-generated program, inside the evaluator container (the image's entrypoint).

The program is hostile code. This runner is only ever the first process of a container that
harness/sandbox.py starts for that one program (no network, a read-only root, no capabilities, a
small tmpfs at /work, memory, CPU and process limits), and it refuses to run anywhere else.

    stdin   ONE JSON object: {"language": str, "program": str, "timeout_s": number,
            "compile_timeout_s": number (optional, default 100)}
    stdout  ONE JSON line: {"passed": bool, "result": str, "compiled": bool | null}
            result: "passed", "timed out", or "failed: ..." / "compilation failed: ..." with the
            tail of what the program or its compiler wrote to stderr (stdout when stderr is empty)
            compiled: null for languages without a compile step
    status  0 whatever the program did; 2 for a request this runner cannot read, 1 when it could
            not set the program up (then stdout holds no verdict and stderr says why)

How each language is judged follows the reference checks of the code-generation evaluation:

    cpp         g++ program.cpp -o program_cpp (compiled iff status 0), then ./program_cpp
    typescript  tsc program.ts --target es5 --lib es2016, compiled ONLY when tsc exits with
                status 2, as the reference counts it (its test code imports node's `assert`,
                which tsc finds no types for, so a sound program compiles with status 2 and
                its JavaScript emitted; a status of 0 does not count), then node program.js
    javascript  node program.js;  php: php program.php;  ruby: ruby program.rb
    python      the program text is exec'ed in a child `python3 -I`, after a guard that disables
                destructive functions, with stdout and stderr swallowed and stdin unreadable,
                under an alarm of timeout_s: "passed", "failed: <exception>" or "timed out"

A program passes iff it exits with status 0 within timeout_s (compilers get compile_timeout_s).
On expiry the program's whole process group is killed, and then every other process in the
container, so that nothing it left behind outlives its verdict. Each child also runs under
rlimits (file size, CPU time, processes, no core files): a second layer under the container's.
"""

from __future__ import annotations

import json
import math
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WORK = Path("/work")
STEM = "program"
COMPILE_TIMEOUT_S = 100.0
PYTHON_GRACE_S = 1.0  # the python child's own alarm fires first; this is for one that ignores it
TAIL_BYTES = 4096  # of each output stream kept while a program runs
RESULT_CHARS = 1000  # of that tail put into a verdict
FILE_LIMIT = 16 << 20
# RLIMIT_NPROC counts the processes of a uid across the whole machine, and every evaluator
# container runs as the same uid: it is a loose backstop for several containers at once, and the
# per-container bound is the engine's pids limit.
PROCESS_LIMIT = 512
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}


@dataclass(frozen=True)
class Recipe:
    """How one language is compiled (optional) and run, in /work."""

    source: str
    run: tuple[str, ...]
    compile: tuple[str, ...] = ()
    compiled_status: int = 0  # the compiler's exit status that counts as compiled


LANGUAGES: dict[str, Recipe] = {
    "cpp": Recipe(f"{STEM}.cpp", (f"{WORK}/{STEM}_cpp",), ("g++", f"{STEM}.cpp", "-o", f"{STEM}_cpp")),
    "typescript": Recipe(f"{STEM}.ts", ("node", f"{STEM}.js"),
                         ("tsc", f"{STEM}.ts", "--target", "es5", "--lib", "es2016"), compiled_status=2),
    "javascript": Recipe(f"{STEM}.js", ("node", f"{STEM}.js")),
    "php": Recipe(f"{STEM}.php", ("php", f"{STEM}.php")),
    "ruby": Recipe(f"{STEM}.rb", ("ruby", f"{STEM}.rb")),
    "python": Recipe(f"{STEM}.py", ()),  # run by python_child, in a process of its own
}


@dataclass(frozen=True)
class Finished:
    status: int | None  # exit status, -N for a signal N; None: timed out
    stdout: str
    stderr: str

    def tail(self) -> str:
        return (self.stderr.strip() or self.stdout.strip())[-RESULT_CHARS:]


def verdict(passed: bool, result: str, compiled: bool | None) -> dict:
    return {"passed": passed, "result": result, "compiled": compiled}


def limit_child(cpu_s: float) -> None:
    """In the child, before exec: the rlimits of the second layer."""
    cpu = math.ceil(cpu_s)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
    try:  # at the container's memory limit, the kernel kills the program, not this runner
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass


def end_everything(child: subprocess.Popen) -> None:
    """Kill the child's process group and, as the container's first process, every other process
    in it: what a program forked into a session of its own must not outlive its verdict."""
    for target in (-child.pid, -1) if os.getpid() == 1 else (-child.pid,):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    child.wait()
    if os.getpid() == 1:  # orphans are ours to reap
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


def execute(argv: tuple[str, ...] | list[str], timeout_s: float) -> Finished:
    """Run argv in /work; keep the tail of each output stream; None status on timeout. The verdict
    waits for the child AND its output to end (a background process still holding the output
    open keeps it running, as in the reference), at most timeout_s."""
    child = subprocess.Popen(argv, cwd=WORK, env=CHILD_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True,
                             preexec_fn=lambda: limit_child(timeout_s + 1))
    deadline = time.monotonic() + timeout_s
    out_fd, err_fd = child.stdout.fileno(), child.stderr.fileno()
    tails = {out_fd: bytearray(), err_fd: bytearray()}
    timed_out = False
    with selectors.DefaultSelector() as selector:
        for fd in tails:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                tail = tails[key.fd]
                tail += chunk
                del tail[:-TAIL_BYTES]
    if not timed_out:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    end_everything(child)
    child.stdout.close()
    child.stderr.close()
    return Finished(None if timed_out else child.returncode, tails[out_fd].decode(errors="replace"),
                    tails[err_fd].decode(errors="replace"))


def describe_failure(done: Finished, what: str = "failed") -> str:
    status = done.status
    if status is not None and status < 0:
        try:
            how = f"killed by {signal.Signals(-status).name}"
        except ValueError:
            how = f"killed by signal {-status}"
        how += " (out of memory?)" if status == -signal.SIGKILL else ""
    else:
        how = f"exit status {status}"
    tail = done.tail()
    return f"{what}: {how}" + (f": {tail}" if tail else "")


def judge(language: str, program: str, timeout_s: float, compile_timeout_s: float) -> dict:
    recipe = LANGUAGES.get(language)
    if recipe is None:
        return verdict(False, f"unknown language {language!r} (known: {', '.join(sorted(LANGUAGES))})", None)
    source = WORK / recipe.source
    source.write_text(program, encoding="utf-8")
    if language == "python":
        return judge_python(source, timeout_s)
    compiled: bool | None = None
    if recipe.compile:
        done = execute(recipe.compile, compile_timeout_s)
        if done.status is None:
            return verdict(False, "timed out", False)
        compiled = done.status == recipe.compiled_status
        if not compiled:
            if language == "typescript" and done.status == 0:
                return verdict(False, "compilation failed: tsc exited with status 0, and only status 2 counts as "
                                      "compiled (the reference's rule)", False)
            return verdict(False, describe_failure(done, "compilation failed"), False)
    done = execute(recipe.run, timeout_s)
    if done.status is None:
        return verdict(False, "timed out", compiled)
    if done.status == 0:
        return verdict(True, "passed", compiled)
    return verdict(False, describe_failure(done), compiled)


def judge_python(source: Path, timeout_s: float) -> dict:
    done = execute([sys.executable, "-I", os.path.abspath(__file__), "--python-child", str(source), str(timeout_s)],
                   timeout_s + PYTHON_GRACE_S)
    if done.status is None:
        return verdict(False, "timed out", None)
    lines = done.stdout.strip().splitlines()
    line = lines[-1] if lines else ""
    if line == "passed" or line == "timed out" or line.startswith("failed: "):
        return verdict(line == "passed", line[:RESULT_CHARS], None)
    return verdict(False, describe_failure(done), None)


# -- the python child ---------------------------------------------------------------------------


class _TimedOut(Exception):
    pass


class _Sink:
    """What the program sees as stdin, stdout and stderr: writes vanish, reads fail."""

    def write(self, text: str) -> int:
        return len(text)

    def writelines(self, lines) -> None:
        pass

    def flush(self) -> None:
        pass

    def read(self, *args):
        raise OSError("stdin is not readable")

    readline = readlines = read

    def readable(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("no file descriptor")


def guard() -> None:
    """Disable destructive functions before the program runs, as the reference's reliability guard
    does: not a sandbox (the container is), but what the program may call is the same."""
    import builtins
    import faulthandler
    import shutil

    faulthandler.disable()
    os.environ["OMP_NUM_THREADS"] = "1"
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def python_child(path: str, timeout_s: float) -> None:
    """exec the program in this process; print its verdict on the stdout it started with."""
    report = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)  # what the program writes to fd 1 must not mix with the verdict
    program = Path(path).read_text(encoding="utf-8")
    exit_now = os._exit

    def alarm(signum, frame):
        raise _TimedOut()

    signal.signal(signal.SIGALRM, alarm)
    guard()
    sink = _Sink()
    sys.stdin, sys.stdout, sys.stderr = sink, sink, sink
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            exec(program, {})  # fresh globals, as the reference's (so __name__ is not "__main__")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        outcome = "passed"
    except _TimedOut:
        outcome = "timed out"
    except BaseException as error:  # noqa: BLE001 - SystemExit too: the reference counts it a failure
        outcome = f"failed: {error}"
    try:
        report.write(outcome.replace("\n", " ")[:RESULT_CHARS] + "\n")
        report.flush()
    finally:
        exit_now(0)


# -- the runner ---------------------------------------------------------------------------------


def read_request(text: str) -> tuple[str, str, float, float]:
    request = json.loads(text)
    if not isinstance(request, dict):
        raise ValueError("the request is not a JSON object")
    language, program = request.get("language"), request.get("program")
    timeout_s = request.get("timeout_s")
    compile_timeout_s = request.get("compile_timeout_s", COMPILE_TIMEOUT_S)
    if not isinstance(language, str) or not isinstance(program, str):
        raise ValueError("'language' and 'program' must be strings")
    for name, value in (("timeout_s", timeout_s), ("compile_timeout_s", compile_timeout_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise ValueError(f"{name!r} must be a number of seconds in (0, 3600], not {value!r}")
    return language, program, float(timeout_s), float(compile_timeout_s)


def non_dumpable() -> None:
    """Keep the program (same uid) out of this process: no ptrace, no /proc/1/fd/1 to forge or
    flood the verdict through."""
    import ctypes

    PR_SET_DUMPABLE = 4
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--python-child"]:
        python_child(argv[1], float(argv[2]))
        return 0
    if os.getpid() != 1:
        print("run-program: refusing to run: it judges hostile programs only as the first process of an "
              "evaluator container, which harness/sandbox.py starts", file=sys.stderr)
        return 1
    non_dumpable()
    try:
        language, program, timeout_s, compile_timeout_s = read_request(sys.stdin.read())
    except (ValueError, UnicodeDecodeError) as error:
        print(f"run-program: bad request: {error}", file=sys.stderr)
        return 2
    try:
        result = judge(language, program, timeout_s, compile_timeout_s)
    except OSError as error:
        print(f"run-program: cannot set the program up: {error} (the container needs a writable tmpfs at "
              f"{WORK}, as harness/sandbox.py mounts it)", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
