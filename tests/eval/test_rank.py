"""Tests for reidgraph.eval.rank: CMC / mAP / mINP under the single-query protocol.

Expected values come from hand arithmetic (in comments) or from `_brute_force`,
an independent per-query loop over `np.argsort(kind="stable")` rows.
"""

from __future__ import annotations

import doctest
import logging

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

import reidgraph.eval.rank as rank_mod
from reidgraph.eval import SAME_ID_SAME_CAM, Exclusion, evaluate, rank_metrics


def _brute_force(d, q_pid, g_pid, q_cam, g_cam, max_rank, remove=None, dedup=False):
    """Per-query reference: sort the row stably, drop removed entries, read ranks off."""
    if remove is None:

        def remove(qp, gp, qc, gc):
            return (gp == qp) & (gc == qc)

    aps, inps, cmcs = [], [], []
    for i in range(d.shape[0]):
        order = np.argsort(d[i], kind="stable")
        keep = ~remove(q_pid[i], g_pid[order], q_cam[i], g_cam[order])
        ranked = g_pid[order][keep]
        match = ranked == q_pid[i]
        if not match.any():
            continue
        pos = np.flatnonzero(match) + 1  # 1-based ranks of the true matches
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
        if dedup:
            _, first_idx = np.unique(ranked, return_index=True)
            ids = ranked[np.sort(first_idx)]
            first = int(np.flatnonzero(ids == q_pid[i])[0]) + 1
        else:
            first = pos[0]
        cmc = np.zeros(max_rank)
        cmc[first - 1 :] = 1.0
        cmcs.append(cmc)
    if not aps:
        return None
    return {
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "cmc": np.mean(cmcs, axis=0),
        "num_valid_queries": len(aps),
    }


def _assert_matches(out, ref):
    assert out["num_valid_queries"] == ref["num_valid_queries"]
    assert out["mAP"] == pytest.approx(ref["mAP"], abs=1e-12)
    assert out["mINP"] == pytest.approx(ref["mINP"], abs=1e-12)
    np.testing.assert_allclose(out["cmc"].cpu().numpy(), ref["cmc"], atol=1e-6)


@pytest.fixture(params=["candidates", "grid"])
def path(request, monkeypatch):
    """Run a test through each of the two bucketing paths of the core."""
    monkeypatch.setattr(
        rank_mod, "_GRID_ABOVE", float("inf") if request.param == "candidates" else -1.0
    )
    return request.param


# --- hand-built case ---------------------------------------------------------
# Gallery: columns 0..5 with (pid, cam)
#   g0 (1, 0)  g1 (2, 1)  g2 (1, 1)  g3 (3, 0)  g4 (1, 2)  g5 (0, 1)   (pid 0 = distractor)
G_PID = np.array([1, 2, 1, 3, 1, 0])
G_CAM = np.array([0, 1, 1, 0, 2, 1])
Q_PID = np.array([1, 2, 3])
Q_CAM = np.array([0, 1, 1])
DIST = np.array(
    [
        # query A (pid 1, cam 0): g0 removed (same pid, same cam). Valid order:
        # g1 .10, g5 .15, g2 .20 (match, rank 3), g3 .30, g4 .40 (match, rank 5).
        # AP = (1/3 + 2/5) / 2 = 0.3666..., INP = 2/5, first match rank 3.
        [0.05, 0.10, 0.20, 0.30, 0.40, 0.15],
        # query B (pid 2, cam 1): its only gallery image g1 has cam 1 -> removed;
        # no true match left, so B is skipped.
        [0.90, 0.50, 0.10, 0.20, 0.30, 0.40],
        # query C (pid 3, cam 1): g2 .1 first, then a four-way tie at .3 broken
        # by column: g0, g1, g3 (match), g5 -> match at rank 4.
        # AP = 1/4, INP = 1/4, first match rank 4.
        [0.30, 0.30, 0.10, 0.30, 0.50, 0.30],
    ],
    dtype=np.float32,
)


