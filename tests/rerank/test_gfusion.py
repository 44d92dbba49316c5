"""G-Fusion graph re-ranking (MM 2023, Sec. 3.4, Eq. 15-16) against hand-worked cases,
an independent dense evaluation of the equations, and the directions of Table 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from reidgraph.graph import TransitionSet
from reidgraph.nn import RandomSAGE
from reidgraph.rerank.gfusion import DEFAULT_CHANNELS, gfusion, gfusion_embeddings


def _fixed_model(weights: list[list[list[float]]]) -> RandomSAGE:
    """A RandomSAGE whose projections are the given matrices ([out, in] each)."""
    sizes = [len(weights[0][0])] + [len(w) for w in weights]
    model = RandomSAGE(sizes[0], sizes[1], sizes[-1], num_layers=len(weights), seed=0)
    for buf, w in zip(model.weights(), weights, strict=True):
        buf.copy_(torch.tensor(w))
    return model


# --------------------------------------------------------------------------- hand-worked
def test_one_layer_identity_projection_by_hand():
    # Gallery g0 = (0, 1), g1 = (1, 1); query q = (0.2, 1); k_s = 2, one layer, W = I.
    # Gallery graph: each node's top-2 (self counted) is itself and the other node, so
    # A*_{01} = S_01 = exp(-1/2) = 0.606531. With the self loop (1) and row normalisation:
    #   h_g0 = (1 * (0, 1) + 0.606531 * (1, 1)) / 1.606531 = (0.377541, 1)
    #   h_g1 = (0.606531 * (0, 1) + 1 * (1, 1)) / 1.606531 = (0.622459, 1)
    # The query attaches to its top-2 gallery images (both): S_q0 = exp(-0.04/2) = 0.980199,
    # S_q1 = exp(-0.64/2) = 0.726149, self 1:
    #   h_q = (0.980199 * (0, 1) + 0.726149 * (1, 1) + (0.2, 1)) / 2.706348 = (0.342214, 1)
    # ReLU keeps these (all >= 0). Distances: |0.342214 - 0.377541| = 0.035327,
    # |0.342214 - 0.622459| = 0.280246.
    gallery = Data(x=torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    query = Data(x=torch.tensor([[0.2, 1.0]]))
    model = _fixed_model([[[1.0, 0.0], [0.0, 1.0]]])
    dist = gfusion(query, gallery, k_s=2, k_l=2, model=model, backend="torch")
    torch.testing.assert_close(dist, torch.tensor([[0.035327, 0.280246]]), atol=1e-5, rtol=0)
    hq, hg = gfusion_embeddings(query, gallery, k_s=2, k_l=2, model=model, backend="torch")
    torch.testing.assert_close(
        hg, torch.tensor([[0.377541, 1.0], [0.622459, 1.0]]), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(hq, torch.tensor([[0.342214, 1.0]]), atol=1e-5, rtol=0)


# Five nodes, two cameras. Features (x, 1); times in seconds.
#   g0 = (0.0, 1) cam 0 t = 0      g1 = (0.1, 1) cam 0 t = 0.5
#   g2 = (1.0, 1) cam 1 t = 10     g3 = (1.2, 1) cam 1 t = 30
#   q  = (0.3, 1) cam 0 t = 0.8
# T(0, 1) = {-10}, T(1, 0) = {10}; k_s = 2 (self + 1), k_l = 3, delta = 1.
_GX = [[0.0, 1.0], [0.1, 1.0], [1.0, 1.0], [1.2, 1.0]]
_GCAM, _GT = [0, 0, 1, 1], [0.0, 0.5, 10.0, 30.0]
_QX, _QCAM, _QT = [[0.3, 1.0]], [0], [0.8]
# Squared distances: d01 = .01, d02 = 1, d03 = 1.44, d12 = .81, d13 = 1.21, d23 = .04;
# query: dq0 = .09, dq1 = .04, dq2 = .49, dq3 = .81.
# Gallery rows (target <- neighbours), Eq. 3-4:
#   g0: top-2 {g0, g1} -> visual g1; rank 3 is g2 (cam 1), dt = 0 - 10 = -10,
#       [-11, -9] meets T(0,1) = {-10} -> spatio-temporal g2.
#   g1: visual g0; rank 3 g2, dt = 0.5 - 10 = -9.5, [-10.5, -8.5] meets {-10} -> ST g2.
#   g2: visual g3; rank 3 g1 (cam 0), dt = 10 - 0.5 = 9.5, [8.5, 10.5] meets T(1,0) = {10}
#       -> ST g1.
#   g3: visual g2; rank 3 g1, dt = 30 - 0.5 = 29.5, [28.5, 30.5] misses {10} -> none.
# Query row (Eq. 16): top-2 gallery {g1, g0} visual; rank 3 g2, dt = 0.8 - 10 = -9.2,
#   [-10.2, -8.2] meets {-10} -> ST g2.
_ST_GALLERY_LINKS = [(0, 1), (0, 2), (1, 0), (1, 2), (2, 3), (2, 1), (3, 2)]  # (row, col)
_ST_QUERY_LINKS = [0, 1, 2]
_VIS_GALLERY_LINKS = [(0, 1), (1, 0), (2, 3), (3, 2)]
_VIS_QUERY_LINKS = [0, 1]


def _dense_reference(gallery_links, query_links, weights, alpha=1.0):
    """Eq. 2, 5, 6, 15, 16 evaluated densely with numpy from hand-listed links."""
    gx, qx = np.array(_GX), np.array(_QX)
    n_g = len(gx)

    def s(a, b):  # Eq. 2
        return math.exp(-float(((a - b) ** 2).sum()) / (2.0 * alpha**2))

    a = np.zeros((n_g, n_g))
    for i, j in gallery_links:
        a[i, j] = s(gx[i], gx[j])  # Eq. 5
    a_star = (a + a.T) / 2.0  # Eq. 6
    p = np.zeros((n_g + 1, n_g + 1))
    p[:n_g, :n_g] = a_star + np.eye(n_g)  # j in N(i) U i, S_ii = 1
    for j in query_links:
        p[n_g, j] = s(qx[0], gx[j])  # query rows are not halved (only receive)
    p[n_g, n_g] = 1.0
    p /= p.sum(1, keepdims=True)  # (D)^-1 A*, row normalisation
    h = np.vstack([gx, qx])
    for w in weights:  # Eq. 15 / 16: sigma(W . sum_j P_ij h_j)
        h = np.maximum(p @ h @ np.array(w).T, 0.0)
    return np.sqrt(((h[n_g] - h[:n_g]) ** 2).sum(1))[None, :]


_W = [[[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]], [[1.0, 0.5, 1.0], [-0.5, 1.0, -1.0]]]


def _five_node_data():
    g = Data(x=torch.tensor(_GX), camid=torch.tensor(_GCAM), time=torch.tensor(_GT))
    q = Data(x=torch.tensor(_QX), camid=torch.tensor(_QCAM), time=torch.tensor(_QT))
    transitions = TransitionSet.from_pairs(
        torch.tensor([0, 1, 0, 1]),
        torch.tensor([0.0, 10.0, 20.0, 30.0]),
        torch.tensor([[0, 3], [1, 2]]),  # t0 - t1 = -10 -> T(0,1); t3 - t2 = 10 -> T(1,0)
    )
    return q, g, transitions


def test_spatiotemporal_matches_dense_equations():
    q, g, transitions = _five_node_data()
    assert transitions.values(0, 1).tolist() == [-10.0]
    assert transitions.values(1, 0).tolist() == [10.0]
    dist = gfusion(q, g, transitions, k_s=2, k_l=3, model=_fixed_model(_W), backend="torch")
    expected = _dense_reference(_ST_GALLERY_LINKS, _ST_QUERY_LINKS, _W)
    np.testing.assert_allclose(dist.numpy(), expected, atol=1e-5, rtol=0)


def test_visual_only_matches_dense_equations_and_differs_from_st():
    q, g, transitions = _five_node_data()
    model = _fixed_model(_W)
    vis = gfusion(q, g, None, k_s=2, k_l=3, model=model, backend="torch")
    expected = _dense_reference(_VIS_GALLERY_LINKS, _VIS_QUERY_LINKS, _W)
    np.testing.assert_allclose(vis.numpy(), expected, atol=1e-5, rtol=0)
    st = gfusion(q, g, transitions, k_s=2, k_l=3, model=model, backend="torch")
    assert (st - vis).abs().max() > 1e-3  # the spatio-temporal edges change the ranking input


def test_alpha_and_affinity_output_eq8():
    # alpha = 0.5 changes the edge weights (Eq. 2) but not the edges (the rankings by
    # distance are the same), and output="affinity" is M = exp(-d^2 / 2 alpha^2) (Eq. 8).
    q, g, transitions = _five_node_data()
    model = _fixed_model(_W)
    kw = dict(k_s=2, k_l=3, alpha=0.5, model=model, backend="torch")
    d = gfusion(q, g, transitions, **kw)
    expected = _dense_reference(_ST_GALLERY_LINKS, _ST_QUERY_LINKS, _W, alpha=0.5)
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-5, rtol=0)
    m = gfusion(q, g, transitions, output="affinity", **kw)
    np.testing.assert_allclose(m.numpy(), np.exp(-(expected**2) / 0.5), atol=1e-5, rtol=0)
    assert bool(((m > 0) & (m <= 1)).all())


# --------------------------------------------------------------------------- properties
@pytest.fixture(scope="module")
def tiny():
    from reidgraph.data.synthetic import make_world

    world = make_world("tiny", seed=0)
    train, q, g = (world.to_data(s) for s in ("train", "query", "gallery"))
    return train, q, g, TransitionSet.fit(train, k_s=10)


def test_queries_do_not_see_each_other_and_chunks_agree(tiny):
    _, q, g, transitions = tiny
    kw = dict(k_l=20, hidden_channels=64, out_channels=64, backend="torch")
    full = gfusion(q, g, transitions, chunk_size=3, **kw)
    one_chunk = gfusion(q, g, transitions, chunk_size=10_000, **kw)
    torch.testing.assert_close(full, one_chunk, atol=1e-5, rtol=1e-5)
    sub = Data(x=q.x[5:9], camid=q.camid[5:9], time=q.time[5:9])
    torch.testing.assert_close(gfusion(sub, g, transitions, **kw), full[5:9], atol=1e-5, rtol=1e-5)


def test_gallery_embeddings_do_not_depend_on_queries(tiny):
    _, q, g, transitions = tiny
    kw = dict(k_l=20, hidden_channels=32, out_channels=32, backend="torch")
    _, hg_all = gfusion_embeddings(q, g, transitions, **kw)
    _, hg_one = gfusion_embeddings(
        Data(x=q.x[:1], camid=q.camid[:1], time=q.time[:1]), g, transitions, **kw
    )
    torch.testing.assert_close(hg_all, hg_one)


def test_same_seed_same_result_other_seed_differs(tiny):
    _, q, g, _ = tiny
    kw = dict(k_l=20, hidden_channels=32, out_channels=32, backend="torch")
    a = gfusion(q, g, seed=3, **kw)
    torch.testing.assert_close(a, gfusion(q, g, seed=3, **kw))
    assert not torch.allclose(a, gfusion(q, g, seed=4, **kw))


def test_defaults_and_extra_attributes_ignored(tiny):
    _, q, g, transitions = tiny
    # Spine Data carries pid / modality too; they must not matter (nor clash).
    assert {"pid", "modality"} <= set(q.keys())
    hq, hg = gfusion_embeddings(q, g, transitions, k_l=20, backend="torch")
    assert hq.shape == (q.num_nodes, DEFAULT_CHANNELS) and hg.shape == (
        g.num_nodes,
        DEFAULT_CHANNELS,
    )
    assert bool((hq >= 0).all())  # ReLU after the last layer


def test_numpy_features_accepted():
    q, g, transitions = _five_node_data()
    qn = Data(x=np.array(_QX), camid=np.array(_QCAM), time=np.array(_QT))
    gn = Data(x=np.array(_GX), camid=np.array(_GCAM), time=np.array(_GT))
    model = _fixed_model(_W)
    expected = gfusion(q, g, transitions, k_s=2, k_l=3, model=model, backend="torch")
    for a, b in ((qn, gn), (qn, g), (q, gn)):  # all numpy, and mixed
        out = gfusion(a, b, transitions, k_s=2, k_l=3, model=model, backend="torch")
        torch.testing.assert_close(out.float(), expected)


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny):
    _, q, g, transitions = tiny
    kw = dict(k_l=20, hidden_channels=256, out_channels=256, backend="torch")
    cpu = gfusion(q, g, transitions, **kw)
    gpu = gfusion(q.to("cuda"), g.to("cuda"), transitions, **kw)  # T is moved along
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- errors
def test_errors():
    q, g, transitions = _five_node_data()
    kw = dict(k_s=2, k_l=3, backend="torch")
    with pytest.raises(TypeError, match="'query' must be a torch_geometric.data.Data"):
        gfusion(q.x, g, **kw)
    with pytest.raises(TypeError, match="'gallery' must be a torch_geometric.data.Data"):
        gfusion(q, g.x, **kw)
    with pytest.raises(ValueError, match="'gallery.x'"):
        gfusion(q, Data(camid=g.camid), **kw)
    with pytest.raises(ValueError, match="same feature dimension, got 3 and 2"):
        gfusion(Data(x=torch.ones(1, 3)), g, **kw)
    with pytest.raises(ValueError, match="'query.x' must contain only finite values"):
        gfusion(Data(x=torch.tensor([[float("nan"), 1.0]])), g, **kw)
    with pytest.raises(TypeError, match="'transitions' must be a TransitionSet"):
        gfusion(q, g, "T", **kw)
    with pytest.raises(ValueError, match="needs 'query.time'"):
        gfusion(Data(x=q.x, camid=q.camid), g, transitions, **kw)
    with pytest.raises(ValueError, match="needs 'gallery.camid'"):
        gfusion(q, Data(x=g.x, time=g.time), transitions, **kw)
    with pytest.raises(ValueError, match="'k_l' must be <= 4"):
        gfusion(q, g, k_s=2, k_l=5, backend="torch")
    with pytest.raises(ValueError, match="Could not resolve output='similarity'"):
        gfusion(q, g, output="similarity", **kw)
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1"):
        gfusion(q, g, chunk_size=0, **kw)
    with pytest.raises(ValueError, match="'max_memory' must be >= 1"):
        gfusion(q, g, max_memory=0, **kw)
    with pytest.raises(TypeError, match="'verbose' must be a bool"):
        gfusion(q, g, verbose=1, **kw)
    with pytest.raises(TypeError, match="'model' must be a module"):
        gfusion(q, g, model="sage", **kw)
    with pytest.raises(
        TypeError,
        match=r"not both.*\['hidden_channels', 'seed'\]|"
        r"\['hidden_channels', 'seed'\].*not both",
    ):
        gfusion(q, g, model=_fixed_model(_W), hidden_channels=8, seed=1, **kw)
    with pytest.raises(ValueError, match="'model' must return node embeddings"):
        gfusion(q, g, model=lambda x, ei, ew: x[:2], **kw)


def test_unseen_camera_is_refused():
    q, g, transitions = _five_node_data()
    q2 = Data(x=q.x, camid=torch.tensor([2]), time=q.time)
    with pytest.raises(ValueError, match="never saw"):
        gfusion(q2, g, transitions, k_s=2, k_l=3, backend="torch")


# --------------------------------------------------------------------------- Table 2
@pytest.fixture(scope="module")
def small_world_results():
    from reidgraph.data.synthetic import make_world
    from reidgraph.eval import evaluate
    from reidgraph.ops import camera_center, camera_means, pairwise_distance

    world = make_world("small", seed=0)
    train, q, g = (world.to_data(s) for s in ("train", "query", "gallery"))
    means = camera_means(train.x, train.camid)
    for d in (train, q, g):  # the demo's features: camera-centred with train means
        d.x = camera_center(d.x, d.camid, means)
    transitions = TransitionSet.fit(train, k_s=10)

    def m(dist):
        return evaluate(dist, q.pid, g.pid, q.camid, g.camid)["mAP"]

    return {
        "baseline": m(pairwise_distance(q.x, g.x)),
        "visual": m(gfusion(q, g, None)),
        "st": m(gfusion(q, g, transitions)),
    }


def test_table2_spatiotemporal_beats_visual_only(small_world_results):
    # Table 2, rows 3 vs 4 (MSMT17->Market: mAP 60.3 vs 74.4): ST_test adds a lot.
    r = small_world_results
    assert r["st"] > r["visual"] + 0.03
    assert r["st"] > r["baseline"] + 0.03  # row 4 vs row 0 (60.4 -> 74.4)


def test_table2_visual_only_reranking_stays_near_baseline(small_world_results):
    # Table 2, rows 0 vs 3: visual-only re-ranking changes mAP by -0.1 (Market) and
    # -0.8 (MSMT17); it must not collapse (it does at width 128 on 128-d features).
    r = small_world_results
    assert abs(r["visual"] - r["baseline"]) < 0.04
