"""DLRM-v2 (DCNv2) click-through prediction on multi-hot Criteo day 23 (MLPerf Inference dlrm-v2-99, dlrm-v2-99.9)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="dlrm",
    mlperf_names=("dlrm-v2-99", "dlrm-v2-99.9"),
    conf_key="dlrm-v2",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=(),
    dataset_size=330067,  # aggregated samples of the first half of day 23 (dataset.aggregate)
    performance_count=204800,  # the embedded mlperf.conf's override for dlrm-v2
    payload_dtype="float32",  # [prediction, label] per user-item pair, as the reference responds
    default_batch_size={"cpu": 256, "cuda": 1024},  # samples; the pairs cap below binds first
    default_batch_tokens={"cpu": 1024, "cuda": 65536},  # user-item pairs in one pass (CPU: the cache-sized best)
    padded_batches=False,  # the pairs of a batch's samples are concatenated
    description="DLRM-DCNv2 (MLPerf sharded checkpoint), multi-hot Criteo day 23, 330,067 samples of 100-700 pairs, "
                "ROC AUC",
)