def test_hand_built_case(path):
    out = evaluate(DIST, Q_PID, G_PID, Q_CAM, G_CAM, max_rank=6)
    assert out["num_valid_queries"] == 2  # A and C; B skipped
    assert out["num_queries"] == 3
    # mAP = (0.366667 + 0.25) / 2 = 0.308333; mINP = (0.4 + 0.25) / 2 = 0.325
    assert out["mAP"] == pytest.approx(0.3083333333, abs=1e-9)
    assert out["mINP"] == pytest.approx(0.325, abs=1e-12)
    # first match ranks 3 (A) and 4 (C): CMC = 0, 0, 1/2, 1, 1, 1
    assert out["cmc"].tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    assert out["cmc"].dtype == torch.float32
    assert isinstance(out["mAP"], float) and isinstance(out["num_valid_queries"], int)


def test_hand_built_per_query(path):
    out = evaluate(DIST, Q_PID, G_PID, Q_CAM, G_CAM, max_rank=6, per_query=True)
    assert out["valid"].tolist() == [True, False, True]
    assert out["first_match_rank"].tolist() == [3, 0, 4]
    ap = out["AP"].tolist()
    assert ap[0] == pytest.approx(0.3666666667) and np.isnan(ap[1]) and ap[2] == pytest.approx(0.25)
    inp = out["INP"].tolist()
    assert inp[0] == pytest.approx(0.4) and np.isnan(inp[1]) and inp[2] == pytest.approx(0.25)


def test_tie_with_match_first_by_column(path):
    # Match at column 0 tied with a distractor at column 1: column order puts
    # the match first (rank 1, AP 1); swapped columns put it second (AP 1/2).
    d = np.array([[0.5, 0.5]], dtype=np.float32)
    first = rank_metrics(d, [1], [1, 2], exclude=None, max_rank=2)
    second = rank_metrics(d, [1], [2, 1], exclude=None, max_rank=2)
    assert first["mAP"] == 1.0 and first["cmc"].tolist() == [1.0, 1.0]
    assert second["mAP"] == 0.5 and second["cmc"].tolist() == [0.0, 1.0]


def test_ties_among_matches_and_negative_zero(path):
    # -0.0 == 0.0 is a tie, broken by column. Row: cols 0..3 = 0.0, -0.0, 0.0, -1.0
    # pids: 5, 7, 5, 7 -> order: col3 (-1, pid 7), col0 (5 match), col1 (7), col2 (5 match)
    # ranks 2, 4 -> AP = (1/2 + 2/4)/2 = 0.5, INP = 2/4
    d = np.array([[0.0, -0.0, 0.0, -1.0]])
    out = rank_metrics(d, [5], [5, 7, 5, 7], exclude=None, max_rank=4)
    assert out["mAP"] == pytest.approx(0.5) and out["mINP"] == pytest.approx(0.5)
    assert out["cmc"].tolist() == [0.0, 1.0, 1.0, 1.0]


