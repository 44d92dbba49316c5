import itertools
import math

import pytest
import torch
from torch_geometric.data import Data

from reidgraph.graph.edge_types import CROSS_MODALITY, SPATIOTEMPORAL, VISUAL
from reidgraph.graph.quality import (
    adjusted_rand_index,
    communities_to_labels,
    connected_components,
    edge_precision,
    graph_quality,
    pair_recall,
    purity,
)

# Hand graph: pid = [0, 0, 0, 1, 1, -1] (node 5 unknown).
#   (0,1) V ok | (1,0) V ok | (1,3) V wrong | (2,5) V unknown end -> left out
#   (3,4) S ok | (0,2) S ok | (4,4) S self-loop -> left out by default
#   (2,3) C wrong
PID = torch.tensor([0, 0, 0, 1, 1, -1])
EDGES = torch.tensor([[0, 1, 1, 2, 3, 0, 4, 2], [1, 0, 3, 5, 4, 2, 4, 3]])
V, S, C = VISUAL, SPATIOTEMPORAL, CROSS_MODALITY
TYPES = torch.tensor([V, V, V, V, S, S, S, C])


def test_edge_precision_hand_graph():
    # evaluable: (0,1) (1,0) (1,3) (3,4) (0,2) (2,3) -> 4 correct of 6
    # visual: 2 of 3; spatio-temporal: 2 of 2; cross-modality: 0 of 1
    out = edge_precision(EDGES, PID, TYPES)
    assert out == pytest.approx(
        {"all": 4 / 6, "visual": 2 / 3, "spatiotemporal": 1.0, "cross_modality": 0.0}
    )
    # counting the self-loop (4,4): all 5/7, spatio-temporal 3/3
    out = edge_precision(EDGES, PID, TYPES, self_loops=True)
    assert out["all"] == pytest.approx(5 / 7)
    assert out["spatiotemporal"] == 1.0
    assert edge_precision(EDGES, PID) == pytest.approx({"all": 4 / 6})


def test_edge_precision_unknown_type_and_empty():
    out = edge_precision(torch.tensor([[0, 5], [1, 2]]), PID, torch.tensor([7, 7]))
    # (0,1) correct; (5,2) has an unknown end
    assert out == {"all": 1.0, "7": 1.0}
    out = edge_precision(torch.tensor([[2], [5]]), PID, torch.tensor([0]))
    assert math.isnan(out["all"]) and math.isnan(out["visual"])


def test_pair_recall_hand_graph():
    # pid 0 has 3 images -> 3 unordered pairs, pid 1 has 2 -> 1; total 4.
    # joined: {0,1} (both directions, counts once), {0,2}, {3,4} -> 3 / 4
    assert pair_recall(EDGES, PID) == pytest.approx(0.75)
    # ordered: total 3*2 + 2*1 = 8; distinct same-pid directed edges
    # (0,1) (1,0) (3,4) (0,2) -> 4 / 8
    assert pair_recall(EDGES, PID, undirected=False) == pytest.approx(0.5)
    # parallel duplicates do not count twice
    dup = torch.cat([EDGES, EDGES], dim=1)
    assert pair_recall(dup, PID) == pytest.approx(0.75)
    assert math.isnan(pair_recall(EDGES[:, :1], torch.tensor([0, 1, 2, 3, 4, -1])))


