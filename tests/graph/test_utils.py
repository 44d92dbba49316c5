"""Tests of reidgraph.graph.utils against hand-computed adjacencies (G-Fusion Eq. 2, 6, 7)."""

from __future__ import annotations

import math

import pytest
import torch

from reidgraph.graph.edge_types import SPATIOTEMPORAL, VISUAL
from reidgraph.graph.utils import (
    check_edge_index,
    coalesce_edges,
    gaussian_kernel,
    gfusion_norm,
    row_normalize,
    symmetrize,
    to_sparse_adjacency,
)


def _dense_rows(edge_index, weight, n):
    """A[i, j] = weight of edge j -> i, written with a plain loop."""
    a = torch.zeros(n, n, dtype=torch.float64)
    for (j, i), w in zip(edge_index.t().tolist(), weight.tolist(), strict=True):
        a[i, j] += w
    return a


def test_gaussian_kernel_by_hand():
    # alpha = 1: exp(-d / 2): d = 0, 2, 8 -> 1, e^-1, e^-4
    out = gaussian_kernel(torch.tensor([0.0, 2.0, 8.0]))
    assert torch.allclose(out, torch.tensor([1.0, math.exp(-1), math.exp(-4)]))
    # alpha = 2: exp(-8 / (2 * 4)) = e^-1
    assert torch.allclose(
        gaussian_kernel(torch.tensor([8.0]), alpha=2.0), torch.tensor([math.exp(-1)])
    )


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), float("nan")])
def test_gaussian_kernel_bad_alpha_value(alpha):
    with pytest.raises(ValueError, match="'alpha' must be a finite float > 0"):
        gaussian_kernel(torch.tensor([1.0]), alpha)


@pytest.mark.parametrize("alpha", ["1", True, None])
def test_gaussian_kernel_bad_alpha_type(alpha):
    with pytest.raises(TypeError, match="'alpha' must be a positive float"):
        gaussian_kernel(torch.tensor([1.0]), alpha)


def test_check_edge_index_infers_and_validates():
    ei, n = check_edge_index(torch.tensor([[0, 3], [1, 2]], dtype=torch.int32))
    assert n == 4 and ei.dtype == torch.long
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        check_edge_index(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer node ids"):
        check_edge_index(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="node ids >= 0"):
        check_edge_index(torch.tensor([[0, -1], [1, 0]]))
    with pytest.raises(ValueError, match=r"larger indices than the number of nodes \(2\)"):
        check_edge_index(torch.tensor([[0, 2], [1, 0]]), num_nodes=2)


def test_coalesce_edges_by_hand():
    # (1,0) twice with weights 1 and 3, types ST and VISUAL; (0,1) once.
    ei = torch.tensor([[1, 0, 1], [0, 1, 0]])
    w = torch.tensor([1.0, 2.0, 3.0])
    t = torch.tensor([SPATIOTEMPORAL, VISUAL, VISUAL])
    out_ei, out_w, out_t = coalesce_edges(ei, w, t)
    assert out_ei.tolist() == [[0, 1], [1, 0]]
    assert out_w.tolist() == [2.0, 4.0]  # 1 + 3
    assert out_t.tolist() == [VISUAL, VISUAL]  # min(ST, VISUAL)
    _, w_max, _ = coalesce_edges(ei, w, reduce="max")
    assert w_max.tolist() == [2.0, 3.0]
    _, w_mean, t_none = coalesce_edges(ei, w, reduce="mean")
    assert w_mean.tolist() == [2.0, 2.0] and t_none is None


def test_coalesce_edges_empty_and_errors():
    ei = torch.empty(2, 0, dtype=torch.long)
    out_ei, out_w, _ = coalesce_edges(ei, torch.empty(0), num_nodes=3)
    assert out_ei.shape == (2, 0) and out_w.numel() == 0
    with pytest.raises(ValueError, match="Could not resolve reduce='prod'"):
        coalesce_edges(ei, reduce="prod")
    with pytest.raises(ValueError, match=r"'edge_weight' must have shape \[E\] = \[2\]"):
        coalesce_edges(torch.tensor([[0, 1], [1, 0]]), torch.ones(3))
    with pytest.raises(ValueError, match=r"'edge_type' must have shape \[E\] = \[2\]"):
        coalesce_edges(torch.tensor([[0, 1], [1, 0]]), edge_type=torch.ones(2, 1))


def test_symmetrize_eq6_by_hand():
    # A (rows = targets): A[0,1] = 0.8 (edge 1->0, VISUAL), A[1,0] = 0.6 (edge 0->1, ST),
    # A[0,2] = 0.4 (edge 2->0, ST), A[0,0] = 1.0 (self loop, VISUAL).
    ei = torch.tensor([[1, 0, 2, 0], [0, 1, 0, 0]])
    w = torch.tensor([0.8, 0.6, 0.4, 1.0])
    t = torch.tensor([VISUAL, SPATIOTEMPORAL, SPATIOTEMPORAL, VISUAL])
    out_ei, out_w, out_t = symmetrize(ei, w, 3, t)
    # A* = (A + A^T) / 2: (0,1) and (1,0): (0.8 + 0.6)/2 = 0.7; (0,2), (2,0): 0.4/2 = 0.2;
    # (0,0): (1 + 1)/2 = 1. Sorted by (source, target).
    assert out_ei.tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 0, 0]]
    assert torch.allclose(out_w, torch.tensor([1.0, 0.7, 0.2, 0.7, 0.2]))
    # (0,1)/(1,0) mix VISUAL and ST -> VISUAL; (0,2)/(2,0) ST only.
    assert out_t.tolist() == [VISUAL, VISUAL, SPATIOTEMPORAL, VISUAL, SPATIOTEMPORAL]
    dense = _dense_rows(out_ei, out_w, 3)
    assert torch.allclose(dense, dense.T)


