"""Tests for reidgraph.eval.protocols: SYSU-MM01, RegDB and trial aggregation.

Camera ids are 0-based: SYSU cam1..cam6 -> 0..5; visible 0, 1, 3, 4; infrared 2, 5.
"""

from __future__ import annotations

import doctest
import random

import numpy as np
import pytest
import torch

import reidgraph.eval.protocols as protocols_mod
from reidgraph.eval import (
    SYSU_CAM3_CAM2,
    aggregate_trials,
    evaluate_regdb,
    evaluate_sysu,
    sysu_gallery_indices,
)

# --- SYSU-MM01, hand-built ------------------------------------------------------
# Visible pool, one image per (pid, cam), so every trial draws the same gallery:
#   p0 (pid 1, cam1=0)  p1 (pid 1, cam2=1)  p2 (pid 2, cam1=0)
#   p3 (pid 2, cam2=1)  p4 (pid 2, cam4=3)
POOL_PID = np.array([1, 1, 2, 2, 2])
POOL_CAM = np.array([0, 1, 0, 1, 3])
# Queries: q0 pid 1 from cam3 (camid 2), q1 pid 2 from cam6 (camid 5).
Q_PID = np.array([1, 2])
Q_CAM = np.array([2, 5])
DIST = np.array(
    [
        [0.5, 0.1, 0.3, 0.2, 0.4],
        [0.1, 0.2, 0.6, 0.3, 0.4],
    ]
)
# mode="all" (gallery p0..p4):
#  q0 (cam3): cam2 entries p1, p3 removed (any identity). Order: p2 .3 (pid 2),
#     p4 .4 (pid 2), p0 .5 (pid 1, match) -> raw rank 3: AP = 1/3, INP = 1/3.
#     Dedup list: 2, 1 -> CMC rank 2. (Without the removal p1 .1 would be rank 1.)
#  q1 (cam6): nothing removed. Order: p0 .1 (1), p1 .2 (1), p3 .3 (2 ✓), p4 .4 (2 ✓),
#     p2 .6 (2 ✓) -> ranks 3, 4, 5: AP = (1/3 + 2/4 + 3/5)/3 = 0.477778, INP = 3/5.
#     Dedup list: 1, 2 -> CMC rank 2. (Same-id-same-cam removal would change nothing
#     here, but q0 shows the cam3->cam2 rule removes other identities too.)
#  mAP = (1/3 + 0.477778)/2 = 0.405556; mINP = (1/3 + 3/5)/2 = 0.466667
#  dedup CMC: rank1 = 0, rank2.. = 1; the raw CMC would still be 0 at rank 2.
ALL_MAP = (1 / 3 + (1 / 3 + 2 / 4 + 3 / 5) / 3) / 2
ALL_MINP = (1 / 3 + 3 / 5) / 2
# mode="indoor" (gallery p0..p3):
#  q0: p1, p3 removed -> p2 .3 (2), p0 .5 (1 ✓): rank 2, AP = 1/2, INP = 1/2, dedup rank 2.
#  q1: p0 .1, p1 .2, p3 .3 (✓), p2 .6 (✓): ranks 3, 4: AP = (1/3 + 2/4)/2, INP = 2/4,
#      dedup: 1, 2 -> rank 2.
INDOOR_MAP = (1 / 2 + (1 / 3 + 2 / 4) / 2) / 2
INDOOR_MINP = (1 / 2 + 2 / 4) / 2