def brute_force_recall_precision(edge_index, pid):
    # Independent reference: explicit loops over all pairs and edges.
    n = len(pid)
    edges = set(zip(edge_index[0].tolist(), edge_index[1].tolist(), strict=True))
    pairs = [
        (i, j) for i, j in itertools.combinations(range(n), 2) if pid[i] == pid[j] and pid[i] >= 0
    ]
    hit = sum((i, j) in edges or (j, i) in edges for i, j in pairs)
    good = bad = 0
    for u, v in zip(edge_index[0].tolist(), edge_index[1].tolist(), strict=True):
        if u == v or pid[u] < 0 or pid[v] < 0:
            continue
        good += pid[u] == pid[v]
        bad += pid[u] != pid[v]
    return hit / len(pairs), good / (good + bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n = 40
    pid = torch.randint(-1, 6, (n,), generator=g)
    edge_index = torch.randint(0, n, (2, 150), generator=g)
    recall, precision = brute_force_recall_precision(edge_index, pid.tolist())
    assert pair_recall(edge_index, pid) == pytest.approx(recall)
    assert edge_precision(edge_index, pid)["all"] == pytest.approx(precision)


def test_connected_components():
    edges = torch.tensor([[0, 1, 1], [1, 0, 2]])
    # weak: {0,1,2} {3}; strong: {0,1} {2} {3}
    assert connected_components(edges, 4).tolist() == [0, 0, 0, 1]
    strong = connected_components(edges, 4, connection="strong").tolist()
    assert strong[0] == strong[1] and len({strong[0], strong[2], strong[3]}) == 3
    assert connected_components(torch.empty(2, 0, dtype=torch.long), 0).numel() == 0


def test_communities_to_labels():
    # community 1 is empty; node 3 is in none
    assert communities_to_labels([{0, 2}, set(), {1}], 4).tolist() == [0, 2, 0, -1]
    with pytest.raises(ValueError, match="disjoint"):
        communities_to_labels([{0, 1}, {1}], 3)
    with pytest.raises(ValueError, match=r"outside \[0, 2\]"):
        communities_to_labels([{0, 3}], 3)


def test_purity_and_ari_hand():
    labels = torch.tensor([0, 0, 1, 1, -1, 2])
    # Known nodes 0..4 (node 5 has pid -1): labels [0,0,1,1,-1], pid [0,0,0,1,1].
    # singleton: clusters {0,1}->2 of pid 0, {2,3}->1, {4}->1: purity 4/5.
    assert purity(labels, PID) == pytest.approx(0.8)
    # ignore: nodes 0..3: 2 + 1 = 3 of 4.
    assert purity(labels, PID, outliers="ignore") == pytest.approx(0.75)
    # ARI singleton: contingency A=(2,0) B=(1,1) C=(0,1).
    #   index = C(2,2) = 1; a = 1+1+0 = 2; b = C(3,2)+C(2,2) = 4; C(5,2) = 10
    #   expected = 2*4/10 = 0.8; max = (2+4)/2 = 3 -> (1-0.8)/(3-0.8) = 1/11
    assert adjusted_rand_index(labels, PID) == pytest.approx(1 / 11)
    # ARI ignore: A=(2,0) B=(1,1): index 1, a = 2, b = 3, C(4,2) = 6
    #   expected = 1, max = 2.5 -> 0
    assert adjusted_rand_index(labels, PID, outliers="ignore") == pytest.approx(0.0)
    assert math.isnan(purity(torch.tensor([-1]), torch.tensor([3]), outliers="ignore"))
    assert math.isnan(adjusted_rand_index(torch.tensor([0]), torch.tensor([-1])))
    # all outliers, singleton: every node its own pure cluster
    assert purity(torch.tensor([-1, -1]), torch.tensor([1, 1])) == 1.0


def test_graph_quality_hand_graph():
    data = Data(edge_index=EDGES, edge_type=TYPES, pid=PID)
    q = graph_quality(data, labels=torch.tensor([0, 0, 1, 1, -1, 2]))
    # One weak component holding pid 0 x3 and pid 1 x2 (+ unknown node 5):
    #   purity 3/5; ARI of a single cluster = 0.
    # recall per type: visual {0,1} -> 1/4; spatio-temporal {3,4} {0,2} -> 2/4;
    #   cross-modality none -> 0.
    expected = {
        "precision": 4 / 6,
        "precision/visual": 2 / 3,
        "precision/spatiotemporal": 1.0,
        "precision/cross_modality": 0.0,
        "recall": 0.75,
        "recall/visual": 0.25,
        "recall/spatiotemporal": 0.5,
        "recall/cross_modality": 0.0,
        "num_components": 1.0,
        "component_purity": 0.6,
        "component_ari": 0.0,
        "label_purity": 0.8,
        "label_ari": 1 / 11,
    }
    assert q == pytest.approx(expected)
    q = graph_quality(Data(edge_index=EDGES[:, :1], pid=PID))
    # edge (0,1) only: components {0,1} {2} {3} {4} {5}; known nodes 0..4 all pure
    assert q["num_components"] == 5.0 and q["component_purity"] == 1.0
    assert "precision/visual" not in q


def test_errors():
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\]"):
        edge_precision(torch.zeros(3, 1, dtype=torch.long), PID)
    with pytest.raises(TypeError, match="'edge_index' must be an integer"):
        edge_precision(torch.zeros(2, 1), PID)
    with pytest.raises(ValueError, match=r"index nodes in \[0, 5\]"):
        pair_recall(torch.tensor([[0], [6]]), PID)
    with pytest.raises(ValueError, match="'pid' must be one-dimensional"):
        edge_precision(EDGES, PID.view(2, 3))
    with pytest.raises(TypeError, match="'pid' must be an integer"):
        edge_precision(EDGES, PID.float())
    with pytest.raises(ValueError, match="'pid' must be >= -1"):
        edge_precision(EDGES, torch.tensor([0, 0, 0, 1, 1, -2]))
    with pytest.raises(ValueError, match="'edge_type' must have length 8"):
        edge_precision(EDGES, PID, TYPES[:3])
    with pytest.raises(ValueError, match="'labels' must have length 6"):
        purity(torch.tensor([0, 1]), PID)
    with pytest.raises(TypeError, match="'labels' must be an integer"):
        purity(torch.zeros(6), PID)
    with pytest.raises(ValueError, match="'labels' must be >= -1"):
        adjusted_rand_index(torch.full((6,), -3), PID)
    with pytest.raises(ValueError, match="Could not resolve outliers='drop'"):
        purity(torch.zeros(6, dtype=torch.long), PID, outliers="drop")
    with pytest.raises(ValueError, match="Could not resolve connection='both'"):
        connected_components(EDGES, 6, connection="both")
    with pytest.raises(ValueError, match="'num_nodes' must be >= 0"):
        connected_components(EDGES, -1)
    with pytest.raises(TypeError, match="'data' must be a torch_geometric Data"):
        graph_quality(EDGES)
    with pytest.raises(ValueError, match="needs 'data.pid'"):
        graph_quality(Data(edge_index=EDGES, num_nodes=6))
    with pytest.raises(ValueError, match="needs 'data.edge_index'"):
        graph_quality(Data(pid=PID))
