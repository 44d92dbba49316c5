"""G-Fusion's camera-grouped targets (MM 2023, Eq. 10), the propagated target and the labeler.

Every expected value is either worked out by hand in a comment or computed by a
brute-force reference written here (dicts and dense numpy), independent of the
vectorised code under test.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from reidgraph.data import make_world
from reidgraph.graph import TransitionSet
from reidgraph.graph.edge_types import SPATIOTEMPORAL, VISUAL
from reidgraph.labelers import (
    GFusionAffinity,
    NoTimestampsError,
    SoftAffinity,
    camera_grouped_targets,
)
from reidgraph.labelers.gfusion import propagated_affinity
from reidgraph.nn.random_sage import RandomSAGE

FAST = dict(k_l=20, transition_k=10, channels=64)


# ----------------------------------------------------------------- references
def ref_targets(edge_index, affinity, camid, n):
    """Eq. 10 by brute force: {(j, i): M^(C_j)_ij} with the self edges."""
    camid = [int(c) for c in camid]
    nbrs = [dict() for _ in range(n)]
    for (j, i), a in zip(
        np.asarray(edge_index).T.tolist(), np.asarray(affinity).tolist(), strict=True
    ):
        if i == j:
            continue  # the anchor's own entry is fixed to 1, never a neighbour
        nbrs[i][j] = max(nbrs[i].get(j, 0.0), a)
    out = {}
    for i in range(n):
        out[(i, i)] = 1.0
        for j, a in nbrs[i].items():
            top = max(b for k, b in nbrs[i].items() if camid[k] == camid[j])
            out[(j, i)] = a / top
    return out


def as_dict(sup):
    ei = sup.edge_index.tolist()
    w = sup.weight.tolist()
    return {(ei[0][e], ei[1][e]): w[e] for e in range(len(w))}


def assert_dict_close(got, want, tol=1e-6):
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=tol, abs=tol), key


def ref_camera_normalized(edge_index, weight, camid, n):
    """Dense W: row i, column j holds w(j -> i) * (n_c / n_i) / sum of row i's camera-c weights."""
    rows = defaultdict(list)
    for (j, i), w in zip(
        np.asarray(edge_index).T.tolist(), np.asarray(weight).tolist(), strict=True
    ):
        if i != j:
            rows[i].append((j, w))
    W = np.zeros((n, n))
    for i, lst in rows.items():
        for c in {int(camid[j]) for j, _ in lst}:
            grp = [(j, w) for j, w in lst if int(camid[j]) == c]
            total = sum(w for _, w in grp)
            for j, w in grp:
                W[i, j] += w / total * len(grp) / len(lst)
    return W


def ref_propagated(edge_index, weight, camid, n, lam, top_k):
    """{(j, i): F_ij} for the top-k j != i of every row of F = (I - lam W)^-1 W, F_ij > 0."""
    W = ref_camera_normalized(edge_index, weight, camid, n)
    F = np.linalg.inv(np.eye(n) - lam * W) @ W
    out = {}
    for i in range(n):
        row = F[i].copy()
        row[i] = -np.inf
        for j in np.argsort(-row, kind="stable")[:top_k]:
            if row[j] > 0:
                out[(int(j), i)] = float(row[j])
    return out


def random_graph(n, num_cams, num_edges, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (num_edges,), generator=g)
    dst = torch.randint(0, n, (num_edges,), generator=g)
    aff = torch.rand(num_edges, generator=g) * 0.95 + 0.05
    camid = torch.randint(0, num_cams, (n,), generator=g)
    return torch.stack([src, dst]), aff, camid


