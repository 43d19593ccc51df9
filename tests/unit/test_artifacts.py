"""Data folder verification and atomic preparation, on a hand-made artifacts list."""

import hashlib
import json
import shutil
from dataclasses import replace

import pytest

from harness import artifacts, registry
from harness.errors import DataError


RECORDS = '[{"instruction": "i", "input": "a", "output": "o"}]'


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """gptj with an artifacts.toml whose hashes we know."""
    folder = tmp_path / "bench"
    shutil.copytree(registry.get("gptj").folder, folder)
    source = tmp_path / "source"
    (source / "model").mkdir(parents=True)
    (source / "cnn_eval.json").write_text(RECORDS)
    (source / "model" / "config.json").write_text("{}")
    (source / "model" / "w.bin").write_bytes(b"\0" * 10)
    file_hash = hashlib.sha256(RECORDS.encode()).hexdigest()
    listing = "".join(f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in (("config.json", b"{}"), ("w.bin", b"\0" * 10)))
    folder_hash = hashlib.sha256(listing.encode()).hexdigest()
    (folder / "artifacts.toml").write_text(
        f'[[artifact]]\npath = "cnn_eval.json"\nkind = "dataset"\nsource = "s"\nsha256 = "{file_hash}"\n'
        f'[[artifact]]\npath = "model"\nkind = "model"\nsource = "s"\nsha256 = "{folder_hash}"\n')
    return replace(registry.get("gptj"), folder=folder), source


def test_hashes_of_files_and_folders(bench):
    b, source = bench
    assert artifacts.problems(b, source) == []
    assert artifacts.tree_sha256(source / "cnn_eval.json") == hashlib.sha256(RECORDS.encode()).hexdigest()


