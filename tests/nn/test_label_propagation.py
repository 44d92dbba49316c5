import pytest
import torch
from torch_geometric.data import Data, HeteroData

from reidgraph.graph.cross_modality import cross_modality_graph
from reidgraph.nn.label_propagation import (
    CrossModalityLabelPropagation,
    cross_modality_label_propagation,
    label_vote,
)

# Hand world (same vectors as tests/graph/test_cross_modality.py), cosines by hand:
#   visible  v0=(1,0)  v1=(.96,.28)  v2=(0,1)  v3=(.8,-.6)  v4=(-.8,.6)
#   infrared i0=(.8,.6) i1=(.6,-.8) i2=(.96,.28) i3=(-.6,.8) i4=(.28,.96)
#   infrared labels  i0: 0, i1: 0, i2: 1, i3: -1 (outlier), i4: 1
# exp values: e^1 = 2.71828, e^.96 = 2.61170, e^.936 = 2.54976, e^.8 = 2.22554,
#   e^.6 = 1.82212, e^.5376 = 1.71189, e^.352 = 1.42191, e^.28 = 1.32313,
#   e^0 = 1, e^-.28 = .75578, e^-.6 = .54881
#
# Eq. 11 with k = 3 (the row denominator of Eq. 10 is common to a row and
# cannot change its argmax, so the votes are compared on e^sim):
#   v0: top-3 i2 (.96, c1), i0 (.8, c0), i1 (.6, c0)
#       c0: 2.22554 + 1.82212 = 4.04766 > c1: 2.61170      -> 0 (two votes beat the nearest)
#   v1: top-3 i2 (1, c1), i0 (.936, c0), i4 (.5376, c1)
#       c1: 2.71828 + 1.71189 = 4.43017 > c0: 2.54976      -> 1
#   v2: top-3 i4 (.96, c1), i3 (.8, out), i0 (.6, c0)
#       c1: 2.61170 > out: 2.22554 > c0: 1.82212           -> 1
#   v3: top-3 i1 (.96, c0), i2 (.6, c1), i0 (.28, c0)
#       c0: 2.61170 + 1.32313 = 3.93483 > c1: 1.82212      -> 0
#   v4: top-3 i3 (.96, out), i4 (.352, c1), i0 (-.28, c0)
#       out: 2.61170 > c1: 1.42191 > c0: .75578           -> -1 (outlier wins)
#   Y* = [0, 1, 1, 0, -1]
# Eq. 13 with k_homo = 3 (self included); visible cosines:
#   v0.v1 .96, v0.v2 0, v0.v3 .8, v0.v4 -.8, v1.v2 .28, v1.v3 .6, v1.v4 -.6,
#   v2.v3 -.6, v2.v4 .6, v3.v4 -1
#   v0: self (1, 0), v1 (.96, 1), v3 (.8, 0): c0 2.71828 + 2.22554 > c1 2.61170 -> 0
#   v1: self (1, 1), v0 (.96, 0), v3 (.6, 0): c0 2.61170 + 1.82212 = 4.43382
#       > c1 2.71828                                                -> 0 (smoothed)
#   v2: self (1, 1), v4 (.6, -1), v1 (.28, 1): c1 2.71828 + 1.32313 > out 1.82212 -> 1
#   v3: self (1, 0), v0 (.8, 0), v1 (.6, 1): c0                       -> 0
#   v4: self (1, -1), v2 (.6, 1), v1 (-.6, 1): out 2.71828
#       > c1 1.82212 + .54881 = 2.37093                             -> -1
#   softmax (Eq. 12): [0, 0, 1, 0, -1]
#   binary (GUR code): v4 counts c1 2 > out 1 -> 1; others as above -> [0, 0, 1, 0, 1]
VIS = [(1.0, 0.0), (0.96, 0.28), (0.0, 1.0), (0.8, -0.6), (-0.8, 0.6)]
IR = [(0.8, 0.6), (0.6, -0.8), (0.96, 0.28), (-0.6, 0.8), (0.28, 0.96)]
IR_LABELS = [0, 0, 1, -1, 1]
Y_STAR = [0, 1, 1, 0, -1]
Y_SOFTMAX = [0, 0, 1, 0, -1]
Y_BINARY = [0, 0, 1, 0, 1]


def hand_data(flip: bool = False) -> Data:
    # interleaved: global 2m = visible m, 2n + 1 = infrared n
    x = torch.tensor([p for pair in zip(VIS, IR, strict=True) for p in pair])
    modality = torch.tensor([0, 1] * 5)
    return Data(x=x, modality=1 - modality if flip else modality)


def hand_labels() -> torch.Tensor:
    # visible entries hold junk (99) that must be overwritten
    return torch.tensor([v for lab in IR_LABELS for v in (99, lab)])


