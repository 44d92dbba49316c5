import importlib
import math

import pytest
import torch
from torch_geometric.data import Data, HeteroData

from reidgraph.graph.cross_modality import (
    CrossModalityGraph,
    CrossModalityMatrices,
    cross_modality_graph,
)
from reidgraph.graph.edge_types import CROSS_MODALITY, VISUAL

E = math.exp
# The modules (reidgraph.ops.topk the attribute is the function of the same name).
ops_pairwise = importlib.import_module("reidgraph.ops.pairwise")
ops_topk = importlib.import_module("reidgraph.ops.topk")

# Hand world: unit 2-D vectors with "nice" cosines (3-4-5 and 7-24-25 triangles).
#   visible  v0=(1,0)  v1=(.96,.28)  v2=(0,1)  v3=(.8,-.6)  v4=(-.8,.6)
#   infrared i0=(.8,.6) i1=(.6,-.8) i2=(.96,.28) i3=(-.6,.8) i4=(.28,.96)
# Node order in the Data interleaves the modalities to exercise the id maps:
#   global id: 0=v0 1=i0 2=v1 3=i1 4=v2 5=i2 6=v3 7=i3 8=v4 9=i4
VIS = [(1.0, 0.0), (0.96, 0.28), (0.0, 1.0), (0.8, -0.6), (-0.8, 0.6)]
IR = [(0.8, 0.6), (0.6, -0.8), (0.96, 0.28), (-0.6, 0.8), (0.28, 0.96)]
VIS_ID = [0, 2, 4, 6, 8]
IR_ID = [1, 3, 5, 7, 9]


def hand_data() -> Data:
    x = torch.tensor([p for pair in zip(VIS, IR, strict=True) for p in pair])
    return Data(
        x=x,
        modality=torch.tensor([0, 1] * 5),
        camid=torch.tensor([0, 2, 1, 2, 0, 2, 1, 2, 0, 2]),
        pid=torch.arange(10) // 2,
    )


def in_edges(edge_index, edge_weight, node):
    sel = edge_index[1] == node
    return dict(zip(edge_index[0, sel].tolist(), edge_weight[sel].tolist(), strict=True))


def test_hand_heterogeneous_weights_full_softmax():
    g = cross_modality_graph(hand_data(), k=3, k_homo=3, backend="torch")
    assert isinstance(g, HeteroData)
    assert g["visible"].n_id.tolist() == VIS_ID and g["infrared"].n_id.tolist() == IR_ID
    assert g["visible"].camid.tolist() == [0, 1, 0, 1, 0]
    assert g["infrared"].pid.tolist() == [0, 1, 2, 3, 4]
    het = g["infrared", "to", "visible"]
    # every visible node receives exactly k = 3 edges
    assert torch.bincount(het.edge_index[1], minlength=5).tolist() == [3] * 5
    # v0 = (1,0): sims i0 .8, i1 .6, i2 .96, i3 -.6, i4 .28; top-3 = i2, i0, i1
    # Eq. 10 denominator: e^.8 + e^.6 + e^.96 + e^-.6 + e^.28
    #   = 2.22554 + 1.82212 + 2.61170 + 0.54881 + 1.32313 = 8.53130
    den = E(0.8) + E(0.6) + E(0.96) + E(-0.6) + E(0.28)
    assert den == pytest.approx(8.53130, abs=1e-5)
    got = in_edges(het.edge_index, het.edge_weight, 0)
    assert got == pytest.approx({2: 0.30613, 0: 0.26087, 1: 0.21358}, abs=1e-5)
    # edges into a node are best first
    first = het.edge_index[0, het.edge_index[1] == 0].tolist()
    assert first == [2, 0, 1]
    # v4 = (-.8,.6): sims i0 -.28, i1 -.96, i2 -.6, i3 .96, i4 .352 -> top-3 i3, i4, i0
    assert set(in_edges(het.edge_index, het.edge_weight, 4)) == {3, 4, 0}


