#!/usr/bin/env python3
"""The images' entrypoint: run the harness as the user the results belong to.

    entrypoint [ARG...]          benchmark image: the image's benchmark with the knobs of the
                                 evaluation notes as environment variables (SCENARIO, MODE,
                                 N_COUNT, DATA_TYPE, DEVICE, N_DEVICES, N_PARTITIONS,
                                 PARTITION_OFFSET, BATCH_SIZE, HARNESS_ARGS); MODE unset runs
                                 accuracy, then performance
    entrypoint harness ARG...    another harness command (verify, prepare, report, collect, ...)
    entrypoint tests ARG...      pytest on the mounted checkout (the tests image)

The container starts as root only to settle who owns what. The run folders on the host belong to
the owner of the results folder; when root owns it (the engine creates a missing ``./results`` as
root, whoever runs ``docker compose``), to the owner of the checkout compose mounts read-only at
``CHECKOUT``, which on a fresh clone is whoever cloned it, and the folder is handed to them. A
benchmark then runs as that user, and never as root: when root is the owner, it runs as the
image's user, in the results folder's group (made writable for the run), and what it wrote is
handed to root when it ends. The harness commands of the images that get the engine's socket
(``HARNESS_ENGINE=1``: the harness image, whose ``collect`` rewrites run folders of any owner keeping
their owners, and a benchmark's scoring image, whose ``evaluate`` runs generated programs in the
evaluator image) run as root, and what they create or replace in the results folder is handed to
its owner. The tests run as root (they start containers as several
users) and hand what they wrote into the checkout to its owner.

Ctrl-C and SIGTERM (``docker stop``) are passed to the harness, which stops its LoadGen tests and
marks its run folder incomplete; the exit status is the harness's (128 + N for a signal N).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

RESULTS = Path(os.environ.get("HARNESS_RESULTS", "/results"))
CHECKOUT = Path("/etc/mlperf-harness/checkout")
IMAGE_USER = (1000, 1000)  # mlperf, made in the base image
TEST_OUTPUTS = ("results", "images/wheels")  # what the tests write into the checkout, besides pytest's folder
_child: subprocess.Popen | None = None


def owner(folder: Path) -> tuple[int, int]:
    """Whom ``folder``'s results belong to (see the module docstring); a root-owned results folder
    of a checkout owned by somebody else is handed to that owner."""
    stat = folder.stat()
    if stat.st_uid != 0:
        return stat.st_uid, stat.st_gid
    if CHECKOUT.exists() and (checkout := CHECKOUT.stat()).st_uid != 0:
        try:
            os.chown(folder, checkout.st_uid, checkout.st_gid)
        except OSError:  # e.g. mounted read-only: the harness names the folder it cannot write
            pass
        return checkout.st_uid, checkout.st_gid
    return 0, 0


def hand_over(paths: list[Path], uid: int, gid: int, only_from: int | None = None) -> None:
    """chown ``paths`` and everything below them (links themselves, never what they point to) to
    uid:gid; with ``only_from``, only what that uid owns."""
    def one(path: Path) -> None:
        if only_from is None or path.lstat().st_uid == only_from:
            os.chown(path, uid, gid, follow_symlinks=False)

    for top in paths:
        if not top.exists() and not top.is_symlink():
            continue
        one(top)
        if top.is_dir() and not top.is_symlink():
            for folder, names, files in os.walk(top):
                for name in names + files:
                    one(Path(folder, name))


def _tree(folder: Path) -> dict[Path, int]:
    """Every path below ``folder``, with its inode (a file replaced atomically gets a new one)."""
    return {path: path.lstat().st_ino for top, names, files in os.walk(folder)
            for path in (Path(top, name) for name in names + files)}


def _forward(signum: int, frame: object) -> None:
    if _child is not None and _child.poll() is None:
        _child.send_signal(signum)


def run(commands: list[list[str]], uid: int, gid: int, groups: list[int]) -> int:
    """Run the commands one after another as uid:gid (+ groups) until one fails; its exit status."""
    global _child
    env = dict(os.environ)
    if uid != 0:
        home = Path(f"/tmp/home-{uid}")
        home.mkdir(mode=0o700, exist_ok=True)
        os.chown(home, uid, gid)
        env.update(HOME=str(home), USER=env.get("USER", "mlperf"), LOGNAME=env.get("LOGNAME", "mlperf"))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _forward)
    status = 0
    for command in commands:
        # its own process group: a terminal's Ctrl-C reaches the harness once, through _forward
        _child = subprocess.Popen(command, env=env, process_group=0,
                                  **({} if uid == os.geteuid() else {"user": uid, "group": gid,
                                                                      "extra_groups": groups}))
        status = _child.wait()
        status = 128 - status if status < 0 else status
        if status != 0:
            break
    return status


def basetemp(args: list[str], checkout: Path) -> Path:
    """The pytest folder the arguments name (the last --basetemp wins, as in pytest)."""
    found = checkout / ".pytest-tmp"
    for n, arg in enumerate(args):
        if arg == "--basetemp" and n + 1 < len(args):
            found = Path(args[n + 1])
        elif arg.startswith("--basetemp="):
            found = Path(arg.split("=", 1)[1])
    return found if found.is_absolute() else checkout / found


def benchmark_job(args: list[str]) -> list[list[str]]:
    """The harness runs of the image's benchmark that the environment's knobs ask for."""
    knobs = {"N_COUNT": "--n-count", "DATA_TYPE": "--dtype", "DEVICE": "--device", "N_DEVICES": "--n-devices",
             "N_PARTITIONS": "--n-partitions", "PARTITION_OFFSET": "--partition-offset", "BATCH_SIZE": "--batch-size"}
    options = ["--scenario", os.environ.get("SCENARIO") or "Offline"]
    options += [part for name, flag in knobs.items() if os.environ.get(name) for part in (flag, os.environ[name])]
    options += shlex.split(os.environ.get("HARNESS_ARGS", "")) + args
    modes = [os.environ["MODE"]] if os.environ.get("MODE") else ["accuracy", "performance"]
    return [[sys.executable, "-m", "harness", "run", os.environ["BENCHMARK"], "--mode", mode, *options]
            for mode in modes]


def main(argv: list[str]) -> int:
    role, args = (argv[0], argv[1:]) if argv and argv[0] in ("harness", "tests") else ("benchmark", argv)
    harness = [sys.executable, "-m", "harness"]
    if role == "tests":
        checkout = Path.cwd()
        status = run([[sys.executable, "-m", "pytest", *args]], 0, 0, [])
        stat = checkout.stat()
        hand_over([checkout / path for path in TEST_OUTPUTS] + [basetemp(args, checkout)], stat.st_uid, stat.st_gid,
                  only_from=0)
        return status
    commands = [harness + args] if role == "harness" else benchmark_job(args)
    if os.geteuid() != 0:  # started as a user already (docker run --user): nothing to settle
        return run(commands, os.geteuid(), os.getegid(), [])
    results = RESULTS if RESULTS.is_dir() else None
    uid, gid = owner(results) if results else IMAGE_USER
    if role == "harness" and os.environ.get("HARNESS_ENGINE") == "1":  # root reaches the engine's socket
        before = _tree(results) if results else {}
        try:
            return run(commands, 0, 0, [])
        finally:
            if results:  # what it made or replaced is the owner's
                changed = [path for path, inode in _tree(results).items() if before.get(path) != inode]
                hand_over(sorted(changed), uid, gid, only_from=0)
    if uid != 0:
        return run(commands, uid, gid, [])
    # root's results: the image's user writes them through the folder's group, then hands them to root
    before = set(results.iterdir())
    stat = results.stat()
    try:
        os.chmod(results, stat.st_mode | 0o070)
    except OSError:  # e.g. mounted read-only: the harness names the folder it cannot write
        pass
    try:
        return run(commands, *IMAGE_USER, [stat.st_gid])
    finally:
        try:
            os.chmod(results, stat.st_mode)
            hand_over(sorted(set(results.iterdir()) - before), 0, 0, only_from=IMAGE_USER[0])
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
