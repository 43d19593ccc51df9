"""Run untrusted programs, each in a locked-down container of its own.

A model's answer to a code-generation task is a program, and a program a model wrote is hostile
code: it runs only inside the evaluator image (``images/Dockerfile``, stage ``evaluator``), one
fresh container per program, started here through the Docker CLI, never on this machine. If the
CLI, the engine or the image is missing, ``check_available`` and ``Sandbox.run`` raise a
``HarnessError`` naming the fix; nothing falls back to running a program on the host.

Each container gets nothing of the host: no volume or bind mount, no network (``--network none``),
a read-only root file system with two small tmpfs folders (``/work`` for the program and what it
compiles to, ``/tmp``), a non-root user, no capabilities, no privilege gain, and limits on memory
(no swap), CPUs, processes and open files. The program goes in on stdin; the container's runner
(``images/evaluator/run_program.py``) compiles and runs it with the reference's rules and prints
one JSON verdict.

``Sandbox.run(language, program, timeout_s) -> Outcome`` never raises for anything a program does:
a program that fails, crashes, times out, exhausts memory (the engine kills the container, status
137) or leaves no verdict is an ``Outcome`` with ``passed=False`` and the reason in ``result``. A
wall timer on this side (``Limits.wall_s``) kills a container that outlives its time (``docker
kill``), so a call always returns. Only a container the engine could not start at all (status
125: no image, engine trouble) raises ``HarnessError``, since no program was judged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, NamedTuple

from harness.errors import HarnessError

IMAGE = "mlperf-harness/evaluator:latest"
USER = "65532:65532"  # the image's unprivileged user (never root)
COMPILED = frozenset({"cpp", "typescript"})  # languages with a compile step before the run
BUILD_FIX = "build it with `docker compose build evaluator` (or `images/build.sh evaluator`)"
_VERDICT_BYTES = 64 << 10  # the runner prints one short line; more than this is not a verdict
_STDERR_BYTES = 16 << 10
_CLI_TIMEOUT_S = 60.0  # for `docker version`, `image inspect` and `kill`


@dataclass(frozen=True)
class Limits:
    """What one container may use. Memory and swap are the same, so it never swaps; ``/work`` and
    ``/tmp`` are tmpfs and count against the memory too."""

    memory_mib: int = 512
    cpus: float = 1.0
    pids: int = 64
    work_mib: int = 64
    tmp_mib: int = 16
    nofile: int = 1024
    compile_timeout_s: float = 100.0  # the reference's, for g++ and tsc
    startup_slack_s: float = 15.0  # container start and teardown on a loaded machine

    def __post_init__(self) -> None:
        for name in ("memory_mib", "pids", "work_mib", "tmp_mib", "nofile"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive integer, not {value!r}")
        for name in ("cpus", "compile_timeout_s", "startup_slack_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, not {getattr(self, name)!r}")

    def wall_s(self, language: str, timeout_s: float) -> float:
        """How long this side waits for a container before killing it: the run's timeout, the
        compile timeout where the language has a compile step, and the start-up slack."""
        return timeout_s + (self.compile_timeout_s if language in COMPILED else 0.0) + self.startup_slack_s


@dataclass(frozen=True)
class Outcome:
    """The verdict on one program. ``result`` is "passed", "timed out" or why it failed;
    ``compiled`` is None for languages without a compile step (and when no verdict came back)."""

    passed: bool
    result: str
    timed_out: bool
    seconds: float
    compiled: bool | None = None


class Job(NamedTuple):
    language: str
    program: str
    timeout_s: float


class Sandbox:
    """Starts one evaluator container per program (see the module docstring)."""

    def __init__(self, image: str = IMAGE, limits: Limits | None = None) -> None:
        self.image = image
        self.limits = limits or Limits()

    def command(self, name: str) -> list[str]:
        """The ``docker run`` command line of one container. Nothing of the host is mounted."""
        lim = self.limits
        return [
            "docker", "run", "--rm", "-i", "--name", name,
            "--pull", "never",  # an image not built here is an error, never a download
            "--network", "none",
            "--read-only",
            "--tmpfs", f"/work:rw,exec,nosuid,nodev,size={lim.work_mib}m,mode=1777",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={lim.tmp_mib}m",
            "--user", USER,
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--pids-limit", str(lim.pids),
            "--memory", f"{lim.memory_mib}m",
            "--memory-swap", f"{lim.memory_mib}m",
            "--cpus", f"{lim.cpus:g}",
            "--ulimit", f"nofile={lim.nofile}:{lim.nofile}",
            "--ulimit", "core=0",
            "--log-driver", "none",  # nothing a container prints is kept on the host
            "--workdir", "/work",
            self.image,
        ]

    def check(self) -> None:
        check_available(self.image)

    def run(self, language: str, program: str, timeout_s: float) -> Outcome:
        """Judge one program in a fresh container; see the module docstring for what can fail."""
        if not isinstance(program, str) or not isinstance(language, str):
            raise TypeError("language and program must be strings")
        if not 0 < timeout_s <= 3600:
            raise ValueError(f"timeout_s must be in (0, 3600] seconds, not {timeout_s!r}")
        request = json.dumps({"language": language, "program": program, "timeout_s": timeout_s,
                              "compile_timeout_s": self.limits.compile_timeout_s}).encode()
        name = f"mlperf-sandbox-{uuid.uuid4().hex[:20]}"
        began = time.monotonic()
        try:
            proc = subprocess.Popen(self.command(name), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise HarnessError(_missing_cli()) from None
        stdout, stderr = _Capped(proc.stdout, _VERDICT_BYTES), _Capped(proc.stderr, _STDERR_BYTES)
        feeder = threading.Thread(target=_feed, args=(proc.stdin, request), daemon=True)
        feeder.start()
        try:
            status = proc.wait(self.limits.wall_s(language, timeout_s))
        except subprocess.TimeoutExpired:
            _kill(proc, name)
            return Outcome(False, "timed out", True, time.monotonic() - began)
        finally:
            for thread in (feeder, stdout, stderr):
                thread.join(10)
        seconds = time.monotonic() - began
        if status == 125:  # the engine never started the container: no program was judged
            said = " ".join(line.strip() for line in stderr.text().splitlines()
                            if line.strip() and not line.startswith("Run 'docker run --help'"))
            raise HarnessError(f"docker could not start an evaluator container from {self.image}: "
                               f"{said[-2000:]}; if the image is missing, {BUILD_FIX}")
        return _outcome(status, stdout, stderr, seconds)

    def run_many(self, jobs: Iterable[Job | tuple[str, str, float]], workers: int = 1) -> list[Outcome]:
        """Judge every job, each in its own container, ``workers`` at a time; outcomes in job order."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        jobs = [Job(*job) for job in jobs]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
            return list(pool.map(lambda job: self.run(*job), jobs))


