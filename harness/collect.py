"""Record the container image each run ran in, from where the Docker engine is: ``harness collect``.

Nothing inside a container tells it its own image ID (an image's ID is the hash of its config, so
it cannot be written into the image either). What a container can read is the build ID that the
benchmark image's last build step wrote to ``/opt/mlperf-harness/build-id``: a random value made
when that layer was built, so two images share it only when they share that layer. Every run in a
container records it in ``manifest.json`` (``image.build_id``).

``harness collect RESULTS...`` runs where the engine's socket is (natively, or the ``harness``
compose service, which mounts it). For each run folder under RESULTS whose image has no ID yet,
it looks among the local images labelled with the run's benchmark for the one whose build-id file
holds the run's build ID, and adds that image's ID and repository digests to the run's
``manifest.json`` and ``result.json``. A run whose image has since been rebuilt and pruned cannot
be resolved: collect names it and leaves its files as they are. Files are rewritten atomically,
keeping their owner and mode (the compose service runs as root to reach the socket).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import provenance
from harness.errors import HarnessError

BUILD_ID_FILE = "/opt/mlperf-harness/build-id"
BENCHMARK_LABEL = "mlperf-harness.benchmark"


@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_digests: tuple[str, ...]


class Engine(Protocol):
    """The two questions collect asks the Docker engine."""

    def images(self, benchmark: str) -> list[LocalImage]:
        """Local images labelled as this benchmark's, dangling ones included."""

    def build_id(self, image_id: str) -> str | None:
        """The content of the image's build-id file (None when it has none)."""


class DockerEngine:
    """The engine behind DOCKER_HOST or the default socket, through the Docker SDK."""

    def __init__(self) -> None:
        import docker

        try:
            self.client = docker.from_env()
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise HarnessError(f"the Docker engine is not reachable ({exc}): run collect where `docker info` works, "
                               f"or through compose: docker compose run --rm harness collect /results") from exc

    def images(self, benchmark: str) -> list[LocalImage]:
        found = self.client.images.list(filters={"label": f"{BENCHMARK_LABEL}={benchmark}"})
        return [LocalImage(image.id, tuple(image.attrs.get("RepoDigests") or ()))
                for image in found]

    def build_id(self, image_id: str) -> str | None:
        import docker

        # a created, never started container: nothing in the image runs
        container = self.client.containers.create(image_id, entrypoint=["/bin/true"])
        try:
            stream, _ = container.get_archive(BUILD_ID_FILE)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile(Path(BUILD_ID_FILE).name)
                return member.read().decode().strip() if member else None
        except docker.errors.NotFound:
            return None
        finally:
            container.remove(force=True)


@dataclass
class Collected:
    resolved: list[Path] = field(default_factory=list)
    already: list[Path] = field(default_factory=list)
    native: list[Path] = field(default_factory=list)
    unresolved: dict[Path, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"collect: {len(self.resolved)} run(s) resolved, {len(self.already)} already had their image ID, "
                 f"{len(self.native)} ran natively, {len(self.unresolved)} could not be resolved"]
        lines += [f"  resolved {path}" for path in self.resolved]
        lines += [f"  UNRESOLVED {path}: {why}" for path, why in self.unresolved.items()]
        return "\n".join(lines)


def run_folders(roots: Iterable[Path]) -> list[Path]:
    """Every folder under the roots (or a root itself) that holds a manifest."""
    found: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            raise HarnessError(f"{root} is not a folder: pass the results folder (or run folders) to collect")
        found.update(path.parent for path in root.rglob(provenance.MANIFEST))
    return sorted(found)


def collect(roots: Iterable[Path], engine: Engine) -> Collected:
    done = Collected()
    images: dict[str, list[LocalImage]] = {}
    build_ids: dict[str, str | None] = {}
    for folder in run_folders(roots):
        manifest = provenance.read(folder)
        image = manifest.get("image")
        if not image:
            done.native.append(folder)
            continue
        if image.get("id"):
            done.already.append(folder)
            continue
        if not image.get("build_id"):
            done.unresolved[folder] = "its image recorded no build ID (built before build IDs were written)"
            continue
        benchmark = manifest["benchmark"]
        if benchmark not in images:
            images[benchmark] = engine.images(benchmark)
        for candidate in images[benchmark]:
            if candidate.id not in build_ids:
                build_ids[candidate.id] = engine.build_id(candidate.id)
            if build_ids[candidate.id] == image["build_id"]:
                found = {"id": candidate.id, "repo_digests": list(candidate.repo_digests),
                         "resolved": f"harness collect, {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}"}
                _record(folder, found)
                done.resolved.append(folder)
                break
        else:
            done.unresolved[folder] = (f"none of the {len(images[benchmark])} local {benchmark} image(s) holds build "
                                       f"{image['build_id']} (rebuilt and pruned since the run?)")
    return done


def _record(folder: Path, found: dict[str, Any]) -> None:
    for name in (provenance.MANIFEST, "result.json"):
        path = folder / name
        if not path.is_file():
            continue
        content = json.loads(path.read_text())
        if isinstance(content.get("image"), dict):
            content["image"].update(found)
            _replace(path, json.dumps(content, indent=2, default=str) + "\n")


def _replace(path: Path, text: str) -> None:
    """Write ``text`` over ``path`` atomically, keeping its owner and mode."""
    stat = path.stat()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(temp, stat.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(temp, stat.st_uid, stat.st_gid)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
