"""Pickles from elsewhere, read without running what they name.

A pickle is a program: each global it names is imported and called while it loads, so an
ordinary ``pickle.load`` of a downloaded dataset runs whatever its author chose (``os.system``
among them). The MLPerf LLM datasets are pandas DataFrame pickles, so this module reads them
with an unpickler that resolves only the classes and helper functions a DataFrame of plain
columns (numbers, strings, lists of token ids) is rebuilt from, as pandas 1.x to 3.x and numpy
1.x/2.x write them. Anything else a pickle names is refused before it is imported.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import DataError

_NUMPY = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [(m, n) for m in _NUMPY for n in ("_reconstruct", "scalar")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
       ("numpy._core.numeric", "_frombuffer"), ("builtins", "slice"), ("__builtin__", "slice"),
       ("_codecs", "encode")]  # protocol 2 stores an array's bytes as a latin-1 string
    + [(m, "DataFrame") for m in ("pandas", "pandas.core.frame")]
    + [(m, "Series") for m in ("pandas", "pandas.core.series")]
    + [("pandas.core.internals.managers", "BlockManager"), ("pandas.core.internals.managers", "SingleBlockManager"),
       ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.internals.blocks", "new_block"),
       ("pandas.core.indexes.base", "_new_Index"),
       ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")]
    + [(m, "Index") for m in ("pandas", "pandas.core.indexes.base")]
    + [(m, "RangeIndex") for m in ("pandas", "pandas.core.indexes.range")]
    + [("pandas.core.indexes.numeric", n) for n in ("Int64Index", "UInt64Index", "Float64Index")]
    + [(m, "StringArray") for m in ("pandas.arrays", "pandas.core.arrays.string_")]
    + [(m, "StringDtype") for m in ("pandas", "pandas.core.arrays.string_")]
)
"""(module, name) pairs a DataFrame pickle may name. None of them runs code chosen by the file:
constructors and rebuild helpers of numpy arrays, pandas indexes, blocks and string arrays."""


class _Refused(pickle.UnpicklingError):
    pass


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise _Refused(f"it names {module}.{name}, which a data table does not need")
        return super().find_class(module, name)


def load_dataframe(path: Path, columns: Iterable[str]):
    """The pandas DataFrame pickled in ``path``, with at least ``columns``; clear errors otherwise.

    Raises ``DataError`` when the file is missing, is not a pickle, names anything outside
    ``ALLOWED`` (the file is refused, nothing it names is imported), holds something other than
    a DataFrame, or lacks a column.
    """
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path} is missing")
    try:
        with path.open("rb") as f:
            frame = _AllowlistUnpickler(f).load()
    except _Refused as exc:
        raise DataError(f"{path} was refused: {exc}. Only pickled pandas DataFrames of plain columns are read; "
                        f"use the dataset file the benchmark's README names") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise DataError(f"{path} is not a readable pandas DataFrame pickle ({type(exc).__name__}: {exc}); "
                        f"is it truncated? Fetch it again") from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{path} holds a {type(frame).__name__}, not a pandas DataFrame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)} (it has {', '.join(map(str, frame.columns))}):"
                        f" it is not the dataset this benchmark reads")
    return frame
