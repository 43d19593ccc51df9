import subprocess
import sys
from dataclasses import replace

import pytest

from harness import registry, settings
from harness.errors import InvalidSettings
from harness.settings import RunConfig


@pytest.fixture
def config(tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("")
    return RunConfig(benchmark="gptj", scenario="Offline", mode="accuracy", data_dir=str(tmp_path), demo=True,
                     user_conf=str(conf))


def spec():
    return registry.get("gptj").spec


def test_valid_config_passes(config):
    settings.validate(config, spec())
    assert RunConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("change, message", [
    ({"scenario": "offline"}, "did you mean 'Offline'"),
    ({"scenario": "MultiStream"}, "not one of gptj's scenarios"),
    ({"mode": "perf"}, "mode 'perf' is unknown"),
    ({"dtype": "int8"}, "dtype 'int8' is unknown"),
    ({"device": "tpu"}, "device 'tpu' is unknown"),
    ({"device": "rngd:0"}, "gptj's image runs on cpu, cuda, not rngd"),
    ({"n_count": 0}, "--n-count must be at least 1"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"n_partitions": 4, "partition_offset": 4}, r"--partition-offset 4 must be in \[0, 4\)"),
    ({"n_partitions": 2, "mode": "performance"}, "partitioned runs are accuracy-only"),
    ({"user_conf": "/nonexistent/user.conf"}, "does not exist"),
])
def test_invalid_settings_are_named(config, change, message):
    with pytest.raises(InvalidSettings, match=message):
        settings.validate(replace(config, **change), spec())


def test_sample_count(config):
    assert settings.check_sample_count(config, 64) == 64
    assert settings.check_sample_count(replace(config, n_count=10), 64) == 10
    with pytest.raises(InvalidSettings, match="--n-count 65 is above the dataset size 64"):
        settings.check_sample_count(replace(config, n_count=65), 64)


def test_devices(config, monkeypatch):
    assert settings.devices(replace(config, n_devices=3)) == ["cpu", "cpu", "cpu"]
    assert settings.devices(replace(config, device="rngd:2", n_devices=2)) == ["rngd:2", "rngd:3"]
    assert settings.device_kind("cuda:1") == "cuda" and settings.device_kind("gpu") is None
    import torch

    if torch.cuda.device_count() == 0:
        with pytest.raises(InvalidSettings, match="0 CUDA device"):
            settings.devices(replace(config, device="cuda:1"))
        monkeypatch.setenv("HARNESS_IMAGE_COMMIT", "abc")  # inside a benchmark image
        with pytest.raises(InvalidSettings, match=r"docker compose --profile cuda run --rm gptj-cuda"):
            settings.devices(replace(config, device="cuda:0"))


PROBE = """
import sys
from pathlib import Path
from harness import registry, settings
spec = registry.get("gptj").spec
s = settings.test_settings(spec, sys.argv[2], "performance", Path(sys.argv[1]))
print(s.min_duration_ms, s.min_query_count, s.performance_sample_count_override, s.qsl_rng_seed,
      s.infer_token_latencies, s.token_latency_scaling_factor, s.server_target_latency_ns, s.offline_expected_qps)
"""


def probe(conf, scenario="Offline"):
    # FromConfig may run once per process: each probe is a fresh interpreter
    return subprocess.run([sys.executable, "-c", PROBE, str(conf), scenario], capture_output=True, text=True)


def test_embedded_mlperf_conf_then_user_conf(tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("# a comment\ngptj.Offline.target_qps = 2.5\n")
    out = probe(conf)
    assert out.returncode == 0, out.stderr
    values = out.stdout.split()
    # gptj keys from the embedded v4.1 mlperf.conf, the user.conf hint on top
    assert values == ["600000", "13368", "13368", "3066443479025735752", "True", "69", "20000000000", "2.5"]


def test_malformed_user_conf_is_a_clear_error(tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("gptj.Offline.target_qps = fast\n")
    out = probe(conf)
    assert out.returncode != 0
    assert "could not read" in out.stderr and "model.scenario.key = number" in out.stderr
