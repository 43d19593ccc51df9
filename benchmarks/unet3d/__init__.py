"""3D-UNet kidney and tumor segmentation on KiTS19 (MLPerf Inference 3d-unet-99, 3d-unet-99.9)."""

from harness.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    id="unet3d",
    mlperf_names=("3d-unet-99", "3d-unet-99.9"),
    conf_key="3d-unet",
    datacenter_scenarios=("Offline",),
    edge_scenarios=("SingleStream", "Offline"),
    dataset_size=43,
    performance_count=43,  # the embedded mlperf.conf's override is 0: LoadGen takes the QSL's, all cases
    payload_dtype="uint8",  # the label volume of the preprocessed grid, as the reference responds
    default_batch_size=1,  # cases per call; the windows of a case are batched (backend.WINDOWS_PER_BATCH)
    stall_timeout_s=1800.0,
    description="3D-UNet (MLPerf checkpoint), KiTS19 43 cases, sliding window 128^3, kidney and tumor DICE",
)
