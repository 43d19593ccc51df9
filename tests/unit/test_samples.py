"""Samples held while LoadGen has them loaded."""

from harness.errors import DataError
from harness.samples import HeldDataset, LoadedSamples


def test_loaded_samples_are_made_once_and_bad_ones_are_not_kept():
    made = []

    def make(index: int) -> str:
        made.append(index)
        if index == 3:
            raise DataError("sample 3's file is corrupt")
        return f"sample {index}"

    samples = LoadedSamples(make)
    samples.load([0, 1, 3])
    assert samples.get(1) == "sample 1" and made == [0, 1, 3]  # held: not made again
    assert samples.get(2) == "sample 2" and made[-1] == 2  # not loaded: made on demand
    try:
        samples.get(3)  # not kept: asked again, it fails again (and alone)
    except DataError as error:
        assert "corrupt" in str(error)
    else:
        raise AssertionError("a sample that cannot be made must fail when asked for")
    samples.unload([0, 1])
    samples.get(1)
    assert made[-1] == 1


def test_a_held_dataset_makes_each_loaded_sample_once():
    made = []

    class Squares(HeldDataset):
        def __init__(self) -> None:
            super().__init__(5, lambda index: made.append(index) or index * index)

    squares = Squares()
    squares.load_samples([1, 2])
    assert len(squares) == 5 and squares[2] == 4 and squares[2] == 4 and made == [1, 2]
    squares.unload_samples([2])
    assert squares[2] == 4 and made == [1, 2, 2]
