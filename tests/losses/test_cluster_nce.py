"""ClusterNCE (GUR Eq. 3-4) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from reidgraph.losses import ClusterNCE, cluster_nce
from reidgraph.nn.memory import ClusterMemory


def _memory(tau=0.05):
    mem = ClusterMemory(2, temperature=tau)
    mem.reset(torch.eye(2), torch.tensor([0, 1]))
    return mem


def test_two_centroids_by_hand():
    # centroids [1, 0], [0, 1]; q = [3, 4] -> [.6, .8] -> logits [12, 16] at tau = .05
    # target 0: -log(e^12 / (e^12 + e^16)) = log(1 + e^4) = 4.018150
    # target 1: log(1 + e^-4) = 0.018150;   mean 2.018150
    feats = torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    loss = cluster_nce(feats, torch.tensor([0, 1]), _memory())
    assert loss.item() == pytest.approx(2.0181499, abs=1e-5)
    single = cluster_nce(feats[:1], torch.tensor([1]), _memory())
    assert single.item() == pytest.approx(math.log(1 + math.exp(-4)), abs=1e-6)


def test_temperature_sources():
    feats = torch.tensor([[2.0, 0.0]])
    # q = [1, 0]; tau = .5 -> logits [2, 0] -> log(1 + e^-2) = 0.126928
    assert cluster_nce(feats, torch.tensor([0]), _memory(0.5)).item() == pytest.approx(
        0.126928, abs=1e-6
    )
    # explicit temperature overrides the memory's; a bare tensor defaults to 0.05
    assert cluster_nce(feats, torch.tensor([0]), _memory(), 0.5).item() == pytest.approx(
        0.126928, abs=1e-6
    )
    # tau = .05: logits [20, 0] -> log(1 + e^-20)
    assert cluster_nce(feats, torch.tensor([0]), torch.eye(2)).item() == pytest.approx(
        math.log1p(math.exp(-20)), abs=1e-7
    )
    assert ClusterNCE(0.5)(feats, torch.tensor([0]), torch.eye(2)).item() == pytest.approx(
        0.126928, abs=1e-6
    )
    assert "temperature=None" in repr(ClusterNCE())


def test_gradient_reaches_features_not_memory():
    mem = _memory()
    centroids = torch.eye(2).requires_grad_()
    feats = torch.tensor([[3.0, 4.0]], requires_grad=True)
    cluster_nce(feats, torch.tensor([0]), centroids).backward()
    assert feats.grad is not None and centroids.grad is None
    cluster_nce(feats, torch.tensor([0]), mem).backward()
    assert not mem.features.requires_grad


def test_bad_input():
    mem = _memory()
    feats = torch.ones(2, 2)
    with pytest.raises(ValueError, match=r"cluster indices in \[0, 1\], found \[0, 2\]"):
        cluster_nce(feats, torch.tensor([0, 2]), mem)
    with pytest.raises(ValueError, match="outliers \\(-1\\) must be left out"):
        cluster_nce(feats, torch.tensor([0, -1]), mem)
    with pytest.raises(ValueError, match="'feats' must have 2 columns"):
        cluster_nce(torch.ones(2, 3), torch.tensor([0, 1]), mem)
    with pytest.raises(TypeError, match="must be a ClusterMemory or a"):
        cluster_nce(feats, torch.tensor([0, 1]), [[1.0, 0.0]])
    with pytest.raises(RuntimeError, match="ClusterMemory is empty"):
        cluster_nce(feats, torch.tensor([0, 1]), ClusterMemory(2))
    with pytest.raises(ValueError, match="'temperature' must be > 0"):
        cluster_nce(feats, torch.tensor([0, 1]), mem, temperature=-1.0)
    with pytest.raises(TypeError, match="'temperature' must be a float"):
        ClusterNCE("0.05")
    with pytest.raises(ValueError, match=r"'feats' must have at least 1 row"):
        cluster_nce(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), mem)
