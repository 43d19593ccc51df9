"""`harness collect` against a stand-in engine: which image a run is matched to, and what is written."""

from __future__ import annotations

import json
import os
import stat

import pytest

from harness import collect
from harness.collect import LocalImage
from harness.errors import HarnessError


class Engine:
    """Local images and their build-id files, as the Docker engine would report them."""

    def __init__(self, images: dict[str, list[tuple[LocalImage, str | None]]]) -> None:
        self.by_benchmark = images
        self.reads: list[str] = []

    def images(self, benchmark):
        return [image for image, _ in self.by_benchmark.get(benchmark, [])]

    def build_id(self, image_id):
        self.reads.append(image_id)
        return next(build for images in self.by_benchmark.values() for image, build in images if image.id == image_id)


OLD = LocalImage("sha256:" + "1" * 64, ())
NEW = LocalImage("sha256:" + "2" * 64, ("registry.example/gptj@sha256:" + "3" * 64,))


@pytest.fixture
def run_folder(make_manifest):
    def make(root, name, image, benchmark="gptj"):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(make_manifest(benchmark, image)))
        (folder / "result.json").write_text(json.dumps({"benchmark": benchmark, "image": image, "samples": 7}))
        return folder

    return make


def image(build_id, **extra):
    return {"name": "mlperf-harness/gptj", "git_commit": "abc", "lock_sha256": "def", "build_id": build_id,
            "locks": None, **extra}


def test_each_run_gets_the_id_of_the_image_holding_its_build(tmp_path, run_folder):
    engine = Engine({"gptj": [(NEW, "build-new"), (OLD, "build-old")]})
    old_run = run_folder(tmp_path, "2026-01-01-gptj", image("build-old"))
    new_run = run_folder(tmp_path, "nested/2026-02-01-gptj", image("build-new"))
    done = collect.collect([tmp_path], engine)
    assert done.resolved == [old_run, new_run] and not done.unresolved
    for folder, expected, build in ((old_run, OLD, "build-old"), (new_run, NEW, "build-new")):
        for name in ("manifest.json", "result.json"):
            recorded = json.loads((folder / name).read_text())["image"]
            assert recorded["id"] == expected.id and recorded["repo_digests"] == list(expected.repo_digests)
            assert recorded["build_id"] == build and recorded["git_commit"] == "abc"  # kept
            assert recorded["resolved"].startswith("harness collect, ")
    assert json.loads((old_run / "result.json").read_text())["samples"] == 7  # the rest is kept
    assert sorted(engine.reads) == sorted([NEW.id, OLD.id])  # each image's file is read once
    # a second collect finds nothing to do and rewrites nothing
    before = (old_run / "manifest.json").read_text()
    again = collect.collect([tmp_path], engine)
    assert again.already == [old_run, new_run] and not again.resolved
    assert (old_run / "manifest.json").read_text() == before


def test_runs_that_cannot_be_resolved_are_named_and_left_as_they_were(tmp_path, run_folder):
    engine = Engine({"gptj": [(NEW, "build-new")], "bert": [(OLD, None)]})
    pruned = run_folder(tmp_path, "pruned", image("build-gone"))
    unlabelled = run_folder(tmp_path, "bert-run", image("build-x"), benchmark="bert")
    old_style = run_folder(tmp_path, "old-style", image(None))
    native = run_folder(tmp_path, "native", None)
    before = {folder: (folder / "manifest.json").read_text() for folder in (pruned, unlabelled, old_style)}
    done = collect.collect([tmp_path], engine)
    assert done.native == [native] and not done.resolved
    assert "none of the 1 local gptj image(s) holds build build-gone" in done.unresolved[pruned]
    assert "none of the 1 local bert image(s)" in done.unresolved[unlabelled]
    assert "recorded no build ID" in done.unresolved[old_style]
    assert all((folder / "manifest.json").read_text() == text for folder, text in before.items())
    summary = done.summary()
    assert summary.startswith("collect: 0 run(s) resolved, 0 already had their image ID, 1 ran natively, "
                              "3 could not be resolved")
    assert f"UNRESOLVED {pruned}: none of the 1 local gptj image(s)" in summary


def test_rewritten_files_keep_their_mode_and_leave_no_temporary_file(tmp_path, run_folder):
    folder = run_folder(tmp_path, "run", image("build-new"))
    os.chmod(folder / "manifest.json", 0o640)
    collect.collect([folder], Engine({"gptj": [(NEW, "build-new")]}))
    assert stat.S_IMODE((folder / "manifest.json").stat().st_mode) == 0o640
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "result.json"]


def test_bad_roots_and_manifests_are_refused(tmp_path):
    with pytest.raises(HarnessError, match="is not a folder: pass the results folder"):
        collect.collect([tmp_path / "missing"], Engine({}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(HarnessError, match="schema 99"):
        collect.collect([tmp_path], Engine({}))
