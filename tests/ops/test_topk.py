"""Tests for reidgraph.ops.topk against hand-computed and brute-force neighbours."""

from __future__ import annotations

import importlib
import logging
import sys

import numpy as np
import pytest
import torch

from reidgraph.ops import _faiss, topk

topk_module = importlib.import_module("reidgraph.ops.topk")  # the module, not the function

BACKENDS = ["torch", "faiss"]
METRICS = ["cosine", "ip", "euclidean"]
needs_faiss = pytest.mark.skipif(_faiss.load_faiss() is None, reason="faiss not installed")


def brute_force_scores(q: np.ndarray, db: np.ndarray, metric: str) -> np.ndarray:
    """Every query-database score by a plain loop over queries, float64, from the definitions."""
    q, db = q.astype(np.float64), db.astype(np.float64)
    out = np.empty((len(q), len(db)))
    for i in range(len(q)):
        if metric == "euclidean":
            out[i] = ((db - q[i]) ** 2).sum(axis=1)
        elif metric == "cosine":
            out[i] = db @ q[i] / (np.linalg.norm(db, axis=1) * np.linalg.norm(q[i]))
        else:
            out[i] = db @ q[i]
    return out


def assert_true_topk(scores, index, ref: np.ndarray, k: int, metric: str, tol: float = 1e-4):
    """Checks that position j of each row holds a database vector whose *reference* score is
    the j-th best reference score: exact up to ties, without trusting the returned scores."""
    scores, index = scores.cpu().numpy(), index.cpu().numpy()
    assert index.shape == scores.shape == (ref.shape[0], k)
    order = np.sort(ref, axis=1)
    best = order[:, :k] if metric == "euclidean" else order[:, ::-1][:, :k]
    assert (np.sort(index, axis=1)[:, 1:] != np.sort(index, axis=1)[:, :-1]).all()  # distinct
    np.testing.assert_allclose(np.take_along_axis(ref, index, axis=1), best, atol=tol, rtol=tol)
    np.testing.assert_allclose(scores, best, atol=tol, rtol=tol)


