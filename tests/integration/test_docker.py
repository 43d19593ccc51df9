"""The images and compose services, exercised through a real Docker engine (marker ``docker``).

Images are built once per test run with the project's own script, `images/build.sh gptj resnet
bert retinanet llama2 mixtral sdxl unet3d rnnt dlrm` (honouring BASE_IMAGE and LOCAL_WHEELS), as a
user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import registry
from harness.rounds import default_round

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("gptj", "resnet", "bert", "retinanet", "llama2", "mixtral", "sdxl", "unet3d", "rnnt", "dlrm")
LOCKS = ("images/base/requirements.lock", "images/pytorch/requirements.lock")


def sh(*cmd: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=check, capture_output=True, text=True)


@pytest.fixture(scope="session")
def provenance() -> dict[str, str]:
    commit = sh("git", "rev-parse", "HEAD", check=False).stdout.strip() or "unknown"
    lock = hashlib.sha256(b"".join((ROOT / p).read_bytes() for p in LOCKS)).hexdigest()
    return {"GIT_COMMIT": commit, "LOCK_SHA256": lock}


@pytest.fixture(scope="session")
def images(provenance) -> dict[str, str]:
    if shutil.which("docker") is None or sh("docker", "info", check=False).returncode != 0:
        pytest.fail("Docker engine not reachable (`docker info` failed): start the Docker daemon")
    env = os.environ | provenance
    done = sh("images/build.sh", *BENCHMARKS, env=env, check=False)
    assert done.returncode == 0, f"images/build.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return {b: f"mlperf-harness/{b}:latest" for b in BENCHMARKS}


@pytest.fixture(scope="session")
def gptj_image(images) -> str:
    return images["gptj"]


def run_container(image: str, results: Path, env: dict[str, str], data: Path | None = None,
                  command: list[str] | None = None, engine: bool = False):
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image)
    for key, value in env.items():
        container.with_env(key, value)
    container.with_volume_mapping(str(results), "/results", "rw")
    if data is not None:
        benchmark = image.split("/")[-1].split(":")[0]
        container.with_volume_mapping(str(data), f"/data/{benchmark}", "ro")
    if engine:
        container.with_volume_mapping("/var/run/docker.sock", "/var/run/docker.sock", "rw")
    if command is not None:
        container.with_command(command)
    container.start()
    try:
        status = container.get_wrapped_container().wait(timeout=900)["StatusCode"]
        out, err = container.get_logs()
        return status, out.decode(errors="replace") + err.decode(errors="replace")
    finally:
        container.stop()


def writable(path: Path) -> Path:
    path.mkdir()  # this user's: the entrypoint gives the run folders to it
    return path


@pytest.fixture(scope="session")
def gptj_demo(gptj_image, tmp_path_factory) -> tuple[Path, str]:
    """The gptj service's default job (accuracy, then performance) on 8 demo samples: results and logs."""
    results = writable(tmp_path_factory.mktemp("gptj-demo") / "results")
    status, logs = run_container(gptj_image, results, {"N_COUNT": "8"})
    assert status == 0, logs[-4000:]
    return results, logs


def test_gptj_demo_in_a_container(gptj_demo, provenance):
    results, logs = gptj_demo
    assert "DEMO TIER" in logs and "Performance (Offline): VALID" in logs
    runs = {json.loads((d / "result.json").read_text())["settings"]["mode"]: d for d in results.iterdir()}
    assert set(runs) == {"accuracy", "performance"}
    assert (runs["accuracy"] / "accuracy" / "accuracy.txt").read_text().count("'rouge1':") == 1
    summary = (runs["performance"] / "performance" / "run_1" / "mlperf_log_summary.txt").read_text()
    assert "Result is : VALID" in summary
    image = json.loads((runs["performance"] / "result.json").read_text())["image"]
    assert image["git_commit"] == provenance["GIT_COMMIT"] and image["lock_sha256"] == provenance["LOCK_SHA256"]
    assert any(line.endswith("/opt/locks/pytorch.lock") for line in image["locks"])
    assert re.fullmatch(r"[0-9a-f-]{36}", image["build_id"])


