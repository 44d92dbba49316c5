"""Tests for reidgraph.graph.pair_subgraphs (SEAL / MPRD Eq. 4 enclosing subgraphs)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import shortest_path
from torch_geometric.data import Data
from torch_geometric.utils import k_hop_subgraph, to_scipy_sparse_matrix, to_undirected

from reidgraph.graph.pair_subgraphs import pair_subgraphs

# Hand-built graph on 7 nodes (undirected):
#   4-2, 4-0, 0-2, 4-5, 2-1, 2-3, 5-3, 3-1, 4-6
HAND = torch.tensor([[4, 4, 0, 4, 2, 2, 5, 3, 4], [2, 0, 2, 5, 1, 3, 3, 1, 6]])


def _hand_data() -> Data:
    return Data(edge_index=to_undirected(HAND), num_nodes=7)


def _edges(graph) -> set[tuple[int, int]]:
    return set(map(tuple, graph.edge_index.t().tolist()))


def test_khop_one_hop_by_hand():
    # Pair (i, j) = (4, 2): i > j and nodes 0, 1 have smaller ids than both.
    # 1-hop nodes: {4, 2} + N(4) = {2, 0, 5, 6} + N(2) = {4, 0, 1, 3} -> all 7.
    # Local order: targets first (4 -> 0, 2 -> 1), then 0, 1, 3, 5, 6 -> 2..6.
    # Induced edges minus the target link 4-2, in local ids:
    #   4-0 (0,2)  0-2 (2,1)  4-5 (0,5)  2-1 (1,3)  2-3 (1,4)  5-3 (5,4)
    #   3-1 (4,3)  4-6 (0,6)
    # DRNL: d_i = dist to 4 without 2: 0:1 5:1 6:1 3:2 (3-5-4) 1:3 (1-3-5-4)
    #       d_j = dist to 2 without 4: 0:1 1:1 3:1 5:2 (5-3-2) 6:inf
    #   z(0) = (1,1) -> 1+1+1*(1+0-1) = 2
    #   z(1) = (3,1) -> 1+1+2*(2+0-1) = 4   <- distance 3 inside a 1-hop subgraph
    #   z(3) = (2,1) -> 1+1+1*(1+1-1) = 3
    #   z(5) = (1,2) -> 3
    #   z(6) = unreachable from 2 -> 0
    out = pair_subgraphs(_hand_data(), torch.tensor([[4], [2]]))
    assert out.num_graphs == 1
    assert out.n_id.tolist() == [4, 2, 0, 1, 3, 5, 6]
    assert out.z.tolist() == [1, 1, 2, 4, 3, 3, 0]
    half = {(0, 2), (2, 1), (0, 5), (1, 3), (1, 4), (5, 4), (4, 3), (0, 6)}
    assert _edges(out) == half | {(b, a) for a, b in half}
    # edges grouped by source node
    assert bool((out.edge_index[0, 1:] >= out.edge_index[0, :-1]).all())
    assert out.pair_index.tolist() == [[0], [1]]


def test_khop_small_subgraph_and_two_hops_by_hand():
    # Pair (6, 1). N(6) = {4}, N(1) = {2, 3}; 1-hop nodes {6, 1, 4, 2, 3},
    # local: 6->0, 1->1, 2->2, 3->3, 4->4; induced edges 4-2, 2-1, 2-3, 3-1, 4-6.
    # d_i (to 6 without 1): 4:1 2:2 3:3; d_j (to 1 without 6): 2:1 3:1 4:2
    #   z(2) = (2,1) -> 3, z(3) = (3,1) -> 4, z(4) = (1,2) -> 3
    out = pair_subgraphs(_hand_data(), torch.tensor([[6], [1]]), num_hops=1)
    assert out.n_id.tolist() == [6, 1, 2, 3, 4]
    assert out.z.tolist() == [1, 1, 3, 4, 3]
    half = {(4, 2), (2, 1), (2, 3), (3, 1), (4, 0)}
    assert _edges(out) == half | {(b, a) for a, b in half}
    # 2 hops: adds N(4) + N(2) + N(3) = {0, 5}; local 6->0, 1->1, 0->2, 2->3,
    # 3->4, 4->5, 5->6, all 9 edges (no target link 6-1 exists).
    # d_i (to 6 without 1): 4:1 0:2 2:2 5:2 3:3
    # d_j (to 1 without 6): 2:1 3:1 0:2 4:2 5:2
    #   z(0) = (2,2) -> 1+2+2*(2+0-1) = 5, z(2) = (2,1) -> 3, z(3) = (3,1) -> 4,
    #   z(4) = (1,2) -> 3, z(5) = (2,2) -> 5
    out = pair_subgraphs(_hand_data(), torch.tensor([[6], [1]]), num_hops=2)
    assert out.n_id.tolist() == [6, 1, 0, 2, 3, 4, 5]
    assert out.z.tolist() == [1, 1, 5, 3, 4, 3, 5]
    assert out.edge_index.size(1) == 18


def test_isolated_target_and_isolated_nodes():
    # Node 7 is isolated. Pair (7, 4): nodes {7, 4} + N(4) = {0, 2, 5, 6};
    # local 7->0, 4->1, 0->2, 2->3, 5->4, 6->5. Nothing reaches 7, so every
    # non-target node is unreachable from i and gets z = 0.
    # Edges: 4-0 (1,2), 4-2 (1,3), 4-5 (1,4), 4-6 (1,5), 0-2 (2,3).
    data = Data(edge_index=to_undirected(HAND), num_nodes=8)
    out = pair_subgraphs(data, torch.tensor([[7, 6], [4, 7]]))
    first = out[0]
    assert first.n_id.tolist() == [7, 4, 0, 2, 5, 6]
    assert first.z.tolist() == [1, 1, 0, 0, 0, 0]
    half = {(1, 2), (1, 3), (1, 4), (1, 5), (2, 3)}
    assert _edges(first) == half | {(b, a) for a, b in half}
    # Pair (6, 7): nodes {6, 7, 4}; local 6->0, 7->1, 4->2; one edge 6-4, and
    # node 7 (local 1) is isolated: num_nodes must still count it.
    second = out[1]
    assert second.n_id.tolist() == [6, 7, 4]
    assert second.num_nodes == 3
    assert _edges(second) == {(0, 2), (2, 0)}
    assert second.z.tolist() == [1, 1, 0]
    # two isolated targets: a 2-node subgraph without edges
    lone = pair_subgraphs(Data(edge_index=HAND, num_nodes=9), torch.tensor([[8], [7]]))[0]
    assert lone.num_nodes == 2 and lone.edge_index.size(1) == 0
    assert lone.n_id.tolist() == [8, 7] and lone.z.tolist() == [1, 1]


def test_targets_keep_local_zero_and_one():
    # MPRD's public code relabels through a sorted torch.unique, which would put
    # the two smallest global ids (0 and 1 here) at local 0 and 1. Every
    # subgraph here must keep i at 0 and j at 1 whatever the ids.
    pairs = torch.tensor([[4, 2, 6, 5, 3], [2, 4, 1, 0, 6]])
    out = pair_subgraphs(_hand_data(), pairs, num_hops=2)
    starts = out.ptr[:-1]
    assert out.n_id[starts].tolist() == pairs[0].tolist()
    assert out.n_id[starts + 1].tolist() == pairs[1].tolist()
    assert out.z[starts].tolist() == [1] * 5 and out.z[starts + 1].tolist() == [1] * 5
    assert out.pair_index.tolist() == [starts.tolist(), (starts + 1).tolist()]
    # global node 0 is a common neighbour of (4, 2) and must not be labelled 1
    first = out[0]
    assert first.z[first.n_id == 0].tolist() == [2]
    # the reversed pair is the mirror image: same nodes, labels unchanged
    second = out[1]
    assert second.n_id.tolist() == [2, 4] + first.n_id[2:].tolist()
    assert second.z.tolist() == first.z.tolist()


def _seal_reference(edge_index, num_nodes, i, j, num_hops):
    # PyG SEAL example's method, one pair at a time: k_hop_subgraph, drop the
    # target link, DRNL from scipy shortest paths (j removed for d_i, i for d_j).
    subset, sub, mapping, _ = k_hop_subgraph(
        [i, j], num_hops, edge_index, relabel_nodes=True, num_nodes=num_nodes
    )
    s, t = mapping.tolist()
    keep = ~(((sub[0] == s) & (sub[1] == t)) | ((sub[0] == t) & (sub[1] == s)))
    sub = sub[:, keep]
    n = subset.numel()
    adj = to_scipy_sparse_matrix(sub, num_nodes=n).tocsr()
    wo_t = [v for v in range(n) if v != t]
    wo_s = [v for v in range(n) if v != s]
    d_s = shortest_path(adj[wo_t][:, wo_t], directed=False, unweighted=True, indices=wo_t.index(s))
    d_t = shortest_path(adj[wo_s][:, wo_s], directed=False, unweighted=True, indices=wo_s.index(t))
    d_s, d_t = np.insert(d_s, t, 0.0), np.insert(d_t, s, 0.0)
    z = {}
    for v in range(n):
        if v in (s, t):
            z[int(subset[v])] = 1
        elif np.isinf(d_s[v]) or np.isinf(d_t[v]):
            z[int(subset[v])] = 0
        else:
            a, b = int(d_s[v]), int(d_t[v])
            d = a + b
            z[int(subset[v])] = 1 + min(a, b) + (d // 2) * (d // 2 + d % 2 - 1)
    glob = subset[sub]
    return set(subset.tolist()), set(map(tuple, glob.t().tolist())), z


@pytest.mark.parametrize("num_hops", [1, 2])
def test_khop_matches_seal_reference(num_hops):
    gen = torch.Generator().manual_seed(1)
    n = 60
    e = torch.randint(0, n, (2, 150), generator=gen)
    e = e[:, e[0] != e[1]]
    edge_index = to_undirected(e, num_nodes=n)
    pairs = torch.randint(0, n, (2, 60), generator=gen)
    pairs = pairs[:, pairs[0] != pairs[1]]
    # make sure some pairs are real links, so the target-link removal is exercised
    pairs = torch.cat([pairs, e[:, :10]], 1)
    out = pair_subgraphs(Data(edge_index=edge_index, num_nodes=n), pairs, num_hops)
    assert out.num_graphs == pairs.size(1)
    for p, graph in enumerate(out.to_data_list()):
        i, j = pairs[:, p].tolist()
        nodes, edges, z = _seal_reference(edge_index, n, i, j, num_hops)
        assert graph.n_id[:2].tolist() == [i, j]
        assert set(graph.n_id.tolist()) == nodes
        assert graph.n_id.unique().numel() == graph.n_id.numel()
        assert set(map(tuple, graph.n_id[graph.edge_index].t().tolist())) == edges
        assert dict(zip(graph.n_id.tolist(), graph.z.tolist(), strict=True)) == z


def test_chunking_gives_identical_batches():
    gen = torch.Generator().manual_seed(2)
    e = to_undirected(torch.randint(0, 40, (2, 100), generator=gen), num_nodes=40)
    pairs = torch.randint(0, 40, (2, 30), generator=gen)
    pairs = pairs[:, pairs[0] != pairs[1]]
    data = Data(edge_index=e, num_nodes=40)
    a = pair_subgraphs(data, pairs, 2)
    b = pair_subgraphs(data, pairs, 2, chunk_size=4)
    for key in ("edge_index", "z", "n_id", "pair_index", "batch", "ptr"):
        assert torch.equal(a[key], b[key]), key


def test_large_graph_fallback_gives_identical_batches(monkeypatch):
    # Graphs too large for the dense (pair, node) table use binary search;
    # shrink the table budget so this small graph takes that path.
    # the package re-exports the function under the module's name: fetch the module itself
    mod = importlib.import_module("reidgraph.graph.pair_subgraphs")

    gen = torch.Generator().manual_seed(5)
    e = to_undirected(torch.randint(0, 50, (2, 120), generator=gen), num_nodes=50)
    pairs = torch.randint(0, 50, (2, 40), generator=gen)
    links = e[:, e[0] != e[1]][:, :5]
    pairs = torch.cat([pairs[:, pairs[0] != pairs[1]], links], 1)
    data = Data(edge_index=e, num_nodes=50)
    for hops in (1, 2):
        a = pair_subgraphs(data, pairs, hops)
        monkeypatch.setattr(mod, "_TABLE_BUDGET", 50 * mod._MIN_TABLE_PAIRS - 1)
        b = pair_subgraphs(data, pairs, hops, chunk_size=16)
        monkeypatch.undo()
        for key in ("edge_index", "z", "n_id", "pair_index", "batch", "ptr"):
            assert torch.equal(a[key], b[key]), (hops, key)


def test_directed_input_and_self_loops_are_symmetrised():
    # one-way edges 0->1, 2->1 and a self-loop on 1 give the same subgraph as
    # the undirected simple graph 0-1-2
    d1 = Data(edge_index=torch.tensor([[0, 2, 1, 0], [1, 1, 1, 1]]), num_nodes=3)
    d2 = Data(edge_index=to_undirected(torch.tensor([[0, 2], [1, 1]])), num_nodes=3)
    a = pair_subgraphs(d1, torch.tensor([[0], [2]]))
    b = pair_subgraphs(d2, torch.tensor([[0], [2]]))
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.z, b.z)
    assert a.z.tolist() == [1, 1, 2]


def test_labels_features_and_concat():
    x = torch.arange(14, dtype=torch.float).view(7, 2)
    data = Data(x=x, edge_index=to_undirected(HAND))
    out = pair_subgraphs(data, torch.tensor([[4, 6], [2, 1]]), labels=[1.0, 0.0])
    assert out.y.tolist() == [1.0, 0.0]
    assert torch.equal(out.x, x[out.n_id])
    out = pair_subgraphs(data, torch.tensor([[4], [2]]), concat_drnl=3)
    # z = [1, 1, 2, 4, 3, 3, 0] clipped to [0, 2] -> classes 1, 1, 2, 2, 2, 2, 0
    assert out.x.shape == (7, 5)
    assert out.x[:, :3].argmax(1).tolist() == [1, 1, 2, 2, 2, 2, 0]
    assert torch.equal(out.x[:, 3:], x[out.n_id])
    # structure only: no data.x, the one-hot code alone
    out = pair_subgraphs(_hand_data(), torch.tensor([[4], [2]]), concat_drnl=16)
    assert out.x.shape == (7, 16)
    assert pair_subgraphs(_hand_data(), torch.tensor([[4], [2]])).x is None


def test_bool_labels_become_float():
    out = pair_subgraphs(_hand_data(), torch.tensor([[4], [2]]), labels=torch.tensor([True]))
    assert out.y.dtype == torch.float32 and out.y.tolist() == [1.0]


def test_mprd_from_graph_by_hand():
    # Directed kNN edges a -> b meaning a in NN(b) (PyG: neighbour -> centre):
    #   NN(4) = {0, 5, 2}, NN(2) = {0, 3}, plus 5->3 and 4->0 that Eq. 4 ignores
    #   (they are not star edges of a target).
    # Pair (4, 2): nodes {4, 2, 0, 5, 3}; local 4->0, 2->1, 0->2, 3->3, 5->4.
    # Star edges 4-0, 4-5, (4-2 = target link, removed), 2-0, 2-3.
    # DRNL: without 2, d_4: 0:1 5:1 3:inf; without 4, d_2: 0:1 3:1 5:inf
    #   z(0) = 2 (common neighbour), z(3) = z(5) = 0
    e = torch.tensor([[0, 5, 2, 0, 3, 5, 4], [4, 4, 4, 2, 2, 3, 0]])
    out = pair_subgraphs(
        Data(edge_index=e, num_nodes=7), torch.tensor([[4], [2]]), mode="mprd", k=None
    )
    assert out.n_id.tolist() == [4, 2, 0, 3, 5]
    assert out.z.tolist() == [1, 1, 2, 0, 0]
    half = {(0, 2), (0, 4), (1, 2), (1, 3)}
    assert _edges(out) == half | {(b, a) for a, b in half}


def _mprd_reference(x, i, j, k):
    # Eq. 4 written out: cosine top-k per target (self excluded), star edges.
    xn = x / x.norm(dim=1, keepdim=True)
    sim = xn @ xn.t()
    nn = {}
    for b in (i, j):
        order = [int(a) for a in torch.argsort(sim[b], descending=True) if int(a) != b]
        nn[b] = order[:k]
    nodes = {i, j} | set(nn[i]) | set(nn[j])
    edges = set()
    for b in (i, j):
        for a in nn[b]:
            if {a, b} != {i, j}:
                edges |= {(a, b), (b, a)}
    z = {}
    for v in nodes:
        if v in (i, j):
            z[v] = 1
        elif v in nn[i] and v in nn[j]:
            z[v] = 2  # d = (1, 1); any other node reaches only one target
        else:
            z[v] = 0
    return nodes, edges, z


def test_mprd_from_features_matches_reference():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, 8, generator=gen)
    pairs = torch.randint(0, 50, (2, 25), generator=gen)
    pairs = pairs[:, pairs[0] != pairs[1]]
    out = pair_subgraphs(Data(x=x), pairs, mode="mprd", k=5)
    assert torch.equal(out.x, x[out.n_id])
    for p, graph in enumerate(out.to_data_list()):
        i, j = pairs[:, p].tolist()
        nodes, edges, z = _mprd_reference(x, i, j, 5)
        assert graph.n_id[:2].tolist() == [i, j]
        assert set(graph.n_id.tolist()) == nodes
        assert set(map(tuple, graph.n_id[graph.edge_index].t().tolist())) == edges
        assert dict(zip(graph.n_id.tolist(), graph.z.tolist(), strict=True)) == z


def test_mprd_graph_equals_features_on_knn_graph():
    # A kNN graph built by brute force (neighbour -> centre) read with k=None
    # gives the same subgraphs as computing NN_k from the features.
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(30, 6, generator=gen)
    xn = x / x.norm(dim=1, keepdim=True)
    sim = xn @ xn.t()
    sim.fill_diagonal_(-2.0)
    nbr = sim.topk(4, dim=1).indices  # [30, 4]
    e = torch.stack([nbr.reshape(-1), torch.arange(30).repeat_interleave(4)])
    pairs = torch.tensor([[0, 5, 29, 7], [1, 3, 2, 28]])
    a = pair_subgraphs(Data(x=x, edge_index=e), pairs, mode="mprd", k=4)
    b = pair_subgraphs(Data(x=x, edge_index=e), pairs, mode="mprd", k=None)
    for key in ("edge_index", "z", "n_id", "ptr"):
        assert torch.equal(a[key], b[key]), key


def test_errors():
    data = _hand_data()
    ok = torch.tensor([[4], [2]])
    with pytest.raises(TypeError, match="'data' must be a torch_geometric.data.Data"):
        pair_subgraphs({"edge_index": HAND}, ok)
    with pytest.raises(ValueError, match=r"'pairs' must hold node ids in \[0, 6\]"):
        pair_subgraphs(data, torch.tensor([[4], [7]]))
    with pytest.raises(ValueError, match=r"'pairs' must hold node ids"):
        pair_subgraphs(data, torch.tensor([[-1], [2]]))
    with pytest.raises(ValueError, match=r"'pairs' must have shape \[2, P\]"):
        pair_subgraphs(data, torch.tensor([4, 2]))
    with pytest.raises(ValueError, match=r"'pairs' must have shape \[2, P\]"):
        pair_subgraphs(data, torch.tensor([[4, 2, 1]]))
    with pytest.raises(TypeError, match="'pairs' must hold integer node ids"):
        pair_subgraphs(data, torch.tensor([[4.0], [2.0]]))
    with pytest.raises(ValueError, match="at least one pair"):
        pair_subgraphs(data, torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="pairs node 3 with itself"):
        pair_subgraphs(data, torch.tensor([[4, 3], [2, 3]]))
    with pytest.raises(ValueError, match="needs 'data.edge_index', which is missing"):
        pair_subgraphs(Data(x=torch.randn(5, 2)), ok)
    with pytest.raises(ValueError, match=r"mode='mprd', k=None\) needs 'data.edge_index'"):
        pair_subgraphs(Data(x=torch.randn(5, 2)), ok, mode="mprd", k=None)
    with pytest.raises(ValueError, match="'num_hops' must be >= 1"):
        pair_subgraphs(data, ok, num_hops=0)
    with pytest.raises(TypeError, match="'num_hops' must be an int"):
        pair_subgraphs(data, ok, num_hops=1.0)
    with pytest.raises(ValueError, match="'num_hops' must be 1 for mode='mprd'"):
        pair_subgraphs(data, ok, num_hops=2, mode="mprd")
    with pytest.raises(ValueError, match="Could not resolve mode='seal'"):
        pair_subgraphs(data, ok, mode="seal")
    with pytest.raises(ValueError, match=r"computes NN_k from 'data.x', which is missing"):
        pair_subgraphs(data, ok, mode="mprd", k=3)
    with pytest.raises(ValueError, match="'k' must be <= 6"):
        pair_subgraphs(Data(x=torch.randn(7, 2)), ok, mode="mprd", k=7)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        pair_subgraphs(Data(x=torch.randn(7, 2)), ok, mode="mprd", k=0)
    with pytest.raises(ValueError, match="'labels' must have length 1"):
        pair_subgraphs(data, ok, labels=[1.0, 0.0])
    with pytest.raises(ValueError, match="'concat_drnl' must be >= 1"):
        pair_subgraphs(data, ok, concat_drnl=0)
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1"):
        pair_subgraphs(data, ok, chunk_size=0)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        pair_subgraphs(Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=1), ok)
    with pytest.raises(ValueError, match=r"'data.edge_index' must have shape \[2, E\]"):
        pair_subgraphs(Data(edge_index=torch.tensor([0, 1]), num_nodes=7), ok)
    with pytest.raises(TypeError, match="'data.edge_index' must hold integers"):
        pair_subgraphs(Data(edge_index=HAND.float(), num_nodes=7), ok)
    with pytest.raises(ValueError, match=r"'data.edge_index' must hold node ids in \[0, 6\]"):
        pair_subgraphs(Data(edge_index=HAND + 1, num_nodes=7), ok)
    with pytest.raises(ValueError, match="'data.x' must be two-dimensional"):
        pair_subgraphs(Data(x=torch.randn(7), num_nodes=7), ok, mode="mprd", k=2)
