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
    # Padded prompt tokens per batch. The prompt pass is quadratic in the padded length, so the
    # SUT orders samples longest first and does not mix long and short prompts; 8k lets the
    # 1919-token prompts batch together (tests/perf/bench_batching.py gptj).
    default_batch_tokens={"cpu": 8192, "cuda": 32768},
    stall_timeout_s=1800.0,  # one beam-search batch of a real 6B model on CPU can take minutes
    description="GPT-J 6B, CNN/DailyMail summarization, beam search 4",
)
