"""Tests of RandomSAGE (G-Fusion Eq. 7) and the affinity of Eq. 8, against dense algebra."""

from __future__ import annotations

import math

import pytest
import torch

from reidgraph.nn.random_sage import INITS, RandomSAGE, affinity


def _set_weights(conv, *weights):
    for buf, w in zip(conv.weights(), weights, strict=True):
        buf.copy_(torch.tensor(w, dtype=buf.dtype))


def test_random_sage_by_hand():
    # Three nodes, x0 = [1, 0], x1 = [0, 1], x2 = [1, 1]; A*_01 = A*_10 = 0.5, plus self loops
    # of weight 1. Row-normalised P = D^-1 (A* + I):
    #   row 0: {0: 1, 1: 0.5} / 1.5 = [2/3, 1/3, 0];  row 1: [1/3, 2/3, 0];  row 2: [0, 0, 1]
    # W0 = [[1, -1], [0, 1]]:  P x = [[2/3, 1/3], [1/3, 2/3], [1, 1]]
    #   (P x) W0^T = [[1/3, 1/3], [-1/3, 2/3], [0, 1]]
    #   -> ReLU -> h1 = [[1/3, 1/3], [0, 2/3], [0, 1]]
    # P h1 = [[2/9, 4/9], [1/9, 5/9], [0, 1]];  W1 = [[2, 1], [1, -1]]:
    #   (P h1) W1^T = [[8/9, -2/9], [7/9, -4/9], [1, -1]] -> ReLU -> [[8/9, 0], [7/9, 0], [1, 0]]
    conv = RandomSAGE(2, 2, 2)
    _set_weights(conv, [[1.0, -1.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, -1.0]])
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    h = conv(x, torch.tensor([[0, 1], [1, 0]]), torch.tensor([0.5, 0.5]))
    assert torch.allclose(h, torch.tensor([[8 / 9, 0.0], [7 / 9, 0.0], [1.0, 0.0]]), atol=1e-6)


def _dense_reference(x, edge_index, edge_weight, weights, normalize=True, loop_w=1.0):
    """Eq. 7 with dense matrices: A[i, j] = weight of j -> i; missing self loops get loop_w."""
    n = x.size(0)
    a = torch.zeros(n, n, dtype=torch.float64)
    for (j, i), w in zip(edge_index.t().tolist(), edge_weight.tolist(), strict=True):
        a[i, j] += w
    if normalize:
        for i in range(n):
            if a[i, i] == 0:
                a[i, i] = loop_w
        a = a / a.sum(1, keepdim=True)
    h = x.double()
    for w in weights:
        h = torch.relu(a @ h @ w.double().T)
    return h


@pytest.mark.parametrize("sizes", [(6, 3, 2), (2, 5, 7)])  # project-first and aggregate-first
def test_random_sage_matches_dense_equation(sizes):
    gen = torch.Generator().manual_seed(0)
    n = 5
    x = torch.randn(n, sizes[0], generator=gen)
    # Symmetric weighted graph + an existing self loop on node 3 (weight 2, kept as is).
    pairs = [(0, 1, 0.9), (1, 2, 0.4), (2, 4, 0.7), (0, 4, 0.2), (3, 3, 2.0)]
    ei = torch.tensor([[a for a, b, _ in pairs] + [b for a, b, _ in pairs if a != b],
                       [b for a, b, _ in pairs] + [a for a, b, _ in pairs if a != b]])  # fmt: skip
    w = torch.tensor([c for *_, c in pairs] + [c for a, b, c in pairs if a != b])
    conv = RandomSAGE(*sizes, seed=3)
    expected = _dense_reference(x, ei, w, conv.weights())
    assert torch.allclose(conv(x, ei, w).double(), expected, atol=1e-5)
    # normalize=False uses the raw weights without self loops.
    raw = RandomSAGE(*sizes, seed=3, normalize=False)
    expected = _dense_reference(x, ei, w, raw.weights(), normalize=False)
    assert torch.allclose(raw(x, ei, w).double(), expected, atol=1e-5)
    # Another self-loop weight for the nodes without one.
    half = RandomSAGE(*sizes, seed=3, self_loop_weight=0.5)
    expected = _dense_reference(x, ei, w, half.weights(), loop_w=0.5)
    assert torch.allclose(half(x, ei, w).double(), expected, atol=1e-5)