class _Capped(threading.Thread):
    """Reads a pipe to its end, keeping at most ``cap`` bytes (the rest is read and dropped, so the
    writer never blocks); ``overflowed`` says whether there was more."""

    def __init__(self, pipe: IO[bytes], cap: int) -> None:
        super().__init__(daemon=True)
        self.pipe, self.cap = pipe, cap
        self.data = bytearray()
        self.overflowed = False
        self.start()

    def run(self) -> None:
        with self.pipe:
            while chunk := self.pipe.read1(65536):
                room = self.cap - len(self.data)
                self.data += chunk[:max(room, 0)]
                self.overflowed |= len(chunk) > room

    def text(self) -> str:
        return self.data.decode(errors="replace")


def _feed(pipe: IO[bytes], request: bytes) -> None:
    try:
        with pipe:
            pipe.write(request)
    except (BrokenPipeError, OSError):
        pass  # the container ended before reading it all: its status says why


def _kill(proc: subprocess.Popen, name: str) -> None:
    """End a container that outlived its time: the engine kills it (the CLI alone would leave it
    running), then the CLI goes; ``--rm`` removes the container, ``rm -f`` makes sure."""
    _cli(["docker", "kill", name])
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _cli(["docker", "rm", "-f", name])


def _outcome(status: int, stdout: _Capped, stderr: _Capped, seconds: float) -> Outcome:
    lines = stdout.text().strip().splitlines()
    verdict = None
    if status == 0 and not stdout.overflowed and len(lines) == 1:
        try:
            verdict = json.loads(lines[0])
        except ValueError:
            pass
    if (isinstance(verdict, dict) and isinstance(verdict.get("passed"), bool)
            and isinstance(verdict.get("result"), str) and verdict.get("compiled") in (True, False, None)):
        return Outcome(verdict["passed"], verdict["result"], verdict["result"] == "timed out", seconds,
                       verdict["compiled"])
    if status == 137:
        reason = "failed: the container was killed (status 137: out of memory?)"
    elif status == 0:
        reason = "failed: the container printed no verdict"
    else:
        said = stderr.text().strip()[-500:]
        reason = f"failed: the container ended with status {status} and no verdict" + (f": {said}" if said else "")
    return Outcome(False, reason, False, seconds)


def _cli(argv: Sequence[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_CLI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _missing_cli() -> str:
    return ("the docker CLI was not found on PATH: model-generated programs run only in the evaluator "
            f"container, never on this machine; install Docker (Engine and CLI), then {BUILD_FIX}")


def check_available(image: str = IMAGE) -> None:
    """Raise ``HarnessError`` unless programs can run: the docker CLI is on PATH, its engine
    answers, and ``image`` is built locally. Each message names the fix."""
    if shutil.which("docker") is None:
        raise HarnessError(_missing_cli())
    done = _cli(["docker", "version", "--format", "{{.Server.Version}}"])
    if done is None or done.returncode != 0:
        said = "no answer" if done is None else (done.stderr.strip() or done.stdout.strip())[-500:]
        raise HarnessError(f"the Docker engine is not reachable (`docker version`: {said}): start the engine "
                           "(or make its socket readable to this user), then, if it is not built yet, "
                           f"the evaluator image: {BUILD_FIX}")
    done = _cli(["docker", "image", "inspect", "--format", "{{.Id}}", image])
    if done is None or done.returncode != 0:
        said = "no answer" if done is None else (done.stderr.strip() or done.stdout.strip())[-500:]
        raise HarnessError(f"the evaluator image {image} is not built here ({said}): {BUILD_FIX}")
