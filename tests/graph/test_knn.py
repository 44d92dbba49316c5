"""Tests of the visual kNN graph (G-Fusion E_v, Eq. 1-2) on hand-built graphs."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Data

from reidgraph.graph.edge_types import VISUAL
from reidgraph.graph.knn import VisualKNNGraph, knn_graph

# Five points on a line: 0, 1, 3, 7, 8. Squared distances, best first (self excluded):
#   node 0: 1 (1), 2 (9), 3 (49), 4 (64)
#   node 1: 0 (1), 2 (4), 3 (36), 4 (49)
#   node 2: 1 (4), 0 (9), 3 (16), 4 (25)
#   node 3: 4 (1), 2 (16), 1 (36), 0 (49)
#   node 4: 3 (1), 2 (25), 1 (49), 0 (64)
X5 = torch.tensor([[0.0], [1.0], [3.0], [7.0], [8.0]])


def _data(x=X5, **kw):
    return Data(x=x, camid=torch.arange(x.size(0)), **kw)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_knn_k3_by_hand(backend):
    g = knn_graph(_data(), k=3, backend=backend)
    # k = 3 counts the node itself: two others per node, stored j -> i, grouped by target.
    assert g.edge_index.tolist() == [
        [1, 2, 0, 2, 1, 0, 4, 2, 3, 2],
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
    ]
    d = torch.tensor([1, 9, 1, 4, 4, 9, 1, 16, 1, 25], dtype=torch.float32)
    assert torch.allclose(g.edge_weight, torch.exp(-d / 2), atol=1e-6)  # Eq. 2, alpha = 1
    assert g.edge_type.tolist() == [VISUAL] * 10
    # alpha = 2: exp(-d / 8)
    g2 = knn_graph(_data(), k=3, alpha=2.0, backend=backend)
    assert torch.allclose(g2.edge_weight, torch.exp(-d / 8), atol=1e-6)


def test_knn_k1_is_self_only():
    # G-Fusion Sec. 4.5: k_s = 1 -> the neighbourhood is the node itself.
    g = knn_graph(_data(), k=1, backend="torch")
    assert g.edge_index.shape == (2, 0)
    g = knn_graph(_data(), k=1, loop=True, backend="torch")
    assert g.edge_index.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    assert g.edge_weight.tolist() == [1.0] * 5  # S_ii = exp(0)


def test_knn_loop_puts_self_first():
    g = knn_graph(_data(), k=2, loop=True, backend="torch")
    # Per target: self (weight 1), then the best other node.
    assert g.edge_index.tolist() == [[0, 1, 1, 0, 2, 1, 3, 4, 4, 3], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]]
    expected = [1.0, math.exp(-0.5), 1.0, math.exp(-0.5), 1.0, math.exp(-2.0)]
    expected += [1.0, math.exp(-0.5), 1.0, math.exp(-0.5)]
    assert torch.allclose(g.edge_weight, torch.tensor(expected), atol=1e-6)


def test_knn_mutual_by_hand():
    g = knn_graph(_data(), k=3, mutual=True, backend="torch")
    # Lists: 0:{1,2} 1:{0,2} 2:{1,0} 3:{4,2} 4:{3,2}. 2 -> 3 needs 3 in list(2): no;
    # 2 -> 4 needs 4 in list(2): no. Every other link is mutual.
    assert g.edge_index.tolist() == [[1, 2, 0, 2, 1, 0, 4, 3], [0, 0, 1, 1, 2, 2, 3, 4]]


def test_knn_cosine_by_hand():
    # cos(0,1) = 0.8, cos(0,2) = 0, cos(0,3) = -1, cos(1,2) = 0.6, cos(1,3) = -0.8, cos(2,3) = 0.
    x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    g = knn_graph(Data(x=x), k=2, weight="cosine", backend="torch")
    # Best other: 0 -> 1 (0.8), 1 -> 0 (0.8), 2 -> 1 (0.6), 3 -> 2 (0.0).
    assert g.edge_index.tolist() == [[1, 0, 1, 2], [0, 1, 2, 3]]
    assert torch.allclose(g.edge_weight, torch.tensor([0.8, 0.8, 0.6, 0.0]), atol=1e-6)
    g = knn_graph(Data(x=torch.cat([x, torch.zeros(1, 2)])), k=2, weight="cosine", loop=True)
    # The zero vector's cosine with itself is 0 (normalised to zero), others 1.
    loops = g.edge_index[0] == g.edge_index[1]
    assert g.edge_weight[loops].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_knn_symmetric_by_hand():
    g = knn_graph(_data(), k=2, symmetric=True, backend="torch")
    # A: 1->0, 0->1 (d=1), 1->2 (d=4), 4->3, 3->4 (d=1). A* = (A + A^T)/2: mutual pairs keep
    # exp(-1/2); the one-way 1->2 becomes exp(-2)/2 in both directions.
    assert g.edge_index.tolist() == [[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]]
    e, h = math.exp(-0.5), math.exp(-2.0) / 2
    assert torch.allclose(g.edge_weight, torch.tensor([e, e, h, h, e, e]), atol=1e-6)
    assert g.edge_type.tolist() == [VISUAL] * 6


def test_knn_duplicates_never_link_to_self():
    # Three identical points: ties may push a node out of its own top-k; it still gets
    # exactly k - 1 other nodes and no self loop.
    x = torch.tensor([[0.0], [0.0], [0.0], [5.0]])
    g = knn_graph(Data(x=x), k=2, backend="torch")
    src, dst = g.edge_index
    assert bool((src != dst).all())
    assert torch.bincount(dst, minlength=4).tolist() == [1, 1, 1, 1]
    assert bool((src[:3] < 3).all())  # duplicates link among themselves, weight exp(0)
    assert g.edge_weight[:3].tolist() == [1.0, 1.0, 1.0]


def test_knn_brute_force_random():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen)
    k = 5
    g = knn_graph(Data(x=x), k=k, backend="torch")
    expected = set()
    for i in range(40):
        d = [(float(((x[i] - x[j]) ** 2).sum()), j) for j in range(40)]
        d.sort()
        assert d[0][1] == i
        for dist, j in d[1:k]:
            expected.add((j, i, round(math.exp(-dist / 2), 5)))
    got = {
        (j, i, round(w, 5))
        for (j, i), w in zip(g.edge_index.t().tolist(), g.edge_weight.tolist(), strict=True)
    }
    assert got == expected


def test_knn_returns_copy_and_clears_edge_attr():
    data = _data(edge_attr=torch.ones(3, 2))
    g = knn_graph(data, k=2, backend="torch")
    assert "edge_index" not in data and data.edge_attr.shape == (3, 2)
    assert g.edge_attr is None
    assert torch.equal(g.camid, data.camid)
    g.validate()


def test_knn_errors():
    with pytest.raises(TypeError, match="knn_graph expects a torch_geometric.data.Data"):
        knn_graph(X5, k=2)
    with pytest.raises(ValueError, match="knn_graph needs node features 'x'"):
        knn_graph(Data(camid=torch.arange(3)), k=2)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        knn_graph(_data(), k=0)
    with pytest.raises(ValueError, match=r"'k' must be <= 5 \(k counts the node itself; N = 5"):
        knn_graph(_data(), k=6)
    with pytest.raises(TypeError, match="'k' must be an int"):
        knn_graph(_data(), k=2.0)
    with pytest.raises(ValueError, match="Could not resolve weight='dot'"):
        knn_graph(_data(), k=2, weight="dot")
    with pytest.raises(TypeError, match="'mutual' must be a bool"):
        knn_graph(_data(), k=2, mutual="yes")
    with pytest.raises(TypeError, match="'loop' must be a bool"):
        knn_graph(_data(), k=2, loop=1)
    with pytest.raises(TypeError, match="'symmetric' must be a bool"):
        knn_graph(_data(), k=2, symmetric=None)
    with pytest.raises(ValueError, match="'alpha' must be a finite float > 0"):
        knn_graph(_data(), k=2, alpha=0.0)
    with pytest.raises(ValueError, match="'data.x' must contain only finite values"):
        knn_graph(Data(x=torch.tensor([[0.0], [float("nan")]])), k=2)


def test_visual_knn_transform():
    t = VisualKNNGraph(k=3, mutual=True)
    assert repr(t) == (
        "VisualKNNGraph(k=3, weight=gaussian, alpha=1.0, mutual=True, loop=False, symmetric=False)"
    )
    g = t(_data())
    assert g.edge_index.tolist() == [[1, 2, 0, 2, 1, 0, 4, 3], [0, 0, 1, 1, 2, 2, 3, 4]]


@pytest.mark.gpu
def test_knn_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100, 8, generator=gen)
    cpu = knn_graph(Data(x=x), k=4, backend="torch")
    gpu = knn_graph(Data(x=x.cuda()), k=4, backend="torch")
    assert gpu.edge_index.is_cuda
    assert torch.equal(cpu.edge_index, gpu.edge_index.cpu())
    assert torch.allclose(cpu.edge_weight, gpu.edge_weight.cpu(), atol=1e-5)