def test_dedup_cmc_hand_built(path):
    # Row order: pid 2 (.1), pid 2 (.2), pid 3 (.3), pid 1 (.4, match).
    # Raw list: match at rank 4. Identity-deduplicated: 2, 3, 1 -> rank 3.
    # AP = 1/4 and INP = 1/4 come from the raw list either way.
    d = np.array([[0.1, 0.2, 0.3, 0.4]])
    kw = dict(exclude=None, max_rank=4)
    raw = rank_metrics(d, [1], [2, 2, 3, 1], **kw)
    dedup = rank_metrics(d, [1], [2, 2, 3, 1], dedup_cmc=True, **kw)
    assert raw["cmc"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert dedup["cmc"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert raw["mAP"] == dedup["mAP"] == pytest.approx(0.25)
    assert raw["mINP"] == dedup["mINP"] == pytest.approx(0.25)


def test_distractors_never_match(path):
    # Distractor pid 0 sits closest; query pid 4's match is second: AP 1/2.
    out = evaluate([[0.1, 0.2]], [4], [0, 4], [0], [1, 2], max_rank=2)
    assert out["mAP"] == 0.5 and out["cmc"].tolist() == [0.0, 1.0]


def test_ap_equals_sklearn_without_ties(path):
    rng = np.random.default_rng(7)
    nq, ng = 20, 60
    q_pid, g_pid = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
    q_cam, g_cam = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    d = rng.permutation(nq * ng).reshape(nq, ng).astype(np.float64)  # all distinct
    out = evaluate(d, q_pid, g_pid, q_cam, g_cam, per_query=True)
    checked = 0
    for i in range(nq):
        keep = ~((g_pid == q_pid[i]) & (g_cam == q_cam[i]))
        y = g_pid[keep] == q_pid[i]
        if not y.any():
            assert not out["valid"][i]
            continue
        ref = average_precision_score(y, -d[i][keep])
        assert float(out["AP"][i]) == pytest.approx(ref, abs=1e-12)
        checked += 1
    assert checked > 10


# --- randomized comparison against the brute force ---------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_random_cases_match_brute_force(path, dtype):
    rng = np.random.default_rng({np.float32: 0, np.float64: 1, np.float16: 2}[dtype])
    compared = 0
    for trial in range(80):
        nq, ng = int(rng.integers(1, 12)), int(rng.integers(1, 30))
        n_id = int(rng.integers(1, 6))
        q_pid, g_pid = rng.integers(0, n_id, nq), rng.integers(0, n_id, ng)
        q_cam, g_cam = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        if trial % 2:  # few distinct values: many ties
            d = rng.integers(0, 4, (nq, ng)).astype(dtype)
        else:
            d = rng.normal(size=(nq, ng)).astype(dtype)
        max_rank = int(rng.integers(1, 40))  # often larger than the gallery
        ref = _brute_force(d, q_pid, g_pid, q_cam, g_cam, max_rank)
        kw = dict(max_rank=max_rank, chunk_size=int(rng.integers(1, 5)))
        if ref is None:
            with pytest.raises(ValueError, match="No valid query"):
                evaluate(d, q_pid, g_pid, q_cam, g_cam, **kw)
            continue
        _assert_matches(evaluate(d, q_pid, g_pid, q_cam, g_cam, **kw), ref)
        compared += 1
    assert compared > 40


def test_extreme_values_match_brute_force(path):
    # Huge spans, denormals, signed zeros: the grid path's cells must stay exact.
    pool = np.array(
        [-3e38, -1e30, -1.0, -1e-40, -0.0, 0.0, 1e-45, 1e-40, 1e-38, 0.5, 1.0, 1.0000001, 3e38]
    )
    rng = np.random.default_rng(3)
    compared = 0
    for trial in range(120):
        nq, ng = int(rng.integers(1, 8)), int(rng.integers(2, 40))
        q_pid, g_pid = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
        q_cam, g_cam = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        d = rng.choice(pool, (nq, ng)).astype(np.float32 if trial % 2 else np.float64)
        ref = _brute_force(d, q_pid, g_pid, q_cam, g_cam, 10)
        if ref is None:
            continue
        _assert_matches(evaluate(d, q_pid, g_pid, q_cam, g_cam, max_rank=10, chunk_size=3), ref)
        compared += 1
    assert compared > 60


def test_custom_exclusion_and_dedup_match_brute_force(path):
    # A rule that is not same-identity-only: drop every gallery image of camera 0.
    rule = Exclusion("no_cam0", lambda qp, gp, qc, gc: gc == 0)
    rng = np.random.default_rng(11)
    compared = 0
    for _ in range(100):
        nq, ng = int(rng.integers(1, 10)), int(rng.integers(1, 30))
        q_pid, g_pid = rng.integers(0, 5, nq), rng.integers(0, 5, ng)
        q_cam, g_cam = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        d = rng.integers(0, 5, (nq, ng)).astype(np.float32)
        ref = _brute_force(
            d, q_pid, g_pid, q_cam, g_cam, 8, remove=lambda qp, gp, qc, gc: gc == 0, dedup=True
        )
        if ref is None:
            continue
        out = rank_metrics(
            d, q_pid, g_pid, q_cam, g_cam, max_rank=8, exclude=rule, dedup_cmc=True, chunk_size=2
        )
        _assert_matches(out, ref)
        compared += 1
    assert compared > 50


def test_market_like_case_both_paths_agree_with_brute_force(path):
    # Identity-structured features: most queries find their matches early.
    g = torch.Generator().manual_seed(0)
    n_id, dim = 30, 16
    centers = torch.randn(n_id, dim, generator=g)
    q_pid, g_pid = torch.arange(60) % n_id, torch.randint(0, n_id, (400,), generator=g)
    q_cam, g_cam = torch.randint(0, 6, (60,), generator=g), torch.randint(0, 6, (400,), generator=g)
    qf = centers[q_pid] + 0.8 * torch.randn(60, dim, generator=g)
    gf = centers[g_pid] + 0.8 * torch.randn(400, dim, generator=g)
    d = torch.cdist(qf, gf)
    ref = _brute_force(d.numpy(), q_pid.numpy(), g_pid.numpy(), q_cam.numpy(), g_cam.numpy(), 50)
    _assert_matches(evaluate(d, q_pid, g_pid, q_cam, g_cam, max_memory=2**16), ref)


def test_identity_with_many_gallery_images(path):
    # S = 300 images of one identity: the grid's cell count is capped by the gallery size.
    rng = np.random.default_rng(12)
    g_pid = np.concatenate([np.zeros(300, int), rng.integers(1, 5, 100)])
    g_cam = rng.integers(0, 3, 400)
    q_pid, q_cam = np.array([0, 0, 1, 2]), np.array([0, 1, 2, 0])
    d = rng.normal(size=(4, 400)).astype(np.float32)
    d[:, :50] -= 1.0  # some of identity 0 come early
    ref = _brute_force(d, q_pid, g_pid, q_cam, g_cam, 50)
    _assert_matches(evaluate(d, q_pid, g_pid, q_cam, g_cam), ref)


# --- inputs, devices, chunks ---------------------------------------------------


def test_numpy_torch_and_list_inputs_agree():
    ref = _brute_force(DIST, Q_PID, G_PID, Q_CAM, G_CAM, 6)
    as_torch = [torch.from_numpy(DIST), torch.from_numpy(Q_PID), torch.from_numpy(G_PID)]
    as_torch += [torch.from_numpy(Q_CAM), torch.from_numpy(G_CAM)]
    as_lists = [DIST.tolist(), Q_PID.tolist(), G_PID.tolist(), Q_CAM.tolist(), G_CAM.tolist()]
    for args in ([DIST, Q_PID, G_PID, Q_CAM, G_CAM], as_torch, as_lists):
        _assert_matches(evaluate(*args, max_rank=6), ref)


def test_integer_and_autograd_inputs(path):
    # Integer distances above 2**24 must not merge in a float32 cast: the match
    # (col 1, 16777216) is strictly closer than col 0 (16777217) -> rank 1, AP 1.
    # A float32 cast would round both to 16777216 and the column tie-break
    # would put the match second (AP 1/2).
    d = torch.tensor([[16777217, 16777216]])
    out = rank_metrics(d, [1], [2, 1], exclude=None, max_rank=2)
    assert out["mAP"] == 1.0 and out["cmc"].tolist() == [1.0, 1.0]
    # A distance matrix that requires grad is evaluated like its values.
    x = torch.tensor(DIST, requires_grad=True)
    ref = _brute_force(DIST, Q_PID, G_PID, Q_CAM, G_CAM, 6)
    _assert_matches(evaluate(x * 1.0, Q_PID, G_PID, Q_CAM, G_CAM, max_rank=6), ref)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 100])