def test_sysu_hand_built_all_mode():
    out = evaluate_sysu(DIST, Q_PID, POOL_PID, Q_CAM, POOL_CAM, mode="all", trials=3)
    assert out["mode"] == "all" and out["num_trials"] == 3 and len(out["trials"]) == 3
    assert out["mean"]["mAP"] == pytest.approx(ALL_MAP, abs=1e-12)
    assert out["mean"]["mAP"] == pytest.approx(0.4055555556, abs=1e-9)
    assert out["mean"]["mINP"] == pytest.approx(ALL_MINP, abs=1e-12)
    assert out["mean"]["rank1"] == 0.0
    assert out["mean"]["rank5"] == out["mean"]["rank10"] == out["mean"]["rank20"] == 1.0
    assert out["trials"][0]["cmc"].tolist()[:3] == [0.0, 1.0, 1.0]  # dedup CMC
    assert out["std"]["mAP"] == 0.0  # the single-image groups make every trial equal
    assert out["trials"][0]["gallery_index"].tolist() == [0, 1, 2, 3, 4]


def test_sysu_hand_built_indoor_mode():
    out = evaluate_sysu(DIST, Q_PID, POOL_PID, Q_CAM, POOL_CAM, mode="indoor", trials=2)
    assert out["trials"][1]["gallery_index"].tolist() == [0, 1, 2, 3]
    assert out["mean"]["mAP"] == pytest.approx(INDOOR_MAP, abs=1e-12)
    assert out["mean"]["mINP"] == pytest.approx(INDOOR_MINP, abs=1e-12)
    assert out["mean"]["rank1"] == 0.0 and out["mean"]["rank5"] == 1.0


def test_sysu_removal_rule_is_cam3_to_cam2_only():
    qp, gp = torch.tensor([[1], [1], [1]]), torch.tensor([[1, 2, 1]])
    qc, gc = torch.tensor([[2], [5], [2]]), torch.tensor([[1, 1, 0]])
    removed = SYSU_CAM3_CAM2(qp, gp, qc, gc)
    # cam3 query: both cam2 images (any pid) removed, cam1 kept; cam6 query: nothing.
    assert removed.tolist() == [[True, True, False], [False, False, False], [True, True, False]]
    assert SYSU_CAM3_CAM2.same_pid_only is False


def _sysu_brute_force(d, q_pid, g_pid, q_cam, g_cam, max_rank):
    """GUR-style per-query loop: cam3->cam2 removal, dedup CMC, raw AP / INP."""
    aps, inps, cmcs = [], [], []
    for i in range(d.shape[0]):
        order = np.argsort(d[i], kind="stable")
        keep = ~((q_cam[i] == 2) & (g_cam[order] == 1))
        ranked = g_pid[order][keep]
        match = ranked == q_pid[i]
        if not match.any():
            continue
        pos = np.flatnonzero(match) + 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
        _, first_idx = np.unique(ranked, return_index=True)
        ids = ranked[np.sort(first_idx)]
        first = int(np.flatnonzero(ids == q_pid[i])[0]) + 1
        cmc = np.zeros(max_rank)
        cmc[first - 1 :] = 1
        cmcs.append(cmc)
    return np.mean(aps), np.mean(inps), np.mean(cmcs, 0)


@pytest.mark.parametrize("method", ["python", "torch"])
@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_sysu_random_matches_brute_force(mode, method):
    rng = np.random.default_rng(4)
    n_id = 12
    g_pid = rng.integers(0, n_id, 200)
    g_cam = rng.choice([0, 1, 3, 4], 200)
    q_pid = rng.integers(0, n_id, 40)
    q_cam = rng.choice([2, 5], 40)
    d = rng.integers(0, 20, (40, 200)).astype(np.float32)  # with ties
    out = evaluate_sysu(d, q_pid, g_pid, q_cam, g_cam, mode, trials=4, max_rank=20, method=method)
    for t, res in enumerate(out["trials"]):
        idx = res["gallery_index"].numpy()
        expected = sysu_gallery_indices(g_pid, g_cam, mode, seed=t, method=method)
        assert np.array_equal(idx, expected.numpy())
        ap, inp, cmc = _sysu_brute_force(d[:, idx], q_pid, g_pid[idx], q_cam, g_cam[idx], 20)
        assert res["mAP"] == pytest.approx(ap, abs=1e-12)
        assert res["mINP"] == pytest.approx(inp, abs=1e-12)
        np.testing.assert_allclose(res["cmc"].numpy(), cmc, atol=1e-6)
    maps = np.array([r["mAP"] for r in out["trials"]])
    assert out["mean"]["mAP"] == pytest.approx(maps.mean())
    assert out["std"]["mAP"] == pytest.approx(maps.std())


