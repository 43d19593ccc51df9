"""harness/sandbox.py without a Docker engine: the isolation of the command line, the checks that
name the fix, and how the host side reads containers, through a stand-in ``docker`` on PATH."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.sandbox import IMAGE, Job, Limits, Sandbox, check_available

# A stand-in for the docker CLI: `run` reads the request and answers as FAKE_DOCKER says; `kill`
# ends the `run` of that name; every call is logged to FAKE_DOCKER_LOG.
FAKE_DOCKER = f"""#!{sys.executable}
import json, os, signal, sys, time
from pathlib import Path
log = Path(os.environ["FAKE_DOCKER_LOG"])
with log.open("a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
mode = os.environ.get("FAKE_DOCKER", "ok")
command = sys.argv[1]
if command == "version":
    if mode == "no-engine":
        sys.exit("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    print("24.0.0")
elif command == "image":
    if mode == "no-image":
        sys.exit("Error: No such image: " + sys.argv[-1])
    print("sha256:" + "0" * 64)
elif command == "kill":
    pid = log.with_name(sys.argv[2]).read_text()
    os.kill(int(pid), signal.SIGKILL)
elif command == "run":
    name = sys.argv[sys.argv.index("--name") + 1]
    log.with_name(name).write_text(str(os.getpid()))
    request = json.loads(sys.stdin.read())
    log.with_name(name + ".request").write_text(json.dumps(request))
    if mode == "hang":
        time.sleep(120)
    elif mode == "oom":
        sys.exit(137)
    elif mode == "garbage":
        print("not a verdict")
    elif mode == "flood":
        sys.stdout.write("x" * (1 << 20))
    elif mode == "no-start":
        sys.exit("docker: Error response from daemon: No such image: " + sys.argv[-1] + ".")  # status 1
    elif mode == "status-125":
        print("docker: Error response from daemon: No such image.", file=sys.stderr)
        sys.exit(125)
    else:
        time.sleep(float(request["program"].split()[-1]) if request["program"].startswith("sleep") else 0)
        print(json.dumps({{"passed": request["language"] == "python", "result": "echo " + request["program"],
                          "compiled": None}}))
"""


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """Put the stand-in docker first on PATH; returns its log: the argv of every call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    log = tmp_path / "calls" / "log"
    log.parent.mkdir()
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


def values(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == flag]


def test_the_container_gets_nothing_of_the_host():
    command = Sandbox(IMAGE, Limits()).command("job-1")
    assert command[:4] == ["docker", "run", "--rm", "-i"] and command[-1] == IMAGE  # no command override
    assert values(command, "--name") == ["job-1"]
    mounting = {"-v", "--volume", "--mount", "--volumes-from", "--device", "--privileged", "--cap-add",
                "--env-file", "-e", "--env", "--ipc", "--pid", "--uts", "--userns", "-p", "--publish",
                "-P", "--publish-all", "--add-host", "--dns", "--group-add", "--init"}
    flags = {arg.split("=", 1)[0] for arg in command if arg.startswith("-")}
    assert not flags & mounting, flags & mounting
    assert values(command, "--network") == ["none"] and "--read-only" in command
    assert values(command, "--pull") == ["never"]  # never a download of an image not built here
    assert values(command, "--tmpfs") == ["/work:rw,exec,nosuid,nodev,size=64m,mode=1777",
                                          "/tmp:rw,nosuid,nodev,size=16m"]
    user = values(command, "--user")
    assert len(user) == 1 and not user[0].startswith(("0", "root")) and user[0] == "65532:65532"
    assert values(command, "--cap-drop") == ["ALL"]
    assert values(command, "--security-opt") == ["no-new-privileges"]
    assert values(command, "--pids-limit") == ["64"]
    assert values(command, "--memory") == ["512m"] and values(command, "--memory-swap") == ["512m"]
    assert values(command, "--cpus") == ["1"]
    assert values(command, "--ulimit") == ["nofile=1024:1024", "core=0"]
    assert values(command, "--workdir") == ["/work"] and values(command, "--log-driver") == ["none"]


def test_limits_reach_the_command_line():
    limits = Limits(memory_mib=256, cpus=0.5, pids=32, work_mib=8, nofile=256)
    command = Sandbox("some/image:tag", limits).command("x")
    assert values(command, "--memory") == values(command, "--memory-swap") == ["256m"]
    assert values(command, "--cpus") == ["0.5"] and values(command, "--pids-limit") == ["32"]
    assert values(command, "--tmpfs")[0] == "/work:rw,exec,nosuid,nodev,size=8m,mode=1777"
    assert values(command, "--ulimit")[0] == "nofile=256:256" and command[-1] == "some/image:tag"
    with pytest.raises(ValueError, match="Limits.pids"):
        Limits(pids=0)


def test_the_wall_time_covers_the_compile_step():
    limits = Limits(compile_timeout_s=100, startup_slack_s=15)
    assert limits.wall_s("python", 20) == 35 and limits.wall_s("ruby", 20) == 35
    assert limits.wall_s("cpp", 20) == limits.wall_s("typescript", 20) == 135


def test_a_missing_docker_cli_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no docker here
    with pytest.raises(HarnessError) as raised:
        check_available(IMAGE)
    message = str(raised.value)
    assert "docker CLI was not found" in message and "never on this machine" in message
    assert "docker compose build evaluator" in message and "images/build.sh evaluator" in message
    with pytest.raises(HarnessError, match="docker CLI was not found"):
        Sandbox().run("python", "pass", 1)  # and nothing runs the program anywhere else


def test_an_unreachable_engine_names_the_fix(fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER", "no-engine")
    with pytest.raises(HarnessError) as raised:
        check_available(IMAGE)
    message = str(raised.value)
    assert "Docker engine is not reachable" in message and "Cannot connect to the Docker daemon" in message
    assert "start the engine" in message and "docker compose build evaluator" in message


def test_an_image_not_built_names_the_fix(fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER", "no-image")
    with pytest.raises(HarnessError) as raised:
        check_available(IMAGE)
    message = str(raised.value)
    assert f"the evaluator image {IMAGE} is not built here" in message and "No such image" in message
    assert "docker compose build evaluator" in message and "images/build.sh evaluator" in message
    monkeypatch.setenv("FAKE_DOCKER", "ok")
    check_available(IMAGE)
    assert fake_docker()[-1] == ["image", "inspect", "--format", "{{.Id}}", IMAGE]


def test_the_program_goes_in_on_stdin(fake_docker, tmp_path):
    outcome = Sandbox().run("python", "assert True", 20)
    assert (outcome.passed, outcome.result, outcome.timed_out) == (True, "echo assert True", False)
    (run,) = [c for c in fake_docker() if c[0] == "run"]
    request = json.loads((tmp_path / "calls" / (values(run, "--name")[0] + ".request")).read_text())
    assert request == {"language": "python", "program": "assert True", "timeout_s": 20, "compile_timeout_s": 100.0}
    assert "assert True" not in run  # not on the command line


def test_a_container_outliving_its_time_is_killed(fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER", "hang")
    began = time.monotonic()
    outcome = Sandbox(limits=Limits(startup_slack_s=0.5)).run("python", "while True: pass", 0.5)
    assert outcome.timed_out and not outcome.passed and outcome.result == "timed out"
    assert time.monotonic() - began < 10
    calls = fake_docker()
    name = values(calls[0], "--name")[0]
    assert ["kill", name] in calls and ["rm", "-f", name] in calls  # by its name: only that container


@pytest.mark.parametrize("mode, reason", [
    ("oom", "failed: the container was killed (status 137: out of memory?)"),
    ("garbage", "failed: the container printed no verdict"),
    ("flood", "failed: the container printed no verdict"),
    ("no-start", "failed: the container ended with status 1 and no verdict: docker: Error response"),
])
def test_a_container_without_a_verdict_is_a_failed_program(fake_docker, monkeypatch, mode, reason):
    monkeypatch.setenv("FAKE_DOCKER", mode)
    outcome = Sandbox().run("cpp", "int main() {}", 5)
    assert not outcome.passed and not outcome.timed_out and outcome.result.startswith(reason)


def test_a_container_the_engine_cannot_start_is_an_error(fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER", "status-125")
    with pytest.raises(HarnessError, match=r"could not start an evaluator container .*`docker compose build evaluator`"):
        Sandbox().run("python", "pass", 5)


def test_run_many_keeps_the_order_of_the_jobs(fake_docker):
    # later jobs finish first: the outcomes still come back in job order
    jobs = [Job("python" if i % 2 else "ruby", f"sleep {0.05 * (8 - i):.2f}", 5) for i in range(8)]
    outcomes = Sandbox().run_many(jobs, workers=4)
    assert [o.result for o in outcomes] == [f"echo {job.program}" for job in jobs]
    assert [o.passed for o in outcomes] == [job.language == "python" for job in jobs]
    names = [values(c, "--name")[0] for c in fake_docker() if c[0] == "run"]
    assert len(set(names)) == 8  # one container each
    assert Sandbox().run_many([], workers=2) == []
    with pytest.raises(ValueError):
        Sandbox().run_many(jobs, workers=0)


RUNNER = Path(__file__).resolve().parents[2] / "images" / "evaluator" / "run_program.py"


@pytest.fixture(scope="module")
def runner():
    """The container's runner as a module (importing it runs nothing)."""
    spec = importlib.util.spec_from_file_location("evaluator_run_program", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_runner_is_not_a_host_program(tmp_path):
    """The runner refuses to judge anything unless it is a container's first process."""
    breach = tmp_path / "breach"
    request = json.dumps({"language": "python", "program": f"open({str(breach)!r}, 'w')", "timeout_s": 1})
    done = subprocess.run([sys.executable, "-I", str(RUNNER)], input=request, capture_output=True, text=True)
    assert done.returncode == 1 and "refusing to run" in done.stderr and not done.stdout
    assert not breach.exists()


def test_the_runner_keeps_the_reference_rules(runner):
    rules = runner.LANGUAGES
    assert rules["cpp"].compile == ("g++", "program.cpp", "-o", "program_cpp") and rules["cpp"].compiled_status == 0
    assert rules["cpp"].run == ("/work/program_cpp",)
    assert rules["typescript"].compile == ("tsc", "program.ts", "--target", "es5", "--lib", "es2016")
    assert rules["typescript"].compiled_status == 2 and rules["typescript"].run == ("node", "program.js")
    assert rules["javascript"].run == ("node", "program.js") and rules["php"].run == ("php", "program.php")
    assert rules["ruby"].run == ("ruby", "program.rb") and runner.COMPILE_TIMEOUT_S == 100
    assert set(rules) == {"cpp", "typescript", "javascript", "php", "ruby", "python"}


def test_the_runner_reads_one_request(runner):
    assert runner.read_request('{"language": "ruby", "program": "p", "timeout_s": 20}') == ("ruby", "p", 20.0, 100.0)
    assert runner.read_request('{"language": "cpp", "program": "", "timeout_s": 3, "compile_timeout_s": 5}')[3] == 5
    for bad in ('[]', '{"language": "ruby", "timeout_s": 20}', '{"language": "ruby", "program": "p", "timeout_s": true}',
                '{"language": "ruby", "program": "p", "timeout_s": 0}', '{"language": 1, "program": "p", "timeout_s": 2}'):
        with pytest.raises(ValueError):
            runner.read_request(bad)
