"""SDXL by hand: the payload's layout, the CLIP score and FID against values computed here, the
round's sample images, and a clear error for each kind of bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.sdxl import accuracy, backend, dataset
from harness import logs
from harness.errors import DataError


@pytest.fixture(scope="module")
def demo(demo_data):
    return demo_data("sdxl")


@pytest.fixture
def damaged(demo_copy):
    return demo_copy("sdxl")


def test_the_payload_is_the_reference_s_uint8_hwc_and_survives_the_accuracy_log(tmp_path):
    image = torch.rand(3, 5, 5)
    image[0, 0, 0], image[1, 0, 0], image[2, 0, 0] = 0.5 / 255, 1.5 / 255, 1.0  # halves round to even
    payload = backend.to_payload(image)
    assert payload.dtype == np.uint8 and payload.shape == (5, 5, 3)
    assert payload[0, 0].tolist() == [0, 2, 255]
    assert payload[4, 2, 1] == np.round(image[1, 4, 2].item() * 255)  # HWC: [row, column, channel]
    logs.write_accuracy(tmp_path / logs.ACCURACY, [(3, payload.reshape(-1))])
    decoded = logs.decode_outputs(logs.read_accuracy(tmp_path / logs.ACCURACY), "uint8", 4, tmp_path)
    found, failed = accuracy.images(decoded)
    assert failed == 0 and np.array_equal(found[3], payload)


def test_a_response_that_is_not_a_square_image_is_refused():
    with pytest.raises(DataError, match="sample 2.s response holds 15 bytes, not a square RGB image"):
        accuracy.images({2: np.zeros(15, np.uint8)})
    found, failed = accuracy.images({0: np.zeros(0, np.uint8), 1: np.zeros(27, np.uint8)})
    assert failed == 1 and list(found) == [1]


def test_fid_of_the_images_against_their_own_statistics_shifted_is_the_shift_squared(demo, damaged):
    """With the same covariance on both sides, sqrt(S S) = S and the distance is |mu1 - mu2|^2."""
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(40)]
    features = accuracy.activations(pictures, accuracy.load_inception(demo, 64))
    assert features.shape == (40, 64) and features.dtype == np.float64
    shift = np.linspace(-0.5, 0.5, 64)
    np.savez(damaged / accuracy.STATISTICS, mu=features.mean(0) + shift, sigma=np.cov(features, rowvar=False))
    assert accuracy.fid(pictures, damaged) == pytest.approx(float(shift @ shift), rel=1e-4)


def test_inception_features_are_the_first_block_pooled_as_pytorch_fid_pools_them(demo):
    picture = np.full((32, 32, 3), 128, np.uint8)
    model = accuracy.load_inception(demo, 64)
    x = torch.full((1, 3, 32, 32), 128 / 255)
    with torch.no_grad():  # by hand: resize to 299, scale to [-1, 1], block 0, mean over the map
        x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        expected = model.blocks[0](x).mean(dim=(2, 3))[0].double().numpy()
    assert np.allclose(accuracy.activations([picture], model)[0], expected, rtol=1e-5, atol=1e-6)


def test_clip_score_is_100_times_the_cosine_with_openai_s_preprocessing(demo):
    import open_clip

    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # landscape: resize the short side, crop
    model, _ = accuracy.load_clip(demo)
    resized = Image.fromarray(picture).resize((336, 224), Image.BICUBIC)
    cropped = np.asarray(resized, np.float32)[:, 56:280] / 255
    normal = (cropped - np.array(open_clip.OPENAI_DATASET_MEAN, np.float32)) / np.array(open_clip.OPENAI_DATASET_STD,
                                                                                        np.float32)
    with torch.no_grad():
        image = model.encode_image(torch.from_numpy(normal).permute(2, 0, 1)[None]).double()
        text = model.encode_text(open_clip.tokenize(["a red bus on a city street"])).double()
    expected = 100 * torch.nn.functional.cosine_similarity(image, text).item()
    assert accuracy.clip_scores([picture], ["a red bus on a city street"], demo)[0] == pytest.approx(expected, abs=1e-3)


def test_the_round_s_sample_images_as_the_reference_saves_them(demo, tmp_path):
    rows = dataset.read_captions(demo)
    outputs = {i: np.full(32 * 32 * 3, i, np.uint8) for i in (2, 5)}
    accuracy.save_samples(outputs, demo, [5, 2, 9, 4000], tmp_path)
    assert (tmp_path / "captions.txt").read_text() == f"5  {rows[5][1]}\n2  {rows[2][1]}\n9  {rows[9][1]}\n"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "5.png")), outputs[5].reshape(32, 32, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.png", "5.png", "captions.txt"]
    assert accuracy.sample_files([5, 2]) == ["captions.txt", "5.png", "2.png"]


def test_accuracy_txt_is_the_line_the_checker_parses():
    text = accuracy.accuracy_text({"clip_score": np.float64(31.75), "fid_score": np.float64(23.5)})
    assert text == "Accuracy Results: {'FID_SCORE': 23.5, 'CLIP_SCORE': 31.75}\n"  # not np.float64(...)


@pytest.mark.parametrize("content, message", [
    ("id\tcaption\n70\ta dog\n\tno id\n", r"captions_source.tsv:3: the id is missing"),
    ("id\tcaption\n70\ta dog\n71\t  \n", r"captions_source.tsv:3: the caption of id 71 is empty"),
    ("id\tcaption\n70\ta dog\n70\ta cat\n", r"captions_source.tsv:3: id 70 appears twice"),
    ("image_id\ttext\n1\ta dog\n", r"has no id or caption column"),
])
def test_a_bad_caption_file_is_named(damaged, content, message):
    (damaged / dataset.CAPTIONS).write_text(content)
    with pytest.raises(DataError, match=message):
        dataset.read_captions(damaged)


def test_a_latent_of_the_wrong_shape_is_named(damaged):
    torch.save(torch.zeros(1, 4, 16, 16), damaged / backend.LATENTS)
    with pytest.raises(DataError, match=r"holds \(1, 4, 16, 16\), but this pipeline's UNet starts from one latent "
                                        r"of shape \(1, 4, 8, 8\)"):
        backend.load(damaged, "cpu", "fp32")


@pytest.mark.parametrize("part", ["unet", "text_encoder_2", "tokenizer_2", "scheduler"])
def test_a_pipeline_folder_missing_a_part_names_it(damaged, part):
    shutil.rmtree(damaged / "model" / part)
    with pytest.raises(DataError, match=f"model/{part} is missing: the SDXL pipeline folder needs its {part} part"):
        backend.load(damaged, "cpu", "fp32")


def test_pickled_weights_are_not_loaded(damaged):
    unet = damaged / "model" / "unet"
    (unet / "diffusion_pytorch_model.safetensors").rename(unet / "diffusion_pytorch_model.bin")
    with pytest.raises(DataError, match="has no .safetensors weights"):
        backend.load(damaged, "cpu", "fp32")


def test_fid_statistics_of_the_wrong_dimension_are_named(damaged):
    np.savez(damaged / accuracy.STATISTICS, mu=np.zeros(100), sigma=np.eye(100))
    with pytest.raises(DataError, match=r"mu of shape \(100,\) and sigma of shape \(100, 100\).*one of InceptionV3's "
                                        r"64, 192, 768, 2048"):
        accuracy.load_statistics(damaged)
    (damaged / accuracy.STATISTICS).write_bytes(b"not an npz")
    with pytest.raises(DataError, match="is not an .npz of FID statistics"):
        accuracy.load_statistics(damaged)


def test_a_clip_config_without_quick_gelu_is_refused(damaged):
    path = damaged / accuracy.CLIP_DIR / accuracy.CLIP_CONFIG
    config = json.loads(path.read_text())
    config["model_cfg"]["quick_gelu"] = False
    path.write_text(json.dumps(config))
    with pytest.raises(DataError, match="does not set model_cfg.quick_gelu"):
        accuracy.load_clip(damaged)


def test_a_clip_config_naming_a_tower_elsewhere_is_refused(damaged):
    path = damaged / accuracy.CLIP_DIR / accuracy.CLIP_CONFIG
    config = json.loads(path.read_text())
    config["model_cfg"]["text_cfg"]["hf_model_name"] = "someone/some-text-model"
    path.write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"sets model_cfg.text_cfg.hf_model_name: a tower taken from another model"):
        accuracy.load_clip(damaged)


def test_inception_weights_of_another_network_are_refused(damaged):
    torch.save({"fc.weight": torch.zeros(2, 2)}, damaged / accuracy.INCEPTION)
    with pytest.raises(DataError, match="is not the FID Inception state dict"):
        accuracy.load_inception(damaged, 64)


def test_a_single_image_scores_clip_and_leaves_fid_not_scored(demo):
    metrics = accuracy.score({0: np.zeros(32 * 32 * 3, np.uint8)}, demo)
    assert metrics["fid_score"] is None and "needs 2 or more images, not 1" in metrics["unscored"]
    assert isinstance(metrics["clip_score"], float) and metrics["images"] == 1


def test_a_snapshot_of_diffusers_fp16_variant_loads_at_fp16(damaged):
    """MLCommons' fp16 checkpoint: each part's weights saved as diffusers' ``fp16`` variant."""
    for part, name in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                       ("text_encoder", "model"), ("text_encoder_2", "model")):
        (damaged / "model" / part / f"{name}.safetensors").rename(damaged / "model" / part / f"{name}.fp16.safetensors")
    pipe = backend.load_pipeline(damaged, "cpu", "fp16")
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype, pipe.text_encoder_2.dtype} == {torch.float16}