def test_a_damaged_hash_cache_is_rebuilt(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    artifacts._cache().parent.mkdir(parents=True, exist_ok=True)
    artifacts._cache().write_text('{"cut sho')  # e.g. a write that was never finished
    assert artifacts.file_hashes(tmp_path, ["f"]) == {"f": hashlib.sha256(b"abc").hexdigest()}
    assert json.loads(artifacts._cache().read_text()) == {
        f"{(tmp_path / 'f').resolve()}:3:{(tmp_path / 'f').stat().st_mtime_ns}": hashlib.sha256(b"abc").hexdigest()}
    assert not list(artifacts._cache().parent.glob("*.partial-*"))


def test_verify_names_missing_and_corrupt_files(bench, tmp_path):
    b, source = bench
    assert "demo tier" in artifacts.verify(b, tmp_path / "empty")
    (source / "model" / "w.bin").write_bytes(b"\1" * 10)
    (source / "cnn_eval.json").unlink()
    with pytest.raises(DataError) as err:
        artifacts.verify(b, source)
    assert "cnn_eval.json is missing" in str(err.value) and "harness prepare gptj --from DIR" in str(err.value)
    assert "model is corrupt or another version" in str(err.value)


def test_prepare_copies_verifies_and_never_overwrites(bench, tmp_path):
    b, source = bench
    data = tmp_path / "data"
    assert ("2 gptj artifacts present, 2 read again and verified by sha256; 1 samples read"
            in artifacts.prepare(b, source, data))
    assert (data / "model" / "w.bin").read_bytes() == b"\0" * 10
    assert not list(data.glob(".staging-*"))
    with pytest.raises(DataError, match="already holds cnn_eval.json, model; nothing is overwritten"):
        artifacts.prepare(b, source, data)
    (source / "model" / "w.bin").write_bytes(b"\1" * 10)
    with pytest.raises(DataError, match="do not verify"):
        artifacts.prepare(b, source, tmp_path / "data2")
    assert not (tmp_path / "data2" / "model").exists() and not list((tmp_path / "data2").glob(".staging-*"))


def unhashed(b):
    """The same benchmark with no sha256 recorded: only reading the dataset can catch a bad file."""
    (b.folder / "artifacts.toml").write_text('[[artifact]]\npath = "cnn_eval.json"\nkind = "dataset"\nsource = "s"\n'
                                             '[[artifact]]\npath = "model"\nkind = "model"\nsource = "s"\n')
    return b


@pytest.mark.parametrize("existing", [False, True])
def test_prepare_checks_the_dataset_before_anything_is_placed(bench, tmp_path, existing):
    b, source = bench
    b = unhashed(b)
    (source / "cnn_eval.json").write_text('[{"instruction": "Summarize')  # cut short
    data = tmp_path / "data"
    if existing:  # e.g. a volume's mount point, with something of the user's in it
        data.mkdir()
        (data / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="does not read, so nothing was put in .*cnn_eval.json is not valid"):
        artifacts.prepare(b, source, data)
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"] if existing else not data.exists()
    assert not list(tmp_path.glob(".data.staging-*"))


def test_prepare_copies_regular_files_and_refuses_links_that_leave_the_source(bench, tmp_path):
    b, source = bench
    secret = tmp_path / "elsewhere" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"\0" * 10)
    (source / "model" / "w.bin").unlink()
    (source / "model" / "w.bin").symlink_to(secret)
    with pytest.raises(DataError, match="w.bin is a link to .*elsewhere/secret, outside .*source"):
        artifacts.prepare(b, source, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    # a link that stays inside the source is copied as the file it points to
    (source / "blob").write_bytes(b"\0" * 10)
    (source / "model" / "w.bin").unlink()
    (source / "model" / "w.bin").symlink_to(source / "blob")
    artifacts.prepare(b, source, tmp_path / "data")
    copied = tmp_path / "data" / "model" / "w.bin"
    assert not copied.is_symlink() and copied.is_file() and copied.read_bytes() == b"\0" * 10


def test_prepare_follows_links_to_folders_inside_and_refuses_loops(bench, tmp_path):
    b, source = bench
    shutil.move(source / "model", source / "weights")
    (source / "model").symlink_to("weights", target_is_directory=True)  # a folder linked inside the source
    artifacts.prepare(b, source, tmp_path / "data")
    assert (tmp_path / "data" / "model" / "w.bin").is_file() and not (tmp_path / "data" / "model").is_symlink()
    (source / "weights" / "again").symlink_to("..", target_is_directory=True)
    with pytest.raises(DataError, match=r"again/model is a link to a folder that holds it \(a loop\)"):
        artifacts.prepare(b, source, tmp_path / "data2")
    assert not (tmp_path / "data2").exists()


def test_prepare_refuses_what_is_not_a_file_or_folder(bench, tmp_path):
    import os

    b, source = bench
    os.mkfifo(source / "model" / "pipe")
    with pytest.raises(DataError, match="pipe is not a regular file or folder"):
        artifacts.prepare(b, source, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_full_verify_reads_files_changed_in_place(bench):
    import os

    b, source = bench
    artifacts.verify(b, source)  # hashes cached by path, size and mtime
    target = source / "model" / "w.bin"
    stat = target.stat()
    target.write_bytes(b"\1" * 10)  # same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    assert "verified by sha256" in artifacts.verify(b, source)  # the cache cannot see it
    with pytest.raises(DataError, match="model is corrupt or another version"):
        artifacts.verify(b, source, full=True)


def test_malformed_artifacts_file(bench):
    b, _ = bench
    (b.folder / "artifacts.toml").write_text("[[artifact]]\npath = 1\n")
    with pytest.raises(DataError, match="needs path, kind and source"):
        artifacts.artifacts(b)


def test_verify_reads_the_dataset(bench):
    b, source = bench
    (b.folder / "artifacts.toml").write_text(
        '[[artifact]]\npath = "cnn_eval.json"\nkind = "dataset"\nsource = "s"\n')  # no hash recorded
    (source / "cnn_eval.json").write_text("[{")
    with pytest.raises(DataError, match="cnn_eval.json is not valid UTF-8 JSON"):
        artifacts.verify(b, source)


def test_a_run_refuses_corrupt_real_data(bench):
    from harness import datadir

    b, source = bench
    assert datadir.resolve(b, source) == (source.resolve(), False)
    (source / "cnn_eval.json").write_text(RECORDS.replace('"o"', '"x"'))
    with pytest.raises(DataError, match="cnn_eval.json is corrupt or another version"):
        datadir.resolve(b, source)