def test_symmetrize_unweighted_and_int_weights():
    out_ei, out_w, out_t = symmetrize(torch.tensor([[0], [1]]))
    assert out_ei.tolist() == [[0, 1], [1, 0]] and out_w.tolist() == [0.5, 0.5] and out_t is None
    _, out_w, _ = symmetrize(torch.tensor([[0], [1]]), torch.tensor([2]))
    assert out_w.tolist() == [1.0, 1.0]


def test_row_normalize_by_hand():
    # Edges into 2: from 0 (1.0) and 1 (3.0) -> 1/4, 3/4; into 0: from 2 (5.0) -> 1.
    ei = torch.tensor([[0, 1, 2], [2, 2, 0]])
    assert torch.allclose(
        row_normalize(ei, torch.tensor([1.0, 3.0, 5.0])), torch.tensor([0.25, 0.75, 1.0])
    )
    # Unweighted: 1/2, 1/2, 1.
    assert torch.allclose(row_normalize(ei), torch.tensor([0.5, 0.5, 1.0]))
    # A row summing to zero stays zero (no division by zero).
    assert row_normalize(ei, torch.tensor([0.0, 0.0, 2.0])).tolist() == [0.0, 0.0, 1.0]
    assert row_normalize(ei, torch.tensor([1, 3, 5])).dtype.is_floating_point


def test_row_normalize_negative_weight():
    with pytest.raises(ValueError, match="must be non-negative for row normalisation"):
        row_normalize(torch.tensor([[0], [1]]), torch.tensor([-1.0]))


def test_gfusion_norm_by_hand():
    # 1 -> 0 (0.5), existing self loop 0 -> 0 (2.0, kept), 2 -> 1 (1.0); loops of
    # weight 1 added to nodes 1 and 2.
    ei = torch.tensor([[1, 0, 2], [0, 0, 1]])
    out_ei, out_w = gfusion_norm(ei, torch.tensor([0.5, 2.0, 1.0]), num_nodes=3)
    dense = _dense_rows(out_ei, out_w, 3)
    # row 0: {1: 0.5, 0: 2.0} / 2.5 -> 0.2, 0.8; row 1: {2: 1, 1: 1} / 2 -> 0.5, 0.5;
    # row 2: {2: 1} -> 1.
    expected = torch.tensor(
        [[0.8, 0.2, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    assert torch.allclose(dense, expected)
    # A different self-loop weight: row 1 = {2: 1, 1: 3} / 4.
    out_ei, out_w = gfusion_norm(ei, torch.tensor([0.5, 2.0, 1.0]), 3, self_loop_weight=3.0)
    assert torch.allclose(
        _dense_rows(out_ei, out_w, 3)[1], torch.tensor([0.0, 0.75, 0.25]).double()
    )
    # No weights: all ones.
    out_ei, out_w = gfusion_norm(torch.tensor([[1], [0]]), num_nodes=2)
    assert torch.allclose(
        _dense_rows(out_ei, out_w, 2), torch.tensor([[0.5, 0.5], [0, 1.0]]).double()
    )


def test_to_sparse_adjacency():
    # Edge 1 -> 0 with weight 3 is A[0, 1] = 3; duplicates are summed.
    ei = torch.tensor([[1, 1, 2], [0, 0, 1]])
    adj = to_sparse_adjacency(ei, torch.tensor([1.0, 2.0, 4.0]), num_nodes=3)
    assert adj.is_sparse
    assert adj.to_dense().tolist() == [[0, 3, 0], [0, 0, 4], [0, 0, 0]]
    csr = to_sparse_adjacency(ei, num_nodes=3, layout="csr")
    assert csr.layout == torch.sparse_csr
    assert csr.to_dense().tolist() == [[0, 2, 0], [0, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="Could not resolve layout='dense'"):
        to_sparse_adjacency(ei, layout="dense")