# --------------------------------------------------------------- Eq. 10 targets
# Hand graph, 5 nodes, camid = [0, 0, 1, 1, 0]; edge j -> i holds M_ij.
HAND_EDGES = [
    # anchor 0: cam-0 neighbours 1 (.5), 4 (.25); cam-1 neighbours 2 (.8), 3 (.4)
    (1, 0, 0.5),
    (4, 0, 0.25),
    (2, 0, 0.8),
    (3, 0, 0.4),
    (2, 0, 0.6),  # duplicate of 2 -> 0: the larger 0.8 is kept
    (0, 0, 0.9),  # self loop in the input: dropped, the self target is 1
    # anchor 1: all neighbours in camera 0
    (0, 1, 0.3),
    (4, 1, 0.6),
    # anchor 2: cam-0 neighbours 0 (.7), 1 (.35); cam-1 neighbour 3 (.1 then .2)
    (3, 2, 0.1),
    (0, 2, 0.7),
    (1, 2, 0.35),
    (3, 2, 0.2),
    # anchor 3: no neighbour at all
    # anchor 4: cam-0 neighbour 1 (.05); cam-1 neighbours 2 (.9), 3 (.45)
    (2, 4, 0.9),
    (3, 4, 0.45),
    (1, 4, 0.05),
]
HAND_CAMID = torch.tensor([0, 0, 1, 1, 0])
# Worked out by hand (max over the anchor's neighbours in the camera, anchor excluded;
# were M_00 = 1 included, node 1's target for anchor 0 would be .5 instead of 1):
#   anchor 0: 1 -> .5/.5 = 1, 4 -> .25/.5 = .5, 2 -> .8/.8 = 1, 3 -> .4/.8 = .5, self 1
#   anchor 1: 0 -> .3/.6 = .5, 4 -> .6/.6 = 1, self 1
#   anchor 2: 0 -> .7/.7 = 1, 1 -> .35/.7 = .5, 3 -> .2/.2 = 1, self 1
#   anchor 3: self 1
#   anchor 4: 1 -> .05/.05 = 1, 2 -> .9/.9 = 1, 3 -> .45/.9 = .5, self 1
# sorted by anchor (edge_index[1]) then neighbour (edge_index[0]):
HAND_SRC = [0, 1, 2, 3, 4, 0, 1, 4, 0, 1, 2, 3, 3, 1, 2, 3, 4]
HAND_DST = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4, 4, 4]
HAND_W = [1, 1, 1, 0.5, 0.5, 0.5, 1, 1, 1, 0.5, 1, 1, 1, 1, 1, 0.5, 1]


def hand_inputs():
    ei = torch.tensor([[s for s, _, _ in HAND_EDGES], [d for _, d, _ in HAND_EDGES]])
    aff = torch.tensor([a for _, _, a in HAND_EDGES])
    return ei, aff, HAND_CAMID.clone()


def test_camera_grouped_targets_hand_graph():
    ei, aff, camid = hand_inputs()
    sup = camera_grouped_targets(ei, aff, camid)
    assert isinstance(sup, SoftAffinity)
    assert sup.num_nodes == 5
    assert sup.edge_index.tolist() == [HAND_SRC, HAND_DST]
    torch.testing.assert_close(sup.weight, torch.tensor(HAND_W, dtype=torch.float32))
    # the brute-force reference agrees with the hand values
    assert_dict_close(as_dict(sup), ref_targets(ei, aff, camid.tolist(), 5))


def test_camera_grouped_targets_docstring_example():
    # anchor 0 (cam 0): neighbours 1 (cam 0, .5), 2 and 3 (cam 1, .8, .4)
    # -> self 1, 1: .5/.5 = 1, 2: .8/.8 = 1, 3: .4/.8 = .5; nodes 1..3 keep only self edges
    sup = camera_grouped_targets(
        torch.tensor([[1, 2, 3], [0, 0, 0]]), torch.tensor([0.5, 0.8, 0.4]), [0, 0, 1, 1]
    )
    assert sup.edge_index.tolist() == [[0, 1, 2, 3, 1, 2, 3], [0, 0, 0, 0, 1, 2, 3]]
    assert sup.weight.tolist() == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]


def test_camera_grouped_targets_no_edges_and_extra_nodes():
    sup = camera_grouped_targets(
        torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), torch.tensor([0, 1, 1])
    )
    assert sup.edge_index.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert sup.weight.tolist() == [1.0, 1.0, 1.0]
    # num_nodes given explicitly, matching camid's length
    sup = camera_grouped_targets(torch.tensor([[1], [0]]), torch.tensor([0.3]), [1, 0], 2)
    # anchor 0's only neighbour is the max of its camera: 1
    assert sup.edge_index.tolist() == [[0, 1, 1], [0, 0, 1]]
    assert sup.weight.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("seed", [0, 1])