def test_hand_topk_softmax_and_homogeneous():
    g = cross_modality_graph(hand_data(), k=3, softmax="topk", backend="torch")
    het = g["infrared", "to", "visible"]
    # softmax over the kept three only: 2.61170 + 2.22554 + 1.82212 = 6.65936
    got = in_edges(het.edge_index, het.edge_weight, 0)
    assert got == pytest.approx({2: 0.39218, 0: 0.33420, 1: 0.27362}, abs=1e-5)
    assert float(het.edge_weight.view(5, 3).sum(1).sub(1).abs().max()) < 1e-6

    g = cross_modality_graph(hand_data(), k=3, backend="torch")
    hom = g["visible", "to", "visible"]
    assert torch.bincount(hom.edge_index[1], minlength=5).tolist() == [3] * 5
    # v0: sims self 1, v1 .96, v2 0, v3 .8, v4 -.8; top-3 = self, v1, v3
    # Eq. 12 denominator e^1 + e^.96 + e^0 + e^.8 + e^-.8 = 9.00485
    #   weights 2.71828/9.00485 = .30187, 2.61170/9.00485 = .29003, 2.22554/9.00485 = .24715
    got = in_edges(hom.edge_index, hom.edge_weight, 0)
    assert got == pytest.approx({0: 0.30187, 1: 0.29003, 3: 0.24715}, abs=1e-5)
    g = cross_modality_graph(hand_data(), k=3, homogeneous_weight="binary", backend="torch")
    assert g["visible", "to", "visible"].edge_weight.tolist() == [1.0] * 15


def test_other_direction_and_no_homogeneous():
    g = cross_modality_graph(hand_data(), k=2, target="infrared", backend="torch")
    assert set(g.edge_types) == {("visible", "to", "infrared"), ("infrared", "to", "infrared")}
    het = g["visible", "to", "infrared"]
    # i2 = (.96,.28) equals v1: its best visible neighbour is v1 (cos 1), then v0 (.96)
    assert het.edge_index[0, het.edge_index[1] == 2].tolist() == [1, 0]
    g = cross_modality_graph(hand_data(), k=5, homogeneous=False, backend="torch")
    assert g.edge_types == [("infrared", "to", "visible")]
    # k = 5 keeps whole rows: full-softmax rows then sum to 1
    w = g["infrared", "to", "visible"].edge_weight.view(5, 5)
    assert float(w.sum(1).sub(1).abs().max()) < 1e-6


def test_data_output_global_ids():
    data = hand_data()
    data.edge_attr = torch.ones(1, 1)
    out = cross_modality_graph(data, k=3, output="data", backend="torch")
    assert out is not data and data.get("edge_index") is None  # input untouched
    assert out.get("edge_attr") is None
    assert out.edge_index.size(1) == 5 * 3 + 5 * 3
    cross = out.edge_type == CROSS_MODALITY
    assert int(cross.sum()) == 15 and int((out.edge_type == VISUAL).sum()) == 15
    # cross edges: infrared (odd ids) -> visible (even ids); homogeneous: even -> even
    assert (out.edge_index[0, cross] % 2 == 1).all() and (out.edge_index[1, cross] % 2 == 0).all()
    assert (out.edge_index[:, ~cross] % 2 == 0).all()
    # v0 (global 0) <- i2 (global 5), i0 (1), i1 (3), same weights as the hetero form
    got = in_edges(out.edge_index[:, cross], out.edge_weight[cross], 0)
    assert got == pytest.approx({5: 0.30613, 1: 0.26087, 3: 0.21358}, abs=1e-5)


def dense_reference(x_t, x_s, k, full=True):
    # Independent dense evaluation of Eq. 9-10 (or 12 when x_s is x_t): cosine,
    # row softmax over the whole row, then keep the k largest per row.
    a = x_t / x_t.norm(dim=1, keepdim=True)
    b = x_s / x_s.norm(dim=1, keepdim=True)
    s = a @ b.T
    p = torch.softmax(s, dim=1)
    keep = torch.zeros_like(p, dtype=torch.bool)
    keep.scatter_(1, s.topk(k, dim=1).indices, True)
    if not full:
        p = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=1)
    return p * keep


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("softmax", ["full", "topk"])
def test_sparse_matches_dense_reference(layout, softmax):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g, dtype=torch.float64)
    modality = (torch.rand(40, generator=g) < 0.4).long()
    data = Data(x=x, modality=modality)
    mats = cross_modality_graph(
        data, k=4, k_homo=6, softmax=softmax, output=layout, backend="torch", chunk_size=7
    )
    assert isinstance(mats, CrossModalityMatrices)
    vis, ir = (modality == 0).nonzero().view(-1), (modality == 1).nonzero().view(-1)
    assert torch.equal(mats.target_id, vis) and torch.equal(mats.source_id, ir)
    full = softmax == "full"
    assert mats.heter.layout == (torch.sparse_coo if layout == "coo" else torch.sparse_csr)
    assert torch.allclose(mats.heter.to_dense(), dense_reference(x[vis], x[ir], 4, full))
    assert torch.allclose(mats.homo.to_dense(), dense_reference(x[vis], x[vis], 6, full))


