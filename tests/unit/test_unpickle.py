"""The allowlisted unpickler: DataFrames as pandas 1.5, 2.0 and 3.x write them, nothing else."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import DataError
from harness.unpickle import load_dataframe

GOLDEN = Path(__file__).parent / "golden"
COLUMNS = ("input", "tok_input", "output")


@pytest.mark.parametrize("name", ["orca_pandas1.5.pkl", "orca_pandas2.0.pkl"])
def test_reads_dataframes_written_by_older_pandas_and_numpy_1(name):
    # written by pandas 1.5.3 / 2.0.3 with numpy 1.x (numpy.core paths), protocol 5, as to_pickle does
    frame = load_dataframe(GOLDEN / name, COLUMNS)
    assert frame["tok_input"].tolist() == [[1, 518, 25580, 29962], [1, 518]]
    assert frame["question"][1] == "Traduire «café»"
    assert frame["origin"].tolist() == ["cot", "flan"]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_dataframes_written_by_this_pandas(tmp_path, protocol):
    written = pd.DataFrame({"input": ["a", "b"], "tok_input": [np.array([1, 2], dtype=np.int64), [1]],
                            "output": ["x", None], "n": [3, 4]}).set_index(pd.Index([10, 11]))
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(written, protocol=protocol))
    frame = load_dataframe(path, COLUMNS)
    assert frame["tok_input"][10].tolist() == [1, 2] and frame["n"].tolist() == [3, 4]
    assert frame.index.tolist() == [10, 11]


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_a_command_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(pd.DataFrame({"input": [_RunsACommand(marker)], "tok_input": [[1]],
                                                "output": ["x"]})))
    with pytest.raises(DataError, match=r"refused: it names (posix|os)\.system"):
        load_dataframe(path, COLUMNS)
    assert not marker.exists()


def test_wrong_contents_name_the_problem(tmp_path):
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(pd.DataFrame({"input": ["a"]})))
    with pytest.raises(DataError, match="lacks the column.*tok_input, output"):
        load_dataframe(path, COLUMNS)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="holds a list, not a pandas DataFrame"):
        load_dataframe(path, COLUMNS)
    path.write_bytes(pickle.dumps(pd.DataFrame({"input": ["a"]}))[:-20])
    with pytest.raises(DataError, match="not a readable pandas DataFrame pickle"):
        load_dataframe(path, COLUMNS)
    with pytest.raises(DataError, match="missing"):
        load_dataframe(tmp_path / "nothing.pkl", COLUMNS)