def test_camera_grouped_targets_random_graph_matches_brute_force(seed):
    n = 60
    ei, aff, camid = random_graph(n, num_cams=3, num_edges=500, seed=seed)
    # repeat some edges with other affinities to exercise the duplicate rule
    ei = torch.cat([ei, ei[:, :80]], dim=1)
    aff = torch.cat([aff, aff[:80].flip(0)])
    assert bool((ei[0] == ei[1]).any())  # the random graph holds self loops too
    sup = camera_grouped_targets(ei, aff, camid)
    assert_dict_close(as_dict(sup), ref_targets(ei, aff, camid.tolist(), n))

    src, dst = sup.edge_index
    key = dst * n + src
    assert bool((key.diff() > 0).all())  # sorted by anchor then neighbour, no duplicates
    self_edge = src == dst
    assert int(self_edge.sum()) == n
    assert bool((sup.weight[self_edge] == 1).all())
    assert bool((sup.weight > 0).all() & (sup.weight <= 1).all())
    # every (anchor, camera) group of neighbours has its maximum exactly 1
    groups = defaultdict(list)
    for s, d, w in zip(src.tolist(), dst.tolist(), sup.weight.tolist(), strict=True):
        if s != d:
            groups[(d, int(camid[s]))].append(w)
    assert groups and all(max(ws) == 1.0 for ws in groups.values())


def test_camera_grouped_targets_errors():
    ei, aff, camid = hand_inputs()
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\], got \(3, 15\)"):
        camera_grouped_targets(torch.cat([ei, ei[:1]]), aff, camid)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\]"):
        camera_grouped_targets(ei.flatten(), aff, camid)
    with pytest.raises(TypeError, match="'edge_index' must hold node ids, got dtype torch.float"):
        camera_grouped_targets(ei.float(), aff, camid)
    with pytest.raises(TypeError, match="'edge_index' must hold node ids"):
        camera_grouped_targets(ei.bool(), aff, camid)
    with pytest.raises(ValueError, match=r"'edge_index' must index nodes in \[0, 4\]"):
        camera_grouped_targets(torch.cat([ei, torch.tensor([[5], [0]])], 1), aff.repeat(2)[:16],
                               camid)  # fmt: skip
    with pytest.raises(ValueError, match=r"'edge_index' must index nodes in \[0, 4\]"):
        camera_grouped_targets(torch.cat([ei, torch.tensor([[0], [-1]])], 1), aff.repeat(2)[:16],
                               camid)  # fmt: skip
    with pytest.raises(ValueError, match="'affinity' must have length 15"):
        camera_grouped_targets(ei, aff[:-1], camid)
    with pytest.raises(TypeError, match="'affinity' must be floating point"):
        camera_grouped_targets(ei, torch.ones(15, dtype=torch.long), camid)
    for bad in (0.0, -0.2, float("nan"), float("inf")):
        bad_aff = aff.clone()
        bad_aff[3] = bad
        with pytest.raises(ValueError, match=r"'affinity' must be finite and > 0"):
            camera_grouped_targets(ei, bad_aff, camid)
    with pytest.raises(TypeError, match="'camid' must hold integer camera ids"):
        camera_grouped_targets(ei, aff, camid.float())
    with pytest.raises(ValueError, match=r"'camid' must be 0-based camera ids \(>= 0\), found -1"):
        camera_grouped_targets(ei, aff, torch.tensor([0, 0, 1, -1, 0]))
    with pytest.raises(ValueError, match="'camid' must have length 6"):
        camera_grouped_targets(ei, aff, camid, num_nodes=6)
    with pytest.raises(ValueError, match="'num_nodes' must be >= 1"):
        camera_grouped_targets(ei, aff, camid, num_nodes=0)
    with pytest.raises(TypeError, match="'num_nodes' must be an int"):
        camera_grouped_targets(ei, aff, camid, num_nodes=5.0)
    with pytest.raises(ValueError, match="'camid' is required"):
        camera_grouped_targets(ei, aff, None)


