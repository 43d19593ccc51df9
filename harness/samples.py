"""Samples made when LoadGen loads them (untimed) and held until it unloads them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from harness.errors import DataError

T = TypeVar("T")


class LoadedSamples(Generic[T]):
    """``get(i)``: sample ``i`` as loaded, or made now when LoadGen has not loaded it.

    A sample that cannot be made (``DataError``: a corrupt or missing file) is not kept: the SUT
    asks for it again, and that sample alone fails, naming the file.
    """

    def __init__(self, make: Callable[[int], T]) -> None:
        self._make = make
        self._loaded: dict[int, T] = {}

    def get(self, index: int) -> T:
        sample = self._loaded.get(index)
        return sample if sample is not None else self._make(index)

    def load(self, indices: list[int]) -> None:
        for index in indices:
            if index not in self._loaded:
                try:
                    self._loaded[index] = self._make(index)
                except DataError:
                    pass

    def unload(self, indices: list[int]) -> None:
        for index in indices:
            self._loaded.pop(index, None)


class HeldDataset:
    """Base of a dataset of ``count`` samples, each made by ``make(index)`` when LoadGen loads it and
    held until it unloads it (``LoadedSamples``): ``len``, ``dataset[i]``, ``load_samples`` and
    ``unload_samples``, as the harness's QSL calls them."""

    def __init__(self, count: int, make: Callable[[int], Any]) -> None:
        self._count = count
        self._held = LoadedSamples(make)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Any:
        return self._held.get(index)

    def load_samples(self, indices: list[int]) -> None:
        self._held.load(indices)

    def unload_samples(self, indices: list[int]) -> None:
        self._held.unload(indices)