def test_memory_budget_is_respected(monkeypatch):
    # Every score block must respect max_block_bytes: no dense M x N or M x M.
    sizes = []
    original = ops_pairwise._score_block

    def spy(*args, **kwargs):
        block = original(*args, **kwargs)
        sizes.append(block.numel())
        return block

    monkeypatch.setattr(ops_pairwise, "_score_block", spy)
    monkeypatch.setattr(ops_topk, "_score_block", spy)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 16, generator=g)
    data = Data(x=x, modality=torch.arange(300) % 2)  # M = N = 150
    budget = 4 * 1024  # 1024 float32 scores per block
    small = cross_modality_graph(data, k=5, output="coo", backend="torch", max_block_bytes=budget)
    assert sizes and max(sizes) <= 1024 < 150 * 150
    big = cross_modality_graph(data, k=5, output="coo", backend="torch")
    assert torch.allclose(small.heter.to_dense(), big.heter.to_dense())
    assert torch.allclose(small.homo.to_dense(), big.homo.to_dense())


def test_transform_wrapper():
    t = CrossModalityGraph(k=10)
    assert str(t) == (
        "CrossModalityGraph(k=10, k_homo=None, target=visible, softmax=full, homogeneous=True, "
        "homogeneous_weight=softmax, output=hetero)"
    )
    out = CrossModalityGraph(k=2, output="data", backend="torch")(hand_data())
    assert out.edge_index.size(1) == 5 * 2 * 2
    with pytest.raises(ValueError, match="output must be 'hetero' or 'data', got 'coo'"):
        CrossModalityGraph(output="coo")


def test_errors():
    data = hand_data()
    with pytest.raises(TypeError, match="expects a torch_geometric.data.Data"):
        cross_modality_graph(HeteroData())
    with pytest.raises(ValueError, match="needs node features 'x'"):
        cross_modality_graph(Data(modality=data.modality))
    with pytest.raises(ValueError, match="needs 'modality'"):
        cross_modality_graph(Data(x=data.x))
    with pytest.raises(TypeError, match="'data.modality' must be integer"):
        cross_modality_graph(Data(x=data.x, modality=data.modality.float()))
    with pytest.raises(ValueError, match=r"must be 0 \(visible\) or 1 \(infrared\), found \[2\]"):
        cross_modality_graph(Data(x=data.x, modality=data.modality * 2))
    with pytest.raises(ValueError, match="no infrared node"):
        cross_modality_graph(Data(x=data.x, modality=torch.zeros(10, dtype=torch.long)))
    with pytest.raises(ValueError, match="no visible node"):
        cross_modality_graph(Data(x=data.x, modality=torch.ones(10, dtype=torch.long)))
    with pytest.raises(ValueError, match="'data.modality' must have length 10"):
        cross_modality_graph(Data(x=data.x, modality=torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="'data.x' must contain only finite"):
        bad = data.x.clone()
        bad[0, 0] = float("nan")
        cross_modality_graph(Data(x=bad, modality=data.modality))
    with pytest.raises(ValueError, match="'k' must be <= 5 .*infrared \\(source\\) nodes"):
        cross_modality_graph(data, k=6)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        cross_modality_graph(data, k=0)
    sub = Data(x=data.x[:7], modality=data.modality[:7])  # 4 visible, 3 infrared
    with pytest.raises(ValueError, match="'k_homo' defaults to k = 4, which exceeds the 3"):
        cross_modality_graph(sub, k=4, target="infrared")
    with pytest.raises(ValueError, match="'k_homo' must be <= 4"):
        cross_modality_graph(sub, k=2, k_homo=5)
    with pytest.raises(ValueError, match="Could not resolve target='rgb'"):
        cross_modality_graph(data, target="rgb")
    with pytest.raises(ValueError, match="Could not resolve softmax='none'"):
        cross_modality_graph(data, softmax="none")
    with pytest.raises(ValueError, match="Could not resolve homogeneous_weight='gauss'"):
        cross_modality_graph(data, homogeneous_weight="gauss")
    with pytest.raises(ValueError, match="Could not resolve output='dense'"):
        cross_modality_graph(data, output="dense")
    with pytest.raises(TypeError, match="'homogeneous' must be a bool"):
        cross_modality_graph(data, homogeneous=1)
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1"):
        cross_modality_graph(data, chunk_size=0)
    # homogeneous=False does not validate k_homo against the target count
    g = cross_modality_graph(sub, k=3, target="visible", homogeneous=False, backend="torch")
    assert g["infrared", "to", "visible"].edge_index.size(1) == 4 * 3
