"""Tests for TLift (QAConv-TLift Sec. 4, Eq. 3; the public code's pivot rule, REFERENCE_NOTES A.1).

References used here, written independently of the implementation:

* a hand-worked case with every co-occurrence set, threshold, pivot and weight
  computed by hand in the comments;
* ``per_probe_tlift``: a per-probe loop that follows the public algorithm step
  by step (sort the whole co-occurrence block, take its K-th largest value,
  keep every entry at or above it, average the Gaussian kernel);
* scikit-learn's ``LogisticRegression`` for :func:`fit_sigmoid`.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from reidgraph.rerank.tlift import (
    SCORE_KINDS,
    TLIFT_PRESETS,
    fit_sigmoid,
    scores_from_distance,
    tlift,
)

# `reidgraph.rerank` exports the function `tlift`, which shadows the submodule attribute.
tlift_module = importlib.import_module("reidgraph.rerank.tlift")


def per_probe_tlift(score, q_cam, g_cam, q_time, g_time, tau, sigma, k, alpha):
    """One probe at a time, as the public code does; numpy float64."""
    score = np.asarray(score, dtype=np.float64)
    q_cam, g_cam = np.asarray(q_cam), np.asarray(g_cam)
    q_time, g_time = np.asarray(q_time, dtype=np.float64), np.asarray(g_time, dtype=np.float64)
    weight = np.zeros_like(score)
    for i in range(score.shape[0]):
        # co-occurring probes: same camera, |dt| < tau (the probe itself included)
        near = np.flatnonzero((q_cam == q_cam[i]) & (np.abs(q_time - q_time[i]) < tau))
        for g in np.unique(g_cam):
            cols = np.flatnonzero(g_cam == g)
            block = score[np.ix_(near, cols)]
            ranked = np.sort(block, axis=None)
            thr = ranked[-k] if ranked.size > k else ranked[0]
            pivots = cols[np.nonzero(block >= thr)[1]]  # one per entry: duplicates kept
            for j in cols:
                weight[i, j] = np.mean(np.exp(-((g_time[j] - g_time[pivots]) ** 2) / sigma**2))
    return (weight + alpha) * score


def random_problem(seed, n_q=40, n_g=150, cams=3, span=600.0, levels=None):
    rng = np.random.default_rng(seed)
    score = rng.random((n_q, n_g))
    if levels is not None:  # quantised scores: many ties, also at the K-th value
        score = np.round(score * levels) / levels
    return (
        score,
        rng.integers(0, cams, n_q),
        rng.integers(0, cams, n_g),
        rng.random(n_q) * span,
        rng.random(n_g) * span,
    )


# ---------------------------------------------------------------------------------------------
# Hand-worked cases
# ---------------------------------------------------------------------------------------------


def test_hand_worked_case():
    # Probes: q0 (cam 0, t=0), q1 (cam 0, t=50), q2 (cam 1, t=0).
    # Gallery: g0 (cam 0, t=100), g1 (cam 1, t=0), g2 (cam 1, t=100), g3 (cam 1, t=300).
    # tau = 60, sigma = 100, K = 3, alpha = 0.5; kernel exp(-dt^2 / 100^2).
    score = torch.tensor(
        [
            [0.30, 0.90, 0.20, 0.40],  # q0
            [0.10, 0.85, 0.80, 0.60],  # q1
            [0.70, 0.15, 0.25, 0.35],  # q2
        ],
        dtype=torch.float64,
    )
    e = math.exp
    # Co-occurrence: R(q0) = R(q1) = {q0, q1} (|0 - 50| = 50 < 60); R(q2) = {q2}.
    # q0, q1 / camera 0: block [0.30, 0.10] has 2 <= K entries -> threshold = its minimum,
    #   pivots g0, g0 -> w(g0) = 1.
    # q0, q1 / camera 1: block {0.90, 0.20, 0.40, 0.85, 0.80, 0.60}, 3rd largest = 0.80 ->
    #   pivots (q0,g1) 0.90, (q1,g1) 0.85, (q1,g2) 0.80: times 0, 0, 100 (g1 counted twice).
    w01 = [(2 + e(-1)) / 3, (2 * e(-1) + 1) / 3, (2 * e(-9) + e(-4)) / 3]  # g1, g2, g3
    # q2 / camera 0: block [0.70] -> pivot g0 -> w(g0) = 1.
    # q2 / camera 1: block [0.15, 0.25, 0.35] has 3 entries, not more than K -> threshold =
    #   minimum 0.15 -> pivots g1, g2, g3 (times 0, 100, 300).
    w2 = [(1 + e(-1) + e(-9)) / 3, (e(-1) + 1 + e(-4)) / 3, (e(-9) + e(-4) + 1) / 3]
    weight = torch.tensor([[1.0, *w01], [1.0, *w01], [1.0, *w2]], dtype=torch.float64)
    expected = (weight + 0.5) * score
    # spot values: out[q0, g1] = (0.789293 + 0.5) * 0.90 = 1.160364; out[q2, g0] = 1.5 * 0.7
    assert expected[0, 1].item() == pytest.approx(1.1603638, abs=1e-6)
    assert expected[2, 0].item() == pytest.approx(1.05, abs=1e-12)

    out = tlift(
        score,
        [0, 0, 1],
        [0, 1, 1, 1],
        [0.0, 50.0, 0.0],
        [100.0, 0.0, 100.0, 300.0],
        tau=60.0,
        sigma=100.0,
        k=3,
        alpha=0.5,
    )
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    # Duplicates count: without them w(g1) would be (1 + e^-1) / 2 = 0.684, not 0.789.
    assert abs(w01[0] - (1 + e(-1)) / 2) > 0.1


def test_tie_at_threshold_adds_every_tied_entry():
    # One probe, gallery g0 (t=0), g1 (t=100), g2 (t=200) in its own camera, K = 1.
    # Block [0.5, 0.5, 0.1]: the largest value 0.5 occurs twice -> both are pivots (|P| = 2 > K).
    # w(g0) = (1 + e^-1) / 2, w(g1) = (e^-1 + 1) / 2, w(g2) = (e^-4 + e^-1) / 2; alpha = 0.
    e = math.exp
    out = tlift(
        torch.tensor([[0.5, 0.5, 0.1]], dtype=torch.float64),
        [0],
        [0, 0, 0],
        [0.0],
        [0.0, 100.0, 200.0],
        tau=10.0,
        sigma=100.0,
        k=1,
        alpha=0.0,
    )
    expected = torch.tensor(
        [[0.5 * (1 + e(-1)) / 2, 0.5 * (1 + e(-1)) / 2, 0.1 * (e(-4) + e(-1)) / 2]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_tie_in_a_row_below_the_block_threshold_is_not_a_pivot():
    # Probes q0, q1 co-occur (cam 0, t = 0 and 5); gallery cam 0 at t = 0, 100, 200; K = 1.
    # q0 row [0.9, 0.2, 0.2], q1 row [0.3, 0.3, 0.1]: q1's top value 0.3 is tied, but the
    # block's largest value is 0.9 -> the only pivot is (q0, g0), for both probes.
    # w = [1, e^-1, e^-4] for both rows; alpha = 0.2.
    score = torch.tensor([[0.9, 0.2, 0.2], [0.3, 0.3, 0.1]], dtype=torch.float64)
    out = tlift(score, [0, 0], [0, 0, 0], [0.0, 5.0], [0.0, 100.0, 200.0],
                tau=10.0, sigma=100.0, k=1, alpha=0.2)  # fmt: skip
    w = torch.tensor([1.0, math.exp(-1), math.exp(-4)], dtype=torch.float64)
    torch.testing.assert_close(out, (w + 0.2) * score, rtol=1e-12, atol=1e-12)


def test_window_is_strict_and_within_camera():
    # |t_i - t_j| < tau is strict: probes 100 s apart do not co-occur with tau = 100, and a
    # probe of another camera at the same time never co-occurs.
    # q0 (cam 0, t=0): R = {q0} -> its own top retrieval g0 (t=0) is the pivot (K = 1);
    # q1 (cam 0, t=100): R = {q1} -> pivot g1 (t=300); q2 (cam 1, t=0): R = {q2} -> pivot g1.
    score = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]], dtype=torch.float64)
    out = tlift(score, [0, 0, 1], [0, 0], [0.0, 100.0, 0.0], [0.0, 300.0],
                tau=100.0, sigma=100.0, k=1, alpha=0.0)  # fmt: skip
    e9 = math.exp(-9)  # (300 - 0)^2 / 100^2 = 9
    expected = torch.tensor([[1.0, e9], [e9, 1.0], [e9, 1.0]], dtype=torch.float64) * score
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-300)


def test_window_boundary_decided_like_the_reference_on_frame_clocks():
    # Market-style times frame / 25: many probe pairs are exactly 2500 frames (tau = 100 s) or
    # 2499 frames apart, where the float64 difference may round either way; the co-occurrence
    # sets must follow the reference's |t_i - t_j| < tau evaluated in float64.
    rng = np.random.default_rng(21)
    frames = rng.choice(np.arange(0, 20000, 833), 40) + rng.integers(0, 2, 40) * 2500
    q_time = frames / 25.0
    score = rng.random((40, 60))
    q_cam, g_cam = rng.integers(0, 2, 40), rng.integers(0, 2, 60)
    g_time = rng.integers(0, 20000, 60) / 25.0
    expected = per_probe_tlift(score, q_cam, g_cam, q_time, g_time, 100.0, 200.0, 3, 0.2)
    out = tlift(score, q_cam, g_cam, q_time, g_time, k=3)
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Agreement with the per-probe reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["code", "paper"])
@pytest.mark.parametrize("levels", [None, 8])
def test_presets_agree_with_per_probe_reference(preset, levels):
    # Times over 1500 s: windows of tau = 100 hold several probes, and blocks have more than
    # K = 100 entries for the paper preset.
    data = random_problem(seed=3, n_q=60, n_g=240, cams=3, span=1500.0, levels=levels)
    p = TLIFT_PRESETS[preset]
    expected = per_probe_tlift(*data, p.tau, p.sigma, p.k, p.alpha)
    out = tlift(*(torch.as_tensor(a) for a in data), preset=preset)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


def test_preset_values_and_overrides():
    assert TLIFT_PRESETS["code"] == tlift_module.TLiftParams(
        tau=100.0, sigma=200.0, k=10, alpha=0.2
    )
    assert TLIFT_PRESETS["paper"] == tlift_module.TLiftParams(
        tau=100.0, sigma=100.0, k=100, alpha=0.1
    )
    data = random_problem(seed=4, n_q=30, n_g=90, span=400.0)
    expected = per_probe_tlift(*data, 100.0, 100.0, 5, 0.1)  # paper preset with K = 5
    out = tlift(*data, preset="paper", k=5)
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_random_small_problems_agree(seed):
    rng = np.random.default_rng(100 + seed)
    n_q, n_g, cams = int(rng.integers(1, 30)), int(rng.integers(1, 60)), int(rng.integers(1, 5))
    data = random_problem(seed, n_q, n_g, cams, span=float(rng.choice([50.0, 500.0])),
                          levels=[None, 2, 5][seed % 3])  # fmt: skip
    k = int(rng.integers(1, 12))
    tau, sigma, alpha = float(rng.choice([1e-3, 30.0, 1e4])), float(rng.choice([20.0, 90.0])), 0.3
    expected = per_probe_tlift(*data, tau, sigma, k, alpha)
    out = tlift(*data, tau=tau, sigma=sigma, k=k, alpha=alpha)
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


def test_tiny_memory_budgets_give_the_same_result(monkeypatch):
    # Forces one-row bands, one-row chunks and one-column kernel blocks.
    monkeypatch.setattr(tlift_module, "_CACHE_BYTES", 8)
    monkeypatch.setattr(tlift_module, "_BLOCK_BYTES", 8)
    data = random_problem(seed=7, n_q=25, n_g=70, cams=3, span=300.0, levels=4)
    expected = per_probe_tlift(*data, 100.0, 200.0, 10, 0.2)
    out = tlift(*data, max_memory=1)
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


def test_float32_numpy_input_and_gallery_camera_without_probes():
    # Camera 3 has gallery images only, camera 2 probes only; float32 in -> float32 out.
    score, q_cam, g_cam, q_t, g_t = random_problem(seed=8, n_q=50, n_g=200, cams=3, span=800.0)
    g_cam[:20] = 3
    q_cam[:5] = 2
    g_cam[g_cam == 2] = 1
    score32 = score.astype(np.float32)
    out = tlift(score32, q_cam, g_cam, q_t, g_t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    expected = per_probe_tlift(
        score32.astype(np.float64), q_cam, g_cam, q_t, g_t, 100, 200, 10, 0.2
    )
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=1e-6, atol=1e-7)


def test_half_precision_keeps_its_dtype_and_integer_times_work():
    score, q_cam, g_cam, q_t, g_t = random_problem(seed=9, n_q=20, n_g=50, span=300.0, levels=16)
    out = tlift(torch.tensor(score, dtype=torch.float16), q_cam, g_cam,
                q_t.astype(np.int64), g_t.astype(np.int64))  # fmt: skip
    assert out.dtype == torch.float16
    expected = per_probe_tlift(score, q_cam, g_cam, q_t.astype(np.int64), g_t.astype(np.int64),
                               100, 200, 10, 0.2)  # fmt: skip
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), rtol=2e-3, atol=1e-3)


def test_far_pivots_floor_only_negligible_kernel_values():
    # sigma = 1 s and a 100 s gap: the kernel e^-10000 underflows; the lifted score is alpha * s
    # up to the documented floor (e^-80 in float32, e^-700 in float64).
    score = torch.tensor([[0.9, 0.5]])
    out = tlift(score, [0], [0, 0], [0.0], [0.0, 100.0], sigma=1.0, k=1, alpha=0.1)
    assert out[0, 0].item() == pytest.approx((1.0 + 0.1) * 0.9, rel=1e-6)
    assert out[0, 1].item() == pytest.approx(0.1 * 0.5, rel=1e-6)
    out0 = tlift(score.double(), [0], [0, 0], [0.0], [0.0, 100.0], sigma=1.0, k=1, alpha=0.0)
    assert 0.0 <= out0[0, 1].item() <= 1e-300
    # One column per block: the block of column 1 has no pivot within sigma * sqrt(80) and
    # skips the kernel; the reference's exp(-10^8) is exactly 0 there.
    out = tlift(score, [0], [0, 0], [0.0], [0.0, 1e4], sigma=1.0, k=1, alpha=0.1, max_memory=1)
    torch.testing.assert_close(out, torch.tensor([[1.1 * 0.9, 0.1 * 0.5]]), rtol=1e-7, atol=0.0)
    data = random_problem(seed=13, n_q=20, n_g=60, cams=2, span=5000.0)
    expected = per_probe_tlift(*data, 100.0, 5.0, 3, 0.2)
    out = tlift(*data, sigma=5.0, k=3, max_memory=1)
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    data = random_problem(seed=11, n_q=300, n_g=2000, cams=6, span=3000.0)
    cpu = tlift(torch.tensor(data[0], dtype=torch.float32), *data[1:])
    gpu = tlift(*(torch.as_tensor(a).cuda() for a in (data[0].astype(np.float32), *data[1:])))
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

GOOD = (np.full((2, 3), 0.5), [0, 1], [0, 1, 1], [0.0, 1.0], [0.0, 1.0, 2.0])


def call(**change):
    names = ("score", "q_camid", "g_camid", "q_time", "g_time")
    args = dict(zip(names, GOOD, strict=True))
    kwargs = {k: v for k, v in change.items() if k not in names}
    args.update({k: v for k, v in change.items() if k in names})
    return tlift(*args.values(), **kwargs)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_score_outside_unit_interval_is_refused(bad):
    score = np.full((2, 3), 0.5)
    score[1, 2] = bad
    with pytest.raises(ValueError, match=r"'score' must lie in \[0, 1\].*sigmoid.*1 - a distance"):
        call(score=score)


def test_score_nan_and_shape():
    score = np.full((2, 3), 0.5)
    score[0, 0] = np.nan
    with pytest.raises(ValueError, match="'score' must contain only finite values"):
        call(score=score)
    with pytest.raises(ValueError, match="'score' must be two-dimensional"):
        call(score=np.full(3, 0.5))


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("q_camid", [0, 1, 1], "rows of 'score'"),
        ("g_camid", [0, 1], "columns of 'score'"),
        ("q_time", [0.0], "rows of 'score'"),
        ("g_time", [0.0, 1.0, 2.0, 3.0], "columns of 'score'"),
    ],
)
def test_length_mismatch_names_the_argument(name, value, what):
    with pytest.raises(ValueError, match=rf"'{name}' must have length .*{what}"):
        call(**{name: value})


@pytest.mark.parametrize("name", ["q_time", "g_time"])
def test_missing_timestamps_are_refused(name):
    value = list(GOOD[3] if name == "q_time" else GOOD[4])
    value[0] = float("nan")
    with pytest.raises(ValueError, match=rf"'{name}' must hold a finite timestamp.*TLift needs"):
        call(**{name: value})
    value[0] = float("inf")
    with pytest.raises(ValueError, match=rf"'{name}'.*1 NaN/inf"):
        call(**{name: value})


def test_bad_camera_ids():
    with pytest.raises(TypeError, match="'q_camid' must hold integer camera ids"):
        call(q_camid=[0.0, 1.0])
    with pytest.raises(ValueError, match="'g_camid' must hold 0-based camera ids"):
        call(g_camid=[0, -1, 1])
    with pytest.raises(TypeError, match="'g_time' must hold timestamps"):
        call(g_time=[True, False, True])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tau": -1.0}, ValueError, "'tau' must be > 0"),
        ({"tau": 0}, ValueError, "'tau' must be > 0"),
        ({"sigma": -5.0}, ValueError, "'sigma' must be > 0"),
        ({"sigma": float("nan")}, ValueError, "'sigma' must be finite"),
        ({"k": 0}, ValueError, "'k' must be >= 1"),
        ({"k": -3}, ValueError, "'k' must be >= 1"),
        ({"k": 2.5}, TypeError, "'k' must be an int"),
        ({"alpha": -0.1}, ValueError, "'alpha' must be >= 0"),
        ({"tau": "100"}, TypeError, "'tau' must be a real number"),
        ({"preset": "eccv"}, ValueError, r"Could not resolve preset='eccv' among"),
        ({"max_memory": 0}, ValueError, "'max_memory' must be >= 1"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        call(**kwargs)


def test_tensor_scalar_parameters_are_accepted():
    data = random_problem(seed=12, n_q=10, n_g=30)
    expected = per_probe_tlift(*data, 50.0, 100.0, 4, 0.2)
    out = tlift(*data, tau=torch.tensor(50.0), sigma=np.float32(100.0), k=np.int64(4))
    torch.testing.assert_close(out, torch.from_numpy(expected), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# scores_from_distance and fit_sigmoid
# ---------------------------------------------------------------------------------------------


def test_scores_from_distance_kinds():
    assert SCORE_KINDS == ("rerank", "cosine", "sigmoid")
    d = torch.tensor([[0.0, 0.4, 1.0]])
    torch.testing.assert_close(scores_from_distance(d), torch.tensor([[1.0, 0.6, 0.0]]))
    torch.testing.assert_close(
        scores_from_distance(torch.tensor([[0.0, 1.0, 2.0]]), "cosine"),
        torch.tensor([[1.0, 0.5, 0.0]]),
    )
    # sigmoid(-(d - d0) / T): d = d0 -> 0.5; d = d0 - T -> 1 / (1 + e^-1) = 0.731059
    s = scores_from_distance(torch.tensor([[0.3, 0.1]]), "sigmoid", shift=0.3, temperature=0.2)
    torch.testing.assert_close(s, torch.tensor([[0.5, 0.7310586]]))
    # rounding just outside the range is clamped
    assert scores_from_distance(torch.tensor([[-1e-7, 1.0 + 1e-7]])).tolist() == [[1.0, 0.0]]


def test_scores_from_distance_errors():
    with pytest.raises(ValueError, match=r"'dist' of kind 'rerank' must lie in \[0, 1\]"):
        scores_from_distance(torch.tensor([[0.0, 1.5]]))
    with pytest.raises(ValueError, match=r"'dist' of kind 'cosine' must lie in \[0, 2\]"):
        scores_from_distance(torch.tensor([[-0.5, 1.0]]), "cosine")
    with pytest.raises(ValueError, match="Could not resolve kind='logit'"):
        scores_from_distance(torch.tensor([[0.0]]), "logit")
    with pytest.raises(ValueError, match="'temperature' must be > 0"):
        scores_from_distance(torch.tensor([[0.0]]), "sigmoid", temperature=0.0)
    with pytest.raises(ValueError, match="'dist' must contain only finite values"):
        scores_from_distance(torch.tensor([[float("nan")]]))


@pytest.mark.parametrize("l2", [1e-3, 1.0, 30.0])
def test_fit_sigmoid_matches_scikit_learn(l2):
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.1
    d = np.where(y, rng.normal(0.4, 0.15, 3000), rng.normal(0.9, 0.15, 3000))
    shift, temperature = fit_sigmoid(d, y, l2=l2)
    model = LogisticRegression(C=1.0 / l2, tol=1e-12, max_iter=10000).fit(-d[:, None], y)
    w, b = model.coef_[0, 0], model.intercept_[0]
    assert temperature == pytest.approx(1.0 / w, rel=1e-5)
    assert shift == pytest.approx(b / w, rel=1e-5)


def test_fit_sigmoid_errors():
    with pytest.raises(ValueError, match="'dist', 'positive' must have equal lengths"):
        fit_sigmoid([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="must hold both matches and non-matches"):
        fit_sigmoid([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="matches are not closer than non-matches"):
        fit_sigmoid([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], l2=0.0)
    with pytest.raises(ValueError, match="'positive' must hold labels 0/1"):
        fit_sigmoid([0.1, 0.2], [0.5, 1.0])
    with pytest.raises(ValueError, match="'positive' must hold labels 0/1"):
        fit_sigmoid([0.1, 0.2], [2, 0])
    with pytest.raises(ValueError, match="'dist' must contain only finite values"):
        fit_sigmoid([0.1, float("nan")], [1, 0])


# ---------------------------------------------------------------------------------------------
# Direction on the synthetic world (Table 3: TLift adds to the matching scores)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_scores():
    from reidgraph.data.synthetic import make_world

    world = make_world("small", seed=0)
    q, g, train = world.to_data("query"), world.to_data("gallery"), world.to_data("train")
    # Calibrated match probabilities (Platt scaling on the training split's cross-camera pairs),
    # the analogue of QAConv's sigmoid scores.
    # (every 4th training image against all: ~1.4M pairs, plenty for two parameters)
    a = slice(None, None, 4)
    cross = train.camid[a, None] != train.camid[None, :]
    same = train.pid[a, None] == train.pid[None, :]
    dist_train = 1.0 - train.x[a] @ train.x.T
    shift, temperature = fit_sigmoid(dist_train[cross], same[cross])

    def calibrate(a, b):
        return scores_from_distance(
            1.0 - a.x @ b.x.T, "sigmoid", shift=shift, temperature=temperature
        )

    def shuffled(t, cam, seed):  # permute timestamps within each camera
        gen = torch.Generator().manual_seed(seed)
        out = t.clone()
        for c in cam.unique():
            ix = (cam == c).nonzero().view(-1)
            out[ix] = t[ix[torch.randperm(ix.numel(), generator=gen)]]
        return out

    return (
        q,
        g,
        calibrate(q, g),
        shuffled(q.time, q.camid, 1),
        shuffled(g.time, g.camid, 2),
        calibrate,
    )


def _map(sim, q, g):
    from reidgraph.eval import evaluate

    return evaluate(-sim, q.pid, g.pid, q.camid, g.camid)["mAP"]


@pytest.mark.parametrize(
    # measured (small world, seed 0): baseline 0.672; code 0.797, shuffled 0.696;
    # paper 0.738, shuffled 0.672
    ("preset", "min_gain"),
    [("code", 0.08), ("paper", 0.04)],
)
def test_tlift_improves_map_and_survives_shuffled_time(world_scores, preset, min_gain):
    q, g, score, q_shuf, g_shuf, _ = world_scores
    assert 0.001 < score.mean().item() < 0.1  # the regime the authors' docstring asks for
    base = _map(score, q, g)
    lifted = _map(tlift(score, q.camid, g.camid, q.time, g.time, preset=preset), q, g)
    control = _map(tlift(score, q.camid, g.camid, q_shuf, g_shuf, preset=preset), q, g)
    assert lifted >= base + min_gain
    assert control >= base - 0.03  # no collapse without informative time
    assert lifted >= control + 0.05  # the gain comes from the timestamps


def test_tlift_after_k_reciprocal_improves_map(world_scores):
    # The authors' pipeline (reid/evaluators.py): sigmoid scores -> k-reciprocal re-ranking of
    # 1 - score -> 1 - re-ranked distance -> TLift.
    # Measured (small world, seed 0): baseline 0.672, RR 0.687, RR + TLift 0.780, shuffled 0.681.
    kr = pytest.importorskip("reidgraph.rerank.k_reciprocal")
    q, g, score, q_shuf, g_shuf, calibrate = world_scores
    rr = kr.k_reciprocal(1.0 - score, 1.0 - calibrate(q, q), 1.0 - calibrate(g, g))
    rr_score = scores_from_distance(rr, "rerank")
    base = _map(rr_score, q, g)
    lifted = _map(tlift(rr_score, q.camid, g.camid, q.time, g.time), q, g)
    control = _map(tlift(rr_score, q.camid, g.camid, q_shuf, g_shuf), q, g)
    assert lifted >= base + 0.05
    assert control >= base - 0.03