def test_collect_records_the_image_id_from_the_host(gptj_demo, gptj_image, tool_images, tmp_path):
    """`docker compose run --rm harness` adds to each run the ID of the image it ran in, found by
    the build ID the run recorded; a run whose image is gone is named and left as it was."""
    results = tmp_path / "results"
    shutil.copytree(gptj_demo[0], results)
    gone = results / "run-of-a-pruned-image"
    shutil.copytree(next(results.iterdir()), gone)
    manifest = json.loads((gone / "manifest.json").read_text())
    manifest["image"]["build_id"] = "00000000-0000-0000-0000-000000000000"
    (gone / "manifest.json").write_text(json.dumps(manifest))
    owners = {path: (path.stat().st_uid, path.stat().st_mode) for path in results.rglob("*.json")}
    done = sh("docker", "compose", "run", "--rm", "harness", env=os.environ | {"RESULTS_DIR": str(results)},
              check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # one run could not be resolved
    assert "collect: 2 run(s) resolved" in done.stdout and f"UNRESOLVED /results/{gone.name}: none of" in done.stdout
    expected = json.loads(sh("docker", "image", "inspect", gptj_image).stdout)[0]["Id"]
    for run in results.iterdir():
        for name in ("manifest.json", "result.json"):
            assert json.loads((run / name).read_text())["image"].get("id") == (None if run == gone else expected)
    assert owners == {path: (path.stat().st_uid, path.stat().st_mode) for path in results.rglob("*.json")}
    again = sh("docker", "compose", "run", "--rm", "harness", "collect", "/results",
               env=os.environ | {"RESULTS_DIR": str(results)}, check=False)
    assert "0 run(s) resolved, 2 already had their image ID" in again.stdout


@pytest.mark.parametrize("benchmark, count, accuracy_line", [
    ("resnet", 16, r"accuracy=\d+\.\d{3}%, good=\d+, total=16\n"),
    ("bert", 16, r'\{"exact_match": [\d.]+, "f1": [\d.]+\}\n'),
    ("retinanet", 6, r"mAP=\d+\.\d{3}%\n"),
    ("llama2", 8, r"\nResults\n\n\{'rouge1': [\d.]+, .*, 'tokens_per_sample': [\d.]+\}\n"),
    ("sdxl", 8, r"Accuracy Results: \{'FID_SCORE': [\d.]+, 'CLIP_SCORE': [\d.]+\}\n"),
    ("unet3d", 5, r"Accuracy: mean = \d\.\d{5}, kidney = \d\.\d{4}, tumor = \d\.\d{4}\n"),
    ("rnnt", 11, r"Word Error Rate: [\d.e-]+%, accuracy=[\d.]+%\n"),  # round v4.0, on the LoadGen 4.0.1 it carries
    ("dlrm", 22, r"AUC=\d+\.\d{3}%, accuracy=\d+\.\d{3}%, good=\d+, total=6100, queries=22\n"),
])
def test_demo_in_a_container(images, benchmark, count, accuracy_line, tmp_path):
    results = writable(tmp_path / "results")
    status, logs = run_container(images[benchmark], results, {"N_COUNT": str(count)})
    assert status == 0, logs[-4000:]
    assert "DEMO TIER" in logs and "Performance (Offline): VALID" in logs
    runs = {json.loads((d / "result.json").read_text())["settings"]["mode"]: d for d in results.iterdir()}
    assert re.fullmatch(accuracy_line, (runs["accuracy"] / "accuracy" / "accuracy.txt").read_text())
    performance = json.loads((runs["performance"] / "result.json").read_text())
    assert performance["image"]["name"] == f"mlperf-harness/{benchmark}"
    assert performance["round"] == default_round(registry.get(benchmark).spec)


def test_mixtral_in_a_container_then_mbxp_scored_by_the_evaluate_service(images, provenance, tmp_path):
    """The benchmark container has no engine: its MBXP is NOT SCORED, the rest is; the mixtral-evaluate
    service's image (the socket, no benchmark run) then runs the answers in the evaluator image's
    sandbox and completes the run folder, which stays its owner's."""
    results = writable(tmp_path / "results")
    if os.geteuid() == 0:
        os.chown(results, 4321, 4321)  # somebody's results: what root in the scoring image writes is handed to them
    status, logs = run_container(images["mixtral"], results, {"MODE": "accuracy"})
    assert status == 0, logs[-4000:]
    assert re.search(r"mixtral-8x7b\s+mbxp\s+n/a\s+.*NOT SCORED\s+NOT SCORED: mbxp: MBXP not scored: .*"
                     r"`harness evaluate RUN_DIR`", logs)
    assert re.search(r"mixtral-8x7b\s+gsm8k\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+PASS", logs)
    run = next(results.iterdir())
    partial = (run / "accuracy" / "accuracy.txt").read_text()
    assert "'mbxp': None" in partial
    no_wheels = {k: v for k, v in os.environ.items() if k != "LOCAL_WHEELS"}  # the evaluator installs none
    for service, env in (("evaluator", no_wheels), ("mixtral-evaluate", os.environ | provenance)):
        built = sh("images/build.sh", service, env=env, check=False)
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    status, logs = run_container("mlperf-harness/mixtral-evaluate:latest", results, {}, command=[run.name],
                                 engine=True)
    assert status == 0, logs[-4000:]
    assert re.search(r"mixtral-8x7b\s+mbxp\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+PASS", logs), logs[-4000:]
    assert "mbxp now scored" in logs
    result = json.loads((run / "result.json").read_text())
    assert result["accuracy"]["variants"]["mixtral-8x7b"]["passed"] and result["accuracy"]["metrics"]["mbxp"] > 0
    assert result["accuracy"]["completed"] == {"metrics": ["mbxp"], "partial": "accuracy/accuracy.partial.txt"}
    assert (run / "accuracy" / "accuracy.partial.txt").read_text() == partial
    assert re.search(r"'mbxp': [\d.]+", (run / "accuracy" / "accuracy.txt").read_text())
    assert "NOT SCORED" not in (run / "report.txt").read_text()
    assert {p.stat().st_uid for p in [run, *run.rglob("*")]} == {results.stat().st_uid}


def test_corrupt_data_volume_is_refused(gptj_image, tmp_path):
    data = tmp_path / "data"
    (data / "model").mkdir(parents=True)
    (data / "model" / "config.json").write_text('{"model_type": "gptj"}')
    (data / "cnn_eval.json").write_text('[{"instruction": "Summarize')
    status, logs = run_container(gptj_image, writable(tmp_path / "results"), {"MODE": "accuracy"}, data)
    assert status == 2
    assert "cnn_eval.json is not valid UTF-8 JSON" in logs


def test_unwritable_results_folder_is_named(gptj_image, tmp_path):
    from testcontainers.core.container import DockerContainer

    results = tmp_path / "results"
    results.mkdir()
    container = DockerContainer(gptj_image).with_volume_mapping(str(results), "/results", "ro")
    container.start()
    try:
        status = container.get_wrapped_container().wait(timeout=300)["StatusCode"]
        logs = b"".join(container.get_logs()).decode(errors="replace")
    finally:
        container.stop()
    assert status == 2 and "error: cannot create /results/gptj-Offline-accuracy-" in logs
    assert "Read-only file system" in logs and "Traceback" not in logs


def test_a_device_the_service_does_not_provide_is_named(gptj_image, tmp_path):
    status, logs = run_container(gptj_image, writable(tmp_path / "results"), {"DEVICE": "cuda:0", "MODE": "accuracy"})
    assert status == 2
    assert "0 CUDA device(s) are visible" in logs and "docker compose --profile cuda run --rm gptj-cuda" in logs


def test_image_labels(gptj_image, provenance):
    labels = json.loads(sh("docker", "image", "inspect", gptj_image).stdout)[0]["Config"]["Labels"]
    assert labels["mlperf-harness.benchmark"] == "gptj"
    assert labels["mlperf-harness.round"] == "v4.1"
    assert labels["mlperf-harness.lock-sha256"] == provenance["LOCK_SHA256"]
    assert labels["org.opencontainers.image.revision"] == provenance["GIT_COMMIT"]


def compose_config(*profiles: str) -> dict:
    args = [a for p in profiles for a in ("--profile", p)]
    return json.loads(sh("docker", "compose", *args, "config", "--format", "json").stdout)


def test_compose_profiles_render():
    assert "gptj" in compose_config("gptj")["services"]
    cuda = compose_config("cuda")["services"]["gptj-cuda"]
    devices = cuda["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert cuda["environment"]["DEVICE"] == "cuda" and cuda["ipc"] == "host"
    rngd = compose_config("rngd")["services"]["gptj-rngd"]
    assert rngd["devices"][0]["source"] == "furiosa.ai/rngd=all"
    seccomp = next(o for o in rngd["security_opt"] if o.startswith("seccomp="))
    profile = json.loads((ROOT / seccomp.removeprefix("seccomp=")).read_text())
    refused = {name for rule in profile["syscalls"] for name in rule["names"]}
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW" and not refused & {"io_uring_setup", "io_uring_enter",
                                                                             "io_uring_register"}
    assert {"mount", "kexec_load", "bpf"} <= refused
    services = compose_config("gptj", "cuda", "rngd")["services"]
    assert all(not s.get("privileged") for s in services.values())


def test_data_service_gates_the_benchmark(gptj_image, tmp_path):
    data = tmp_path / "data"
    (data / "model").mkdir(parents=True)
    (data / "cnn_eval.json").write_text("{")
    results = writable(tmp_path / "results")
    env = os.environ | {"GPTJ_DATA": str(data), "RESULTS_DIR": str(results)}
    try:
        done = sh("docker", "compose", "run", "--rm", "gptj", env=env, check=False)
        assert done.returncode != 0 and 'service "gptj-data" didn\'t complete successfully' in done.stderr
        logs = sh("docker", "compose", "logs", "gptj-data", env=env).stdout
        assert "cnn_eval.json is not valid UTF-8 JSON" in logs
        assert not any(results.iterdir())  # the benchmark never started
        ok = sh("docker", "compose", "run", "--rm", "gptj-data", env=os.environ | {"RESULTS_DIR": str(results)})
        assert "runs will use the demo tier" in ok.stdout  # the empty default volume
    finally:
        sh("docker", "compose", "--profile", "gptj", "down", env=env, check=False)


@pytest.fixture(scope="session")
def tool_images(images) -> None:
    """The harness and tests images, built as a user would."""
    built = sh("images/build.sh", "harness", "tests", check=False)
    assert built.returncode == 0, f"images/build.sh harness tests failed:\n{built.stderr[-3000:]}"


def test_tests_service_drives_the_engine_from_a_container(gptj_image, tool_images):
    """`docker compose run --rm tests` on a machine with only Docker: the suite's own image runs
    pytest on the mounted checkout and starts sibling containers through the socket."""
    env = os.environ | {"PWD": str(ROOT)}  # compose mounts the checkout at this same path
    # a pytest folder of its own in the mounted checkout: this suite may itself run in the tests
    # service, whose pytest folder is the checkout's .pytest-tmp, which the inner run would clear
    inner = ROOT / ".pytest-tmp" / f"inner-{os.getpid()}"
    inner.parent.mkdir(exist_ok=True)
    try:
        done = sh("docker", "compose", "run", "--rm", "tests", "-q", "--basetemp", str(inner),
                  "tests/unit/test_rounds.py", "tests/integration/test_docker.py::test_image_labels", env=env,
                  check=False)
    finally:
        shutil.rmtree(inner, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "failed" not in done.stdout


# -- a newcomer's first commands, on a fresh clone -------------------------------------------------

NEWCOMER = 4321  # a uid with no account here, in the docker group: what an ordinary user is to the engine


def newcomer(uid: int, home: Path) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment of ``uid`` with ``home``: root as it is, anyone else through
    setpriv, with the group of the engine's socket (the docker group) and the Compose plugin."""
    env = os.environ | {"PWD": str(home / "mlperf-harness")}  # compose's ${PWD}: where the clone is
    if uid == os.geteuid():
        return [], env
    env["HOME"] = str(home)
    plugins = json.loads(sh("docker", "info", "--format", "{{json .ClientInfo.Plugins}}").stdout)
    compose = next(Path(p["Path"]) for p in plugins if p["Name"] == "compose")
    (home / ".docker" / "cli-plugins").mkdir(parents=True)
    shutil.copy2(compose, home / ".docker" / "cli-plugins" / "docker-compose")
    # this checkout is somebody else's: let git clone it (a newcomer clones from a server)
    (home / ".gitconfig").write_text(f"[safe]\n\tdirectory = {ROOT}/.git\n\tdirectory = {ROOT}\n")
    for path in [home, *home.rglob("*")]:
        os.chown(path, uid, uid)
    for folder in home.parents:  # pytest's folders are its own user's (0700): let this user reach its home
        if not folder.stat().st_mode & 0o001:
            folder.chmod(folder.stat().st_mode | 0o001)
    socket = os.stat("/var/run/docker.sock").st_gid
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={socket}"], env


def owners(folder: Path) -> set[int]:
    return {path.lstat().st_uid for path in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize("uid", [0, NEWCOMER], ids=["root", "ordinary-user"])
def test_the_readme_commands_on_a_fresh_clone(tool_images, tmp_path, uid, request):
    """What a newcomer does: clone, no ./results, the README's commands; the run folders, the
    harness service's output and the test service's files belong to whoever ran them."""
    if uid == 0 or os.environ.get("CI"):
        request.getfixturevalue("needs_root")
    if os.geteuid() != 0:
        uid = os.geteuid()  # an ordinary user already
    home = tmp_path / "home"
    home.mkdir()
    prefix, env = newcomer(uid, home)
    clone = home / "mlperf-harness"

    def run(*command: str, **more: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *command], cwd=clone if clone.exists() else home, env=env | more,
                              capture_output=True, text=True)

    cloned = run("git", "clone", "-q", str(ROOT), str(clone))
    assert cloned.returncode == 0, cloned.stderr
    assert not (clone / "results").exists()
    done = run("docker", "compose", "run", "--rm", "gptj", N_COUNT="4")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = clone / "results"
    runs = {json.loads((d / "result.json").read_text())["settings"]["mode"]: d for d in results.iterdir()}
    assert set(runs) == {"accuracy", "performance"} and owners(results) == {uid}
    manifest = json.loads((runs["accuracy"] / "manifest.json").read_text())
    assert manifest["process"]["uid"] != 0  # the benchmark itself never runs as root
    assert "demo targets: agreement with the reference execution" in done.stdout
    assert re.search(r"gptj-99\.9\s+rouge1\s+100\s+99\.9\s+1\.001\s+PASS", done.stdout)
    done = run("docker", "compose", "run", "--rm", "harness")
    assert done.returncode == 0 and "collect: 2 run(s) resolved" in done.stdout, done.stdout + done.stderr
    done = run("docker", "compose", "run", "--rm", "harness", "report", f"/results/{runs['accuracy'].name}",
               "--html", "/results/report.html")
    assert done.returncode == 0 and (results / "report.html").is_file(), done.stdout + done.stderr
    assert owners(results) == {uid}
    done = run("docker", "compose", "run", "--rm", "tests", "-q", "tests/unit/test_rounds.py")
    assert done.returncode == 0 and re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-3000:] + done.stderr
    assert owners(clone / ".pytest-tmp") == {uid}
    assert run("rm", "-r", str(results), str(clone / ".pytest-tmp")).returncode == 0  # theirs to remove