# --- SYSU gallery draws -----------------------------------------------------------


def _pool(seed=0, n=400):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 20, n), rng.integers(0, 6, n)  # includes infrared cams 2, 5


@pytest.mark.parametrize("mode, cams", [("all", {0, 1, 3, 4}), ("indoor", {0, 1})])
@pytest.mark.parametrize("method", ["torch", "python"])
def test_gallery_one_per_identity_camera(mode, cams, method):
    pid, cam = _pool()
    idx = sysu_gallery_indices(pid, cam, mode, seed=3, method=method).numpy()
    assert np.all(np.diff(idx) > 0)  # ascending, no repeats
    picked = set(zip(pid[idx].tolist(), cam[idx].tolist(), strict=True))
    assert len(picked) == len(idx)  # one per (pid, cam)
    expected = {(p, c) for p, c in zip(pid.tolist(), cam.tolist(), strict=True) if c in cams}
    assert picked == expected  # every present (pid, cam) of the mode, only those cameras


@pytest.mark.parametrize("method", ["torch", "python"])
def test_gallery_seeded(method):
    pid, cam = _pool()
    a = sysu_gallery_indices(pid, cam, "all", seed=0, method=method)
    b = sysu_gallery_indices(pid, cam, "all", seed=0, method=method)
    c = sysu_gallery_indices(pid, cam, "all", seed=1, method=method)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_gallery_python_method_mirrors_reference_loop():
    # The reference loop: random.seed(trial); for id in sorted ids; for cam in
    # cam1, cam2, cam4, cam5: random.choice(that group's images, in order).
    pid, cam = _pool(seed=5, n=150)
    for seed in range(3):
        rng = random.Random(seed)
        expected = []
        for p in sorted(set(pid.tolist())):
            for c in (0, 1, 3, 4):
                members = [i for i in range(len(pid)) if pid[i] == p and cam[i] == c]
                if members:
                    expected.append(rng.choice(members))
        got = sysu_gallery_indices(pid, cam, "all", seed=seed, method="python")
        assert got.tolist() == sorted(expected)


def test_gallery_draw_is_uniform_within_group():
    # A group of 3 images: over 600 seeds each should be picked ~200 times
    # (binomial sd ~ 11.5; the bounds are > 5 sd wide).
    pid, cam = np.array([7, 7, 7]), np.array([0, 0, 0])
    counts = np.bincount(
        [int(sysu_gallery_indices(pid, cam, seed=s)[0]) for s in range(600)], minlength=3
    )
    assert counts.sum() == 600 and counts.min() > 140 and counts.max() < 260


def test_gallery_validation():
    pid, cam = _pool()
    with pytest.raises(ValueError, match="Could not resolve mode='outdoor'"):
        sysu_gallery_indices(pid, cam, "outdoor")
    with pytest.raises(ValueError, match="Could not resolve method='numpy'"):
        sysu_gallery_indices(pid, cam, method="numpy")
    with pytest.raises(ValueError, match="'seed' must be >= 0"):
        sysu_gallery_indices(pid, cam, seed=-1)
    with pytest.raises(ValueError, match="'g_camid' must have length 400"):
        sysu_gallery_indices(pid, cam[:-1])
    with pytest.raises(ValueError, match=r"no image from the 'indoor'-search cameras \[0, 1\]"):
        sysu_gallery_indices([1, 2], [3, 4], "indoor")


