"""3D-UNet by hand: each preprocessing step, the Gaussian map and the windows, the reassembly of
weighted windows, batched windows against one at a time, DICE, and bad input."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from benchmarks.unet3d import accuracy, backend, dataset, demo
from harness.errors import DataError


@pytest.fixture(scope="module")
def data(demo_data):
    return demo_data("unet3d")


@pytest.fixture
def damaged(demo_copy):
    return demo_copy("unet3d")


@pytest.mark.parametrize("size, crop, pad", [
    (128, (0, 0), (0, 0)), (150, (11, 11), (0, 0)), (159, (15, 16), (0, 0)), (160, (0, 0), (16, 16)),
    (200, (4, 4), (0, 0)), (230, (0, 0), (13, 13)), (333, (6, 7), (0, 0)), (97, (0, 0), (15, 16)),
])
def test_each_axis_becomes_a_multiple_of_64_of_at_least_128(size, crop, pad):
    assert dataset.window_adjustment(size) == (crop, pad)
    assert (size - sum(crop) + sum(pad)) % 64 == 0 and size - sum(crop) + sum(pad) >= 128


def test_preprocessing_clips_normalises_and_pads_as_the_reference():
    image = np.linspace(-1000, 1000, 10 * 20 * 30, dtype=np.float32).reshape(10, 20, 30)
    label = (image > 200).astype(np.uint8)
    out, labels = dataset.preprocess(image, label, (1.6, 1.2, 1.2))  # the target spacing: no resampling
    assert out.shape == labels.shape == (1, 128, 128, 128) and out.dtype == np.float32 and labels.dtype == np.uint8
    assert dataset.min_pads(10) == (59, 59) and dataset.min_pads(30) == (49, 49)
    inner = out[0, 59:69, 54:74, 49:79]
    assert np.allclose(inner, (np.clip(image, -79, 304) - 101) / 76.9)
    assert out[0].min() == pytest.approx((-79 - 101) / 76.9) and out[0].max() == pytest.approx((304 - 101) / 76.9)
    assert np.array_equal(out[0, 0, 54:74, 49:79], inner[0])  # shorter than 128: the edge repeated
    assert np.array_equal(labels[0, 59:69, 54:74, 49:79], label)


def test_a_volume_whose_axis_ends_past_a_multiple_is_padded_with_minus_2_2():
    image = np.zeros((160, 128, 128), np.float32)
    out, labels = dataset.preprocess(image, np.ones(image.shape, np.uint8), (1.6, 1.2, 1.2))
    assert out.shape == (1, 192, 128, 128)
    assert np.all(out[0, :16] == np.float32(-2.2)) and np.all(out[0, -16:] == np.float32(-2.2))
    assert np.all(labels[0, :16] == 0) and np.all(labels[0, 16:176] == 1)


def test_resampling_to_the_target_spacing():
    image = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    resampled, labels = dataset.resample(image, np.zeros(image.shape, np.uint8), (3.2, 0.6, 1.2))
    assert resampled.shape == labels.shape == (8, 3, 6)  # 4 x 2, 6 x 0.5, 6 x 1
    assert resampled[0, 0, 0] == image[0, 0, 0] and resampled[-1, -1, -1] == pytest.approx(image[-1, -1, -1])
    assert resampled[:, 0, 0] == pytest.approx(np.linspace(0, 108, 8))  # linear between the end points
    same, _ = dataset.resample(image, image.astype(np.uint8), (1.6, 1.2, 1.2))
    assert same is image


def test_the_importance_map_is_the_cube_root_of_the_gaussian_scaled_to_1():
    weights = backend.importance_map()
    d = np.arange(128) - 63.5
    squares = d[:, None, None] ** 2 + d[None, :, None] ** 2 + d[None, None, :] ** 2
    assert weights.shape == (128, 128, 128) and weights.max() == 1.0
    assert np.allclose(weights, np.exp(-(squares - 0.75) / (6 * 16.0 ** 2)), rtol=1e-5)
    assert weights[0, 0, 0] == pytest.approx(3.8e-4, rel=0.01)


def test_windows_tile_the_volume_at_stride_64_width_fastest():
    found = backend.windows((192, 128, 256))
    assert [(w[0].start, w[1].start, w[2].start) for w in found] == [
        (0, 0, 0), (0, 0, 64), (0, 0, 128), (64, 0, 0), (64, 0, 64), (64, 0, 128)]
    assert all(s.stop - s.start == 128 for w in found for s in w)


def test_windows_are_weighted_summed_and_normalised_before_the_arg_max():
    import torch

    class Means(torch.nn.Module):  # each window answers its own mean: the windows disagree
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3, 4))[:, None, None, None, None]
            return torch.cat([m, 1 - m, torch.full_like(m, 0.5)], dim=1).expand(-1, -1, 128, 128, 128)

    sut = backend.Unet3dBackend(Means(), "cpu", 2)
    image = np.zeros((1, 192, 128, 128), np.float32)
    image[0, 150:] = 1.0  # the second window sees more of it than the first
    scores, norm = np.zeros((3, 192, 128, 128)), np.zeros((192, 128, 128))
    for window in backend.windows((192, 128, 128)):
        m = image[0][window].mean()
        scores[(slice(None), *window)] += np.array([m, 1 - m, 0.5])[:, None, None, None] * backend.importance_map()
        norm[window] += backend.importance_map()
    assert np.array_equal(sut.segment(image), (scores / norm).argmax(axis=0).astype(np.uint8))


def test_batched_windows_give_the_labels_of_one_window_at_a_time(data):
    image = dataset.load_case(data, "case_00003")[0]
    assert image.shape == (1, 192, 128, 128)  # two windows
    reference = backend.load_reference(data, "cpu", "fp32").predict([image])[0]
    assert reference.dtype == np.uint8 and reference.shape == (192, 128, 128) and len(np.unique(reference)) == 3
    ours = backend.load(data, "cpu", "fp32")  # channels-last, two windows per pass
    batched = ours.predict([image])[0]
    assert ours.per_batch == 2 and np.mean(batched == reference) > 0.9999, np.mean(batched == reference)
    # a case's windows are always grouped alike, whatever LoadGen batches: the same bytes on every
    # call, which TEST01 compares between the accuracy and performance runs
    assert np.array_equal(ours.predict([image])[0], batched)


def test_first_max_is_argmax_with_its_ties():
    import torch

    scores = torch.tensor([[1.0, 2.0, 2.0, 0.5, 3.0, 1.0], [1.0, 1.0, 2.0, 0.5, 3.0, 2.0], [0.0, 2.0, 1.0, 0.5, 3.0, 1.0]])
    norm = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 4.0])
    expected = (scores / norm).argmax(dim=0).to(torch.uint8)
    assert backend.first_max(scores, norm).tolist() == expected.tolist() == [0, 0, 0, 0, 0, 1]
    many, weights = torch.randn(3, 40, 40, 40), torch.rand(40, 40, 40) + 0.1
    assert torch.equal(backend.first_max(many, weights), (many / weights).argmax(dim=0).to(torch.uint8))


def test_the_weight_maps_kept_are_bounded(data):
    ours = backend.load(data, "cpu", "fp32")
    shapes = [(128, 128, 128 + 64 * i) for i in range(backend.NORM_MAPS_KEPT + 2)]
    for shape in shapes:
        ours.norm_map(shape)
    assert list(ours._norms) == shapes[-backend.NORM_MAPS_KEPT:]


def test_the_channels_last_norm_is_instance_norm_and_relu():
    import torch
    from torch import nn

    norm = nn.InstanceNorm3d(6, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 9, 10, 11) * 3 + 1
    ours = backend.norm_relu(norm)(x.contiguous(memory_format=torch.channels_last_3d))
    assert ours.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(ours, torch.relu(norm(x)), atol=1e-5, rtol=1e-5)


def test_dice_by_hand():
    truth = np.array([0, 1, 1, 2, 2, 0], np.uint8)
    prediction = np.array([1, 1, 0, 2, 0, 0], np.uint8)
    assert accuracy.dice(truth, prediction, 1) == pytest.approx((2 * 1 + 1e-6) / (2 + 2 + 1e-6))
    assert accuracy.dice(truth, prediction, 2) == pytest.approx((2 * 1 + 1e-6) / (2 + 1 + 1e-6))
    assert accuracy.dice(np.zeros(4), np.zeros(4), 2) == 1.0  # absent from both: agreement
    assert accuracy.accuracy_text({"mean": 0.8617, "kidney": 0.93471, "tumor": 0.78873}) == (
        "Accuracy: mean = 0.86170, kidney = 0.9347, tumor = 0.7887\n")


def test_scores_are_means_over_the_cases_the_duplicate_counted_twice(data):
    cases = dataset.read_cases(data)
    assert cases[-1] == "case_00400" and "case_00185" in cases
    truths = {i: dataset.load_case(data, c)[1][0] for i, c in enumerate(cases)}
    perfect = {i: t.reshape(-1) for i, t in truths.items()}
    assert accuracy.score(perfect, data) == {"mean": 1.0, "kidney": 1.0, "tumor": 1.0, "cases": 5}
    one_wrong = perfect | {0: np.zeros(0, np.uint8)}  # a failed sample scores 0
    assert accuracy.score(one_wrong, data)["mean"] == pytest.approx(0.8)


def test_labels_taken_back_to_a_case_grid_come_through_preprocessing(data):
    for case, shape, spacing in demo.CASES[:2]:  # resampled from a finer grid, no padding
        image, label = dataset.load_case(data, case)
        back = demo.to_case_grid(label[0], shape, spacing)
        assert back.shape == shape
        assert np.array_equal(dataset.preprocess(np.zeros(shape, np.float32), back, spacing)[1], label)


def test_a_case_list_naming_an_unknown_case_is_named(damaged):
    (damaged / dataset.CASES_FILE).write_text(json.dumps(["case_00000", "case_00999"]))
    with pytest.raises(DataError, match=r"inference_cases.json names case_00999, but .*case_00999/imaging.nii.gz "
                                        r"is missing"):
        dataset.read_cases(damaged)
    (damaged / dataset.CASES_FILE).write_text(json.dumps(["../case_00000"]))
    with pytest.raises(DataError, match="is not a KiTS19 case name"):
        dataset.read_cases(damaged)


def test_a_nifti_of_another_dimension_or_a_singular_affine_is_named(damaged):
    import nibabel

    folder = damaged / dataset.CASES_DIR / "case_00005"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4, 2), np.int16), np.eye(4)), str(folder / dataset.IMAGE))
    with pytest.raises(DataError, match=r"case_00005/imaging.nii.gz has 4 dimensions of shape \(4, 4, 4, 2\)"):
        dataset.preprocess_case(folder)
    image = folder / dataset.IMAGE
    nibabel.save(nibabel.Nifti1Image(np.zeros((50, 100, 110), np.int16), np.eye(4)), str(image))
    raw = bytearray(gzip.decompress(image.read_bytes()))
    raw[254:256] = struct.pack("<h", 1)  # sform_code: the sform rows are the affine ...
    raw[280:284] = struct.pack("<f", float("nan"))  # ... and one of them is not a number
    image.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="case_00005/imaging.nii.gz has an unusable affine"):
        dataset.preprocess_case(folder)
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 5), np.int16), np.eye(4)), str(folder / dataset.IMAGE))
    with pytest.raises(DataError, match=r"the imaging volume has shape \(4, 4, 5\) and the segmentation"):
        dataset.preprocess_case(folder)
    (folder / dataset.LABEL).write_bytes(b"not a volume")
    with pytest.raises(DataError, match="segmentation.nii.gz is not a readable NIfTI volume"):
        dataset.preprocess_case(folder)


def test_a_checkpoint_of_another_network_is_refused(damaged):
    import torch

    torch.save({"best_model_state_dict": {"fc.weight": torch.zeros(2, 2)}}, damaged / backend.CHECKPOINT)
    with pytest.raises(DataError, match="has no input_block.conv1.0.weight tensor: it is not the MLPerf 3D-UNet"):
        backend.load(damaged, "cpu", "fp32")
