"""Samples held while LoadGen has them loaded."""

from harness.errors import DataError
from harness.samples import LoadedSamples


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
