"""Tests for reidgraph.nn.pair_gcn (MPRD Eq. 5 / Fig. 2b)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from reidgraph.graph.pair_subgraphs import pair_subgraphs
from reidgraph.nn.pair_gcn import MeanGraphConv, PairGCN


def test_mean_graph_conv_by_hand():
    # Path 0 - 1 - 2 with 1-d features [1, 2, 3] and Theta = 2:
    #   D^-1 (A + I) Y Theta = [(1+2)/2, (1+2+3)/3, (2+3)/2] * 2 = [3, 4, 5]
    conv = MeanGraphConv(1, 1)
    conv.lin.weight.data.fill_(2.0)
    e = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    out = conv(torch.tensor([[1.0], [2.0], [3.0]]), e)
    assert out.view(-1).tolist() == [3.0, 4.0, 5.0]
    # an existing self loop is replaced, not doubled
    e_loop = torch.cat([e, torch.tensor([[1], [1]])], 1)
    assert conv(torch.tensor([[1.0], [2.0], [3.0]]), e_loop).view(-1).tolist() == [3.0, 4.0, 5.0]


def test_mean_graph_conv_matches_dense():
    # 5 nodes: 0-1, 0-2, 1-2, 2-3, node 4 isolated. Dense D^-1 (A + I) Y Theta.
    torch.manual_seed(0)
    e = to_undirected(torch.tensor([[0, 0, 1, 2], [1, 2, 2, 3]]))
    y = torch.randn(5, 3)
    conv = MeanGraphConv(3, 2, bias=True)
    torch.nn.init.normal_(conv.bias)
    a = torch.zeros(5, 5)
    a[e[1], e[0]] = 1.0
    m = a + torch.eye(5)
    # degrees of A + I: [3, 3, 4, 2, 1]
    assert m.sum(1).tolist() == [3.0, 3.0, 4.0, 2.0, 1.0]
    expected = (m / m.sum(1, keepdim=True)) @ y @ conv.lin.weight.t() + conv.bias
    torch.testing.assert_close(conv(y, e), expected)
    assert str(conv) == "MeanGraphConv(3, 2, bias=True)"
    assert str(MeanGraphConv(3, 2)) == "MeanGraphConv(3, 2)"


def _toy_batch(num_features=3):
    torch.manual_seed(1)
    edge = to_undirected(torch.tensor([[0, 1, 2, 3, 4, 0, 1], [1, 2, 3, 4, 5, 5, 4]]))
    data = Data(x=torch.randn(6, num_features), edge_index=edge)
    pairs = torch.tensor([[0, 3, 5], [2, 1, 2]])
    return pair_subgraphs(data, pairs, num_hops=1, labels=[1.0, 0.0, 1.0])


def _dense_forward(model, x, edge_index, z, batch):
    # Independent dense re-computation of Eq. 5 + max-pool/conv + MLP.
    n = z.numel()
    v = torch.cat(
        [
            torch.nn.functional.one_hot(
                z.clamp(max=model.num_drnl_labels - 1), model.num_drnl_labels
            ).float(),
            x,
        ],
        1,
    )
    a = torch.zeros(n, n)
    a[edge_index[1], edge_index[0]] = 1.0
    m = a + torch.eye(n)
    prop = m / m.sum(1, keepdim=True)
    h, outs = v, []
    for conv in model.convs:
        h = torch.relu(prop @ h @ conv.lin.weight.t())
        outs.append(h)
    cat = torch.cat(outs, 1)
    w = model.agg_conv.weight.view(model.conv_channels, -1)
    u = torch.relu(cat @ w.t() + model.agg_conv.bias)
    g = torch.stack([u[batch == b].max(0).values for b in range(int(batch.max()) + 1)])
    s = model.lin2(torch.relu(model.lin1(g))).view(-1)
    return torch.sigmoid(s)


def test_pair_gcn_matches_dense_reference():
    batch = _toy_batch()
    model = PairGCN(3, hidden_channels=4, num_drnl_labels=5, conv_channels=6, mlp_channels=5)
    out = model(batch.x, batch.edge_index, batch.z, batch.batch)
    assert out.shape == (3,)
    assert bool(((out > 0) & (out < 1)).all())
    expected = _dense_forward(model, batch.x, batch.edge_index, batch.z, batch.batch)
    torch.testing.assert_close(out, expected)
    logits = model(batch.x, batch.edge_index, batch.z, batch.batch, return_logits=True)
    torch.testing.assert_close(torch.sigmoid(logits), out)


def test_pair_gcn_single_graph_and_invariance():
    batch = _toy_batch()
    model = PairGCN(3, hidden_channels=4, conv_channels=6, mlp_channels=5)
    g = batch[0]
    single = model(g.x, g.edge_index, g.z)
    assert single.shape == (1,)
    torch.testing.assert_close(single, model(batch.x, batch.edge_index, batch.z, batch.batch)[:1])
    # reordering the non-target nodes does not change the score (max-pooling)
    n = g.num_nodes
    perm = torch.cat([torch.tensor([0, 1]), torch.arange(n - 1, 1, -1)])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    torch.testing.assert_close(model(g.x[perm], inv[g.edge_index], g.z[perm]), single)


def test_pair_gcn_gradients_flow_and_train_step():
    batch = _toy_batch()
    torch.manual_seed(0)
    model = PairGCN(3, hidden_channels=4, conv_channels=6, mlp_channels=5, dropout=0.2)
    model.train()
    logits = model(batch.x, batch.edge_index, batch.z, batch.batch, return_logits=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in model.convs[0].parameters())


def test_pair_gcn_input_variants():
    batch = _toy_batch()
    # structure only (PyG SEAL style): no x
    model = PairGCN(0, hidden_channels=4, num_drnl_labels=8, conv_channels=4, mlp_channels=4)
    assert model(None, batch.edge_index, batch.z, batch.batch).shape == (3,)
    # x already holds [one-hot || x] (pair_subgraphs(concat_drnl=16)): num_drnl_labels=0
    data = Data(x=torch.randn(6, 3), edge_index=batch.edge_index.new_tensor([[0, 1], [1, 0]]))
    b2 = pair_subgraphs(data, torch.tensor([[0], [1]]), concat_drnl=16)
    model = PairGCN(19, hidden_channels=4, num_drnl_labels=0, conv_channels=4, mlp_channels=4)
    assert model(b2.x, b2.edge_index, batch=b2.batch).shape == (1,)


def test_pair_gcn_repr_and_reset():
    model = PairGCN(2048)
    assert str(model) == (
        "PairGCN(2048, hidden_channels=512, num_layers=2, num_drnl_labels=16, "
        "conv_channels=1024, mlp_channels=1024, dropout=0.0)"
    )
    assert model.convs[0].in_channels == 2048 + 16
    assert model.agg_conv.kernel_size == (1024,) and model.agg_conv.stride == (1024,)
    small = PairGCN(3, hidden_channels=4, conv_channels=4, mlp_channels=4)
    before = [p.detach().clone() for p in small.parameters()]
    torch.manual_seed(123)
    small.reset_parameters()
    after = [p.detach().clone() for p in small.parameters()]
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    torch.manual_seed(123)
    small.reset_parameters()
    assert all(torch.equal(a, p) for a, p in zip(after, small.parameters(), strict=True))


def test_pair_gcn_errors():
    batch = _toy_batch()
    model = PairGCN(3, hidden_channels=4, conv_channels=4, mlp_channels=4)
    with pytest.raises(ValueError, match="needs the DRNL labels 'z'"):
        model(batch.x, batch.edge_index)
    with pytest.raises(ValueError, match="needs node features 'x'"):
        model(None, batch.edge_index, batch.z)
    with pytest.raises(ValueError, match="'x' must have in_channels=3 columns"):
        model(batch.x[:, :2], batch.edge_index, batch.z)
    with pytest.raises(ValueError, match="same nodes"):
        model(batch.x[:-1], batch.edge_index, batch.z)
    with pytest.raises(ValueError, match=r"'batch' must have shape"):
        model(batch.x, batch.edge_index, batch.z, batch.batch[:-1])
    with pytest.raises(ValueError, match=r"'edge_index' must hold node ids in \[0, "):
        model(batch.x, batch.edge_index + 100, batch.z)
    with pytest.raises(ValueError, match="both 0"):
        PairGCN(0, num_drnl_labels=0)
    with pytest.raises(ValueError, match="'hidden_channels' must be >= 1"):
        PairGCN(3, hidden_channels=0)
    with pytest.raises(ValueError, match="'num_layers' must be >= 1"):
        PairGCN(3, num_layers=0)
    with pytest.raises(ValueError, match="'in_channels' must be >= 0"):
        PairGCN(-1)
    with pytest.raises(ValueError, match=r"'dropout' must be in \[0, 1\)"):
        PairGCN(3, dropout=1.0)
    with pytest.raises(TypeError, match="'dropout' must be a float"):
        PairGCN(3, dropout="0.5")
    with pytest.raises(ValueError, match="'in_channels' must be >= 1"):
        MeanGraphConv(0, 2)
