import json

import numpy as np
import pytest

from harness import logs
from harness.errors import DataError

DETAIL = "\n".join([
    ':::MLLOG {"key": "loadgen_version", "value": "4.1.30 @ x", "metadata": {"is_error": false, "is_warning": false}}',
    ':::MLLOG {"key": "result_validity", "value": "VALID", "metadata": {"is_error": false, "is_warning": false}}',
    ':::MLLOG {"key": "result_validity", "value": "INVALID", "metadata": {"is_error": false, "is_warning": false}}',
    ':::MLLOG {"key": "error_invalid_config", "value": "Multiple conf files", "metadata": {"is_error": true}}',
    ':::MLLOG {"key": "warning_generic_message", "value": "Found Audit Config", "metadata": {"is_warning": true}}',
    "some line that is not an MLLOG line",
])


def test_detail_keeps_first_occurrence_and_collects_errors(tmp_path):
    path = tmp_path / logs.DETAIL
    path.write_text(DETAIL)
    detail = logs.read_detail(path)
    assert detail.get("result_validity") == "VALID"
    assert detail.get("loadgen_version") == "4.1.30 @ x"
    assert detail.errors == ["error_invalid_config: Multiple conf files"]
    assert detail.warnings == ["warning_generic_message: Found Audit Config"]


def test_detail_missing_or_malformed(tmp_path):
    with pytest.raises(DataError, match="missing"):
        logs.read_detail(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(':::MLLOG {"key": oops}')
    with pytest.raises(DataError, match="bad.txt:1"):
        logs.read_detail(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("hello\n")
    with pytest.raises(DataError, match="no ':::MLLOG' lines"):
        logs.read_detail(empty)


def test_summary_key_values(tmp_path):
    path = tmp_path / logs.SUMMARY
    path.write_text("Scenario : Offline\nSamples per second: 314210\nResult is : INVALID\n"
                    "  Min duration satisfied : NO\n")
    summary = logs.read_summary(path)
    assert summary["Scenario"] == "Offline"
    assert summary["Samples per second"] == "314210"
    assert summary["Min duration satisfied"] == "NO"


def _write_log(path, entries):
    path.write_text(json.dumps([{"seq_id": n, "qsl_idx": i, "data": d} for n, (i, d) in enumerate(entries)]))


def test_accuracy_log_decodes_with_declared_dtype_and_dedups(tmp_path):
    path = tmp_path / logs.ACCURACY
    a = np.array([5, 7, 50256], dtype=np.int64).tobytes().hex().upper()
    b = np.array([1], dtype=np.int64).tobytes().hex().upper()
    _write_log(path, [(2, a), (0, b), (2, b)])
    records = logs.read_accuracy(path)
    assert [r.qsl_idx for r in records] == [2, 0, 2]
    outputs = logs.decode_outputs(records, "int64", 3)
    assert list(outputs) == [2, 0]  # log order, first record per index wins
    assert outputs[2].tolist() == [5, 7, 50256]
    assert outputs[0].tolist() == [1]
    # the same bytes read as int32 give twice as many values: the dtype must match the SUT's
    assert len(logs.decode_outputs(records, "int32", 3)[2]) == 6


def test_accuracy_log_errors(tmp_path):
    path = tmp_path / logs.ACCURACY
    _write_log(path, [(9, "00")])
    with pytest.raises(DataError, match=r"outside the dataset of 3 samples: 9;"):
        logs.decode_outputs(logs.read_accuracy(path), "uint8", 3, path)
    _write_log(path, [(0, "XYZ1")])
    with pytest.raises(DataError, match="not hex"):
        logs.read_accuracy(path)
    _write_log(path, [(0, "000000")])
    with pytest.raises(DataError, match="not a whole number of int64"):
        logs.decode_outputs(logs.read_accuracy(path), "int64", 1)
    path.write_text('[{"seq_id": 0, "qsl_idx": 0, "data": "00"}, ...')
    with pytest.raises(DataError, match="not valid JSON"):
        logs.read_accuracy(path)
    with pytest.raises(DataError, match="run in accuracy mode"):
        logs.read_accuracy(tmp_path / "missing.json")