# ------------------------------------------------------------ propagated target
def test_propagated_affinity_hand_camera_normalisation():
    # anchor 0 with neighbours 1 (cam 0, w=1), 2 (cam 0, w=3), 3 (cam 1, w=4); n_0 = 3.
    # Camera 0 holds 2/3 of the row, camera 1 holds 1/3:
    #   W01 = 1/4 * 2/3 = 1/6, W02 = 3/4 * 2/3 = 1/2, W03 = 4/4 * 1/3 = 1/3 (sum 1)
    # (a plain row normalisation would give 1/8, 3/8, 1/2).
    # Rows 1..3 are empty, so W^2 = 0 and F = W for any lambda.
    ei = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 0]])  # plus a self loop, ignored
    w = torch.tensor([1.0, 3.0, 4.0, 5.0])
    idx, val = propagated_affinity(ei, w, torch.tensor([0, 0, 0, 1]), lam=0.5, top_k=3)
    assert idx.tolist() == [[2, 3, 1], [0, 0, 0]]  # top-k order, largest first
    torch.testing.assert_close(val, torch.tensor([1 / 2, 1 / 3, 1 / 6]))
    assert float(val.sum()) == pytest.approx(1.0, abs=1e-6)


def test_propagated_affinity_docstring_example():
    # path 0 - 1 - 2 in one camera; W rows (0: 1), (1: .75, .25), (2: 1).
    # The best other node of rows 0 and 2 is 1; of row 1 it is 0 (.75 > .25 and the
    # propagated mass keeps that order by symmetry of rows 0 and 2).
    ei = torch.tensor([[1, 0, 2, 1], [0, 1, 1, 2]])
    w = torch.tensor([1.0, 3.0, 1.0, 1.0])
    idx, val = propagated_affinity(ei, w, torch.zeros(3, dtype=torch.long), lam=0.5, top_k=1)
    assert idx.tolist() == [[1, 0, 1], [0, 1, 2]]
    want = ref_propagated(ei, w, [0, 0, 0], 3, 0.5, 1)
    assert_dict_close(
        dict(zip(zip(*idx.tolist(), strict=True), val.tolist(), strict=True)), want, tol=1e-5
    )


def _random_simple_graph(n, num_cams, in_degree, seed, isolated=()):
    """Every node but ``isolated`` gets ``in_degree`` distinct in-neighbours (no duplicates)."""
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for i in range(n):
        if i in isolated:
            continue
        others = rng.choice([j for j in range(n) if j != i], size=in_degree, replace=False)
        src.extend(others.tolist())
        dst.extend([i] * in_degree)
    w = rng.uniform(0.05, 1.0, size=len(src))
    camid = rng.integers(0, num_cams, size=n)
    return (
        torch.tensor([src, dst]),
        torch.tensor(w, dtype=torch.float32),
        torch.tensor(camid),
    )


@pytest.mark.parametrize(
    ("chunk_size", "dense_limit"),
    [(1024, 2048), (1024, 4), (7, 4)],  # batched dense solves; sparse LU (in chunks)
)
def test_propagated_affinity_matches_dense_inverse(chunk_size, dense_limit, monkeypatch):
    import reidgraph.labelers.gfusion as gf

    monkeypatch.setattr(gf, "_DENSE_COMPONENT", dense_limit)
    n, lam, k = 40, 0.9, 6
    ei, w, camid = _random_simple_graph(n, 3, 4, seed=3, isolated=(39,))
    idx, val = propagated_affinity(ei, w, camid, lam=lam, top_k=k, chunk_size=chunk_size)
    want = ref_propagated(ei, w, camid.numpy(), n, lam, k)
    got = dict(zip(zip(*idx.tolist(), strict=True), val.tolist(), strict=True))
    assert len(got) == idx.size(1)  # no duplicate (j, i)
    assert_dict_close(got, want, tol=1e-5)
    # anchor 39 has no in-edges: an empty row of W gives an empty row of F
    assert not bool((idx[1] == 39).any())
    assert int((idx[1] == 0).sum()) == k
    assert bool((idx[0] != idx[1]).all())