def test_chunk_size_not_dividing_queries(chunk_size, path):
    rng = np.random.default_rng(5)
    nq, ng = 7, 25
    q_pid, g_pid = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
    q_cam, g_cam = rng.integers(0, 2, nq), rng.integers(0, 2, ng)
    d = rng.random((nq, ng))
    ref = _brute_force(d, q_pid, g_pid, q_cam, g_cam, 10)
    _assert_matches(evaluate(d, q_pid, g_pid, q_cam, g_cam, 10, chunk_size=chunk_size), ref)


def test_max_memory_sets_chunk_rows(monkeypatch):
    seen = []
    original = rank_mod._rank_chunk

    def spy(d, *args, **kwargs):
        seen.append(d.shape[0])
        return original(d, *args, **kwargs)

    monkeypatch.setattr(rank_mod, "_rank_chunk", spy)
    nq, ng = 50, 40
    rng = np.random.default_rng(0)
    d, q_pid, g_pid = rng.random((nq, ng)), rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    budget = 10 * ng * rank_mod._BYTES_PER_ENTRY  # room for 10 rows
    evaluate(d, q_pid, g_pid, np.zeros(nq, int), np.ones(ng, int), max_memory=budget)
    assert seen == [10] * 5
    seen.clear()
    evaluate(d, q_pid, g_pid, np.zeros(nq, int), np.ones(ng, int), max_memory=1)
    assert seen == [1] * nq  # at least one row per chunk


