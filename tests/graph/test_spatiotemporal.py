"""Tests of the spatio-temporal graph (G-Fusion Eq. 1-5) and attach_nodes (Eq. 16)."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch_geometric.data import Data

from reidgraph.graph.edge_types import SPATIOTEMPORAL as ST
from reidgraph.graph.edge_types import VISUAL as V
from reidgraph.graph.knn import knn_graph
from reidgraph.graph.spatiotemporal import (
    SpatioTemporalGraph,
    attach_nodes,
    spatiotemporal_graph,
)
from reidgraph.graph.transitions import TransitionSet

# Five nodes, three cameras. Features on a line 0, 0.1, 0.25, 1.0, 1.2 give the rankings
# (self excluded, squared distance in brackets):
#   0: 1 (.01)   2 (.0625) 3 (1.0)   4 (1.44)
#   1: 0 (.01)   2 (.0225) 3 (.81)   4 (1.21)
#   2: 1 (.0225) 0 (.0625) 3 (.5625) 4 (.9025)
#   3: 4 (.04)   2 (.5625) 1 (.81)   0 (1.0)
#   4: 3 (.04)   2 (.9025) 1 (1.21)  0 (1.44)
# camid = [0, 1, 2, 0, 1], time = [10, 14, 30, 12, 14.8] s.
# T fitted with k_s = 2 (pairs (0,1) (1,0) (2,1) (3,4) (4,3), value t_i - t_j):
#   T(0,1) = {10-14, 12-14.8} = {-4, -2.8};  T(1,0) = {2.8, 4};  T(2,1) = {30-14} = {16}.
# E_st candidates (ranks k_s+1..k_l = 2..4, counting self as rank 1), delta = 1:
#   0 (cam 0): 2 cam 2, T(0,2) empty; 3 same cam; 4 cam 1: dt = 10-14.8 = -4.8,
#              [-5.8, -3.8] holds -4 -> edge 4 -> 0 (ST)
#   1 (cam 1): 2 T(1,2) empty; 3 cam 0: dt = 14-12 = 2, [1, 3] holds 2.8 -> edge 3 -> 1;
#              4 same cam
#   2 (cam 2): 0, 3 T(2,0) empty; 4 cam 1: dt = 30-14.8 = 15.2, [14.2, 16.2] holds 16 -> 4 -> 2
#   3 (cam 0): 2 empty; 1 cam 1: dt = 12-14 = -2, [-3, -1] holds -2.8 -> 1 -> 3; 0 same cam
#   4 (cam 1): 2 empty; 1 same cam; 0 cam 0: dt = 4.8, [3.8, 5.8] holds 4 -> 0 -> 4
X = torch.tensor([[0.0], [0.1], [0.25], [1.0], [1.2]])
CAM = torch.tensor([0, 1, 2, 0, 1])
TIME = torch.tensor([10.0, 14.0, 30.0, 12.0, 14.8], dtype=torch.float64)
PID = torch.tensor([0, 0, 1, 2, 2])

HAND_EDGES = [[1, 4, 0, 3, 1, 4, 4, 1, 3, 0], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]]
HAND_TYPES = [V, ST, V, ST, V, ST, V, ST, V, ST]
HAND_SQDIST = [0.01, 1.44, 0.01, 0.81, 0.0225, 0.9025, 0.04, 0.81, 0.04, 1.44]


def _data(**kw):
    return Data(x=X, camid=CAM, time=TIME, pid=PID, **kw)


def test_spatiotemporal_graph_by_hand():
    g = spatiotemporal_graph(_data(), k_s=2, k_l=5, delta=1.0, backend="torch")
    assert g.edge_index.tolist() == HAND_EDGES
    assert g.edge_type.tolist() == HAND_TYPES
    expected = torch.exp(-torch.tensor(HAND_SQDIST) / 2)  # Eq. 2 with alpha = 1
    assert torch.allclose(g.edge_weight, expected, atol=1e-5)
    g2 = spatiotemporal_graph(_data(), k_s=2, k_l=5, alpha=0.5, backend="torch")
    assert torch.allclose(g2.edge_weight, torch.exp(-torch.tensor(HAND_SQDIST) / 0.5), atol=1e-5)
    g.validate()


def test_k_l_limits_candidates():
    # k_l = 4 keeps ranks 2..3 only: the ST edges at rank 3 are 3 -> 1 and 1 -> 3.
    g = spatiotemporal_graph(_data(), k_s=2, k_l=4, backend="torch")
    st = g.edge_index[:, g.edge_type == ST].t().tolist()
    assert st == [[3, 1], [1, 3]]
    # k_l = 3: no candidate passes, the graph equals the visual kNN graph with k = k_s.
    g = spatiotemporal_graph(_data(), k_s=2, k_l=3, backend="torch")
    vis = knn_graph(_data(), k=2, backend="torch")
    assert torch.equal(g.edge_index, vis.edge_index)
    assert torch.allclose(g.edge_weight, vis.edge_weight)
    # k_l = k_s: no candidates at all.
    g = spatiotemporal_graph(_data(), k_s=2, k_l=2, backend="torch")
    assert g.edge_type.tolist() == [V] * 5


def test_narrow_window_drops_st_edges():
    # delta = 0.1 s: the closest hit above is 0.8 s away (e.g. |-4.8 - (-4)|), so no ST edges.
    g = spatiotemporal_graph(_data(), k_s=2, k_l=5, delta=0.1, backend="torch")
    assert g.edge_type.tolist() == [V] * 5


def test_given_transitions_are_used_not_refit():
    # Only T(2,1) = {16}: of the hand edges only 4 -> 2 (dt = 15.2) survives.
    T = TransitionSet.from_pairs(
        torch.tensor([2, 1]), torch.tensor([30.0, 14.0]), torch.tensor([[0], [1]]), num_cameras=3
    )
    g = spatiotemporal_graph(_data(), k_s=2, k_l=5, transitions=T, backend="torch")
    assert g.edge_index[:, g.edge_type == ST].t().tolist() == [[4, 2]]
    # transitions=None equals fitting on the data itself with the same k_s.
    fitted = TransitionSet.fit(_data(), k_s=2, backend="torch")
    g_none = spatiotemporal_graph(_data(), k_s=2, k_l=5, backend="torch")
    g_fit = spatiotemporal_graph(_data(), k_s=2, k_l=5, transitions=fitted, backend="torch")
    assert torch.equal(g_none.edge_index, g_fit.edge_index)


def test_symmetric_by_hand():
    g = spatiotemporal_graph(_data(), k_s=2, k_l=5, symmetric=True, backend="torch")
    s = {
        tuple(e): math.exp(-d / 2)
        for e, d in zip(zip(*HAND_EDGES, strict=True), HAND_SQDIST, strict=True)
    }
    # Pairs linked both ways keep S_ij; one-way pairs (1->2 visual, 4->2 ST) get S_ij / 2.
    expected = {
        (0, 1): (s[(0, 1)], V), (0, 4): (s[(0, 4)], ST), (1, 0): (s[(1, 0)], V),
        (1, 2): (s[(1, 2)] / 2, V), (1, 3): (s[(1, 3)], ST), (2, 1): (s[(1, 2)] / 2, V),
        (2, 4): (s[(4, 2)] / 2, ST), (3, 1): (s[(3, 1)], ST), (3, 4): (s[(3, 4)], V),
        (4, 0): (s[(4, 0)], ST), (4, 2): (s[(4, 2)] / 2, ST), (4, 3): (s[(4, 3)], V),
    }  # fmt: skip
    got = {
        (j, i): (w, t)
        for (j, i), w, t in zip(
            g.edge_index.t().tolist(), g.edge_weight.tolist(), g.edge_type.tolist(), strict=True
        )
    }
    assert set(got) == set(expected)
    for key, (w, t) in expected.items():
        assert got[key][1] == t
        assert math.isclose(got[key][0], w, abs_tol=1e-5)


def _brute_st_edges(x, cam, time, k_s, k_l, delta, alpha):
    """Independent reference: dense distances, Python sorting and loops."""
    n = len(cam)
    dist = [
        [sum((a - b) ** 2 for a, b in zip(x[i], x[j], strict=True)) for j in range(n)]
        for i in range(n)
    ]
    ranked = [sorted(range(n), key=lambda j, i=i: dist[i][j]) for i in range(n)]
    sets: dict[tuple[int, int], list[float]] = {}
    for i in range(n):
        for j in ranked[i][:k_s]:
            if cam[i] != cam[j]:
                sets.setdefault((cam[i], cam[j]), []).append(time[i] - time[j])
    edges = {}
    for i in range(n):
        assert ranked[i][0] == i
        for r, j in enumerate(ranked[i][:k_l]):
            if j == i:
                continue
            w = math.exp(-dist[i][j] / (2 * alpha**2))
            if r < k_s:
                edges[(j, i)] = (w, V)
                continue
            if cam[i] == cam[j]:
                continue
            dt = time[i] - time[j]
            if any(dt - delta <= v <= dt + delta for v in sets.get((cam[i], cam[j]), [])):
                edges[(j, i)] = (w, ST)
    return edges


def _assert_same_edges(got, expected):
    """Same edge set and types; weights equal up to float32 rounding."""
    assert set(got) == set(expected)
    for key, (w, t) in expected.items():
        assert got[key][1] == t, key
        assert math.isclose(got[key][0], w, abs_tol=1e-5), key


def _random_world(n, num_cams, seed):
    rng = random.Random(seed)
    # Identities walk through cameras with a ~20 s transition, features cluster by identity.
    x, cam, time = [], [], []
    for i in range(n):
        person = i // 4
        x.append([person * 0.7 + rng.gauss(0, 0.25), rng.gauss(0, 0.25)])
        cam.append((person + i) % num_cams)
        time.append(person * 3.0 + (i % 4) * 20.0 + rng.uniform(-2, 2))
    return x, cam, time


@pytest.mark.parametrize("seed", [0, 1])
def test_spatiotemporal_matches_brute_force(seed):
    x, cam, time = _random_world(80, 4, seed)
    k_s, k_l, delta, alpha = 3, 12, 1.5, 0.8
    expected = _brute_st_edges(x, cam, time, k_s, k_l, delta, alpha)
    data = Data(x=torch.tensor(x), camid=torch.tensor(cam), time=torch.tensor(time))
    g = spatiotemporal_graph(data, k_s, k_l, delta, alpha, backend="torch")
    got = {
        (j, i): (w, t)
        for (j, i), w, t in zip(
            g.edge_index.t().tolist(), g.edge_weight.tolist(), g.edge_type.tolist(), strict=True
        )
    }
    _assert_same_edges(got, expected)
    assert sum(t == ST for _, t in got.values()) > 5  # ST edges really exercised


def test_input_not_mutated_and_transform():
    data = _data()
    g = SpatioTemporalGraph(k_s=2, k_l=5)(data)
    assert "edge_index" not in data
    assert g.edge_index.tolist() == HAND_EDGES
    assert torch.equal(g.pid, PID)
    assert repr(SpatioTemporalGraph(k_s=2, k_l=5, delta=0.5)) == (
        "SpatioTemporalGraph(k_s=2, k_l=5, delta=0.5, alpha=1.0, transitions=None, symmetric=False)"
    )
    g = spatiotemporal_graph(_data(edge_attr=torch.ones(2, 1)), k_s=2, k_l=3)
    assert g.edge_attr is None


def test_spatiotemporal_errors():
    with pytest.raises(TypeError, match="spatiotemporal_graph expects a torch_geometric"):
        spatiotemporal_graph(X)
    with pytest.raises(ValueError, match="spatiotemporal_graph needs node features 'x'"):
        spatiotemporal_graph(Data(camid=CAM, time=TIME))
    with pytest.raises(ValueError, match=r"spatiotemporal_graph needs 'camid' \(camera ids"):
        spatiotemporal_graph(Data(x=X, time=TIME), k_s=2, k_l=5)
    with pytest.raises(ValueError, match=r"spatiotemporal_graph needs 'time' \(timestamps"):
        spatiotemporal_graph(Data(x=X, camid=CAM), k_s=2, k_l=5)
    nan_time = TIME.clone()
    nan_time[0] = float("nan")
    with pytest.raises(ValueError, match="needs finite timestamps.*first at node 0"):
        spatiotemporal_graph(Data(x=X, camid=CAM, time=nan_time), k_s=2, k_l=5)
    with pytest.raises(ValueError, match=r"'k_l' must be <= 5 \(data has 5 nodes\)"):
        spatiotemporal_graph(_data())  # default k_l = 60 > N
    with pytest.raises(ValueError, match="'k_l' must be >= 'k_s'"):
        spatiotemporal_graph(_data(), k_s=3, k_l=2)
    with pytest.raises(ValueError, match="'k_s' must be >= 1"):
        spatiotemporal_graph(_data(), k_s=0, k_l=2)
    with pytest.raises(TypeError, match="'transitions' must be a TransitionSet"):
        spatiotemporal_graph(_data(), k_s=2, k_l=5, transitions={})
    with pytest.raises(ValueError, match="'delta' must be a finite number of seconds"):
        spatiotemporal_graph(_data(), k_s=2, k_l=5, delta=-0.5)
    with pytest.raises(ValueError, match="'alpha' must be a finite float > 0"):
        spatiotemporal_graph(_data(), k_s=2, k_l=5, alpha=0)
    with pytest.raises(TypeError, match="'symmetric' must be a bool"):
        spatiotemporal_graph(_data(), k_s=2, k_l=5, symmetric="no")
    with pytest.raises(TypeError, match="'data.camid' must be integer camera ids"):
        spatiotemporal_graph(Data(x=X, camid=CAM.float(), time=TIME), k_s=2, k_l=5)
    with pytest.raises(ValueError, match="'data.camid' must be 0-based camera ids >= 0"):
        spatiotemporal_graph(Data(x=X, camid=CAM - 1, time=TIME), k_s=2, k_l=5)
    two_cams = TransitionSet.from_pairs(
        torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), torch.tensor([[0], [1]])
    )
    with pytest.raises(ValueError, match=r"'data.camid' holds camera id\(s\) \[2\] that the"):
        spatiotemporal_graph(_data(), k_s=2, k_l=5, transitions=two_cams)


# ---------------------------------------------------------------------------- attach_nodes
# Queries: q0 at 0.04 (cam 2, t 30.5), q1 at 1.12 (cam 0, t 11).
#   q0 -> gallery squared distances: g0 .0016, g1 .0036, g2 .0441, g3 .9216, g4 1.3456
#      visual (k_s = 2 gallery images): g0, g1; candidates g2 (same cam), g3 (T(2,0) empty),
#      g4 (cam 1): dt = 30.5 - 14.8 = 15.7, [14.7, 16.7] holds 16 -> ST edge g4 -> q0
#   q1 -> g4 .0064, g3 .0144, g2 .7569, g1 1.0404, g0 1.2544
#      visual: g4, g3; candidates g2 (T(0,2) empty), g1 (cam 1): dt = 11 - 14 = -3,
#      [-4, -2] holds -4 and -2.8 -> ST edge g1 -> q1; g0 same camera.
QX = torch.tensor([[0.04], [1.12]])
QCAM = torch.tensor([2, 0])
QTIME = torch.tensor([30.5, 11.0], dtype=torch.float64)
QPID = torch.tensor([1, 2])


def _queries(**kw):
    return Data(x=QX, camid=QCAM, time=QTIME, pid=QPID, **kw)


def _gallery_and_T():
    T = TransitionSet.fit(_data(), k_s=2, backend="torch")
    return spatiotemporal_graph(_data(), k_s=2, k_l=5, transitions=T, backend="torch"), T


def test_attach_nodes_by_hand():
    gallery, T = _gallery_and_T()
    out = attach_nodes(gallery, _queries(), k_s=2, k_l=5, transitions=T, backend="torch")
    assert out.num_nodes == 7
    assert out.new_mask.tolist() == [False] * 5 + [True, True]
    assert torch.equal(out.x, torch.cat([X, QX]))
    assert out.camid.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert out.pid.tolist() == [0, 0, 1, 2, 2, 1, 2]
    assert out.time.tolist() == [10.0, 14.0, 30.0, 12.0, 14.8, 30.5, 11.0]
    # Gallery edges untouched and first; new edges only point into new nodes.
    assert out.edge_index[:, :10].tolist() == HAND_EDGES
    assert out.edge_index[:, 10:].tolist() == [[0, 1, 4, 4, 3, 1], [5, 5, 5, 6, 6, 6]]
    assert out.edge_type[10:].tolist() == [V, V, ST, V, V, ST]
    d = torch.tensor([0.0016, 0.0036, 1.3456, 0.0064, 0.0144, 1.0404])
    assert torch.allclose(out.edge_weight[10:], torch.exp(-d / 2), atol=1e-5)
    assert torch.equal(out.edge_weight[:10], gallery.edge_weight)
    out.validate()


def test_attach_nodes_visual_only():
    gallery, _ = _gallery_and_T()
    out = attach_nodes(gallery, _queries(), k_s=2, k_l=5, transitions=None, backend="torch")
    assert out.edge_index[:, 10:].tolist() == [[0, 1, 4, 3], [5, 5, 6, 6]]
    assert out.edge_type[10:].tolist() == [V] * 4


def test_attach_nodes_edgeless_graph():
    # An explicit num_nodes (as ReIDSplit.to_data stores it) must follow the new count.
    g = Data(x=X, camid=CAM, time=TIME, pid=PID, num_nodes=5)
    out = attach_nodes(g, _queries(num_nodes=2), k_s=1, k_l=1, transitions=None, backend="torch")
    assert out.edge_index.tolist() == [[0, 4], [5, 6]]  # nearest gallery node of each query
    assert out.num_nodes == 7
    out.validate()


def _brute_attach(xg, cg, tg, xq, cq, tq, T_sets, k_s, k_l, delta):
    n = len(xg)
    edges = {}
    for i in range(len(xq)):
        d = sorted(
            (sum((a - b) ** 2 for a, b in zip(xq[i], xg[j], strict=True)), j) for j in range(n)
        )
        for r, (dist, j) in enumerate(d[:k_l]):
            w = math.exp(-dist / 2)
            if r < k_s:
                edges[(j, n + i)] = (w, V)
            elif cq[i] != cg[j]:
                dt = tq[i] - tg[j]
                if any(dt - delta <= v <= dt + delta for v in T_sets.get((cq[i], cg[j]), [])):
                    edges[(j, n + i)] = (w, ST)
    return edges


def test_attach_nodes_matches_brute_force():
    x, cam, time = _random_world(72, 4, seed=5)
    xg, cg, tg = x[:60], cam[:60], time[:60]
    xq, cq, tq = x[60:], cam[60:], time[60:]
    gal = Data(x=torch.tensor(xg), camid=torch.tensor(cg), time=torch.tensor(tg))
    T = TransitionSet.fit(gal, k_s=3, backend="torch")
    T_sets = {(a, b): T.values(a, b).tolist() for a in range(4) for b in range(4)}
    graph = spatiotemporal_graph(gal, 3, 15, 2.0, transitions=T, symmetric=True, backend="torch")
    new = Data(x=torch.tensor(xq), camid=torch.tensor(cq), time=torch.tensor(tq))
    out = attach_nodes(graph, new, 3, 15, 2.0, transitions=T, backend="torch")
    e = graph.edge_index.size(1)
    got = {
        (j, i): (w, t)
        for (j, i), w, t in zip(
            out.edge_index[:, e:].t().tolist(),
            out.edge_weight[e:].tolist(),
            out.edge_type[e:].tolist(),
            strict=True,
        )
    }
    _assert_same_edges(got, _brute_attach(xg, cg, tg, xq, cq, tq, T_sets, 3, 15, 2.0))
    assert any(t == ST for _, t in got.values())
    assert torch.equal(out.edge_index[:, :e], graph.edge_index)


def test_attach_nodes_errors():
    gallery, T = _gallery_and_T()
    q = _queries()
    with pytest.raises(TypeError, match=r"attach_nodes \(graph\) expects a torch_geometric"):
        attach_nodes(X, q, transitions=T)
    with pytest.raises(TypeError, match=r"attach_nodes \(new\) expects a torch_geometric"):
        attach_nodes(gallery, QX, transitions=T)
    with pytest.raises(ValueError, match="'new.x' must have the gallery's feature dimension 1"):
        attach_nodes(gallery, Data(x=torch.zeros(2, 3)), transitions=None)
    with pytest.raises(ValueError, match=r"'k_l' must be <= 5 \(graph has 5 nodes\)"):
        attach_nodes(gallery, q, k_s=2, transitions=T)
    with pytest.raises(ValueError, match="'k_l' must be >= 'k_s'"):
        attach_nodes(gallery, q, k_s=3, k_l=2, transitions=T)
    with pytest.raises(TypeError, match="'transitions' must be a TransitionSet"):
        attach_nodes(gallery, q, k_s=2, k_l=5, transitions="fit")
    with pytest.raises(ValueError, match=r"only in graph \['pid'\], only in new \[\]"):
        attach_nodes(gallery, Data(x=QX, camid=QCAM, time=QTIME), k_s=2, k_l=5, transitions=T)
    with pytest.raises(ValueError, match=r"attach_nodes \(graph\) needs 'time'"):
        attach_nodes(Data(x=X, camid=CAM), Data(x=QX, camid=QCAM), k_s=2, k_l=5, transitions=T)
    with pytest.raises(ValueError, match=r"'new.camid' holds camera id\(s\) \[3\]"):
        attach_nodes(
            gallery, _queries().update({"camid": torch.tensor([3, 0])}), k_s=2, k_l=5, transitions=T
        )
    g2 = gallery.clone()
    g2.edge_weight = None
    with pytest.raises(ValueError, match="attach_nodes needs 'graph.edge_weight'"):
        attach_nodes(g2, q, k_s=2, k_l=5, transitions=T)
    g3 = gallery.clone()
    g3.edge_attr = torch.ones(10, 2)
    with pytest.raises(ValueError, match=r"cannot extend edge attribute\(s\) \['edge_attr'\]"):
        attach_nodes(g3, q, k_s=2, k_l=5, transitions=T)
    with pytest.raises(ValueError, match="'delta' must be a finite number"):
        attach_nodes(gallery, q, k_s=2, k_l=5, delta=float("inf"), transitions=T)


@pytest.mark.gpu
def test_spatiotemporal_cuda_matches_cpu():
    x, cam, time = _random_world(80, 4, seed=2)
    data = Data(x=torch.tensor(x), camid=torch.tensor(cam), time=torch.tensor(time))
    cpu = spatiotemporal_graph(data, 3, 12, 1.5, backend="torch")
    gpu = spatiotemporal_graph(data.to("cuda"), 3, 12, 1.5, backend="torch")
    assert gpu.edge_index.is_cuda
    assert torch.equal(cpu.edge_index, gpu.edge_index.cpu())
    assert torch.equal(cpu.edge_type, gpu.edge_type.cpu())


def test_transitions_from_the_same_search():
    # Hand values (header): with transition_k = 2 the fitted T is T(0,1) = {-4, -2.8},
    # T(1,0) = {2.8, 4}, T(2,1) = {16}; one search serves Eq. 3 and Eq. 4.
    g, T = spatiotemporal_graph(
        _data(), k_s=3, k_l=4, transition_k=2, backend="torch", return_transitions=True
    )
    assert T.values(0, 1).tolist() == pytest.approx([-4.0, -2.8])
    assert T.values(1, 0).tolist() == pytest.approx([2.8, 4.0])
    assert T.values(2, 1).tolist() == pytest.approx([16.0])
    assert T.num_transitions == 5 and T.k_s == 2
    # The same T as fitting it on its own (TransitionSet.fit runs its own top-2 search).
    assert T == TransitionSet.fit(_data(), k_s=2, backend="torch")
    # Default transition_k = k_s; a given T comes back unchanged.
    _, T3 = spatiotemporal_graph(_data(), k_s=3, k_l=4, backend="torch", return_transitions=True)
    assert T3 == TransitionSet.fit(_data(), k_s=3, backend="torch")
    _, same = spatiotemporal_graph(_data(), 2, 4, transitions=T, return_transitions=True)
    assert same is T
    with pytest.raises(ValueError, match=r"'transition_k' must be <= 4 \(T\(a, b\) is fitted"):
        spatiotemporal_graph(_data(), k_s=2, k_l=4, transition_k=5)
    with pytest.raises(TypeError, match="'return_transitions' must be a bool"):
        spatiotemporal_graph(_data(), k_s=2, k_l=4, return_transitions=1)