@pytest.mark.parametrize("softmax", ["full", "topk"])
def test_hand_case_functional(softmax):
    g = cross_modality_graph(hand_data(), k=3, softmax=softmax, backend="torch")
    labels = torch.tensor(IR_LABELS)
    assert cross_modality_label_propagation(g, labels, smooth=False).tolist() == Y_STAR
    assert cross_modality_label_propagation(g, labels).tolist() == Y_SOFTMAX
    g = cross_modality_graph(
        hand_data(), k=3, softmax=softmax, homogeneous_weight="binary", backend="torch"
    )
    assert cross_modality_label_propagation(g, labels).tolist() == Y_BINARY


def test_hand_case_module_both_directions():
    clu = CrossModalityLabelPropagation(k=3, backend="torch")
    out = clu(hand_data(), hand_labels())
    # infrared (odd ids) unchanged, visible (even ids) rewritten
    assert out[1::2].tolist() == IR_LABELS
    assert out[0::2].tolist() == Y_SOFTMAX
    # the same world with the modality flags swapped, propagated visible -> infrared
    clu = CrossModalityLabelPropagation(k=3, target="infrared", backend="torch")
    out = clu(hand_data(flip=True), hand_labels())
    assert out[1::2].tolist() == IR_LABELS and out[0::2].tolist() == Y_SOFTMAX
    clu = CrossModalityLabelPropagation(k=3, smooth=False, homogeneous_weight="binary")
    assert clu(hand_data(), hand_labels())[0::2].tolist() == Y_STAR


def test_label_vote_hand():
    # target 0: label 2 gets .5, label 5 gets .25 + .25 = .5 -> tie -> smaller label 2
    # target 1: outlier (-1) gets .75 vs label 5 .5 -> -1
    # target 2: no incoming edge -> -1;  target 3: only zero weights -> -1
    # target 4: label 5 vs outlier tie at .5 -> outlier first -> -1
    edge_index = torch.tensor([[0, 1, 2, 3, 1, 0, 2, 3, 1], [0, 0, 0, 1, 1, 3, 3, 4, 4]])
    weight = torch.tensor([0.5, 0.25, 0.25, 0.75, 0.5, 0.0, 0.0, 0.5, 0.5])
    labels = torch.tensor([2, 5, 5, -1])
    assert label_vote(edge_index, weight, labels, 5).tolist() == [2, -1, -1, -1, -1]
    # the result does not depend on the edge order
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    assert label_vote(edge_index[:, perm], weight[perm], labels, 5).tolist() == [2, -1, -1, -1, -1]
    # bipartite: 4 sources, 1 target; no edges at all
    assert label_vote(torch.empty(2, 0, dtype=torch.long), [], labels, 3).tolist() == [-1] * 3


def gur_dense_reference(x_vis, x_ir, ir_labels, k, k_homo, binary):
    # Independent dense rendering of GUR's code path: W = softmax(norm(f_rgb) norm(f_ir)^T),
    # top-k mask, W @ onehot(labels + 1), argmax - 1; then a top-k visible mask
    # (binary as in the code, or the softmax weights of Eq. 12) @ onehot, argmax - 1.
    a = torch.nn.functional.normalize(x_vis, dim=1)
    b = torch.nn.functional.normalize(x_ir, dim=1)
    w = torch.softmax(a @ b.T, dim=1)
    mask = torch.zeros_like(w).scatter_(1, w.topk(k, dim=1).indices, 1.0)
    num_classes = int(ir_labels.max()) + 2
    y = torch.nn.functional.one_hot(ir_labels + 1, num_classes).to(w.dtype)
    y_star = (w * mask) @ y
    y_star = torch.where(y_star.sum(1) > 0, y_star.argmax(1), 0) - 1
    s = a @ a.T
    mask_h = torch.zeros_like(s).scatter_(1, s.topk(k_homo, dim=1).indices, 1.0)
    w_h = mask_h if binary else torch.softmax(s, dim=1) * mask_h
    y2 = torch.nn.functional.one_hot(y_star + 1, num_classes).to(w.dtype)
    return y_star, ((w_h @ y2).argmax(1) - 1)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_dense_gur_reference(binary, seed):
    g = torch.Generator().manual_seed(seed)
    n_vis, n_ir, classes = 60, 45, 6
    centers = torch.randn(classes, 16, generator=g, dtype=torch.float64)
    vis_pid = torch.randint(0, classes, (n_vis,), generator=g)
    ir_pid = torch.randint(0, classes, (n_ir,), generator=g)
    x_vis = centers[vis_pid] + 0.8 * torch.randn(n_vis, 16, generator=g, dtype=torch.float64)
    x_ir = centers[ir_pid] + 0.8 * torch.randn(n_ir, 16, generator=g, dtype=torch.float64)
    ir_labels = torch.where(torch.rand(n_ir, generator=g) < 0.2, -1, ir_pid)
    star, final = gur_dense_reference(x_vis, x_ir, ir_labels, 5, 7, binary)

    data = Data(
        x=torch.cat([x_vis, x_ir]),
        modality=torch.cat([torch.zeros(n_vis), torch.ones(n_ir)]).long(),
    )
    labels = torch.cat([torch.full((n_vis,), -1), ir_labels])
    weight = "binary" if binary else "softmax"
    clu = CrossModalityLabelPropagation(k=5, k_homo=7, homogeneous_weight=weight, backend="torch")
    out = clu(data, labels)
    assert torch.equal(out[n_vis:], ir_labels)
    assert torch.equal(out[:n_vis], final)
    clu.smooth = False
    assert torch.equal(clu(data, labels)[:n_vis], star)
    # the functional form on graphs with either normalisation gives the same labels
    for softmax in ("full", "topk"):
        g = cross_modality_graph(
            data, k=5, k_homo=7, softmax=softmax, homogeneous_weight=weight, backend="torch"
        )
        assert torch.equal(cross_modality_label_propagation(g, ir_labels), final)