def test_propagated_affinity_rows_sum_to_one():
    # F = W + lam W^2 + ...; with a tiny lambda and top_k = N - 1 the kept entries of a
    # row are W's row up to O(lam), and every row of the camera-normalised W sums to 1.
    n, lam = 30, 1e-5
    ei, w, camid = _random_simple_graph(n, 3, 5, seed=11)
    idx, val = propagated_affinity(ei, w, camid, lam=lam, top_k=n - 1)
    sums = torch.zeros(n).index_add_(0, idx[1], val)
    torch.testing.assert_close(sums, torch.ones(n), atol=1e-4, rtol=0)
    # and the kept entries are the independent normalisation of W itself
    W = ref_camera_normalized(ei, w, camid.numpy(), n)
    assert np.allclose(W.sum(1), 1.0)
    got = torch.zeros(n, n).index_put_((idx[1], idx[0]), val).numpy()
    assert np.allclose(got, W, atol=1e-4)


def test_propagated_affinity_errors():
    ei = torch.tensor([[1, 0, 2, 1], [0, 1, 1, 2]])
    w = torch.tensor([1.0, 3.0, 1.0, 1.0])
    cam = torch.zeros(3, dtype=torch.long)
    for lam in (0.0, 1.0, -0.5, 1.5, True, "0.5", None):
        with pytest.raises(ValueError, match=r"'lam' must be a float in \(0, 1\)"):
            propagated_affinity(ei, w, cam, lam=lam, top_k=1)
    with pytest.raises(ValueError, match=r"'top_k' must be <= 2 \(the graph has 3 nodes\), got 3"):
        propagated_affinity(ei, w, cam, lam=0.5, top_k=3)
    with pytest.raises(ValueError, match="'top_k' must be >= 1, got 0"):
        propagated_affinity(ei, w, cam, lam=0.5, top_k=0)
    with pytest.raises(TypeError, match="'top_k' must be an int"):
        propagated_affinity(ei, w, cam, lam=0.5, top_k=1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        bad_w = w.clone()
        bad_w[2] = bad
        with pytest.raises(ValueError, match="'edge_weight' must be finite positive floats"):
            propagated_affinity(ei, bad_w, cam, lam=0.5, top_k=1)
    with pytest.raises(
        TypeError, match="'edge_weight' must be floating point, got dtype torch.int64"
    ):
        propagated_affinity(ei, torch.ones(4, dtype=torch.long), cam, lam=0.5, top_k=1)
    with pytest.raises(ValueError, match="'edge_weight' must have length 4"):
        propagated_affinity(ei, w[:3], cam, lam=0.5, top_k=1)
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1"):
        propagated_affinity(ei, w, cam, lam=0.5, top_k=1, chunk_size=0)
    with pytest.raises(ValueError, match=r"'edge_index' must index nodes in \[0, 2\]"):
        propagated_affinity(ei + 1, w, cam, lam=0.5, top_k=1)
    with pytest.raises(TypeError, match="'edge_index' must hold node ids"):
        propagated_affinity(ei.double(), w, cam, lam=0.5, top_k=1)
    with pytest.raises(ValueError, match="'camid' must be 0-based"):
        propagated_affinity(ei, w, torch.tensor([0, -2, 0]), lam=0.5, top_k=1)
    with pytest.raises(ValueError, match="'camid' must have length 4"):
        propagated_affinity(ei, w, cam, lam=0.5, top_k=1, num_nodes=4)


# -------------------------------------------------------------------- labeler
@pytest.fixture(scope="module")
def train():
    return make_world("tiny", seed=0, verbose=False).to_data("train")


def _spine(data, **drop_or_set):
    out = Data(x=data.x, camid=data.camid, time=data.time)
    for key, value in drop_or_set.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


def _check_supervision(sup, graph, camid, n):
    """Eq. 10's output form on the paper target: one self edge of weight 1 per node, the
    neighbours are exactly the graph's, and the best neighbour of each camera gets 1."""
    assert isinstance(sup, SoftAffinity) and sup.num_nodes == n
    src, dst = sup.edge_index
    assert bool(((dst * n + src).diff() > 0).all())
    loops = src == dst
    assert int(loops.sum()) == n and bool((sup.weight[loops] == 1).all())
    assert bool((sup.weight > 0).all() & (sup.weight <= 1).all())
    want = {(j, i) for j, i in graph.edge_index.t().tolist() if j != i}
    assert {(j, i) for j, i in sup.edge_index.t().tolist() if j != i} == want
    groups = defaultdict(float)
    for s, d, w in zip(src.tolist(), dst.tolist(), sup.weight.tolist(), strict=True):
        if s != d:
            groups[(d, int(camid[s]))] = max(groups[(d, int(camid[s]))], w)
    assert all(v == 1.0 for v in groups.values())


def test_labeler_visual_only_needs_no_time(train):
    n = train.num_nodes
    for data in (_spine(train, time=None), _spine(train, time=torch.full((n,), math.nan))):
        lab = GFusionAffinity(spatiotemporal=False, **FAST).fit(data)
        assert lab.transitions_ is None
        assert bool((lab.graph_.edge_type == VISUAL).all())
        assert lab.n_edges_ == lab.supervision_.num_edges
        _check_supervision(lab.supervision_, lab.graph_, train.camid, n)


def test_labeler_paper_target_is_eq10_of_random_sage_gaussian(train):
    # Rebuild steps 3-5 by hand on the labeler's own graph: RandomSAGE embeddings,
    # M_ij = exp(-|h_i - h_j|^2 / 2 alpha^2) (numpy), then the brute-force Eq. 10.
    alpha = 1.0
    lab = GFusionAffinity(alpha=alpha, **FAST).fit(train)
    g = lab.graph_
    sage = RandomSAGE(train.x.size(1), hidden_channels=64, out_channels=64, num_layers=2, seed=0)
    with torch.no_grad():
        h = sage(train.x.float(), g.edge_index, g.edge_weight).double().numpy()
    j, i = g.edge_index.numpy()
    m = np.exp(-((h[i] - h[j]) ** 2).sum(1) / (2 * alpha**2))
    want = ref_targets(g.edge_index, m, train.camid.tolist(), train.num_nodes)
    assert_dict_close(as_dict(lab.supervision_), want, tol=1e-4)


def test_labeler_spatiotemporal_graph(train):
    lab = GFusionAffinity(**FAST).fit(train)
    vis = GFusionAffinity(spatiotemporal=False, **FAST).fit(train)
    assert isinstance(lab.transitions_, TransitionSet)
    assert lab.transitions_.k_s == FAST["transition_k"]
    assert vis.transitions_ is None
    types = lab.graph_.edge_type
    assert int((types == SPATIOTEMPORAL).sum()) > 0
    assert lab.graph_.edge_index.size(1) > vis.graph_.edge_index.size(1)
    # same k_s: the visual graph's pairs all reappear in the fused graph
    fused = set(map(tuple, lab.graph_.edge_index.t().tolist()))
    assert set(map(tuple, vis.graph_.edge_index.t().tolist())) <= fused
    _check_supervision(lab.supervision_, lab.graph_, train.camid, train.num_nodes)


def test_labeler_missing_or_nan_time_raises(train):
    n = train.num_nodes
    with pytest.raises(NoTimestampsError, match=r"'data.time'.*missing.*spatiotemporal=False"):
        GFusionAffinity(**FAST).fit(_spine(train, time=None))
    nan_time = torch.full((n,), math.nan, dtype=torch.float64)
    with pytest.raises(NoTimestampsError, match=rf"{n} of {n} in 'data.time' are NaN/inf.*"
                       r"spatiotemporal=False"):  # fmt: skip
        GFusionAffinity(**FAST).fit(_spine(train, time=nan_time))
    one_bad = train.time.clone()
    one_bad[7] = math.inf
    with pytest.raises(NoTimestampsError, match=rf"1 of {n} in 'data.time'"):
        GFusionAffinity(**FAST).fit(_spine(train, time=one_bad))
    assert issubclass(NoTimestampsError, ValueError)


def test_labeler_input_errors(train):
    with pytest.raises(ValueError, match="needs 'data.camid'"):
        GFusionAffinity(spatiotemporal=False, **FAST).fit(Data(x=train.x))
    with pytest.raises(ValueError, match="Could not resolve target='graph'"):
        GFusionAffinity(target="graph", **FAST).fit(train)
    with pytest.raises(TypeError, match="'spatiotemporal' must be a bool, got int"):
        GFusionAffinity(spatiotemporal=1, **FAST).fit(train)
    with pytest.raises(TypeError, match="'transitions' must be a TransitionSet or None, got dict"):
        GFusionAffinity(transitions={}, **FAST).fit(train)
    fitted = GFusionAffinity(**FAST).fit(train).transitions_
    with pytest.raises(ValueError, match="'transitions' were given but spatiotemporal=False"):
        GFusionAffinity(spatiotemporal=False, transitions=fitted, **FAST).fit(train)


def test_labeler_propagated_target_matches_dense_reference(train):
    n, lam, k = train.num_nodes, 0.99, 5
    lab = GFusionAffinity(target="propagated", lam=lam, top_k=k, **FAST).fit(train)
    g = lab.graph_
    f = ref_propagated(g.edge_index, g.edge_weight.double(), train.camid.numpy(), n, lam, k)
    pairs = list(f)
    want = ref_targets(np.array(pairs).T, [f[p] for p in pairs], train.camid.tolist(), n)
    assert_dict_close(as_dict(lab.supervision_), want, tol=1e-4)
    # at most k neighbours + the self edge per anchor
    assert int(torch.bincount(lab.supervision_.edge_index[1]).max()) <= k + 1


def test_labeler_deterministic_and_seeded(train):
    a = GFusionAffinity(seed=3, **FAST).fit(train).supervision_
    b = GFusionAffinity(seed=3, **FAST).fit(train).supervision_
    c = GFusionAffinity(seed=4, **FAST).fit(train).supervision_
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.weight, b.weight)
    # another random projection: the same graph, other affinities
    assert torch.equal(a.edge_index, c.edge_index)
    assert not torch.allclose(a.weight, c.weight)


