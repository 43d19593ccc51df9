"""Contract tests generated for every discovered benchmark: a new benchmark folder gets them free."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import cli, demo, evaluate, logs, registry
from harness.rounds import default_round, load_round

BENCHMARKS = sorted(registry.discover())
# A smoke run checks LoadGen and the SUT machinery, not the machine: the latency bound is wide
# enough (100 ms) that a scheduling hiccup of a busy CI machine cannot fail early stopping.
SMOKE_CONF = """\
*.Offline.min_duration = 0
*.Offline.target_qps = 10000
*.Offline.min_query_count = 1
*.Server.min_duration = 1000
*.Server.target_qps = 1000
*.Server.min_query_count = 600
*.Server.target_latency = 100
*.SingleStream.min_duration = 0
*.SingleStream.min_query_count = 600
*.SingleStream.target_latency = 100
"""


@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_spec_names_have_round_targets(bench_id):
    bench = registry.get(bench_id)
    rnd = load_round(default_round(bench.spec))
    for name in bench.spec.mlperf_names:
        assert rnd.targets(name), name
    assert "Offline" in bench.spec.scenarios
    assert bench.folder.name == bench_id and (bench.folder / "README.md").read_text().strip()


@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_compose_includes_the_benchmark_once(bench_id):
    top = (registry.benchmarks_root().parent / "compose.yaml").read_text()
    assert top.count(f"benchmarks/{bench_id}/compose.yaml") == 1, f"compose.yaml must include benchmarks/{bench_id}"
    own = (registry.benchmarks_root() / bench_id / "compose.yaml").read_text()
    assert f"BENCHMARK: {bench_id}" in own and f"profiles: [{bench_id}]" in own


@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_qsl_loads_demo_data(bench_id, demo_data):
    bench = registry.get(bench_id)
    ds = bench.dataset.load(demo_data(bench_id))
    assert len(ds) > 0
    assert ds[0] is not None and ds[len(ds) - 1] is not None


@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_scorer_handles_a_hand_made_accuracy_log(bench_id, demo_data, tmp_path):
    bench = registry.get(bench_id)
    data = demo_data(bench_id)
    empty = np.zeros(0, dtype=bench.spec.payload_dtype).tobytes().hex()
    (tmp_path / "mlperf_log_accuracy.json").write_text(
        json.dumps([{"seq_id": i, "qsl_idx": i, "data": empty} for i in range(4)]))
    result = evaluate.score(bench, {i: np.zeros(0, bench.spec.payload_dtype) for i in range(4)}, data,
                            load_round(default_round(bench.spec)))
    for name in bench.spec.mlperf_names:
        metrics = [c["metric"] for c in result["variants"][name]["checks"]]
        # a number, or None where the scorer says why it could not score (a part absent from 4 samples)
        assert metrics and all(type(result["metrics"][m]) in (int, float) or (
            result["metrics"][m] is None and result["metrics"].get("unscored")) for m in metrics)
    assert "np." not in bench.accuracy.accuracy_text(result["metrics"])


@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_the_demo_truth_is_the_reference_execution_and_judges_agreement(bench_id, demo_data):
    """The demo rule (harness.demo), for every benchmark: ground truth written from what
    load_reference answers, the reference's responses kept for every sample, the reference
    scoring its best (and more than zero) on them, empty answers failing the demo targets."""
    bench = registry.get(bench_id)
    data = demo_data(bench_id)
    assert callable(bench.backend.load_reference) and callable(bench.demo.ground_truth)
    n = len(bench.dataset.load(data))
    records = logs.read_accuracy(data / demo.REFERENCE_LOG)
    assert [r.qsl_idx for r in records] == list(range(n))
    outputs = logs.decode_outputs(records, bench.spec.payload_dtype, n)
    rnd = load_round(default_round(bench.spec))
    own = evaluate.score(bench, outputs, data, rnd, demo_tier=True)
    assert own["targets"] == demo.TARGETS and own["full_dataset"] is False
    for variant in own["variants"].values():
        # every metric scored, or (code execution without its sandbox here) NOT SCORED with the reason
        scored = [c for c in variant["checks"] if c["value"] is not None]
        assert scored and all(c["passed"] and c["value"] > 0 and c["ratio"] > 1 for c in scored)
        assert len(scored) == len(variant["checks"]) or own["metrics"].get("unscored")
    marker = json.loads((data / demo.MARKER).read_text())
    assert marker["reference_metrics"] == json.loads(json.dumps(own["metrics"], default=float))
    empty = evaluate.score(bench, {i: np.zeros(0, bench.spec.payload_dtype) for i in range(n)}, data, rnd,
                           demo_tier=True)
    assert not any(variant["passed"] for variant in empty["variants"].values())


@pytest.mark.parametrize("kind", ["Offline", "latency-bound"])
@pytest.mark.parametrize("bench_id", BENCHMARKS)
def test_loadgen_smoke_with_null_backend(bench_id, kind, demo_data, tmp_path, capsys):
    scenarios = registry.get(bench_id).spec.scenarios  # latency-bound: Server, else SingleStream
    scenario = kind if kind == "Offline" else "Server" if "Server" in scenarios else "SingleStream"
    conf = tmp_path / "smoke.conf"
    conf.write_text(SMOKE_CONF)
    out = tmp_path / "run"
    code = cli.main(["run", bench_id, "--scenario", scenario, "--mode", "performance", "--null-backend",
                     "--user-conf", str(conf), "--data", str(demo_data(bench_id)), "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["performance"]["validity"] == "VALID", result["performance"]["reasons"]
    assert result["performance"]["loadgen_version"].split(" @ ")[0] == load_round(result["round"]).logged_loadgen_version
    assert "NULL BACKEND" in capsys.readouterr().out