def test_module_protocol():
    clu = CrossModalityLabelPropagation(k=10)
    assert str(clu) == (
        "CrossModalityLabelPropagation(k=10, k_homo=None, target=visible, smooth=True, "
        "homogeneous_weight=softmax)"
    )
    assert list(clu.parameters()) == []
    clu.reset_parameters()
    x = torch.randn(8, 4, requires_grad=True)
    out = CrossModalityLabelPropagation(k=2)(
        Data(x=x, modality=torch.arange(8) % 2), torch.zeros(8, dtype=torch.long)
    )
    assert out.dtype == torch.long and not out.requires_grad


def test_errors():
    ei = torch.tensor([[0, 1], [0, 0]])
    w = torch.tensor([0.5, 0.5])
    lab = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="'num_targets' must be >= 0"):
        label_vote(ei, w, lab, -1)
    with pytest.raises(TypeError, match="'labels' must be integer"):
        label_vote(ei, w, lab.float(), 1)
    with pytest.raises(ValueError, match="'labels' must be >= -1"):
        label_vote(ei, w, torch.tensor([1, -2]), 1)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\]"):
        label_vote(ei[0], w, lab, 1)
    with pytest.raises(TypeError, match="'edge_index' must hold integer"):
        label_vote(ei.float(), w, lab, 1)
    with pytest.raises(ValueError, match="'edge_weight' must have length 2"):
        label_vote(ei, w[:1], lab, 1)
    with pytest.raises(ValueError, match="'edge_weight' must contain only finite"):
        label_vote(ei, torch.tensor([0.5, float("nan")]), lab, 1)
    with pytest.raises(ValueError, match="'edge_weight' must be non-negative"):
        label_vote(ei, torch.tensor([0.5, -0.1]), lab, 1)
    with pytest.raises(ValueError, match=r"'edge_index\[0\]' must index 'labels' in \[0, 1\]"):
        label_vote(torch.tensor([[0, 2], [0, 0]]), w, lab, 1)
    with pytest.raises(ValueError, match=r"'edge_index\[1\]' must index targets in \[0, 0\]"):
        label_vote(torch.tensor([[0, 1], [0, 1]]), w, lab, 1)

    g = cross_modality_graph(hand_data(), k=3, backend="torch")
    with pytest.raises(TypeError, match="'graph' must be the HeteroData"):
        cross_modality_label_propagation(hand_data(), torch.tensor(IR_LABELS))
    with pytest.raises(TypeError, match="'smooth' must be a bool"):
        cross_modality_label_propagation(g, torch.tensor(IR_LABELS), smooth=1)
    with pytest.raises(ValueError, match="'labels' must have length 5"):
        cross_modality_label_propagation(g, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="exactly one cross-modality edge type"):
        cross_modality_label_propagation(HeteroData(), torch.tensor(IR_LABELS))
    g_no_homo = cross_modality_graph(hand_data(), k=3, homogeneous=False, backend="torch")
    with pytest.raises(ValueError, match="smooth=True needs the homogeneous edges"):
        cross_modality_label_propagation(g_no_homo, torch.tensor(IR_LABELS))
    del g["infrared", "to", "visible"].edge_weight
    with pytest.raises(ValueError, match=r"\('infrared', 'to', 'visible'\) has no 'edge_weight'"):
        cross_modality_label_propagation(g, torch.tensor(IR_LABELS))
    g = cross_modality_graph(hand_data(), k=3, backend="torch")
    del g["visible", "to", "visible"].edge_weight
    with pytest.raises(ValueError, match=r"\('visible', 'to', 'visible'\) has no 'edge_weight'"):
        cross_modality_label_propagation(g, torch.tensor(IR_LABELS))

    clu = CrossModalityLabelPropagation(k=3, backend="torch")
    with pytest.raises(ValueError, match="'labels' must have length 10"):
        clu(hand_data(), torch.tensor(IR_LABELS))
    with pytest.raises(ValueError, match="needs 'modality'"):
        clu(Data(x=torch.randn(4, 2)), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="'smooth' must be a bool"):
        CrossModalityLabelPropagation(smooth="yes")(hand_data(), hand_labels())
    with pytest.raises(ValueError, match="Could not resolve target='thermal'"):
        CrossModalityLabelPropagation(target="thermal")(hand_data(), hand_labels())
