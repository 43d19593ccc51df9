"""ResNet-50 v1.5 image classification on ImageNet 2012 validation (MLPerf Inference resnet)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="resnet",
    mlperf_names=("resnet",),
    conf_key="resnet50",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "MultiStream", "Offline"),
    dataset_size=50000,
    performance_count=1024,
    payload_dtype="float32",  # one float32 class index per sample, as the reference responds
    default_batch_size={"cpu": 8, "cuda": 32},
    stall_timeout_s=300.0,
    description="ResNet-50 v1.5 (torchvision weights), ImageNet 2012 validation, top-1",
)
