"""Batch-hard triplet loss against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from reidgraph.losses import HardTripletLoss, hard_triplet_loss


def test_four_points_by_hand():
    # a=(0,0), b=(3,4) label 0; c=(0,2), d=(6,8) label 1. Distances: ab 5, ac 2, ad 10,
    # bc sqrt(13), bd 5, cd sqrt(72).
    # a: .3 + 5 - 2 = 3.3;          b: .3 + 5 - sqrt(13) = 1.694449
    # c: .3 + sqrt(72) - 2 = 6.785281; d: .3 + sqrt(72) - 5 = 3.785281   -> mean 3.891253
    feat = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0], [6.0, 8.0]])
    labels = torch.tensor([0, 0, 1, 1])
    expected = (3.3 + (5.3 - math.sqrt(13)) + (math.sqrt(72) - 1.7) + (math.sqrt(72) - 4.7)) / 4
    assert hard_triplet_loss(feat, labels).item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(3.891253, abs=1e-6)


def test_hinge_and_lone_anchors_by_hand():
    # 1-D: 0, 1 (label 0); 1.5, 4 (label 1); margin .3
    # anchor 0: [.3 + 1 - 1.5]_+ = 0; 1: .3 + 1 - .5 = .8; 1.5: .3 + 2.5 - .5 = 2.3;
    # 4: [.3 + 2.5 - 3]_+ = 0  ->  mean 0.775
    feat = torch.tensor([[0.0], [1.0], [1.5], [4.0]])
    assert hard_triplet_loss(feat, torch.tensor([0, 0, 1, 1])).item() == pytest.approx(0.775)
    # label 2 alone: its positive is itself (distance 0): [.3 + 0 - 2.5]_+ = 0 for x=4
    loss = hard_triplet_loss(feat, torch.tensor([0, 0, 1, 2]))
    # 0: [.3+1-1.5]=0; 1: .3+1-.5=.8; 1.5: [.3+0-.5]=0; 4: 0 -> mean 0.2
    assert loss.item() == pytest.approx(0.2)


def test_normalize_and_module():
    feat = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    # normalised: distance sqrt(2) between the two labels, no positives: [1.5 - sqrt 2]_+
    loss = HardTripletLoss(1.5, normalize=True)(feat, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(1.5 - math.sqrt(2), abs=1e-6)
    assert HardTripletLoss().margin == 0.3 and "margin=0.3" in repr(HardTripletLoss())


def test_gradient_is_finite_for_identical_points():
    feat = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    hard_triplet_loss(feat, torch.tensor([0, 0, 1])).backward()
    assert torch.isfinite(feat.grad).all()


def test_bad_input():
    feat = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="at least two labels in the batch"):
        hard_triplet_loss(feat, torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="outliers \\(-1\\) must be left out"):
        hard_triplet_loss(feat, torch.tensor([0, 1, -1]))
    with pytest.raises(ValueError, match="'margin' must be >= 0"):
        hard_triplet_loss(feat, torch.tensor([0, 1, 1]), margin=-0.1)
    with pytest.raises(TypeError, match="'margin' must be a float"):
        HardTripletLoss("0.3")
    with pytest.raises(TypeError, match="integer labels"):
        hard_triplet_loss(feat, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="length 3"):
        hard_triplet_loss(feat, torch.tensor([0, 1]))