def untied(ref_sorted: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Mask of top-k positions whose reference score differs from both neighbours by > tol."""
    gap = np.abs(np.diff(ref_sorted, axis=1)) > tol
    left = np.concatenate([np.ones((len(gap), 1), bool), gap], axis=1)
    right = np.concatenate([gap, np.ones((len(gap), 1), bool)], axis=1)
    return left & right


# --------------------------------------------------------------------------------------
# Hand-built 5-point cases
# --------------------------------------------------------------------------------------

# p0=(0,0) p1=(1,0) p2=(0,3) p3=(4,0) p4=(1,2). Squared distances:
#   d01 = 1            d02 = 9             d03 = 16            d04 = 1+4 = 5
#   d12 = 1+9 = 10     d13 = 9             d14 = 0+4 = 4
#   d23 = 16+9 = 25    d24 = 1+1 = 2       d34 = 9+4 = 13
# rows (self = 0): p0 [0,1,9,16,5] -> 0,1,4,2,3   p1 [1,0,10,9,4] -> 1,0,4,3,2
#                  p2 [9,10,0,25,2] -> 2,4,0,1,3  p3 [16,9,25,0,13] -> 3,1,4,0,2
#                  p4 [5,4,2,13,0] -> 4,2,1,0,3
EUCLID_POINTS = [[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [4.0, 0.0], [1.0, 2.0]]
EUCLID_INDEX = [[0, 1, 4, 2, 3], [1, 0, 4, 3, 2], [2, 4, 0, 1, 3], [3, 1, 4, 0, 2], [4, 2, 1, 0, 3]]
EUCLID_SCORES = [[0, 1, 5, 9, 16], [0, 1, 4, 9, 10], [0, 2, 9, 10, 25], [0, 9, 13, 16, 25],
                 [0, 2, 4, 5, 13]]  # fmt: skip

# q0=(1,0) q1=(3,4) q2=(0,2) q3=(-3,0) q4=(4,3); norms 1, 5, 2, 3, 5. Dot products:
#   q0.q1 = 3   q0.q2 = 0   q0.q3 = -3   q0.q4 = 4
#   q1.q2 = 8   q1.q3 = -9  q1.q4 = 24   q2.q3 = 0   q2.q4 = 6   q3.q4 = -12
#   self: 1, 25, 4, 9, 25
# cosine = dot / (|a||b|): c01 = 3/5 = .6, c04 = 4/5 = .8, c12 = 8/10 = .8, c13 = -9/15 = -.6,
#   c14 = 24/25 = .96, c24 = 6/10 = .6, c34 = -12/15 = -.8, c02 = c23 = 0, c03 = -1
# top-3 cosine: q0 [1,.6,0,-1,.8] -> 0,4,1   q1 [.6,1,.8,-.6,.96] -> 1,4,2
#               q2 [0,.8,1,0,.6] -> 2,1,4    q3 [-1,-.6,0,1,-.8] -> 3,2,1
#               q4 [.8,.96,.6,-.8,1] -> 4,1,0
# top-3 ip:     q0 [1,3,0,-3,4] -> 4,1,0 (self is NOT first under "ip")
#               q1 [3,25,8,-9,24] -> 1,4,2   q2 [0,8,4,0,6] -> 1,4,2
#               q3 [-3,-9,0,9,-12] -> 3,2,0  q4 [4,24,6,-12,25] -> 4,1,2
ANGLE_POINTS = [[1.0, 0.0], [3.0, 4.0], [0.0, 2.0], [-3.0, 0.0], [4.0, 3.0]]
COS_INDEX = [[0, 4, 1], [1, 4, 2], [2, 1, 4], [3, 2, 1], [4, 1, 0]]
COS_SCORES = [[1, 0.8, 0.6], [1, 0.96, 0.8], [1, 0.8, 0.6], [1, 0, -0.6], [1, 0.96, 0.8]]
IP_INDEX = [[4, 1, 0], [1, 4, 2], [1, 4, 2], [3, 2, 0], [4, 1, 2]]
IP_SCORES = [[4, 3, 1], [25, 24, 8], [8, 6, 4], [9, 0, -3], [25, 24, 6]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_built_euclidean(backend):
    scores, index = topk(torch.tensor(EUCLID_POINTS), 5, metric="euclidean", backend=backend)
    assert index.dtype == torch.int64
    assert index.tolist() == EUCLID_INDEX
    assert torch.allclose(scores, torch.tensor(EUCLID_SCORES, dtype=torch.float32), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "metric,exp_index,exp_scores",
    [("cosine", COS_INDEX, COS_SCORES), ("ip", IP_INDEX, IP_SCORES)],
)
def test_hand_built_angles(backend, metric, exp_index, exp_scores):
    scores, index = topk(torch.tensor(ANGLE_POINTS), 3, metric=metric, backend=backend)
    assert index.tolist() == exp_index
    assert torch.allclose(scores, torch.tensor(exp_scores, dtype=torch.float32), atol=1e-5)


def test_hand_built_separate_database():
    # query (1,1) against database p0..p4 above: squared distances 2, 1, 5, 10, 1 -> p1/p4 tie
    # at 1, then p0 at 2. Query (4,1): 17, 10, 20, 1, 10 -> p3 first.
    q = torch.tensor([[1.0, 1.0], [4.0, 1.0]])
    scores, index = topk(q, 3, torch.tensor(EUCLID_POINTS), metric="euclidean", backend="torch")
    assert sorted(index[0, :2].tolist()) == [1, 4] and index[0, 2].item() == 0
    assert scores[0].tolist() == [1.0, 1.0, 2.0]
    assert index[1, 0].item() == 3 and scores[1, 0].item() == 1.0


# --------------------------------------------------------------------------------------
# Brute-force agreement on random data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(120, 16, generator=gen), torch.randn(90, 16, generator=gen) * 2 + 0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("self_mode", [True, False])
def test_brute_force_agreement(data, backend, metric, self_mode):
    q, db = data
    k = 9
    scores, index = topk(q, k, None if self_mode else db, metric=metric, backend=backend)
    ref = brute_force_scores(q.numpy(), (q if self_mode else db).numpy(), metric)
    assert_true_topk(scores, index, ref, k, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_tiny_budgets_equal_unchunked(data, metric):
    q, db = data
    full_s, full_i = topk(q, 12, db, metric=metric, backend="torch")
    # the whole 120 x 90 matrix fits in the default block; these force 2-D tiling
    for kwargs in (
        {"max_block_bytes": 4},  # one score per block
        {"max_block_bytes": 7 * 11 * 4},
        {"chunk_size": 13, "col_chunk_size": 5},  # db blocks smaller than k: merge
        {"chunk_size": 1},
    ):
        s, i = topk(q, 12, db, metric=metric, backend="torch", **kwargs)
        assert torch.equal(i, full_i), kwargs
        assert torch.allclose(s, full_s, atol=1e-5), kwargs


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_self_is_first_neighbour(data, metric, backend):
    q, _ = data
    scores, index = topk(q, 4, metric=metric, backend=backend, chunk_size=7)
    assert torch.equal(index[:, 0], torch.arange(len(q)))
    expected_self = 1.0 if metric == "cosine" else 0.0
    assert torch.allclose(scores[:, 0], torch.full((len(q),), expected_self), atol=1e-4)


@needs_faiss
@pytest.mark.parametrize("metric", METRICS)
def test_torch_and_faiss_agree(metric):
    gen = torch.Generator().manual_seed(3)
    q, db = torch.randn(300, 32, generator=gen), torch.randn(700, 32, generator=gen)
    s_t, i_t = topk(q, 20, db, metric=metric, backend="torch", max_block_bytes=4096)
    s_f, i_f = topk(q, 20, db, metric=metric, backend="faiss")
    ref = np.sort(brute_force_scores(q.numpy(), db.numpy(), metric), axis=1)
    ref = ref[:, :20] if metric == "euclidean" else ref[:, ::-1][:, :20]
    mask = torch.from_numpy(untied(ref))
    assert mask.float().mean() > 0.9  # the comparison below is not vacuous
    assert torch.equal(i_t[mask], i_f[mask])
    assert torch.allclose(s_t, s_f, rtol=1e-5, atol=1e-4)


def test_large_n_small_budget_against_brute_force_subset():
    # N = 20,000, d = 64 with an 8 MiB block budget (the full matrix would be 1.6 GB, so
    # the database side is tiled too: 256 x 8,192 blocks); checked against a brute-force
    # loop on 40 rows.
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(20_000, 64, generator=gen)
    budget = 8 * 2**20
    seen = []
    real_score_block = topk_module._score_block

    def spy(a, b, *args, **kwargs):
        block = real_score_block(a, b, *args, **kwargs)
        seen.append(block.numel() * block.element_size())
        return block

    mp = pytest.MonkeyPatch()
    mp.setattr(topk_module, "_score_block", spy)
    try:
        scores, index = topk(x, 10, metric="euclidean", backend="torch", max_block_bytes=budget)
    finally:
        mp.undo()
    assert max(seen) <= budget and len(seen) == 79 * 3  # ceil(20000/256) x ceil(20000/8192)
    rows = torch.randperm(20_000, generator=gen)[:40]
    ref = brute_force_scores(x[rows].numpy(), x.numpy(), "euclidean")
    assert_true_topk(scores[rows], index[rows], ref, 10, "euclidean", tol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_torch_backend_respects_block_budget(monkeypatch, metric):
    gen = torch.Generator().manual_seed(0)
    q, db = torch.randn(300, 8, generator=gen), torch.randn(500, 8, generator=gen)
    budget = 64_000  # 16,000 float32 scores; the full matrix would be 150,000
    shapes = []
    real_score_block = topk_module._score_block

    def spy(*args, **kwargs):
        block = real_score_block(*args, **kwargs)
        shapes.append((tuple(block.shape), block.element_size()))
        return block

    monkeypatch.setattr(topk_module, "_score_block", spy)
    topk(q, 5, db, metric=metric, backend="torch", max_block_bytes=budget)
    assert all(r * c * e <= budget for (r, c), e in shapes)
    assert {r for (r, _), _ in shapes} == {256, 44} and len(shapes) == 2 * 9  # 2-D tiling
    covered = sum(r * c for (r, c), _ in shapes)
    assert covered == 300 * 500  # every pair scored exactly once


# --------------------------------------------------------------------------------------
# Inputs, bounds, errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_input_and_dtypes(data, backend):
    q, db = data
    s_np, i_np = topk(q.numpy(), 5, db.numpy(), backend=backend)
    s_t, i_t = topk(q, 5, db, backend=backend)
    assert isinstance(s_np, torch.Tensor) and torch.equal(i_np, i_t)
    assert torch.allclose(s_np, s_t)
    # integer input is converted to float32: (0,0),(1,0),(5,0) -> nearest of (0,0) is (1,0)
    s, i = topk(np.array([[0, 0], [1, 0], [5, 0]]), 2, metric="euclidean", backend=backend)
    assert s.dtype == torch.float32 and i[0].tolist() == [0, 1] and s[0].tolist() == [0.0, 1.0]
    # float64 in, float64 scores out
    s64, _ = topk(q.double(), 3, backend=backend)
    assert s64.dtype == torch.float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_bounds(data, backend):
    q, db = data
    _, index = topk(q, 90, db, backend=backend)  # k == N_d is allowed: a full ranking
    assert (index.sort(dim=1).values == torch.arange(90)).all()
    with pytest.raises(ValueError, match="cannot exceed the number of database vectors, 90"):
        topk(q, 91, db, backend=backend)
    with pytest.raises(ValueError, match="'k' must be >= 1, got 0"):
        topk(q, 0, db, backend=backend)
    with pytest.raises(TypeError, match="'k' must be an int"):
        topk(q, 2.0, db, backend=backend)
    with pytest.raises(TypeError, match="'k' must be an int"):
        topk(q, True, db, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_inputs(backend):
    scores, index = topk(torch.zeros(0, 4), 3, torch.ones(5, 4), backend=backend)
    assert scores.shape == index.shape == (0, 3) and index.dtype == torch.int64
    with pytest.raises(ValueError, match="cannot exceed the number of database vectors, 0"):
        topk(torch.ones(2, 4), 1, torch.zeros(0, 4), backend=backend)
    with pytest.raises(ValueError, match="'query' must have at least 0 row\\(s\\) and 1 column"):
        topk(torch.zeros(3, 0), 1, backend=backend)


def test_bad_inputs(data):
    q, db = data
    with pytest.raises(ValueError, match="'query' must be two-dimensional"):
        topk(q[0], 1)
    with pytest.raises(ValueError, match="'database' must be two-dimensional"):
        topk(q, 1, db[None])
    with pytest.raises(ValueError, match="same feature dimension d"):
        topk(q, 1, db[:, :5])
    bad = q.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="'query' must contain only finite values, found 1 NaN"):
        topk(bad, 1)
    bad = db.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="'database' must contain only finite.*1 infinite"):
        topk(q, 1, bad)
    with pytest.raises(TypeError, match="'query' must be real-valued"):
        topk(q.to(torch.complex64), 1)
    with pytest.raises(TypeError, match="'query' must be a tensor, numpy array or sequence"):
        topk(np.array([["a", "b"]], dtype=object), 1)
    with pytest.raises(TypeError, match="'query' must be a torch.Tensor or numpy array"):
        topk("features", 1)
    with pytest.raises(ValueError, match="Could not resolve metric='l1'"):
        topk(q, 1, metric="l1")
    with pytest.raises(ValueError, match="Could not resolve backend='annoy'"):
        topk(q, 1, backend="annoy")
    with pytest.raises(ValueError, match="Could not resolve precision='bf16'"):
        topk(q, 1, precision="bf16")
    with pytest.raises(ValueError, match="precision='tf32' needs CUDA tensors"):
        topk(q, 1, precision="tf32")
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1, got 0"):
        topk(q, 1, chunk_size=0)
    with pytest.raises(ValueError, match="'col_chunk_size' must be >= 1, got -2"):
        topk(q, 1, col_chunk_size=-2)
    with pytest.raises(ValueError, match="'max_block_bytes' must be >= 4, got 2"):
        topk(q, 1, max_block_bytes=2)
    with pytest.raises(TypeError, match="'approximate' must be a bool"):
        topk(q, 1, approximate=1)


# --------------------------------------------------------------------------------------
# Backend selection and the optional faiss dependency
# --------------------------------------------------------------------------------------


@needs_faiss
def test_auto_uses_faiss_on_cpu(monkeypatch, data):
    calls = []
    real = _faiss.faiss_search
    monkeypatch.setattr(_faiss, "faiss_search", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    topk(data[0], 3)
    assert calls == [1]


def test_missing_faiss(monkeypatch, data):
    monkeypatch.setattr(_faiss, "load_faiss", lambda: None)

    def fail(*args, **kwargs):
        raise AssertionError("faiss must not be called")

    monkeypatch.setattr(_faiss, "faiss_search", fail)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        topk(data[0], 3, backend="faiss")
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        topk(data[0], 3, approximate=True)  # auto needs faiss for IVF
    s, i = topk(data[0], 3, backend="auto")  # falls back to torch
    assert torch.equal(i[:, 0], torch.arange(len(data[0])))


def test_broken_faiss_import_warns_and_is_treated_as_missing(monkeypatch):
    monkeypatch.setattr(_faiss, "WITH_FAISS", True)
    monkeypatch.setattr(_faiss, "_state", {})
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise
    with pytest.warns(UserWarning, match="faiss is installed but failed to import"):
        assert _faiss.load_faiss() is None
    assert _faiss.load_faiss() is None  # cached: no second warning, no second import


# --------------------------------------------------------------------------------------
# Approximate (IVF) search
# --------------------------------------------------------------------------------------


@needs_faiss
@pytest.mark.parametrize("metric", METRICS)
def test_ivf_probing_all_lists_is_exact_and_deterministic(data, metric):
    q, db = data
    exact_s, exact_i = topk(q, 6, db, metric=metric, backend="torch")
    kwargs = {"approximate": True, "nlist": 4, "nprobe": 4, "seed": 1}
    s1, i1 = topk(q, 6, db, metric=metric, **kwargs)
    s2, i2 = topk(q, 6, db, metric=metric, **kwargs)
    assert torch.equal(i1, i2) and torch.equal(s1, s2)
    assert torch.equal(i1, exact_i)
    assert torch.allclose(s1, exact_s, atol=1e-4)


@needs_faiss
def test_ivf_recall_and_defaults():
    # 20 well-separated clusters: IVF with default nlist/nprobe finds nearly all true neighbours.
    gen = torch.Generator().manual_seed(5)
    centers = torch.randn(20, 16, generator=gen) * 10
    x = centers.repeat_interleave(100, dim=0) + torch.randn(2000, 16, generator=gen)
    _, exact = topk(x, 10, backend="torch")
    _, approx = topk(x, 10, approximate=True)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(), approx.tolist(), strict=True)]
    )
    assert recall > 0.95
    # nprobe above nlist is capped (probing every list is the exact search)
    _, capped = topk(x[:100], 5, x, approximate=True, nlist=3, nprobe=50)
    assert torch.equal(capped, exact[:100, :5])


@needs_faiss
def test_ivf_empty_slots_are_reported(caplog, data):
    q, db = data
    with caplog.at_level(logging.WARNING, logger="reidgraph.ops._faiss"):
        scores, index = topk(q, 60, db, approximate=True, nlist=30, nprobe=1)
    empty = index == -1
    assert empty.any()
    assert torch.isinf(scores[empty]).all() and (scores[empty] < 0).all()
    assert "fewer than k=60 candidates" in caplog.text


def test_ivf_argument_errors(data):
    q, db = data
    with pytest.raises(ValueError, match="approximate=True needs backend='faiss'"):
        topk(q, 1, backend="torch", approximate=True)
    with pytest.raises(ValueError, match="'nlist' is used only with approximate=True"):
        topk(q, 1, nlist=4)
    if _faiss.load_faiss() is not None:
        with pytest.raises(ValueError, match="each IVF list needs a training vector.*has 90"):
            topk(q, 1, db, approximate=True, nlist=91)
        with pytest.raises(ValueError, match="'nprobe' must be >= 1, got 0"):
            topk(q, 1, db, approximate=True, nprobe=0)
        with pytest.raises(ValueError, match="'seed' must be >= 0, got -1"):
            topk(q, 1, db, approximate=True, seed=-1)


def test_deterministic_and_verbose(data):
    q, db = data
    a = topk(q, 7, db, backend="torch", chunk_size=11, verbose=True)
    b = topk(q, 7, db, backend="torch", chunk_size=11)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("metric", METRICS)
def test_cuda_matches_cpu(data, metric):
    q, db = data
    s_cpu, i_cpu = topk(q, 8, db, metric=metric, backend="torch")
    for backend in ("torch", "auto"):
        s, i = topk(q.cuda(), 8, db.cuda(), metric=metric, backend=backend, max_block_bytes=4096)
        assert s.is_cuda and i.is_cuda
        assert torch.equal(i.cpu(), i_cpu)
        assert torch.allclose(s.cpu(), s_cpu, atol=1e-4)
    if _faiss.load_faiss() is not None:
        s, i = topk(q.cuda(), 8, db.cuda(), metric=metric, backend="faiss")
        assert s.is_cuda and torch.equal(i.cpu(), i_cpu)
    ref = torch.from_numpy(brute_force_scores(q.numpy(), db.numpy(), metric)).float()
    for precision in ("tf32", "fp16"):
        s, i = topk(q.cuda(), 8, db.cuda(), metric=metric, backend="torch", precision=precision)
        assert s.dtype == torch.float32 and s.is_cuda
        # reduced precision may swap near-ties, but each returned score is the true score
        # of the returned index to ~1e-2 relative, and most neighbours are the exact ones
        assert torch.allclose(s.cpu(), ref.gather(1, i.cpu()), rtol=1e-2, atol=1e-2)
        overlap = [
            len(set(a) & set(b)) for a, b in zip(i.cpu().tolist(), i_cpu.tolist(), strict=True)
        ]
        assert np.mean(overlap) / 8 > 0.9


@pytest.mark.gpu
def test_cuda_errors(data):
    q, db = data
    with pytest.raises(ValueError, match="must be on the same device"):
        topk(q.cuda(), 1, db)
    if _faiss.load_faiss() is not None:
        with pytest.raises(ValueError, match="applies to the torch backend only"):
            topk(q.cuda(), 1, backend="faiss", precision="fp16")
    before = torch.backends.cuda.matmul.allow_tf32
    topk(q.cuda(), 1, backend="torch", precision="tf32")
    assert torch.backends.cuda.matmul.allow_tf32 == before
