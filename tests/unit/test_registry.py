import pytest

from harness import registry
from harness.errors import HarnessError, InvalidSettings, UnknownBenchmark
from harness.spec import BenchmarkSpec


def test_discovers_gptj_with_its_names():
    bench = registry.get("gptj")
    assert bench.spec.conf_key == "gptj"
    assert bench.spec.mlperf_names == ("gptj-99", "gptj-99.9")
    assert bench.spec.scenarios == ("SingleStream", "Server", "Offline")
    assert bench.user_conf.is_file()


@pytest.mark.parametrize("name, hint", [
    ("gpt-j", "Did you mean 'gptj'"),
    ("gptj-99.9", "'gptj-99.9' is an MLPerf name of it"),
    ("zzzz", "Available: bert, dlrm, gptj, llama2, mixtral"),
    ("resnet50", "Did you mean .resnet."),
    ("bert-99", "'bert-99' is an MLPerf name of it"),
])
def test_unknown_benchmark_suggests(name, hint):
    with pytest.raises(UnknownBenchmark, match=hint):
        registry.get(name)


def test_folder_missing_a_required_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "newbench").mkdir()
    (tmp_path / "newbench" / "__init__.py").write_text("")
    (tmp_path / "_helpers").mkdir()  # underscore folders are not benchmarks
    monkeypatch.setattr(registry, "benchmarks_root", lambda: tmp_path)
    registry.discover.cache_clear()
    try:
        with pytest.raises(HarnessError, match=r"newbench lacks dataset.py, backend.py, accuracy.py"):
            registry.discover()
    finally:
        registry.discover.cache_clear()


def test_spec_validation_lists_problems():
    with pytest.raises(InvalidSettings, match=r"must be a Python identifier.*unknown scenario 'Batch'"):
        BenchmarkSpec(id="3d-unet", mlperf_names=("3d-unet-99",), conf_key="3d-unet", datacenter_scenarios=("Batch",),
                      edge_scenarios=(), dataset_size=43, performance_count=43, payload_dtype="uint8")


def test_default_batch_size_per_device_kind():
    common = dict(mlperf_names=("x",), conf_key="x", datacenter_scenarios=("Offline",), edge_scenarios=(),
                  dataset_size=4, performance_count=4, payload_dtype="float32")
    per_kind = BenchmarkSpec(id="x", default_batch_size={"cpu": 1, "cuda": 8}, **common)
    assert (per_kind.batch_size("cpu"), per_kind.batch_size("cuda"), per_kind.batch_size("rngd")) == (1, 8, 1)
    assert BenchmarkSpec(id="x", default_batch_size=4, **common).batch_size("cuda") == 4
    with pytest.raises(InvalidSettings, match="default_batch_size and stall_timeout_s must be positive"):
        BenchmarkSpec(id="x", default_batch_size={"cpu": 0}, **common)
