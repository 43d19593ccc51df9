"""RetinaNet 800x800 object detection on the OpenImages v6 MLPerf subset (MLPerf Inference retinanet)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="retinanet",
    mlperf_names=("retinanet",),
    conf_key="retinanet",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "MultiStream", "Offline"),
    dataset_size=24781,
    performance_count=64,
    payload_dtype="float32",  # 7 float32 per detection: [qsl_idx, ymin, xmin, ymax, xmax, score, label]
    default_batch_size={"cpu": 1, "cuda": 8},  # on a CPU, 800 x 800 activations make batches slower
    stall_timeout_s=600.0,
    description="RetinaNet ResNeXt50-32x4d FPN (MLPerf Training weights), OpenImages MLPerf subset, COCO mAP",
)