def _without_pair(T, a, b):
    """A copy of T with T(a, b) and T(b, a) emptied, through the public constructor."""
    c = T.num_cameras
    values, ptr = [], [0]
    for p in range(c * c):
        x, y = divmod(p, c)
        v = torch.zeros(0, dtype=torch.float64) if {x, y} == {a, b} else T.values(x, y)
        values.append(v)
        ptr.append(ptr[-1] + v.numel())
    return TransitionSet(torch.cat(values), torch.tensor(ptr), c, T.k_s)


def test_labeler_empty_camera_pair_gets_no_spatiotemporal_edge(train):
    fitted = GFusionAffinity(**FAST).fit(train)
    cam = train.camid

    def st_pairs(graph):
        st = graph.edge_type == SPATIOTEMPORAL
        j, i = graph.edge_index[:, st]
        return {frozenset((int(x), int(y))) for x, y in zip(cam[j], cam[i], strict=True)}

    assert frozenset((0, 1)) in st_pairs(fitted.graph_)  # the test below means something
    T = _without_pair(fitted.transitions_, 0, 1)
    assert T.counts()[0, 1] == 0 and T.counts()[1, 0] == 0 and T.counts()[0, 2] > 0
    lab = GFusionAffinity(transitions=T, **FAST).fit(train)
    assert lab.transitions_ is T
    pairs = st_pairs(lab.graph_)
    assert frozenset((0, 1)) not in pairs
    assert pairs  # the other camera pairs still have spatio-temporal edges
    _check_supervision(lab.supervision_, lab.graph_, cam, train.num_nodes)


def test_propagated_affinity_many_components_match_dense_inverse(monkeypatch):
    # Several components of different sizes (different dense buckets, and with a small dense
    # limit some solved by sparse LU), the edges of one never reaching another.
    import reidgraph.labelers.gfusion as gf

    parts, offset = [], 0
    for size, seed in ((3, 0), (9, 1), (17, 2), (30, 3)):
        ei, w, cam = _random_simple_graph(size, 2, min(3, size - 1), seed=seed)
        parts.append((ei + offset, w, cam))
        offset += size
    ei = torch.cat([p[0] for p in parts], 1)
    w = torch.cat([p[1] for p in parts])
    camid = torch.cat([p[2] for p in parts])
    want = ref_propagated(ei, w, camid.numpy(), offset, 0.95, 5)
    for limit in (2048, 10):
        monkeypatch.setattr(gf, "_DENSE_COMPONENT", limit)
        idx, val = propagated_affinity(ei, w, camid, lam=0.95, top_k=5)
        got = dict(zip(zip(*idx.tolist(), strict=True), val.tolist(), strict=True))
        assert_dict_close(got, want, tol=1e-5)