def test_sysu_validation():
    args = dict(distmat=DIST, q_pid=Q_PID, g_pid=POOL_PID, q_camid=Q_CAM, g_camid=POOL_CAM)
    with pytest.raises(ValueError, match=r"'q_camid' must only hold infrared .* found \[3\]"):
        evaluate_sysu(**{**args, "q_camid": np.array([2, 3])})  # 1-based cam3 = 3
    with pytest.raises(ValueError, match=r"'g_camid' must only hold visible .* found \[2\]"):
        evaluate_sysu(**{**args, "g_camid": np.array([0, 1, 2, 1, 3])})
    with pytest.raises(ValueError, match="Could not resolve mode='both'"):
        evaluate_sysu(**args, mode="both")
    with pytest.raises(ValueError, match="'trials' must be >= 1"):
        evaluate_sysu(**args, trials=0)
    with pytest.raises(ValueError, match="'distmat' must contain only finite values"):
        evaluate_sysu(**{**args, "distmat": np.full((2, 5), np.nan)})
    with pytest.raises(ValueError, match="'g_pid' must have length 5"):
        evaluate_sysu(**{**args, "g_pid": POOL_PID[:4]})


# --- RegDB ---------------------------------------------------------------------------


def test_regdb_hand_built_both_directions():
    # Visible -> thermal: q0 (pid 1): gallery t0 pid 1 .4, t1 pid 2 .1, t2 pid 1 .2
    #   order t1, t2 ✓, t0 ✓ -> ranks 2, 3: AP = (1/2 + 2/3)/2 = 0.583333, INP = 2/3
    # q1 (pid 2): .3, .5, .9 -> t0 (1), t1 ✓ (2), t2 (1): rank 2: AP = 1/2, INP = 1/2
    # mAP = (0.583333 + 0.5)/2 = 0.541667; mINP = (2/3 + 1/2)/2 = 0.583333; CMC 0, 1, 1
    d = np.array([[0.4, 0.1, 0.2], [0.3, 0.5, 0.9]])
    v2t = evaluate_regdb(d, [1, 2], [1, 2, 1], direction="v2t", max_rank=3)
    assert v2t["direction"] == "v2t"
    assert v2t["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 2) / 2, abs=1e-12)
    assert v2t["mINP"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-12)
    assert v2t["cmc"].tolist() == [0.0, 1.0, 1.0]
    # Thermal -> visible with the transposed matrix: queries t0 (1), t1 (2), t2 (1).
    # t0: .4 (1 ✓), .3 (2) -> order v1, v0 ✓: rank 2, AP 1/2
    # t1: .1 (1), .5 (2 ✓) -> rank 2, AP 1/2;  t2: .2 (1 ✓), .9 -> rank 1, AP 1
    # mAP = 2/3, CMC 1/3, 1
    t2v = evaluate_regdb(d.T, [1, 2, 1], [1, 2], direction="t2v", max_rank=2)
    assert t2v["direction"] == "t2v"
    assert t2v["mAP"] == pytest.approx(2 / 3, abs=1e-12)
    assert t2v["cmc"].tolist() == pytest.approx([1 / 3, 1.0])


def test_regdb_removes_nothing():
    # Even a gallery image of the query's identity at distance 0 stays (different camera).
    out = evaluate_regdb([[0.0, 0.5]], [3], [3, 4], max_rank=2)
    assert out["mAP"] == 1.0 and out["cmc"].tolist() == [1.0, 1.0]


def test_regdb_modalities_checked_against_direction():
    d = np.array([[0.1, 0.2]])
    ok = evaluate_regdb(d, [1], [1, 2], "v2t", q_modality=[0], g_modality=[1, 1])
    assert ok["mAP"] == 1.0
    ok = evaluate_regdb(d, [1], [1, 2], "t2v", q_modality=[1], g_modality=[0, 0])
    assert ok["mAP"] == 1.0
    with pytest.raises(ValueError, match=r"direction='v2t' needs 'q_modality' to be all visible"):
        evaluate_regdb(d, [1], [1, 2], "v2t", q_modality=[1])
    with pytest.raises(ValueError, match=r"direction='t2v' needs 'g_modality' to be all visible"):
        evaluate_regdb(d, [1], [1, 2], "t2v", g_modality=[0, 1])
    with pytest.raises(ValueError, match=r"'g_modality' must have length 2"):
        evaluate_regdb(d, [1], [1, 2], "t2v", g_modality=[0])


def test_regdb_direction_validated():
    with pytest.raises(ValueError, match=r"Could not resolve direction='x2y' among choices"):
        evaluate_regdb([[0.1]], [1], [1], direction="x2y")


def test_regdb_ten_splits_aggregate():
    # One model per split: here, ten random splits aggregated by aggregate_trials.
    rng = np.random.default_rng(0)
    results = []
    for _ in range(10):
        d = rng.random((20, 20))
        pid = np.repeat(np.arange(10), 2)
        results.append(evaluate_regdb(d, pid, pid, "v2t", max_rank=20))
    agg = aggregate_trials(results)
    maps = np.array([r["mAP"] for r in results])
    assert agg["num_trials"] == 10
    assert agg["mean"]["mAP"] == pytest.approx(maps.mean())
    assert agg["std"]["mAP"] == pytest.approx(maps.std())
    r1 = np.array([float(r["cmc"][0]) for r in results])
    assert agg["mean"]["rank1"] == pytest.approx(r1.mean())


# --- aggregation -----------------------------------------------------------------------


def test_aggregate_trials_hand_computed():
    # rank1: 0.5, 0.7 -> mean 0.6, population std 0.1, sample std 0.141421
    # mAP: 0.4, 0.6 -> mean 0.5, std 0.1; mINP: 0.2, 0.4 -> 0.3, 0.1
    a = {"cmc": torch.tensor([0.5, 1.0]), "mAP": 0.4, "mINP": 0.2}
    b = {"cmc": torch.tensor([0.7, 1.0]), "mAP": 0.6, "mINP": 0.4}
    agg = aggregate_trials([a, b])
    assert set(agg["mean"]) == {"rank1", "mAP", "mINP"}  # rank5.. exceed the CMC length
    assert agg["mean"]["rank1"] == pytest.approx(0.6)
    assert agg["std"]["rank1"] == pytest.approx(0.1)
    assert agg["mean"]["mAP"] == pytest.approx(0.5) and agg["std"]["mAP"] == pytest.approx(0.1)
    assert agg["mean"]["mINP"] == pytest.approx(0.3) and agg["std"]["mINP"] == pytest.approx(0.1)
    assert agg["cmc"].tolist() == pytest.approx([0.6, 1.0])
    sample = aggregate_trials([a, b], ranks=(2,), ddof=1)
    assert sample["std"]["mAP"] == pytest.approx(0.2 / np.sqrt(2))
    assert set(sample["mean"]) == {"rank2", "mAP", "mINP"}
    assert aggregate_trials([a])["std"]["mAP"] == 0.0


def test_aggregate_trials_validation():
    a = {"cmc": torch.tensor([0.5, 1.0]), "mAP": 0.4, "mINP": 0.2}
    with pytest.raises(ValueError, match="'results' must be a non-empty list"):
        aggregate_trials([])
    with pytest.raises(ValueError, match="'results' must be a non-empty list of metric dicts"):
        aggregate_trials(a)
    with pytest.raises(ValueError, match=r"'results\[1\]' lacks the keys \['mINP'\]"):
        aggregate_trials([a, {"cmc": torch.ones(2), "mAP": 0.1}])
    with pytest.raises(ValueError, match="must have equal lengths"):
        aggregate_trials([a, {**a, "cmc": torch.ones(3)}])
    with pytest.raises(ValueError, match=r"'ddof' must be <= 1 \(2 trial\(s\)\)"):
        aggregate_trials([a, a], ddof=2)
    with pytest.raises(ValueError, match="'ranks' must be >= 1"):
        aggregate_trials([a], ranks=(0,))


def test_docstring_examples():
    result = doctest.testmod(protocols_mod, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted >= 4 and result.failed == 0
