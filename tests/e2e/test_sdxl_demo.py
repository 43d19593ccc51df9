"""End to end on the SDXL demo tier: Offline and Server submission runs judged by agreement with the
reference execution's CLIP score and FID, TEST01 and TEST04 on the Offline run, and the submission
tree with the round's sample images and their captions.

The round's sample ids are rows of the 5,000 captions; the demo has 16, so its runs keep the images
of rows 5, 2 and 11 instead. The tree is built as in test_submission_demo.py: with ``allow_demo``
and the round's limits scaled to the demo (targets 0, minimum duration 0.5 s, sample counts 1, the
dataset of 16, wide compliance tolerances); everything else is the real flow.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from PIL import Image

from harness import cli, compliance, logs, partition, registry, runner, submission
from harness.rounds import MetricTarget, PerformanceRules, load_round

pytestmark = pytest.mark.slow
IDS = (5, 2, 11)
NAME = "stable-diffusion-xl"


@pytest.fixture(scope="module")
def demo_scale():
    rnd = load_round()
    samples = rnd.accuracy_samples | {NAME: IDS}
    scaled = dataclasses.replace(
        rnd, accuracy={NAME: (MetricTarget("clip_score", 0.0, 1.0), MetricTarget("fid_score", 0.0, 1.0))},
        performance={NAME: PerformanceRules(1, 1, 20000)}, submission=rnd.submission | {"min_duration_ms": 500},
        tolerances={k: 5.0 for k in rnd.tolerances}, accuracy_samples=samples)
    with pytest.MonkeyPatch.context() as patch:
        # the runs keep the demo's sample images, and are judged by the round's own demo targets
        for module in (runner, partition):
            patch.setattr(module, "load_round", lambda name: dataclasses.replace(rnd, accuracy_samples=samples))
        patch.setattr(compliance, "load_round", lambda name: scaled)
        patch.setattr(submission, "load_round", lambda name: scaled)
        bench = registry.get("sdxl")
        patch.setitem(registry.discover(), "sdxl", dataclasses.replace(
            bench, spec=dataclasses.replace(bench.spec, dataset_size=16, performance_count=16)))
        yield scaled


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory, demo_scale):
    root = tmp_path_factory.mktemp("sdxl")
    data = str(demo_data("sdxl"))
    for scenario in ("Server", "Offline"):
        assert cli.main(["run", "sdxl", "--scenario", scenario, "--mode", "submission", "--data", data,
                         "--out", str(root / scenario)]) == 0
    checked = {t: compliance.run("sdxl", t, [root / "Offline"], "Offline", root / t, echo=False)
               for t in ("TEST01", "TEST04")}
    return root, checked


@pytest.mark.parametrize("scenario", ["Server", "Offline"])
def test_submission_runs_agree_with_the_reference_execution(runs, demo_data, scenario):
    root, _ = runs
    result = json.loads((root / scenario / "result.json").read_text())
    checks = result["accuracy"]["variants"][NAME]["checks"]
    assert {c["metric"]: c["passed"] for c in checks} == {"clip_score": True, "fid_score": True}
    assert all(c["upper"] is not None for c in checks)  # both are ranges, both bounds checked
    assert result["accuracy"]["targets"] == "demo targets: agreement with the reference execution"
    reference = json.loads((demo_data("sdxl") / "DEMO.json").read_text())["reference_metrics"]
    assert reference["clip_score"] > 0 and reference["fid_score"] > 0  # the demo CLIP is signed to score positive
    text = (root / scenario / "accuracy" / "accuracy.txt").read_text()
    assert re.fullmatch(r"Accuracy Results: \{'FID_SCORE': [\d.]+, 'CLIP_SCORE': [\d.]+\}\n", text)
    perf = result["performance"]
    assert perf["validity"] == "VALID", perf["reasons"]
    detail = (root / scenario / "performance" / "run_1" / logs.DETAIL).read_text()
    # the embedded mlperf.conf's override for SDXL, whatever the QSL reports (LoadGen draws from its 16)
    assert '"key": "effective_performance_sample_count", "value": 5000' in detail


def test_the_accuracy_run_keeps_the_round_s_sample_images(runs, demo_data):
    root, _ = runs
    images = root / "Offline" / "accuracy" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["11.png", "2.png", "5.png", "captions.txt"]
    records = logs.read_accuracy(root / "Offline" / "accuracy" / logs.ACCURACY)
    payload = logs.decode_outputs(records, "uint8", 16)[5]
    assert np.array_equal(np.asarray(Image.open(images / "5.png")), payload.reshape(32, 32, 3))
    captions = (demo_data("sdxl") / "captions" / "captions_source.tsv").read_text().splitlines()[1:]
    assert (images / "captions.txt").read_text().splitlines()[0] == f"5  {captions[5].split(chr(9))[2]}"


def test_partitions_merge_with_the_sample_images(runs, demo_data, tmp_path):
    root, _ = runs
    assert cli.main(["run", "sdxl", "--mode", "accuracy", "--n-partitions", "2", "--n-devices", "2",
                     "--data", str(demo_data("sdxl")), "--out", str(tmp_path / "parts")]) == 0
    assert cli.main(["merge", str(tmp_path / "parts"), "--out", str(tmp_path / "merged")]) == 0
    images = tmp_path / "merged" / "accuracy" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["11.png", "2.png", "5.png", "captions.txt"]
    assert (images / "captions.txt").read_text() == (root / "Offline/accuracy/images/captions.txt").read_text()


def test_test01_and_test04_on_the_offline_run(runs):
    root, checked = runs
    test01, test04 = checked["TEST01"]["compliance"], checked["TEST04"]["compliance"]
    assert test01["passed"], test01["reasons"]
    assert test01["audit_settings"]["accuracy_log_rng_seed"] == 720381539243781796
    assert test04["passed"], test04["reasons"]
    # TEST04's line for this benchmark raises the Offline query to 500 samples, all of one sample
    assert test04["audit_settings"]["min_query_count"] == 500 and test04["audit_settings"]["performance_issue_same"]
    detail = (root / "TEST04" / "loadgen" / logs.DETAIL).read_text()
    assert '"key": "effective_min_sample_count", "value": 500' in detail  # Offline counts samples
    assert (root / "TEST01" / "TEST01" / "verify_accuracy.txt").read_text().endswith("TEST PASS\n")
    assert (root / "TEST04" / "TEST04" / "verify_performance.txt").read_text().endswith("TEST PASS\n")


def test_the_tree_places_the_sample_images_where_the_checker_looks(runs, tmp_path):
    root, _ = runs
    system = submission.system_template(load_round()) | {"submitter": "Org", "division": "open",
                                                         "system_type": "datacenter", "system_name": "ci box"}
    (tmp_path / "box.json").write_text(json.dumps({k: v or "n/a" for k, v in system.items()}))
    done = submission.build("v4.1", "open", "Org", tmp_path / "box.json",
                            [root / "Server", root / "Offline", root / "TEST01", root / "TEST04"], tmp_path / "out",
                            allow_demo=True)
    assert sorted(r.split(":")[0] for r in done["results"]) == [f"{NAME} Offline", f"{NAME} Server"]
    org = tmp_path / "out/submission/open/Org"
    for scenario in ("Server", "Offline"):
        accuracy = org / f"results/box/{NAME}/{scenario}/accuracy"
        assert sorted(p.name for p in (accuracy / "images").iterdir()) == ["11.png", "2.png", "5.png",
                                                                           "captions.txt"]
        assert (accuracy / "images" / "5.png").read_bytes() == (root / scenario / "accuracy/images/5.png").read_bytes()
    for test in ("TEST01", "TEST04"):
        assert (org / f"compliance/box/{NAME}/Offline/{test}/verify_performance.txt").is_file()
