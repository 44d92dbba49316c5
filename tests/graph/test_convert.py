import networkx as nx
import pytest
import torch
from torch_geometric.data import Data, HeteroData

from reidgraph.graph.convert import SPINE_NODE_ATTRS, from_networkx, to_networkx
from reidgraph.graph.edge_types import CROSS_MODALITY, SPATIOTEMPORAL, VISUAL


def spine_graph(parallel: bool = True) -> Data:
    # 5 nodes; node 4 is isolated. With parallel=True the pair (0, 1) carries a
    # visual and a spatio-temporal edge.
    src = [0, 1, 2, 3, 0] if parallel else [0, 1, 2, 3]
    dst = [1, 2, 3, 0, 1] if parallel else [1, 2, 3, 0]
    types = [VISUAL, VISUAL, CROSS_MODALITY, VISUAL, SPATIOTEMPORAL]
    weights = [0.9, 0.8, 0.125, 0.7, 0.3]
    n = len(src)
    return Data(
        x=torch.arange(10, dtype=torch.float).view(5, 2),
        edge_index=torch.tensor([src, dst]),
        edge_weight=torch.tensor(weights[:n]),
        edge_type=torch.tensor(types[:n]),
        camid=torch.tensor([0, 1, 2, 0, 1]),
        time=torch.tensor([0.5, 10.0, 20.25, 30.0, 40.0]),
        modality=torch.tensor([0, 0, 1, 1, 0]),
        pid=torch.tensor([3, 3, -1, 4, 4]),
    )


def sorted_edges(data: Data) -> list[tuple]:
    cols = [data.edge_index[0].tolist(), data.edge_index[1].tolist()]
    cols += [data.edge_weight.tolist(), data.edge_type.tolist()]
    return sorted(zip(*cols, strict=True))


def test_to_networkx_keeps_spine_attributes():
    G = to_networkx(spine_graph(parallel=False))
    assert type(G) is nx.DiGraph
    assert list(G.nodes) == [0, 1, 2, 3, 4]
    assert G.nodes[2] == {"camid": 2, "time": 20.25, "modality": 1, "pid": -1}
    assert G.nodes[4]["pid"] == 4  # isolated node kept with its attributes
    assert G.edges[2, 3] == {"weight": 0.125, "type": CROSS_MODALITY}
    assert G.number_of_edges() == 4
    assert G.graph["edge_type_names"][CROSS_MODALITY] == "cross_modality"
    assert "x" not in G.nodes[0]


def test_to_networkx_parallel_edges_become_multigraph():
    G = to_networkx(spine_graph())
    assert type(G) is nx.MultiDiGraph
    assert G.number_of_edges() == 5
    between = sorted((d["type"], d["weight"]) for d in G.get_edge_data(0, 1).values())
    assert between[0] == (VISUAL, pytest.approx(0.9))
    assert between[1] == (SPATIOTEMPORAL, pytest.approx(0.3))
    assert type(to_networkx(spine_graph(parallel=False), to_multi=True)) is nx.MultiDiGraph


def test_to_networkx_refuses_to_merge_parallel_edges():
    with pytest.raises(ValueError, match="repeated .*to_multi=True"):
        to_networkx(spine_graph(), to_multi=False)


@pytest.mark.parametrize("parallel", [False, True])
def test_round_trip(parallel):
    data = spine_graph(parallel)
    back = from_networkx(to_networkx(data, node_attrs=[*SPINE_NODE_ATTRS, "x"]))
    assert back.num_nodes == 5
    for key in [*SPINE_NODE_ATTRS, "x"]:
        assert back[key].dtype == data[key].dtype, key
        assert torch.equal(back[key], data[key]), key
    assert back.edge_weight.dtype == torch.float
    assert back.edge_type.dtype == torch.long
    assert sorted_edges(back) == sorted_edges(data)


def test_from_networkx_sorts_edges_and_keeps_integer_nodes():
    G = nx.DiGraph()
    # Insert nodes out of order: integers 0..2 keep their number anyway.
    for n, pid in [(2, 9), (0, 7), (1, 8)]:
        G.add_node(n, pid=pid)
    G.add_edge(2, 0, weight=0.5, type=1)
    G.add_edge(0, 2, weight=0.25, type=0)
    G.add_edge(0, 1, weight=1.0, type=0)
    data = from_networkx(G)
    assert data.pid.tolist() == [7, 8, 9]
    assert data.edge_index.tolist() == [[0, 0, 2], [1, 2, 0]]
    assert data.edge_weight.tolist() == [1.0, 0.25, 0.5]
    assert data.edge_type.tolist() == [0, 0, 1]