def test_unweighted_isolated_node_and_layers():
    # No edge weights = all ones; node 2 is isolated and only sees itself:
    # h = ReLU(W1 ReLU(W0 x_2)).
    conv = RandomSAGE(3, 4, 2, seed=1)
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [0.5, -0.5, 2.0]])
    h = conv(x, torch.tensor([[0, 1], [1, 0]]))
    w0, w1 = conv.weights()
    assert torch.allclose(h[2], torch.relu(w1 @ torch.relu(w0 @ x[2])), atol=1e-6)
    # Nodes 0 and 1: P = [[.5, .5], [.5, .5]] -> both get the same embedding.
    mean = x[:2].mean(0)
    assert torch.allclose(h[0], torch.relu(w1 @ torch.relu(w0 @ mean)), atol=1e-6)
    assert torch.allclose(h[0], h[1])
    for layers in (1, 3):
        conv = RandomSAGE(3, 4, 2, num_layers=layers, seed=0)
        assert [tuple(w.shape) for w in conv.weights()] == (
            [(2, 3)] if layers == 1 else [(4, 3), (4, 4), (2, 4)]
        )
        assert conv(x, torch.empty(2, 0, dtype=torch.long)).shape == (3, 2)


def test_seed_determinism_and_frozen_weights():
    a, b, c = RandomSAGE(8, seed=7), RandomSAGE(8, seed=7), RandomSAGE(8, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a.weights(), b.weights(), strict=True))
    assert not torch.equal(a.weight0, c.weight0)
    before = a.weight0.clone()
    a.reset_parameters()  # same seed -> same draw
    assert torch.equal(a.weight0, before)
    # Generators: same seed, same weights; the module draws from the generator it is given.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        RandomSAGE(8, generator=g1, seed=None).weight0, RandomSAGE(8, generator=g2).weight0
    )
    # Never trained: buffers, no parameters, no gradient through the output.
    assert list(a.parameters()) == []
    assert set(a.state_dict()) == {"weight0", "weight1"}
    x = torch.randn(4, 8, requires_grad=True)
    h = a(x, torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert h.shape == (4, 128) and not h.requires_grad
    assert torch.equal(h, b(x, torch.tensor([[0, 1, 2], [1, 2, 3]])))
    assert bool((h >= 0).all())


def test_permutation_equivariance():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=gen)
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 2], [1, 2, 3, 4, 5, 0, 0, 1]])
    w = torch.rand(8, generator=gen)
    conv = RandomSAGE(4, 5, 3, seed=0)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])  # new node k is old node perm[k]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(6)
    h = conv(x, ei, w)
    h_perm = conv(x[perm], inv[ei], w)
    assert torch.allclose(h_perm, h[perm], atol=1e-6)


@pytest.mark.parametrize("init", INITS)
def test_inits(init):
    conv = RandomSAGE(16, 16, 16, init=init, seed=0)
    w = conv.weight0
    assert bool(torch.isfinite(w).all()) and w.abs().sum() > 0
    if init == "xavier_uniform":
        bound = math.sqrt(6 / (16 + 16))
        assert float(w.abs().max()) <= bound
    if init == "orthogonal":
        assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)


def test_repr():
    assert repr(RandomSAGE(2048)) == (
        "RandomSAGE(2048, 128, 128, num_layers=2, init=xavier_uniform, seed=0)"
    )
    gen = torch.Generator().manual_seed(0)
    assert repr(RandomSAGE(4, 8, 2, generator=gen)).endswith("init=xavier_uniform, generator)")


def test_random_sage_errors():
    with pytest.raises(ValueError, match="'in_channels' must be >= 1"):
        RandomSAGE(0)
    with pytest.raises(ValueError, match="'num_layers' must be >= 1"):
        RandomSAGE(4, num_layers=0)
    with pytest.raises(ValueError, match="Could not resolve init='zeros'"):
        RandomSAGE(4, init="zeros")
    with pytest.raises(ValueError, match="RandomSAGE needs 'seed'"):
        RandomSAGE(4, seed=None)
    with pytest.raises(TypeError, match="'generator' must be a torch.Generator"):
        RandomSAGE(4, generator=5)
    with pytest.raises(TypeError, match="'normalize' must be a bool"):
        RandomSAGE(4, normalize="yes")
    with pytest.raises(ValueError, match="'self_loop_weight' must be finite and >= 0"):
        RandomSAGE(4, self_loop_weight=-1.0)
    with pytest.raises(TypeError, match="'self_loop_weight' must be a float"):
        RandomSAGE(4, self_loop_weight="1")
    with pytest.raises(ValueError, match="'seed' must be >= 0"):
        RandomSAGE(4, seed=-1)
    conv = RandomSAGE(4, 3, 2)
    x = torch.randn(3, 4)
    with pytest.raises(
        ValueError, match=r"'x' must have in_channels=4 columns, got shape \(3, 5\)"
    ):
        conv(torch.randn(3, 5), torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r"larger indices than the number of nodes \(3\)"):
        conv(x, torch.tensor([[0], [3]]))
    with pytest.raises(ValueError, match=r"'edge_weight' must have shape \[E\] = \[1\]"):
        conv(x, torch.tensor([[0], [1]]), torch.ones(2))
    with pytest.raises(ValueError, match="must be non-negative for row normalisation"):
        conv(x, torch.tensor([[0], [1]]), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match="'x' must contain only finite values"):
        conv(torch.full((3, 4), float("nan")), torch.tensor([[0], [1]]))


