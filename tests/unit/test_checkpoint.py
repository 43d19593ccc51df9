"""Reading checkpoint tensors without the code that pickled them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict

import pytest
import torch

from harness.checkpoint import load_weights_only, read_state_dict
from harness.errors import DataError

TRAINING_CODE = """
    import torch
    from torch import nn

    class Coder:  # a plain helper object, as detection models keep (box coders, matchers)
        def __init__(self):
            self.weights = (1.0, 1.0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4))
            self.head = nn.Linear(4, 2)
            self.register_buffer("scratch", torch.ones(2), persistent=False)
            self.coder = Coder()
"""


def test_a_pickled_module_is_read_without_its_code(tmp_path):
    # pickled in another process from a module that this process cannot import
    (tmp_path / "training_model.py").write_text(textwrap.dedent(TRAINING_CODE))
    script = ("import torch, training_model; torch.manual_seed(0); net = training_model.Net(); "
              "torch.save(net, 'whole.pth'); torch.save(net.state_dict(), 'state.pth')")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    whole, state = read_state_dict(tmp_path / "whole.pth"), torch.load(tmp_path / "state.pth")
    assert "training_model" not in sys.modules
    assert list(whole) == list(state)  # state_dict() names and order, the non-persistent buffer left out
    assert all(torch.equal(whole[k], state[k]) for k in state)


def test_training_checkpoints_state_dicts_and_torchscript(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    expected = net.state_dict()
    torch.save({"model": net.state_dict(), "epoch": 10, "optimizer": {}}, tmp_path / "train.pth")
    torch.save(OrderedDict((f"module.{k}", v) for k, v in expected.items()), tmp_path / "ddp.pth")
    torch.jit.save(torch.jit.script(net), tmp_path / "scripted.pt")
    for name in ("train.pth", "ddp.pth", "scripted.pt"):
        found = read_state_dict(tmp_path / name)
        assert list(found) == list(expected) and all(torch.equal(found[k], expected[k]) for k in expected), name


class _Payload:
    def __reduce__(self):
        return (subprocess.run, (["touch", "pwned"],))


def test_nothing_in_the_file_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": {"w": torch.ones(1)}, "extra": _Payload()}, tmp_path / "evil.pth", pickle_protocol=2)
    assert torch.equal(read_state_dict(tmp_path / "evil.pth")["w"], torch.ones(1))
    assert not (tmp_path / "pwned").exists()


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(DataError, match="missing"):
        read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.pth is not a readable PyTorch checkpoint"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "plain.pth")
    with pytest.raises(DataError, match="plain.pth holds no tensors"):
        read_state_dict(tmp_path / "plain.pth")


def test_weights_only_files_refuse_objects_and_name_the_fix(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_weights_only(tmp_path / "ok.pt", "a state dict", "fix it")["w"], torch.ones(2))
    torch.save({"w": torch.ones(2), "why": OrderedDict, "obj": Exception("x")}, tmp_path / "objects.pt")
    with pytest.raises(DataError, match=r"objects.pt is not a state dict \(.*\): fix it"):
        load_weights_only(tmp_path / "objects.pt", "a state dict", "fix it")
    with pytest.raises(DataError, match=r"absent.pt is missing: put it there"):
        load_weights_only(tmp_path / "absent.pt", "a state dict", "put it there")
