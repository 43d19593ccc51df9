"""GPT-J 6B summarization of CNN/DailyMail (MLPerf Inference gptj-99 / gptj-99.9)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="gptj",
    mlperf_names=("gptj-99", "gptj-99.9"),
    conf_key="gptj",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "Offline"),
    dataset_size=13368,
    performance_count=13368,
    payload_dtype="int64",  # the reference evaluation.py reads int64 unless told otherwise
    default_batch_size={"cpu": 16, "cuda": 8},
    # Beam search with 4 beams copies its KV cache every step: on a CPU, padded batches beyond
    # ~2k tokens fall out of cache and run slower than small ones (tests/perf/bench_batching.py gptj).
    default_batch_tokens={"cpu": 8192, "cuda": 32768},
    stall_timeout_s=1800.0,  # one beam-search batch of a real 6B model on CPU can take minutes
    description="GPT-J 6B, CNN/DailyMail summarization, beam search 4",
)
