"""G-Fusion's camera-grouped affinity distillation (MM 2023, Sec. 3.3, Eq. 12-13).

Expected values come from a hand-worked example (numbers in the comments) and from a
brute-force loop over anchors, cameras and neighbours written here in float64 numpy.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from reidgraph.labelers import SoftAffinity
from reidgraph.losses import CameraGroupedDistillation, camera_grouped_distillation

MODES = ("neighbours", "camera")


# ----------------------------------------------------------------- reference
def ref_loss(feats, index, targets, memory, camid, tau, mode):
    """Eq. 12-13 literally: -1/B sum_i sum_c sum_{j in N(i), C_j = c} M_ij log P^(c)(I_j | f_i)."""
    feats = np.asarray(feats, dtype=np.float64)
    memory = np.asarray(memory, dtype=np.float64)
    camid = [int(c) for c in camid]
    nbrs = defaultdict(list)  # anchor i -> [(j, M_ij)], the self edge included
    src, dst = targets.edge_index.tolist()
    for j, i, w in zip(src, dst, targets.weight.tolist(), strict=True):
        nbrs[i].append((j, w))
    total = 0.0
    for b, i in enumerate(np.asarray(index).tolist()):
        f = feats[b] / np.linalg.norm(feats[b])
        for c in sorted(set(camid)):
            group = [(j, w) for j, w in nbrs[i] if camid[j] == c]
            if not group:
                continue
            if mode == "neighbours":
                pool = [j for j, _ in group]
            else:
                pool = [k for k in range(len(camid)) if camid[k] == c]
            denom = sum(math.exp(memory[k] @ f / tau) for k in pool)
            for j, w in group:
                total -= w * math.log(math.exp(memory[j] @ f / tau) / denom)
    return total / len(index)


def random_problem(seed, n=30, num_cams=3, dim=8, batch=7):
    rng = np.random.default_rng(seed)
    camid = rng.integers(0, num_cams, size=n)
    camid[:num_cams] = np.arange(num_cams)  # every camera present
    src, dst, w = [], [], []
    for i in range(n):
        k = 0 if i == 5 else int(rng.integers(1, 7))  # anchor 5: its self edge only
        others = rng.choice([j for j in range(n) if j != i], size=k, replace=False)
        row = sorted([(i, 1.0)] + [(int(j), float(rng.uniform(0.05, 1.0))) for j in others])
        for j, x in row:
            src.append(j)
            dst.append(i)
            w.append(x)
    targets = SoftAffinity(torch.tensor([src, dst]), torch.tensor(w), n)
    memory = rng.normal(size=(n, dim))
    memory /= np.linalg.norm(memory, axis=1, keepdims=True)
    feats = rng.normal(size=(batch, dim))
    index = rng.choice(n, size=batch, replace=False)
    index[-1] = index[0]  # a repeated sample
    index[1] = 5
    return (
        torch.tensor(feats, dtype=torch.float32),
        torch.tensor(index),
        targets,
        torch.tensor(memory, dtype=torch.float32),
        torch.tensor(camid),
    )


# --------------------------------------------------------------- hand example
# N = 4, camid = [0, 0, 1, 1], memory rows m0 = (1, 0), m1 = (0, 1), m2 = (1, 0), m3 = (-1, 0).
# Targets: anchor 0 -> self (1), 1 (cam 0, .5), 2 (cam 1, 1); anchor 3 -> self only.
# Batch [0, 3], feats (2, 0) and (0, 3), normalised to (1, 0) and (0, 1); tau = 1.
# Anchor 0 logits m.f: l0 = 1, l1 = 0, l2 = 1, l3 = -1.
#   "neighbours": cam 0 over {0, 1}: lse = log(e + 1) = 1.3132617;
#                 cam 1 over {2}: log P = 0 (a one-member group)
#     L_0 = -(1 (1 - 1.3132617) + .5 (0 - 1.3132617)) = 0.9698925
#   "camera":     cam 1 over all of {2, 3}: lse = log(e + 1/e) = 1.1269280
#     L_0 = 0.9698925 - (1 - 1.1269280) = 1.0968205
# Anchor 3 logits: m2.f = 0, m3.f = 0.
#   "neighbours": one-member group -> 0;  "camera": -log(1/2) = 0.6931472
# Loss = (L_0 + L_3) / 2: "neighbours" 0.4849462, "camera" 0.8949839.
HAND_MEMORY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
HAND_CAMID = torch.tensor([0, 0, 1, 1])
HAND_TARGETS = SoftAffinity(
    torch.tensor([[0, 1, 2, 3], [0, 0, 0, 3]]), torch.tensor([1.0, 0.5, 1.0, 1.0]), 4
)
HAND_FEATS = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
HAND_INDEX = torch.tensor([0, 3])
HAND_LOSS = {"neighbours": 0.4849462, "camera": 0.8949839}


@pytest.mark.parametrize("mode", MODES)
def test_hand_example(mode):
    loss = camera_grouped_distillation(
        HAND_FEATS, HAND_INDEX, HAND_TARGETS, HAND_MEMORY, HAND_CAMID, 1.0, softmax_over=mode
    )
    assert loss.dim() == 0
    assert float(loss) == pytest.approx(HAND_LOSS[mode], abs=1e-6)
    want = ref_loss(HAND_FEATS, HAND_INDEX, HAND_TARGETS, HAND_MEMORY, HAND_CAMID, 1.0, mode)
    assert want == pytest.approx(HAND_LOSS[mode], abs=1e-6)


def test_docstring_example():
    # -(1 * log(e / (e + 1)) + .5 * log(1 / (e + 1))) = 1.5 log(1 + e) - 1 = 0.9698925
    t = SoftAffinity(torch.tensor([[0, 1], [0, 0]]), torch.tensor([1.0, 0.5]), 2)
    mem = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = camera_grouped_distillation(
        mem[:1], torch.tensor([0]), t, mem, torch.tensor([0, 0]), temperature=1.0
    )
    assert float(loss) == pytest.approx(1.5 * math.log(1 + math.e) - 1, abs=1e-6)


def test_one_member_group_contributes_zero_in_neighbours_mode():
    # anchor 3 alone in its group: log(exp(l) / exp(l)) = 0 whatever the features
    feats = torch.tensor([[0.3, -2.0]])
    args = (feats, torch.tensor([3]), HAND_TARGETS, HAND_MEMORY, HAND_CAMID, 0.05)
    assert float(camera_grouped_distillation(*args, softmax_over="neighbours")) == 0.0
    # with the camera's whole memory the other camera-1 row is a negative: > 0
    assert float(camera_grouped_distillation(*args, softmax_over="camera")) > 0.0


# ------------------------------------------------------------ brute force
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(mode, seed):
    feats, index, targets, memory, camid = random_problem(seed)
    for tau in (0.05, 0.5):
        got = camera_grouped_distillation(feats, index, targets, memory, camid, tau,
                                          softmax_over=mode)  # fmt: skip
        want = ref_loss(feats, index, targets, memory, camid, tau, mode)
        assert float(got) == pytest.approx(want, rel=1e-5, abs=1e-5)
        # float64 inputs compute in float64
        got64 = camera_grouped_distillation(feats.double(), index, targets, memory.double(),
                                            camid, tau, softmax_over=mode)  # fmt: skip
        assert got64.dtype == torch.float64
        assert float(got64) == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_modes_differ_and_default_is_camera():
    feats, index, targets, memory, camid = random_problem(4)
    default = camera_grouped_distillation(feats, index, targets, memory, camid)
    want_nb = ref_loss(feats, index, targets, memory, camid, 0.05, "neighbours")
    want_cam = ref_loss(feats, index, targets, memory, camid, 0.05, "camera")
    assert float(default) == pytest.approx(want_cam, rel=1e-5)
    assert abs(want_nb - want_cam) > 1e-3
    # the softmax_over choice is case-insensitive
    got = camera_grouped_distillation(
        feats, index, targets, memory, camid, softmax_over="NEIGHBOURS"
    )
    assert float(got) == pytest.approx(want_nb, rel=1e-5)


# --------------------------------------------------------------- gradients
@pytest.mark.parametrize("mode", MODES)
def test_gradient_reaches_feats_not_memory(mode):
    feats, index, targets, memory, camid = random_problem(5)
    feats.requires_grad_(True)
    memory.requires_grad_(True)
    loss = camera_grouped_distillation(feats, index, targets, memory, camid, softmax_over=mode)
    loss.backward()
    assert feats.grad is not None and bool(torch.isfinite(feats.grad).all())
    assert float(feats.grad.abs().sum()) > 0
    assert memory.grad is None  # the memory bank is updated by Eq. 14, not by the gradient


@pytest.mark.parametrize("mode", MODES)
def test_gradient_matches_finite_differences(mode):
    feats, index, targets, memory, camid = random_problem(6)
    feats = feats.double().requires_grad_(True)
    memory = memory.double()

    def f(x):
        return camera_grouped_distillation(x, index, targets, memory, camid, 0.5, softmax_over=mode)

    assert torch.autograd.gradcheck(f, (feats,), eps=1e-6, atol=1e-6)


# -------------------------------------------------------------- module form
@pytest.mark.parametrize("mode", MODES)
def test_module_equals_function(mode):
    feats, index, targets, memory, camid = random_problem(7)
    module = CameraGroupedDistillation(temperature=0.1, softmax_over=mode)
    want = ref_loss(feats, index, targets, memory, camid, 0.1, mode)
    assert float(module(feats, index, targets, memory, camid)) == pytest.approx(want, rel=1e-5)
    fn = camera_grouped_distillation(feats, index, targets, memory, camid, 0.1, softmax_over=mode)
    assert torch.equal(module(feats, index, targets, memory, camid), fn)
    assert repr(module) == f"CameraGroupedDistillation(temperature=0.1, softmax_over='{mode}')"
    assert CameraGroupedDistillation().extra_repr() == "temperature=0.05, softmax_over='camera'"


def test_module_errors():
    with pytest.raises(ValueError, match="'temperature' must be > 0, got 0"):
        CameraGroupedDistillation(temperature=0)
    with pytest.raises(TypeError, match="'temperature' must be a float, got str"):
        CameraGroupedDistillation(temperature="0.05")
    with pytest.raises(ValueError, match="Could not resolve softmax_over='all'"):
        CameraGroupedDistillation(softmax_over="all")


# ------------------------------------------------------------------ errors
def test_errors():
    f, i, t, m, c = HAND_FEATS, HAND_INDEX, HAND_TARGETS, HAND_MEMORY, HAND_CAMID
    L = camera_grouped_distillation
    with pytest.raises(TypeError, match="'targets' must be a SoftAffinity.*got tuple"):
        L(f, i, (t.edge_index, t.weight), m, c)
    small = SoftAffinity(torch.tensor([[0], [0]]), torch.tensor([1.0]), 3)
    with pytest.raises(ValueError, match="'targets' covers 3 nodes but 'memory' has 4 rows"):
        L(f, i, small, m, c)
    with pytest.raises(
        ValueError, match=r"'feats' must have 2 columns \(the memory's dim\), got 3"
    ):
        L(torch.ones(2, 3), i, t, m, c)
    with pytest.raises(ValueError, match="'feats' must be two-dimensional"):
        L(f[0], i[:1], t, m, c)
    with pytest.raises(ValueError, match=r"'index' must lie in \[0, 3\], found \[0, 4\]"):
        L(f, torch.tensor([0, 4]), t, m, c)
    with pytest.raises(ValueError, match=r"'index' must lie in \[0, 3\], found \[-1, 3\]"):
        L(f, torch.tensor([-1, 3]), t, m, c)
    with pytest.raises(TypeError, match="'index' must hold sample indices, got dtype torch.float"):
        L(f, i.float(), t, m, c)
    with pytest.raises(TypeError, match="'index' must hold sample indices"):
        L(f, torch.tensor([True, False]), t, m, c)
    with pytest.raises(ValueError, match=r"'index' must have length 2 \(the number of rows"):
        L(f, torch.tensor([0, 3, 3]), t, m, c)
    with pytest.raises(ValueError, match="'camid' must have length 4"):
        L(f, i, t, m, c[:3])
    with pytest.raises(ValueError, match="'memory' must contain only finite values"):
        L(f, i, t, torch.where(m == 1, math.nan, m), c)
    with pytest.raises(ValueError, match="'memory' must be two-dimensional"):
        L(f, i, t, m.flatten(), c)
    with pytest.raises(ValueError, match="Could not resolve softmax_over='cameras'"):
        L(f, i, t, m, c, softmax_over="cameras")
    for tau in (0.0, -0.05):
        with pytest.raises(ValueError, match="'temperature' must be > 0"):
            L(f, i, t, m, c, tau)
    for tau in (True, None):
        with pytest.raises(TypeError, match="'temperature' must be a float"):
            L(f, i, t, m, c, tau)


# ------------------------------------------------------------ validation of the inputs
def test_unsorted_targets_are_rejected():
    # the hand targets with the edges permuted: the same set of weighted edges
    unsorted = SoftAffinity(
        torch.tensor([[3, 0, 1, 2], [3, 0, 0, 0]]), torch.tensor([1.0, 1.0, 0.5, 1.0]), 4
    )
    with pytest.raises(ValueError, match="sorted"):
        camera_grouped_distillation(HAND_FEATS, HAND_INDEX, unsorted, HAND_MEMORY, HAND_CAMID, 1.0)


def test_negative_camid_is_rejected():
    with pytest.raises(ValueError, match="'camid'"):
        camera_grouped_distillation(
            HAND_FEATS, HAND_INDEX, HAND_TARGETS, HAND_MEMORY, torch.tensor([0, 0, -1, 1])
        )


def test_float_camid_is_rejected():
    with pytest.raises(TypeError, match="'camid'"):
        camera_grouped_distillation(
            HAND_FEATS, HAND_INDEX, HAND_TARGETS, HAND_MEMORY, torch.tensor([0.0, 0.5, 1.0, 1.0])
        )
