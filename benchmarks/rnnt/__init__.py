"""RNN-T speech recognition on LibriSpeech dev-clean (MLPerf Inference rnnt, round v4.0)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="rnnt",
    mlperf_names=("rnnt",),
    conf_key="rnnt",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "Offline"),
    dataset_size=2513,
    performance_count=2513,
    payload_dtype="int64",  # character indices, as the reference responds (array typecode 'q')
    default_batch_size={"cpu": 16, "cuda": 64},  # utterances decoded together (backend.greedy_batch)
    description="RNN-T (MLPerf checkpoint), LibriSpeech dev-clean 2513 utterances, greedy decoding, WER",
)
