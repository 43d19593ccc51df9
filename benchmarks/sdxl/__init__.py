"""Stable Diffusion XL 1.0 base on 5,000 COCO-2014 captions (MLPerf Inference stable-diffusion-xl)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="sdxl",
    mlperf_names=("stable-diffusion-xl",),
    conf_key="stable-diffusion-xl",
    datacenter_scenarios=("Server", "Offline"),
    edge_scenarios=("SingleStream", "Offline"),
    dataset_size=5000,
    performance_count=5000,  # the embedded mlperf.conf's override: every caption stays loaded
    payload_dtype="uint8",  # the image, H x W x 3, as the reference responds
    # prompts per pipeline call (the UNet runs twice as many rows: classifier-free guidance)
    default_batch_size={"cpu": 8, "cuda": 8},
    stall_timeout_s=1800.0,
    description="Stable Diffusion XL 1.0 base, COCO-2014 captions, 20 Euler steps, CLIP score and FID",
)
