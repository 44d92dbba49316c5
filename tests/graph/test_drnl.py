"""Tests for reidgraph.graph.drnl: DRNL hash, batched labels, one-hot codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from reidgraph.graph.drnl import bfs_distances, drnl_hash, drnl_node_labels, drnl_one_hot


def test_drnl_hash_by_hand():
    # z = 1 + min(a, b) + (d // 2) * (d // 2 + d % 2 - 1), d = a + b
    # (1,1): d=2 -> 1 + 1 + 1*(1+0-1) = 2
    # (1,2): d=3 -> 1 + 1 + 1*(1+1-1) = 3     (2,1) -> 3
    # (1,3): d=4 -> 1 + 1 + 2*(2+0-1) = 4
    # (2,2): d=4 -> 1 + 2 + 2*(2+0-1) = 5
    # (1,4): d=5 -> 1 + 1 + 2*(2+1-1) = 6
    # (2,3): d=5 -> 1 + 2 + 2*(2+1-1) = 7
    # (3,3): d=6 -> 1 + 3 + 3*(3+0-1) = 10
    # unreachable on either side -> 0
    a = torch.tensor([1, 1, 2, 1, 2, 1, 2, 3, -1, 2])
    b = torch.tensor([1, 2, 1, 3, 2, 4, 3, 3, 1, -1])
    assert drnl_hash(a, b).tolist() == [2, 3, 3, 4, 5, 6, 7, 10, 0, 0]


def test_drnl_hash_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        drnl_hash(torch.tensor([1, 2]), torch.tensor([1]))


def test_bfs_distances_blocked():
    # path 0 - 1 - 2 - 3 and a shortcut 0 - 4 - 3; source 0, node 4 blocked:
    # 1 -> 1, 2 -> 2, 3 -> 3 (the shortcut is gone), 4 -> -1, 5 isolated -> -1
    e = torch.tensor([[0, 1, 2, 0, 4], [1, 2, 3, 4, 3]])
    e = torch.cat([e, e.flip(0)], 1)
    src = torch.tensor([True, False, False, False, False, False])
    blocked = torch.tensor([False, False, False, False, True, False])
    assert bfs_distances(e, src, blocked).tolist() == [0, 1, 2, 3, -1, -1]
    # without blocking, 3 is reached through 4 in two steps
    assert bfs_distances(e, src).tolist() == [0, 1, 2, 2, 1, -1]


def test_bfs_distances_unsorted_edges_and_errors():
    # same path 0 - 1 - 2 - 3 given in scrambled order
    e = torch.tensor([[2, 0, 3, 1, 1, 2], [1, 1, 2, 0, 2, 3]])
    src = torch.tensor([False, False, False, True])
    assert bfs_distances(e, src).tolist() == [3, 2, 1, 0]
    with pytest.raises(TypeError, match="'source_mask' must be a one-dimensional bool"):
        bfs_distances(e, torch.tensor([0, 0, 0, 1]))
    with pytest.raises(ValueError, match="'blocked_mask' must have length 4"):
        bfs_distances(e, src, torch.tensor([True]))
    with pytest.raises(ValueError, match="'edge_index' must hold node ids"):
        bfs_distances(e, src[:3])


def test_drnl_node_labels_hand_graph():
    # Graph on 7 nodes, target pair (i, j) = (4, 2):
    #   4-2 (target link), 4-0, 0-2, 4-5, 2-1, 2-3, 5-3, 3-1, 4-6
    # d_i = distance to 4 with node 2 removed (edges 4-0, 4-5, 5-3, 3-1, 4-6):
    #   0:1  5:1  6:1  3:2  1:3
    # d_j = distance to 2 with node 4 removed (edges 0-2, 2-1, 2-3, 5-3, 3-1):
    #   0:1  1:1  3:1  5:2  6:unreachable
    # z: 0 (1,1)->2   1 (3,1)->4   3 (2,1)->3   5 (1,2)->3   6 -> 0   targets -> 1
    e = torch.tensor([[4, 4, 0, 4, 2, 2, 5, 3, 4], [2, 0, 2, 5, 1, 3, 3, 1, 6]])
    z = drnl_node_labels(e, torch.tensor([[4], [2]]), num_nodes=7)
    assert z.tolist() == [2, 4, 1, 3, 1, 3, 0]


def test_drnl_node_labels_batched_matches_scipy():
    # Disjoint union of random graphs, one pair per graph, against scipy's
    # shortest paths computed per graph the way PyG's SEAL example does.
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    edges, pairs, sizes, expected, off = [], [], [], [], 0
    for _ in range(12):
        n = int(rng.integers(4, 12))
        m = int(rng.integers(n - 1, 3 * n))
        e = torch.randint(0, n, (2, m), generator=gen)
        e = e[:, e[0] != e[1]]
        i, j = rng.choice(n, 2, replace=False)
        adj = csr_matrix((np.ones(e.size(1)), (e[0].numpy(), e[1].numpy())), shape=(n, n))
        keep_i = [v for v in range(n) if v != j]
        keep_j = [v for v in range(n) if v != i]
        di = shortest_path(
            adj[keep_i][:, keep_i], directed=False, unweighted=True, indices=keep_i.index(i)
        )
        dj = shortest_path(
            adj[keep_j][:, keep_j], directed=False, unweighted=True, indices=keep_j.index(j)
        )
        di = np.insert(di, j, np.inf)
        dj = np.insert(dj, i, np.inf)
        z = []
        for v in range(n):
            if v in (i, j):
                z.append(1)
            elif np.isinf(di[v]) or np.isinf(dj[v]):
                z.append(0)
            else:
                a, b = int(di[v]), int(dj[v])
                d = a + b
                z.append(1 + min(a, b) + (d // 2) * (d // 2 + d % 2 - 1))
        expected += z
        edges.append(e + off)
        pairs.append([i + off, j + off])
        sizes.append(n)
        off += n
    edge_index = torch.cat(edges, 1)
    pair_index = torch.tensor(pairs).t()
    batch = torch.repeat_interleave(torch.arange(12), torch.tensor(sizes))
    z = drnl_node_labels(edge_index, pair_index, num_nodes=off, batch=batch)
    assert z.tolist() == expected


def test_drnl_node_labels_batch_check():
    # two graphs {0,1,2} and {3,4,5}, one pair each
    e = torch.tensor([[0, 1, 3, 4], [1, 2, 4, 5]])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    z = drnl_node_labels(e, torch.tensor([[0, 5], [2, 3]]), num_nodes=6, batch=batch)
    # graph 0: 1 has (1,1) -> 2; graph 1: 4 has (1,1) -> 2
    assert z.tolist() == [1, 2, 1, 1, 2, 1]
    with pytest.raises(ValueError, match="edges between different graphs"):
        drnl_node_labels(torch.tensor([[2], [3]]), torch.tensor([[0, 5], [2, 3]]), 6, batch)
    with pytest.raises(ValueError, match="exactly one target pair"):
        drnl_node_labels(e, torch.tensor([[0], [2]]), 6, batch)
    with pytest.raises(ValueError, match="different graphs"):
        drnl_node_labels(e, torch.tensor([[0, 1], [3, 4]]), 6, batch)
    with pytest.raises(ValueError, match="'batch' must have shape"):
        drnl_node_labels(e, torch.tensor([[0, 5], [2, 3]]), 6, batch[:5])


def test_drnl_node_labels_errors():
    e = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"'pair_index' must have shape \[2, P\]"):
        drnl_node_labels(e, torch.tensor([0, 2]), 3)
    with pytest.raises(TypeError, match="'pair_index' must hold integers"):
        drnl_node_labels(e, torch.tensor([[0.0], [2.0]]), 3)
    with pytest.raises(ValueError, match=r"node ids in \[0, 2\]"):
        drnl_node_labels(e, torch.tensor([[0], [3]]), 3)
    with pytest.raises(ValueError, match="with itself"):
        drnl_node_labels(e, torch.tensor([[1], [1]]), 3)
    with pytest.raises(ValueError, match="more than one target slot"):
        drnl_node_labels(e, torch.tensor([[0, 0], [1, 2]]), 3)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\]"):
        drnl_node_labels(torch.tensor([0, 1]), torch.tensor([[0], [2]]), 3)
    with pytest.raises(TypeError, match="'edge_index' must hold integers"):
        drnl_node_labels(e.float(), torch.tensor([[0], [2]]), 3)
    with pytest.raises(ValueError, match="'edge_index' must hold node ids"):
        drnl_node_labels(e + 5, torch.tensor([[0], [2]]), 3)
    with pytest.raises(ValueError, match="'num_nodes' must be >= 1"):
        drnl_node_labels(e, torch.tensor([[0], [2]]), 0)


def test_drnl_one_hot_clips():
    # labels 0, 1, 2, 3 and 20 with C = 3: 3 and 20 are clipped to class 2
    out = drnl_one_hot(torch.tensor([0, 1, 2, 3, 20]), num_classes=3)
    assert out.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]]
    assert out.dtype == torch.float32
    assert drnl_one_hot(torch.tensor([5])).shape == (1, 16)  # MPRD default C = 16


def test_drnl_one_hot_errors():
    with pytest.raises(ValueError, match="non-negative"):
        drnl_one_hot(torch.tensor([0, -1]))
    with pytest.raises(TypeError, match="integer DRNL labels"):
        drnl_one_hot(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="one-dimensional"):
        drnl_one_hot(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="'num_classes' must be >= 1"):
        drnl_one_hot(torch.tensor([0]), num_classes=0)
