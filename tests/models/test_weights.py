"""Tests of loading local torchvision weights into ReIDNet, and the errors when they do not fit."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from reidgraph.models import TORCHVISION_URLS, ReIDNet, load_pretrained, read_state_dict
from reidgraph.models.weights import guess_resnet_depth


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tv18_state():
    # A torchvision ResNet-18 with its own random init: the stand-in for an ImageNet file.
    torch.manual_seed(123)
    model = torchvision.models.resnet18(weights=None)
    # Make the BN running statistics non-default so that buffers are checked too.
    model.bn1.running_mean.uniform_(-1, 1)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def tv18_file(tmp_path, tv18_state):
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(tv18_state, path)
    return path


@pytest.mark.parametrize("last_stride", [1, 2])
def test_torchvision_file_loads_into_backbone(tv18_file, tv18_state, last_stride, caplog):
    with caplog.at_level(logging.INFO, logger="reidgraph.models"):
        net = ReIDNet(18, last_stride=last_stride, pretrained=tv18_file)
    assert "randomly initialised" not in caplog.text
    assert "Loaded 120 pretrained tensors" in caplog.text  # 122 entries minus fc.weight, fc.bias
    backbone = net.backbone.state_dict()
    assert set(backbone) == set(tv18_state) - {"fc.weight", "fc.bias"}
    for key, value in backbone.items():
        assert torch.equal(value, tv18_state[key]), key


def test_wrapped_and_prefixed_state_dict(tmp_path, tv18_state):
    # torchreid / DDP style: {"state_dict": {"module.conv1.weight": ...}}, without the fc.
    wrapped = {
        "state_dict": {f"module.{k}": v for k, v in tv18_state.items() if not k.startswith("fc.")},
        "epoch": 3,
    }
    path = tmp_path / "wrapped.pth.tar"
    torch.save(wrapped, path)
    net = ReIDNet(18, pretrained=str(path))
    assert torch.equal(net.backbone.conv1.weight, tv18_state["conv1.weight"])
    # An in-memory mapping works as well.
    net2 = ReIDNet(18, pretrained=tv18_state)
    assert torch.equal(net2.backbone.layer4[1].bn2.weight, tv18_state["layer4.1.bn2.weight"])


def test_missing_file_names_the_download(tmp_path):
    missing = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError, match=r"resnet50-0676ba61.pth' does not exist") as info:
        ReIDNet(50, pretrained=missing)
    assert TORCHVISION_URLS[50] in str(info.value)
    assert "pretrained=None" in str(info.value)


def test_other_depth_names_missing_keys_and_depth(tv18_file):
    with pytest.raises(ValueError, match="do not fit the ResNet-50 backbone") as info:
        ReIDNet(50, pretrained=tv18_file)
    msg = str(info.value)
    # ResNet-50 has bottleneck conv3 layers that ResNet-18 lacks, and 1x1 shortcuts in layer1.
    assert "missing key(s)" in msg and "layer1.0.conv3.weight" in msg
    assert "shape mismatch(es)" in msg
    assert "(the file holds torchvision ResNet-18 weights)" in msg
    assert TORCHVISION_URLS[50] in msg


def test_shape_mismatch_and_unexpected_key_are_named(tmp_path, tv18_state):
    bad = dict(tv18_state)
    bad["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    bad["head.extra"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError) as info:
        ReIDNet(18, pretrained=path)
    msg = str(info.value)
    assert "1 unexpected key(s) [head.extra]" in msg
    assert "1 shape mismatch(es) [conv1.weight: file (64, 1, 7, 7) vs model (64, 3, 7, 7)]" in msg
    assert "missing" not in msg


def test_long_listings_are_cut(tv18_state):
    partial = {k: v for k, v in tv18_state.items() if not k.startswith("layer")}
    # ResNet-18 layer keys: 8 basic blocks x (2 convs + 2 BNs x 5 entries) = 96, plus the
    # downsample conv + BN (6 entries) of layer2..4 = 18 -> 114 missing; 8 listed, 106 more.
    with pytest.raises(ValueError, match=r"114 missing key\(s\) \[.*, \.\.\. \(106 more\)\]"):
        ReIDNet(18, pretrained=partial)


@pytest.mark.parametrize(
    "content, match",
    [
        ([1, 2, 3], "must be a state dict {name: tensor}, got list"),
        (
            {"conv1.weight": 1.0},
            "must map names to tensors, found entry 'conv1.weight' of type float",
        ),
        ({}, "hold no tensors"),
    ],
)
def test_not_a_state_dict(tmp_path, content, match):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(ValueError, match=match):
        read_state_dict(path)


class _Opaque:
    pass


def test_unsafe_or_corrupt_files(tmp_path):
    pickled = tmp_path / "object.pth"
    torch.save({"obj": _Opaque()}, pickled)
    with pytest.raises(ValueError, match=r"Could not read weights file .*weights_only=True"):
        read_state_dict(pickled)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="Could not read weights file"):
        read_state_dict(garbage)
    with pytest.raises(TypeError, match="'pretrained' must be a file path or a mapping"):
        read_state_dict(123)


def test_load_pretrained_into_plain_module():
    src = torch.nn.Linear(3, 2)
    dst = torch.nn.Linear(3, 2)
    load_pretrained(dst, {"weight": src.weight.detach(), "bias": src.bias.detach()})
    assert torch.equal(dst.weight, src.weight)
    with pytest.raises(
        ValueError, match=r"do not fit the Linear backbone: 1 missing key\(s\) \[bias\]"
    ):
        load_pretrained(dst, {"weight": src.weight.detach()})


def test_guess_resnet_depth():
    for depth in (18, 34, 50, 101, 152):
        with torch.device("meta"):
            keys = getattr(torchvision.models, f"resnet{depth}")(weights=None).state_dict()
        assert guess_resnet_depth(keys) == depth
    assert guess_resnet_depth(["weight", "bias"]) is None
    assert guess_resnet_depth(["layer1.0.conv1.weight"]) is None
