"""Llama-2-70B chat on OpenOrca (MLPerf Inference llama2-70b-99 / llama2-70b-99.9)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="llama2",
    mlperf_names=("llama2-70b-99", "llama2-70b-99.9"),
    conf_key="llama2-70b",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=(),  # datacenter only in v4.1
    dataset_size=24576,
    performance_count=24576,
    payload_dtype="int32",  # as the reference responds and TEST06 reads (--dtype int32)
    eos_token_id=2,
    # continuous batching: the most sequences decoding together, and the cap on rows x longest
    # possible sequence (prompt + 1,024 new tokens) their keys and values may take
    default_batch_size={"cpu": 32, "cuda": 128},
    default_batch_tokens={"cpu": 65536, "cuda": 262144},
    stall_timeout_s=1800.0,
    description="Llama-2-70B chat, OpenOrca, greedy, continuous batching with token streaming",
)