def test_from_networkx_undirected_and_named_nodes():
    G = nx.Graph()
    G.add_node("a", camid=0)
    G.add_node("b", camid=1)
    G.add_edge("a", "b", weight=0.5)
    data = from_networkx(G)
    # string labels -> order of G.nodes; one undirected edge -> both directions
    assert data.camid.tolist() == [0, 1]
    assert data.edge_index.tolist() == [[0, 1], [1, 0]]
    assert data.edge_weight.tolist() == [0.5, 0.5]


def test_from_networkx_empty_and_edgeless():
    data = from_networkx(nx.DiGraph())
    assert data.num_nodes == 0 and data.edge_index.shape == (2, 0)
    G = nx.DiGraph()
    G.add_nodes_from([(0, {"pid": 1}), (1, {"pid": 2})])
    data = from_networkx(G)
    assert data.edge_index.shape == (2, 0)
    assert data.pid.tolist() == [1, 2]


def test_to_networkx_empty_edges():
    data = Data(pid=torch.tensor([1, 2, 3]), num_nodes=3)
    G = to_networkx(data)
    assert G.number_of_nodes() == 3 and G.number_of_edges() == 0
    G = to_networkx(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    assert list(G.edges(data=True)) == [(0, 1, {})]
    assert G.nodes[0] == {}


def test_explicit_attribute_selection():
    data = spine_graph(parallel=False)
    G = to_networkx(data, node_attrs=["pid"], edge_attrs=["edge_weight"])
    assert G.nodes[0] == {"pid": 3}
    assert G.edges[0, 1] == {"weight": pytest.approx(0.9)}
    back = from_networkx(G, node_attrs=[], edge_attrs=["weight"])
    assert back.get("pid") is None and back.get("edge_type") is None
    assert back.edge_weight.numel() == 4


@pytest.mark.filterwarnings("ignore:Unable to accurately infer 'num_nodes'")
def test_to_networkx_errors():
    data = spine_graph()
    with pytest.raises(TypeError, match="HeteroData"):
        to_networkx(HeteroData())
    with pytest.raises(TypeError, match="'data' must be a torch_geometric Data"):
        to_networkx({"edge_index": None})
    with pytest.raises(ValueError, match="no node count"):
        to_networkx(Data())
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        to_networkx(Data(edge_index=torch.zeros(3, 2, dtype=torch.long), num_nodes=3))
    with pytest.raises(ValueError, match=r"index nodes in \[0, 1\]"):
        to_networkx(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=2))
    with pytest.raises(ValueError, match="no tensor attribute 'foo'"):
        to_networkx(data, node_attrs=["foo"])
    with pytest.raises(ValueError, match="one row per node"):
        to_networkx(
            Data(edge_index=torch.tensor([[0], [1]]), w=torch.ones(5), num_nodes=2),
            node_attrs=["w"],
        )
    with pytest.raises(TypeError, match="'node_attrs' must be an iterable"):
        to_networkx(data, node_attrs="pid")
    with pytest.raises(ValueError, match="no tensor attribute 'bar'"):
        to_networkx(data, edge_attrs=["bar"])
    with pytest.raises(ValueError, match="one row per edge"):
        to_networkx(spine_graph(parallel=False), edge_attrs=["pid"])
    with pytest.raises(TypeError, match="'edge_attrs' must be an iterable"):
        to_networkx(data, edge_attrs="edge_weight")


def test_from_networkx_errors():
    with pytest.raises(TypeError, match="'G' must be a networkx graph"):
        from_networkx({0: [1]})
    G = nx.DiGraph()
    G.add_node(0, pid=1)
    G.add_node(1)
    G.add_edge(0, 1, weight=0.5)
    G.add_edge(1, 0)
    with pytest.raises(ValueError, match=r"node attribute\(s\) \['pid'\] are set on some"):
        from_networkx(G)
    with pytest.raises(ValueError, match="'node_attrs' names 'pid', which is set on 1 of 2"):
        from_networkx(G, node_attrs=["pid"], edge_attrs=[])
    with pytest.raises(ValueError, match=r"edge attribute\(s\) \['weight'\] are set on some"):
        from_networkx(G, node_attrs=[])
    with pytest.raises(TypeError, match="'edge_attrs' must be an iterable"):
        from_networkx(G, node_attrs=[], edge_attrs="weight")
