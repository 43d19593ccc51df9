"""Mixtral-8x7B Instruct on OpenOrca, GSM8K and MBXP (MLPerf Inference mixtral-8x7b)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="mixtral",
    mlperf_names=("mixtral-8x7b",),
    conf_key="mixtral-8x7b",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=(),  # datacenter only in v4.1
    dataset_size=15000,
    # LoadGen 4.1.30's embedded mlperf.conf sets no performance sample count for mixtral-8x7b, so
    # LoadGen takes the QSL's: the QSL reports the whole set, as the reference's does
    performance_count=15000,
    payload_dtype="int32",  # as the reference responds and TEST06 reads (--dtype int32)
    eos_token_id=2,
    # continuous batching: the most sequences decoding together, and the cap on rows x longest
    # possible sequence (prompt + 1,024 new tokens) their keys and values may take
    default_batch_size={"cpu": 32, "cuda": 128},
    default_batch_tokens={"cpu": 65536, "cuda": 262144},
    stall_timeout_s=1800.0,
    description="Mixtral-8x7B Instruct, OpenOrca + GSM8K + MBXP, greedy, continuous batching with token streaming",
)