def test_affinity_by_hand():
    h = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
    pairs = torch.tensor([[0, 0, 1], [0, 1, 2]])
    # ||.||^2 = 0, 2, (1-3)^2 + 1^2 = 5 -> exp(-d / 2) with alpha = 1 (Eq. 8)
    expected = torch.tensor([1.0, math.exp(-1.0), math.exp(-2.5)])
    assert torch.allclose(affinity(h, pairs), expected)
    assert torch.allclose(affinity(h, pairs, chunk_size=1), expected)
    # alpha = 2: exp(-d / 8)
    assert torch.allclose(affinity(h, pairs, alpha=2.0), torch.exp(-torch.tensor([0, 2, 5.0]) / 8))
    # Bipartite (query-gallery): h_dst = [[1, 0]]; pairs (0,0), (1,0): d = 1, 1.
    out = affinity(h, torch.tensor([[0, 1], [0, 0]]), h_dst=torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(out, torch.full((2,), math.exp(-0.5)))
    assert affinity(h, torch.empty(2, 0, dtype=torch.long)).shape == (0,)


def test_affinity_errors():
    h = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"'pair_index' must have shape \[2, P\]"):
        affinity(h, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="'pair_index' must hold node ids"):
        affinity(h, torch.tensor([[0.0], [1.0]]))
    with pytest.raises(ValueError, match=r"'pair_index\[0\]' must index the 3 rows of 'h'"):
        affinity(h, torch.tensor([[3], [0]]))
    with pytest.raises(ValueError, match=r"'pair_index\[1\]' must index the 1 rows of 'h_dst'"):
        affinity(h, torch.tensor([[0], [1]]), h_dst=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="'h_dst' must match 'h' in width and device"):
        affinity(h, torch.tensor([[0], [0]]), h_dst=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="'alpha' must be a finite float > 0"):
        affinity(h, torch.tensor([[0], [0]]), alpha=-1.0)
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1"):
        affinity(h, torch.tensor([[0], [0]]), chunk_size=0)


def test_end_to_end_with_builders():
    # Symmetrised spatio-temporal graph -> RandomSAGE -> affinity on the graph's edges.
    from torch_geometric.data import Data

    from reidgraph.graph.spatiotemporal import attach_nodes, spatiotemporal_graph

    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(30, 8, generator=gen), dim=1)
    cam = torch.arange(30) % 3
    time = torch.arange(30, dtype=torch.float64) * 2.0
    gallery = Data(x=x[:25], camid=cam[:25], time=time[:25])
    g = spatiotemporal_graph(gallery, 3, 10, 5.0, symmetric=True, backend="torch")
    conv = RandomSAGE(8, 16, 16, seed=0)
    h_g = conv(g.x, g.edge_index, g.edge_weight)
    m = affinity(h_g, g.edge_index)
    assert m.shape == (g.edge_index.size(1),) and bool(((m > 0) & (m <= 1)).all())
    # Eq. 15-16: attaching queries leaves the gallery embeddings unchanged.
    from reidgraph.graph.transitions import TransitionSet

    T = TransitionSet.fit(gallery, k_s=3, backend="torch")
    q = Data(x=x[25:], camid=cam[25:], time=time[25:])
    full = attach_nodes(g, q, 3, 10, 5.0, transitions=T, backend="torch")
    h = conv(full.x, full.edge_index, full.edge_weight)
    assert torch.allclose(h[~full.new_mask], h_g, atol=1e-6)


@pytest.mark.gpu
def test_random_sage_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 16, generator=gen)
    ei = torch.randint(0, 50, (2, 200), generator=gen)
    w = torch.rand(200, generator=gen)
    conv = RandomSAGE(16, 8, 4, seed=0)
    cpu = conv(x, ei, w)
    gpu = conv.cuda()(x.cuda(), ei.cuda(), w.cuda())
    assert gpu.is_cuda and torch.allclose(cpu, gpu.cpu(), atol=1e-5)
