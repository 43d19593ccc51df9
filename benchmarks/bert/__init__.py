"""BERT-Large question answering on SQuAD v1.1 (MLPerf Inference bert-99 / bert-99.9)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="bert",
    mlperf_names=("bert-99", "bert-99.9"),
    conf_key="bert",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "Offline"),
    dataset_size=10833,
    performance_count=10833,
    payload_dtype="float32",  # [384, 2]: start and end logits per position, as the reference responds
    default_batch_size=16,
    stall_timeout_s=600.0,
    description="BERT-Large, SQuAD v1.1 dev, seq 384 / stride 128 / query 64",
)
