"""Tests of save_checkpoint / load_checkpoint: exact resume, atomic writes, clear errors."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidgraph.models import CHECKPOINT_FORMAT, ReIDNet, load_checkpoint, save_checkpoint
from reidgraph.models import checkpoint as ckpt_module


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _setup(seed):
    torch.manual_seed(seed)
    model = ReIDNet(18, num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return model, opt, sched


def _step(model, opt, sched):
    # Every random source takes part: torch (images), numpy (labels), python (flip).
    images = torch.randn(4, 3, 32, 16)
    labels = torch.from_numpy(np.random.randint(0, 3, size=4))  # noqa: NPY002
    if random.random() < 0.5:
        images = images.flip(3)
    model.train()
    out = model(images)
    loss = F.cross_entropy(out.logits, labels) + out.feat.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss.detach()


def _seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def test_resume_gives_the_same_next_step(tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    model, opt, sched = _setup(0)
    _seed_all(7)
    _step(model, opt, sched)
    _step(model, opt, sched)
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, epoch=2, config={"lr": 1e-3})
    ref_loss = _step(model, opt, sched)
    ref_params = {k: v.clone() for k, v in model.state_dict().items()}

    # A fresh process state: other weights, other RNG positions.
    model2, opt2, sched2 = _setup(99)
    _seed_all(12345)
    ckpt = load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2)
    assert ckpt["epoch"] == 2 and ckpt["config"] == {"lr": 1e-3}
    assert sched2.get_last_lr() == [1e-3 * 0.5**2]
    loss = _step(model2, opt2, sched2)
    assert torch.equal(loss, ref_loss)
    for key, value in model2.state_dict().items():
        assert torch.equal(value, ref_params[key]), key


def test_without_rng_restore_the_step_differs(tmp_path):
    path = tmp_path / "ckpt.pt"
    model, opt, sched = _setup(0)
    _seed_all(7)
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, epoch=0)
    ref_loss = _step(model, opt, sched)
    model2, opt2, sched2 = _setup(0)
    _seed_all(8)
    load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2, restore_rng=False)
    assert not torch.equal(_step(model2, opt2, sched2), ref_loss)


def test_rng_states_round_trip(tmp_path):
    path = tmp_path / "ckpt.pt"
    _seed_all(3)
    save_checkpoint(path, model=nn.Linear(2, 2), epoch=0)
    expected = (random.random(), np.random.rand(), torch.rand(1))  # noqa: NPY002
    _seed_all(4)
    load_checkpoint(path)
    got = (random.random(), np.random.rand(), torch.rand(1))  # noqa: NPY002
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_content_is_weights_only_and_unwrapped(tmp_path):
    path = tmp_path / "ckpt.pt"
    net = nn.Sequential(nn.Linear(2, 3))
    wrapped = nn.DataParallel(net)  # runs the module directly on a CPU-only machine
    save_checkpoint(path, model=wrapped, epoch=5, extra={"best_map": np.float32(0.5)})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == 1
    assert set(raw["model"]) == {"0.weight", "0.bias"}  # no "module." prefix
    assert raw["arch"] == {"name": "Sequential", "config": None}
    assert raw["extra"] == {"best_map": 0.5} and type(raw["extra"]["best_map"]) is float
    assert isinstance(raw["torch_version"], str) and type(raw["torch_version"]) is str
    # ... and it loads back into the wrapper as well as into the bare module.
    other = nn.DataParallel(nn.Sequential(nn.Linear(2, 3)))
    load_checkpoint(path, model=other)
    assert torch.equal(other.module[0].weight, net[0].weight)
    assert not list(tmp_path.glob("*.tmp*"))


@dataclasses.dataclass
class _Cfg:
    lr: float = 0.1
    root: pathlib.Path = pathlib.Path("/data")
    steps: tuple = (10, 20)


def test_config_conversion_and_rejection(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model=nn.Linear(1, 1), epoch=1, config=_Cfg(), extra={"x": np.ones(2)})
    ckpt = load_checkpoint(path)
    assert ckpt["config"] == {"lr": 0.1, "root": "/data", "steps": (10, 20)}
    assert torch.equal(ckpt["extra"]["x"], torch.ones(2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"'config\['opt'\]' holds a object, which a checkpoint"):
        save_checkpoint(path, model=nn.Linear(1, 1), epoch=1, config={"opt": object()})
    with pytest.raises(TypeError, match="'extra' must be a mapping, got list"):
        save_checkpoint(path, model=nn.Linear(1, 1), epoch=1, extra=[1])
    with pytest.raises(ValueError, match="'epoch' must be >= 0, got -1"):
        save_checkpoint(path, model=nn.Linear(1, 1), epoch=-1)
    with pytest.raises(TypeError, match="'model' must be a torch.nn.Module, got dict"):
        save_checkpoint(path, model={}, epoch=0)


def test_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model=nn.Linear(2, 2), epoch=1)
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=nn.Linear(2, 2), epoch=2)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # the temporary file was removed


def test_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.pt"
    save_checkpoint(path, model=ReIDNet(18, pooling="gem"), epoch=0)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path, model=ReIDNet(34))
    msg = str(info.value)
    assert "saved from another architecture, ReIDNet(depth=18" in msg
    assert "depth: checkpoint 18 vs model 34" in msg
    assert "pooling: checkpoint 'gem' vs model 'avg'" in msg
    with pytest.raises(ValueError, match=r"ReIDNet\(depth=18.*but the model is Linear\(\)"):
        load_checkpoint(path, model=nn.Linear(2, 2))


def test_same_class_other_shapes(tmp_path):
    path = tmp_path / "lin.pt"
    save_checkpoint(path, model=nn.Linear(2, 3), epoch=0)
    with pytest.raises(ValueError, match=r"does not fit the model Linear\(\): 2 shape mismatch"):
        load_checkpoint(path, model=nn.Linear(2, 4))


def test_classifier_is_resized_to_the_checkpoint(tmp_path):
    path = tmp_path / "cls.pt"
    torch.manual_seed(0)
    src = ReIDNet(18, num_classes=5)
    save_checkpoint(path, model=src, epoch=0)
    dst = ReIDNet(18)
    load_checkpoint(path, model=dst)
    assert dst.num_classes == 5
    assert torch.equal(dst.classifier.weight, src.classifier.weight)
    # With an optimiser built over the old classifier the resize cannot be done silently.
    other = ReIDNet(18, num_classes=2)
    opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with pytest.raises(
        ValueError, match="classifier of 5 classes, the model 2: load the model first"
    ):
        load_checkpoint(path, model=other, optimizer=opt)
    assert other.num_classes == 2  # untouched


def test_optimizer_and_scheduler_errors(tmp_path):
    path = tmp_path / "ckpt.pt"
    net = nn.Linear(2, 3)
    save_checkpoint(path, model=net, epoch=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_checkpoint(path, optimizer=opt)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    with pytest.raises(ValueError, match="holds no scheduler state"):
        load_checkpoint(path, scheduler=sched)

    adam = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 2)).sum().backward()
    adam.step()
    save_checkpoint(path, model=net, optimizer=adam, epoch=1)
    # Same number of parameters, other shapes: torch accepts it, we do not.
    other = nn.Linear(2, 4)
    with pytest.raises(ValueError, match=r"group 0, parameter 0, 'exp_avg' has shape \(3, 2\)"):
        load_checkpoint(path, optimizer=torch.optim.Adam(other.parameters()))
    # Another number of parameters: torch's own error, wrapped.
    lonely = torch.optim.Adam([nn.Parameter(torch.zeros(3, 2))])
    with pytest.raises(ValueError, match="optimizer state in checkpoint .* does not fit the given"):
        load_checkpoint(path, optimizer=lonely)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="Checkpoint '.*nope.pt' does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    sd = tmp_path / "resnet18.pth"
    torch.save(nn.Linear(1, 1).state_dict(), sd)
    with pytest.raises(
        ValueError, match="is not a reidgraph checkpoint.*ReIDNet\\(pretrained=path\\)"
    ):
        load_checkpoint(sd)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="Could not read checkpoint .*weights_only=True"):
        load_checkpoint(bad)
