"""Tests of ReIDNet (ResNet + last stride + GeM + BNNeck) against torchvision and hand formulas."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision
from torch import nn

from reidgraph.models import DEPTHS, GeneralizedMeanPooling, ReIDNet, ReIDOutput


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convolutions gain nothing from threads and lose much when other
    # processes load the CPU; restore the setting for the rest of the session.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torchvision_twin(net: ReIDNet) -> nn.Module:
    """A torchvision ResNet with net's backbone weights, fc removed, last stride matched by hand.

    Its forward (conv1 .. layer4 -> AdaptiveAvgPool2d -> flatten) is torchvision's own code,
    an independent reference for ReIDNet's pooled feature.
    """
    tv = getattr(torchvision.models, f"resnet{net.depth}")(weights=None)
    tv.fc = nn.Identity()
    if net.last_stride == 1:
        block = tv.layer4[0]
        (block.conv2 if net.depth >= 50 else block.conv1).stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    missing, unexpected = tv.load_state_dict(net.backbone.state_dict(), strict=False)
    assert missing == [] and unexpected == []
    return tv.eval()


def _tv_layer4(tv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    return tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))


@pytest.mark.parametrize("depth", DEPTHS)
def test_depths_widths_and_layer3(depth):
    # 64x32 input: layer3 has stride 16 -> 4x2 cells; widths 256 (basic) / 1024 (bottleneck).
    # Shapes only, so the deep nets run on the meta device (no memory, no arithmetic).
    device = "cpu" if depth == 18 else "meta"
    with torch.device(device):
        net = ReIDNet(depth).eval()
        x = torch.rand(2, 3, 64, 32)
    with torch.no_grad():
        out = net(x)
        maps = net.feature_maps(x)
    wide = depth >= 50
    assert net.out_dim == (2048 if wide else 512)
    assert out.shape == (2, net.out_dim)
    assert maps.shape == (2, 1024 if wide else 256, 4, 2)


@pytest.mark.parametrize("last_stride, cells", [(1, (4, 2)), (2, (2, 1))])
def test_last_stride_sets_layer4_resolution(last_stride, cells):
    # 64x32 / 16 = 4x2 with last stride 1; / 32 = 2x1 with the default stride 2.
    net = ReIDNet(18, last_stride=last_stride).eval()
    with torch.no_grad():
        maps = {
            layer: net.feature_maps(torch.rand(1, 3, 64, 32), layer)
            for layer in ("layer1", "layer2", "layer4")
        }
    assert maps["layer1"].shape[-2:] == (16, 8)
    assert maps["layer2"].shape[-2:] == (8, 4)
    assert maps["layer4"].shape[-2:] == cells
    assert net.min_input_size == (16 if last_stride == 1 else 32)


@pytest.mark.parametrize("depth, last_stride", [(18, 1), (18, 2), (50, 1)])
def test_pooled_feature_matches_torchvision(depth, last_stride):
    torch.manual_seed(1)
    net = ReIDNet(depth, last_stride=last_stride).train()
    tv = _torchvision_twin(net)
    net.backbone.eval()  # compare the head on identical (running-stat) backbone outputs
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        out = net(x)
        ref = tv(x)
    assert isinstance(out, ReIDOutput) and out.logits is None
    assert torch.allclose(out.feat, ref, atol=1e-5)


def test_bnneck_train_and_eval_by_hand():
    torch.manual_seed(2)
    net = ReIDNet(18).train()
    x = torch.randn(4, 3, 64, 32)
    with torch.no_grad():
        out = net(x)
    f = out.feat
    # Train mode: batch statistics, biased variance, gamma = 1, beta = 0 (BN init), eps 1e-5.
    mu, var = f.mean(0), f.var(0, unbiased=False)
    assert torch.allclose(out.bn_feat, (f - mu) / torch.sqrt(var + 1e-5), atol=1e-4)
    # Running stats after one update (momentum 0.1, unbiased variance):
    #   rm = 0.9 * 0 + 0.1 * mu,   rv = 0.9 * 1 + 0.1 * var_unbiased
    rm, rv = 0.1 * mu, 0.9 + 0.1 * f.var(0, unbiased=True)
    net.eval()
    with torch.no_grad():
        bn_eval = net(x)
        f_eval = _torchvision_twin(net)(x)  # backbone in eval mode, pooled, before BN
    assert torch.allclose(bn_eval, (f_eval - rm) / torch.sqrt(rv + 1e-5), atol=1e-4)
    # The BNNeck shift is frozen at zero (Luo et al.): no gradient reaches it.
    assert not net.bn.bias.requires_grad
    net.train()
    net(x).bn_feat.sum().backward()
    assert net.bn.bias.grad is None and net.bn.weight.grad is not None


def test_without_bnneck_bn_feat_is_feat():
    net = ReIDNet(18, bnneck=False).train()
    out = net(torch.randn(2, 3, 64, 32))
    assert torch.equal(out.bn_feat, out.feat)


def test_gem_by_hand():
    # One channel, two cells [1, 8], p = 3: ((1^3 + 8^3) / 2)^(1/3) = 256.5^(1/3) = 6.3537354
    pool = GeneralizedMeanPooling(p=3.0)
    x = torch.tensor([[[[1.0, 8.0]]]])
    assert torch.allclose(pool(x), torch.tensor([[6.3537354]]))
    # Values below eps are clamped: [-1, 1], p = 1 -> (1e-6 + 1) / 2 = 0.5000005
    pool1 = GeneralizedMeanPooling(p=1.0, learn_p=False)
    assert torch.allclose(pool1(torch.tensor([[[[-1.0, 1.0]]]])), torch.tensor([[0.5000005]]))
    assert isinstance(pool.p, nn.Parameter) and not isinstance(pool1.p, nn.Parameter)
    assert "p" in dict(pool1.named_buffers())
    assert repr(pool1) == "GeneralizedMeanPooling(p=1, eps=1e-06, learn_p=False)"
    with pytest.raises(ValueError, match="'p' must be a number > 0"):
        GeneralizedMeanPooling(p=0)
    with pytest.raises(ValueError, match="'eps' must be a number > 0"):
        GeneralizedMeanPooling(eps=-1.0)


def test_gem_pooling_in_reidnet():
    torch.manual_seed(3)
    net = ReIDNet(18, pooling="gem").train()
    net.backbone.eval()
    tv = _torchvision_twin(net)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        fmap = _tv_layer4(tv, x)
        ref = fmap.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3)
        out = net(x)
    assert torch.allclose(out.feat, ref, rtol=1e-4, atol=1e-5)


def test_embedding_and_classifier():
    torch.manual_seed(4)
    net = ReIDNet(18, feat_dim=16, num_classes=7).train()
    net.backbone.eval()
    tv = _torchvision_twin(net)
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        out = net(x)
        pooled = tv(x)
    w, b = net.embedding.weight, net.embedding.bias
    assert net.out_dim == 16 and out.feat.shape == (3, 16)
    assert torch.allclose(out.feat, pooled @ w.T + b, atol=1e-4)
    # Classifier: no bias, logits = bn_feat W_c^T.
    assert net.classifier.bias is None
    assert torch.allclose(out.logits, out.bn_feat @ net.classifier.weight.T, atol=1e-6)


def test_reset_classifier():
    net = ReIDNet(18, num_classes=3)
    assert net.num_classes == 3
    torch.manual_seed(0)
    net.reset_classifier(2000)
    assert net.classifier.weight.shape == (2000, 512)
    # N(0, 0.001^2) init: the sample std of 1M draws is within 1% of 0.001.
    assert abs(float(net.classifier.weight.detach().std()) - 0.001) < 1e-5
    net.reset_classifier(0)
    assert net.classifier is None and net.num_classes == 0
    out = net.train()(torch.randn(2, 3, 64, 32))
    assert out.logits is None
    net = net.double()
    net.reset_classifier(4)
    assert net.classifier.weight.dtype == torch.float64
    with pytest.raises(ValueError, match="'num_classes' must be >= 0"):
        net.reset_classifier(-1)


def test_parameter_groups_partition_all_parameters():
    net = ReIDNet(18, pooling="gem", feat_dim=8, num_classes=5)
    backbone = list(net.backbone_parameters())
    head = list(net.head_parameters())
    ids_b, ids_h = {id(p) for p in backbone}, {id(p) for p in head}
    assert ids_b.isdisjoint(ids_h)
    assert ids_b | ids_h == {id(p) for p in net.parameters()}
    # head: GeM p, embedding weight + bias, BN weight + bias, classifier weight
    assert len(head) == 6
    assert len(backbone) == len(list(torchvision.models.resnet18().parameters())) - 2  # no fc


def test_random_init_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="reidgraph.models.resnet"):
        ReIDNet(18)
    assert "randomly initialised" in caplog.text


def test_repr_and_arch_config():
    net = ReIDNet(18, pooling="GEM", feat_dim=32, num_classes=2)
    assert net.arch_config == {
        "depth": 18,
        "last_stride": 1,
        "pooling": "gem",
        "bnneck": True,
        "feat_dim": 32,
    }
    assert (
        "depth=18, last_stride=1, pooling='gem', bnneck=True, feat_dim=32, out_dim=32, "
        "num_classes=2" in repr(net)
    )


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"depth": 20}, ValueError, r"Could not resolve depth=20 among choices \[18, 34"),
        ({"depth": "50"}, TypeError, "'depth' must be an int"),
        ({"last_stride": 3}, ValueError, "'last_stride' must be 1 or 2, got 3"),
        ({"pooling": "max"}, ValueError, "Could not resolve pooling='max'"),
        ({"bnneck": 1}, TypeError, "'bnneck' must be a bool"),
        ({"feat_dim": 0}, ValueError, "'feat_dim' must be >= 1"),
        ({"num_classes": -2}, ValueError, "'num_classes' must be >= 0"),
    ],
)
def test_constructor_errors(kwargs, err, match):
    args = {"depth": 18, **kwargs}
    with pytest.raises(err, match=match):
        ReIDNet(**args)


@pytest.fixture(scope="module")
def net18():
    return ReIDNet(18)


@pytest.mark.parametrize(
    "images, err, match",
    [
        (torch.rand(3, 64, 32), ValueError, r"RGB batches \[B, 3, H, W\], got shape \(3, 64, 32\)"),
        (torch.rand(2, 1, 64, 32), ValueError, r"got shape \(2, 1, 64, 32\).*repeat the channel"),
        (torch.rand(2, 4, 64, 32), ValueError, "RGB batches"),
        (torch.zeros(2, 3, 64, 32, dtype=torch.uint8), TypeError, "floating point.*torch.uint8"),
        (
            torch.rand(2, 3, 15, 32),
            ValueError,
            "15x32 pixels are smaller than this network's minimum 16x16",
        ),
        (torch.rand(2, 3, 64, 8), ValueError, "64x8 pixels are smaller"),
        ([[0.0]], TypeError, "'images' must be a torch.Tensor, got list"),
    ],
)
def test_bad_images(net18, images, err, match):
    net18.eval()
    with pytest.raises(err, match=match):
        net18(images)
    with pytest.raises(err, match=match):
        net18.feature_maps(images)


def test_minimum_size_with_last_stride_2_and_batch_of_one():
    net = ReIDNet(18, last_stride=2)
    with pytest.raises(ValueError, match="minimum 32x32 .*last_stride=2"):
        net.eval()(torch.rand(1, 3, 64, 16))
    with pytest.raises(ValueError, match="at least 2 images in training mode.*got a batch of 1"):
        net.train()(torch.rand(1, 3, 64, 32))
    assert net.eval()(torch.rand(1, 3, 64, 32)).shape == (1, 512)


def test_feature_maps_bad_layer(net18):
    with pytest.raises(ValueError, match="Could not resolve layer='layer5'"):
        net18.feature_maps(torch.rand(1, 3, 64, 32), "layer5")
