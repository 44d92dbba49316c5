"""Cross-entropy with label smoothing against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from reidgraph.losses import CrossEntropyLabelSmooth, cross_entropy_with_label_smoothing


def test_two_by_three_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    target = torch.tensor([2, 0])
    # row 0: log-softmax = z - log(e + e^2 + e^3) = [-2.40761, -1.40761, -0.40761];
    #   q = [0.1/3, 0.1/3, 0.9 + 0.1/3]  ->  -sum(q * logp) = 0.507606
    # row 1: uniform logits -> every log p = -log 3, whatever q: 1.098612
    # mean = (0.507606 + 1.098612) / 2 = 0.803109
    loss = cross_entropy_with_label_smoothing(logits, target, epsilon=0.1)
    assert loss.item() == pytest.approx(0.8031091, abs=1e-6)
    # epsilon = 0: plain cross-entropy, row 0 = 0.407606
    plain = cross_entropy_with_label_smoothing(logits[:1], target[:1], epsilon=0.0)
    assert plain.item() == pytest.approx(math.log(1 + math.exp(-1) + math.exp(-2)), abs=1e-6)


def test_module_and_default_epsilon():
    module = CrossEntropyLabelSmooth()
    assert module.epsilon == 0.1 and "epsilon=0.1" in repr(module)
    logits = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    loss = module(logits, torch.tensor([2]))
    assert loss.item() == pytest.approx(0.5076060, abs=1e-6)
    loss.backward()
    # d loss / d z = softmax(z) - q; its entries sum to 0
    assert abs(logits.grad.sum().item()) < 1e-6


def test_bad_input():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"'epsilon' must be in \[0, 1\), got 1.0"):
        cross_entropy_with_label_smoothing(logits, torch.tensor([0, 1]), 1.0)
    with pytest.raises(TypeError, match="'epsilon' must be a float"):
        CrossEntropyLabelSmooth(None)
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\], found \[0, 3\]"):
        cross_entropy_with_label_smoothing(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="outliers \\(-1\\) must be left out"):
        cross_entropy_with_label_smoothing(logits, torch.tensor([0, -1]))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy_with_label_smoothing(logits, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="length 2"):
        cross_entropy_with_label_smoothing(logits, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"'logits' must have at least 1 row"):
        cross_entropy_with_label_smoothing(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