def test_max_rank_beyond_gallery_keeps_length(caplog):
    # Gallery of 3; first match at rank 2 -> CMC 0, 1, then saturated at 1.
    with caplog.at_level(logging.WARNING, logger="reidgraph.eval.rank"):
        out = evaluate([[0.2, 0.1, 0.3]], [1], [1, 2, 3], [0], [1, 1, 1], max_rank=6)
    assert out["cmc"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert "exceeds the gallery size 3" in caplog.text


def test_all_distractor_gallery_raises():
    with pytest.raises(ValueError, match="No valid query: none of the 2 queries"):
        evaluate(np.ones((2, 3)), [1, 2], [0, 0, 0], [0, 0], [1, 1, 1])


def test_all_matches_removed_raises():
    # Every true match shares the query's camera -> all removed.
    with pytest.raises(ValueError, match="No valid query"):
        evaluate(np.ones((1, 2)), [1], [1, 1], [0], [0, 0])


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.array([[0.1, np.nan, 0.2]]), ValueError, "'distmat' must contain only finite values"),
        (np.array([[0.1, np.inf, 0.2]]), ValueError, "'distmat' must contain only finite"),
        (np.array([0.1, 0.2, 0.3]), ValueError, "'distmat' must be two-dimensional"),
        (np.zeros((0, 3)), ValueError, "'distmat' must have at least 1 row"),
        ("text", TypeError, "'distmat'"),
    ],
)
def test_distmat_validation(bad, exc, match):
    with pytest.raises(exc, match=match):
        evaluate(bad, [1], [1, 2, 3], [0], [1, 1, 1])


def test_empty_gallery_raises():
    with pytest.raises(ValueError, match="'distmat' must have at least 1 row"):
        evaluate(np.zeros((1, 0)), [1], [], [0], [])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(q_pid=[1, 2]), ValueError, r"'q_pid' must have length 1 \(the number of rows"),
        (dict(g_pid=[1, 2]), ValueError, r"'g_pid' must have length 3 \(the number of columns"),
        (dict(q_camid=[0, 0]), ValueError, "'q_camid' must have length 1"),
        (dict(g_camid=[0]), ValueError, "'g_camid' must have length 3"),
        (dict(q_pid=[1.5]), TypeError, "'q_pid' must hold integer labels"),
        (dict(g_pid=[True, False, True]), TypeError, "'g_pid' must hold integer labels"),
        (dict(max_rank=0), ValueError, "'max_rank' must be >= 1"),
        (dict(max_rank=2.0), TypeError, "'max_rank' must be an int"),
        (dict(chunk_size=0), ValueError, "'chunk_size' must be >= 1"),
        (dict(max_memory=0), ValueError, "'max_memory' must be >= 1"),
    ],
)
def test_argument_validation(kwargs, exc, match):
    args = dict(
        distmat=[[0.1, 0.2, 0.3]], q_pid=[1], g_pid=[1, 2, 1], q_camid=[0], g_camid=[1, 1, 1]
    )
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        evaluate(**args)


def test_exclusion_argument_validation():
    with pytest.raises(TypeError, match="'exclude' must be an Exclusion or None"):
        rank_metrics([[0.1]], [1], [1], [0], [1], exclude="same_id_same_cam")
    with pytest.raises(ValueError, match="'q_camid' and 'g_camid' are required"):
        rank_metrics([[0.1]], [1], [1], exclude=SAME_ID_SAME_CAM)


def test_exclusion_repr():
    assert repr(SAME_ID_SAME_CAM) == "Exclusion('same_id_same_cam', same_pid_only=True)"


def test_docstring_examples():
    result = doctest.testmod(rank_mod, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.gpu
def test_cuda_matches_brute_force():
    rng = np.random.default_rng(9)
    nq, ng = 40, 300
    q_pid, g_pid = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
    q_cam, g_cam = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
    d = rng.integers(0, 50, (nq, ng)).astype(np.float32)
    ref = _brute_force(d, q_pid, g_pid, q_cam, g_cam, 50)
    args = [torch.from_numpy(a).cuda() for a in (d, q_pid, g_pid, q_cam, g_cam)]
    for threshold in (float("inf"), -1.0):
        rank_mod._GRID_ABOVE, saved = threshold, rank_mod._GRID_ABOVE
        try:
            out = evaluate(*args, chunk_size=7)
        finally:
            rank_mod._GRID_ABOVE = saved
        assert out["cmc"].device.type == "cuda"
        _assert_matches(out, ref)
