"""Tests of the k-reciprocal kernels: sets (Eq. 2-3), encodings (Eq. 6, 9), sparse Jaccard.

Expected values come from hand-worked cases (reasoning in the comments) and
from a plain per-row numpy port of the published algorithms written here
(cluster-contrast ``compute_jaccard_distance`` and the Jaccard part of the
reference ``re_ranking``), never from the implementation itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse
import torch

import reidgraph.ops.k_reciprocal as kr
from reidgraph.ops import (
    gaussian_encoding,
    jaccard_distance,
    k_reciprocal_expansion,
    k_reciprocal_neighbors,
    list_lengths,
    local_query_expansion,
)


# --------------------------------------------------------------------------- numpy port
def _port_jaccard(x: np.ndarray, k1: int, k2: int, convention: str) -> np.ndarray:
    """Dense single-set Jaccard distance, one row at a time (as the published code)."""
    n = len(x)
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if convention == "re_ranking":
        sq = sq.astype(np.float32)
        od = (sq / sq.max(axis=0)).T  # column max, transposed (symmetric here)
        rank = np.argsort(od, axis=1)
        n_fwd = k1 + 1
    else:  # cluster-contrast: search k1 entries (self included), raw squared distances
        od = sq
        rank = np.argsort(sq, axis=1)[:, :k1]
        n_fwd = k1
    kh = int(np.around(k1 / 2.0))

    def recip(i: int, length: int) -> np.ndarray:
        fwd = rank[i, :length]
        back = rank[fwd, :length]
        return fwd[np.any(back == i, axis=1)]

    v = np.zeros((n, n), np.float32)
    for i in range(n):
        r = recip(i, n_fwd)
        members = list(r)
        for cand in r:
            rc = recip(cand, kh + 1)
            if len(np.intersect1d(rc, r)) > 2.0 / 3 * len(rc):
                members.extend(rc)
        members = np.unique(np.asarray(members, dtype=np.int64))
        d = od[i, members]
        w = np.exp(-(d - d.min()))
        v[i, members] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    inv = [np.nonzero(v[:, c])[0] for c in range(n)]
    jac = np.ones((n, n), np.float32)
    for i in range(n):
        t = np.zeros(n, np.float32)
        for c in np.nonzero(v[i])[0]:
            t[inv[c]] += np.minimum(v[i, c], v[inv[c], c])
        jac[i] = 1 - t / (2 - t)
    return np.maximum(jac, 0)


def _clusters(n: int, d: int, seed: int, spread: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 8), d))
    return centres[rng.integers(0, len(centres), n)] + spread * rng.normal(size=(n, d))


def _dense(sp: scipy.sparse.csr_matrix) -> np.ndarray:
    """Missing entries are distance 1."""
    coo = sp.tocoo()
    out = np.ones(sp.shape, np.float32)
    out[coo.row, coo.col] = coo.data
    return out


# --------------------------------------------------------------------------- sets by hand
# Ranked lists of 8 items, self first (re_ranking convention, k1 = 6: lists of
# k1 + 1 = 7; the 1/2 k1 sets use round(3) + 1 = 4 entries).
HAND_RANK = torch.tensor(
    [
        [0, 1, 2, 3, 4, 5, 6],
        [1, 0, 2, 7, 3, 4, 5],
        [2, 1, 0, 3, 4, 5, 6],
        [3, 0, 2, 1, 4, 5, 6],
        [4, 0, 1, 2, 3, 5, 6],
        [5, 0, 1, 2, 3, 4, 6],
        [6, 0, 1, 2, 3, 4, 5],
        [7, 1, 0, 2, 3, 4, 5],
    ]
)


def test_list_lengths():
    # round half to even, as numpy.around: 2.5 -> 2, 3.5 -> 4, 0.5 -> 0
    assert list_lengths(20) == (21, 11)
    assert list_lengths(30, "cluster_contrast") == (30, 16)
    assert list_lengths(5) == (6, 3)
    assert list_lengths(7) == (8, 5)
    assert list_lengths(1, "cluster_contrast") == (1, 1)


def test_k_reciprocal_neighbors_by_hand():
    # R(p, 6): j in list(p) with p in list(j).
    # Row 6: list [6,0,1,2,3,4,5]; list(1) = [1,0,2,7,3,4,5] lacks 6 -> only 1 fails.
    # Row 7: list [7,1,0,2,3,4,5]; only list(1) contains 7.
    mask = k_reciprocal_neighbors(HAND_RANK, 6)
    assert mask[6].tolist() == [True, True, False, True, True, True, True]
    assert mask[7].tolist() == [True, True, False, False, False, False, False]
    assert mask[0].all()  # every other list contains 0, and 7 is not in list(0)


def test_k_reciprocal_expansion_by_hand():
    # 1/2 k1 sets on the first 4 entries: R(0,3) = R(2,3) = {0,1,2,3},
    # R(1,3) = {0,1,2,7}, R(3,3) = {0,2,3}, R(4,3) = {4}, R(5,3) = {5},
    # R(6,3) = {6}, R(7,3) = {1,7}.
    # Row 0: R(0,6) = {0..6}; candidate 1 brings R(1,3): |{0,1,2}| = 3 > 2/3*4
    #        -> 7 is added: R* = {0..7}. Rows 2..5 likewise.
    # Row 1: R(1,6) = {0,1,2,3,4,5,7}; every candidate's half set is inside.
    # Row 6: R(6,6) = {0,2,3,4,5,6}; candidate 0 brings R(0,3) = {0,1,2,3}:
    #        |{0,2,3}| = 3 > 8/3 -> 1 is added; 7 is not (1 is no candidate).
    # Row 7: R(7,6) = {1,7}; candidate 1 brings R(1,3): |{1,7}| = 2, not > 8/3
    #        -> rejected: R* = {1,7}.
    out = k_reciprocal_expansion(HAND_RANK, 6).to_dense()
    expected = torch.ones(8, 8)
    expected[1, 6] = 0
    expected[6, 7] = 0
    expected[7] = 0
    expected[7, 1] = expected[7, 7] = 1
    assert torch.equal(out, expected)


def test_expansion_cluster_contrast_uses_k1_entries():
    # cluster-contrast searches k1 = 3 entries: lists [0,1,2] for row 0, so
    # R(0) = {0,1,2} (both lists contain 0); the half sets use round(1.5)+1 = 3
    # entries as well, and everything is inside -> R* = {0,1,2}. With the
    # re_ranking convention the 4th entry (3) is checked too: list(3)
    # = [3,2,1,0] contains 0 -> 3 joins.
    rank = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 0, 3], [3, 2, 1, 0]])
    cc = k_reciprocal_expansion(rank, 3, convention="cluster_contrast").to_dense()
    rr = k_reciprocal_expansion(rank, 3).to_dense()
    assert cc[0].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert rr[0].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_gaussian_encoding_by_hand():
    # Row 0 stores d = 0, 1, 2: weights e^0, e^-1, e^-2 over their sum.
    d = torch.sparse_csr_tensor([0, 3, 4], [0, 1, 3, 2], [0.0, 1.0, 2.0, 5.0], (2, 4))
    v = gaussian_encoding(d).to_dense()
    z = 1 + math.exp(-1) + math.exp(-2)
    assert v[0].tolist() == pytest.approx([1 / z, math.exp(-1) / z, 0.0, math.exp(-2) / z])
    assert v[1].tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0])  # one member: weight 1


def test_local_query_expansion_by_hand():
    # V'_p = mean of V over the first k2 = 3 entries of rank[p].
    v = torch.tensor(
        [[0.5, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.2, 0.0, 0.8, 0.0], [0.0, 0.0, 0.0, 1.0]]
    ).to_sparse_csr()
    rank = torch.tensor([[0, 1, 2], [1, 0, 3], [2, 0, 1], [3, 2, 1]])
    out = local_query_expansion(v, rank, 3).to_dense()
    expected = [
        [0.7 / 3, 1.5 / 3, 0.8 / 3, 0.0],  # rows 0, 1, 2
        [0.5 / 3, 1.5 / 3, 0.0, 1.0 / 3],  # rows 1, 0, 3
        [0.7 / 3, 1.5 / 3, 0.8 / 3, 0.0],  # rows 2, 0, 1
        [0.2 / 3, 1.0 / 3, 0.8 / 3, 1.0 / 3],  # rows 3, 2, 1
    ]
    assert out.tolist() == [pytest.approx(row) for row in expected]
    assert local_query_expansion(v, rank, 1) is v  # k2 = 1: no expansion, as the reference
    # Rectangular encodings [3, 5] (columns need not be the rows' items).
    w = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0], [0.5, 0.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0, 0, 0]])
    out = local_query_expansion(w.to_sparse_csr(), torch.tensor([[0, 1], [1, 2], [2, 0]]), 2)
    assert out.to_dense().tolist() == [
        pytest.approx([0.25, 0.0, 0.25, 0.0, 0.5]),
        pytest.approx([0.25, 0.5, 0.25, 0.0, 0.0]),
        pytest.approx([0.0, 0.5, 0.0, 0.0, 0.5]),
    ]


def test_jaccard_distance_by_hand():
    # 1-D points in two groups; cluster-contrast, k1 = 2: lists of 2 (self +
    # nearest): [0,1], [1,0], [2,1], [3,4], [4,3], [5,4].
    # R* = {0,1}, {0,1}, {2}, {3,4}, {3,4}, {5} (half lists are the same).
    # V_0 = [1, e]/Z, V_1 = [e, 1]/Z with e = exp(-0.01), Z = 1 + e; V_2 = [1] at 2.
    # Query expansion k2 = 2: V'_0 = V'_1 = (V_0 + V_1)/2 = [1/2, 1/2];
    # V'_2 = (V_2 + V_1)/2 = {0: e/2Z, 1: 1/2Z, 2: 1/2}.
    # t(0,1) = 1 -> d = 0 (stored zero); t(0,2) = (e + 1)/2Z = 1/2 -> d = 1 - 0.5/1.5 = 2/3.
    # Same for the second group; nothing is shared across groups.
    x = torch.tensor([[0.0], [0.1], [0.3], [5.0], [5.2], [5.5]])
    d = jaccard_distance(x, k1=2, k2=2)
    assert isinstance(d, scipy.sparse.csr_matrix)
    assert d.shape == (6, 6) and d.nnz == 18 and d.dtype == np.float32
    block = np.array([[0, 0, 2 / 3], [0, 0, 2 / 3], [2 / 3, 2 / 3, 0]])
    np.testing.assert_allclose(d[:3, :3].toarray(), block, atol=1e-6)
    np.testing.assert_allclose(d[3:, 3:].toarray(), block, atol=1e-6)
    assert d[:3, 3:].nnz == 0 and d[3:, :3].nnz == 0
    # Without query expansion: t(0,1) = 2e/Z, d = 1 - t/(2 - t).
    e = math.exp(-0.01)
    t = 2 * e / (1 + e)
    d1 = jaccard_distance(x, k1=2, k2=1)
    assert d1[0, 1] == pytest.approx(1 - t / (2 - t), abs=1e-6)
    assert d1.nnz == 10 and d1[0, 2] == 0 and 2 not in d1[0].indices


def test_explicit_zeros_kept_and_dbscan_precomputed():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    # Items 0-1 and 2-3 are exact duplicates: their encodings are identical,
    # so the Jaccard distance is exactly 0 and must stay stored.
    x = torch.tensor([[0.0], [0.0], [0.05], [0.05], [9.0], [9.1], [9.3], [20.0]])
    d = jaccard_distance(x, k1=3, k2=1)
    assert (d.data == 0).sum() >= 2
    assert d.nnz == np.count_nonzero(d.toarray()) + int((d.data == 0).sum())
    labels = sklearn_cluster.DBSCAN(eps=0.6, min_samples=2, metric="precomputed").fit_predict(d)
    # the two groups cluster; item 7 (far away, R* = {7}) is noise
    assert labels[0] == labels[1] == labels[2] == labels[3] != -1
    assert labels[4] == labels[5] == labels[6] != -1 and labels[4] != labels[0]
    assert labels[7] == -1


@pytest.mark.parametrize("k1,k2", [(30, 6), (20, 6), (4, 1), (5, 5)])
def test_jaccard_cluster_contrast_matches_port(k1, k2):
    x = _clusters(240, 12, seed=k1)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = _port_jaccard(x, k1, k2, "cluster_contrast")
    got = jaccard_distance(torch.tensor(x), k1=k1, k2=k2)
    assert np.abs(_dense(got) - expected).max() <= 1e-5
    # stored exactly where the port's distance is below 1
    assert np.array_equal(_dense(got) < 1, expected < 1)


@pytest.mark.parametrize("k1,k2", [(20, 6), (7, 2)])
def test_jaccard_re_ranking_matches_port(k1, k2):
    x = _clusters(200, 10, seed=3)
    expected = _port_jaccard(x, k1, k2, "re_ranking")
    got = jaccard_distance(torch.tensor(x), k1=k1, k2=k2, convention="re_ranking")
    assert np.abs(_dense(got) - expected).max() <= 1e-5


def test_jaccard_chunked_paths_match_port(monkeypatch):
    # Tiny budgets force many bands, pair chunks and Jaccard blocks.
    monkeypatch.setattr(kr, "_PAIR_BUDGET", 97)
    monkeypatch.setattr(kr, "_ROW_CHUNK", 7)
    x = _clusters(120, 8, seed=5)
    expected = _port_jaccard(x, 10, 4, "re_ranking")
    got = jaccard_distance(
        torch.tensor(x), 10, 4, convention="re_ranking", max_block_bytes=120 * 8 * 5
    )
    assert np.abs(_dense(got) - expected).max() <= 1e-5


def test_jaccard_cosine_and_torch_output():
    x = _clusters(150, 8, seed=7) * 3.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = _port_jaccard(xn, 12, 3, "cluster_contrast")
    got = jaccard_distance(torch.tensor(x, dtype=torch.float32), 12, 3, metric="cosine")
    assert np.abs(_dense(got) - expected).max() <= 1e-5
    t = jaccard_distance(torch.tensor(xn), 12, 3, output="torch")
    assert t.layout == torch.sparse_csr
    np.testing.assert_allclose(t.to_dense().numpy(), got.toarray(), atol=1e-6)


def test_jaccard_precomputed_rank():
    x = _clusters(160, 8, seed=11)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    rank = np.argsort(sq, axis=1)[:, :15]  # more columns than the k1 = 12 needed
    expected = _port_jaccard(x, 12, 6, "cluster_contrast")
    got = jaccard_distance(torch.tensor(x), 12, 6, rank=torch.from_numpy(rank))
    assert np.abs(_dense(got) - expected).max() <= 1e-5


@pytest.mark.gpu
def test_jaccard_cuda_matches_port():
    x = _clusters(200, 8, seed=13)
    expected = _port_jaccard(x, 20, 6, "cluster_contrast")
    got = jaccard_distance(torch.tensor(x, device="cuda"), 20, 6)
    assert np.abs(_dense(got) - expected).max() <= 1e-5


# --------------------------------------------------------------------------- validation
def test_validation_errors():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="'k1' must leave room"):
        jaccard_distance(x, k1=11)
    with pytest.raises(ValueError, match=r"k1 < N"):
        jaccard_distance(x, k1=10, k2=1, convention="re_ranking")
    with pytest.raises(ValueError, match=r"'k2' must be <= 4 \(k2 <= k1\)"):
        jaccard_distance(x, k1=4, k2=5)
    with pytest.raises(ValueError, match="'k1' must be >= 1"):
        jaccard_distance(x, k1=0)
    with pytest.raises(TypeError, match="'k2' must be an int"):
        jaccard_distance(x, k1=4, k2=2.0)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="'x' must contain only finite values, found 1 NaN"):
        jaccard_distance(bad, k1=3, k2=1)
    with pytest.raises(ValueError, match="'x' must have at least one row"):
        jaccard_distance(torch.empty(0, 3), k1=1, k2=1)
    with pytest.raises(ValueError, match="Could not resolve convention='zhong'"):
        jaccard_distance(x, k1=3, k2=1, convention="zhong")
    with pytest.raises(ValueError, match="Could not resolve metric='ip'"):
        jaccard_distance(x, k1=3, k2=1, metric="ip")
    with pytest.raises(ValueError, match="Could not resolve output='dense'"):
        jaccard_distance(x, k1=3, k2=1, output="dense")
    with pytest.raises(ValueError, match="precision='fp16' needs CUDA"):
        jaccard_distance(x, k1=3, k2=1, precision="fp16")
    with pytest.raises(ValueError, match="all distances of row 0 are 0"):
        jaccard_distance(torch.ones(4, 2), k1=2, k2=1, convention="re_ranking")
    rank = torch.arange(10).view(10, 1).repeat(1, 4)
    with pytest.raises(ValueError, match="only with convention='cluster_contrast'"):
        jaccard_distance(x, k1=3, k2=1, convention="re_ranking", rank=rank)
    with pytest.raises(ValueError, match="'rank' must have one row per row of 'x'"):
        jaccard_distance(x[:9], k1=3, k2=1, rank=rank)


def test_rank_validation_errors():
    with pytest.raises(ValueError, match="'rank' must be two-dimensional"):
        k_reciprocal_neighbors(torch.arange(4), 1)
    with pytest.raises(TypeError, match="'rank' must hold integer indices"):
        k_reciprocal_neighbors(torch.zeros(3, 3), 1)
    with pytest.raises(ValueError, match=r"at least 3 columns"):
        k_reciprocal_neighbors(torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"indices in \[0, 2\).*found values in \[-1, 1\]"):
        k_reciprocal_expansion(torch.tensor([[0, 1], [1, -1]]), 1)
    v = torch.eye(3).to_sparse_csr()
    with pytest.raises(TypeError, match="'v' must be a torch sparse CSR tensor"):
        local_query_expansion(torch.eye(3), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="'rank' must have one row per row of 'v'"):
        local_query_expansion(v, torch.zeros(2, 2, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="'distance' must be a torch sparse CSR tensor"):
        gaussian_encoding(torch.eye(3))
    nan = torch.sparse_csr_tensor([0, 1], [0], [float("nan")], (1, 1))
    with pytest.raises(ValueError, match="'distance' must contain only finite values"):
        gaussian_encoding(nan)
