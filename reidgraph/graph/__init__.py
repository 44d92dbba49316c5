r"""Graph builders that emit PyG :class:`~torch_geometric.data.Data`, and graph analysis.

Builders (plain functions on the spine ``Data``; thin transforms where
composition helps):

* :func:`knn_graph` — visual top-k neighbours (G-Fusion Eq. 1–2).
* :class:`TransitionSet`, :func:`spatiotemporal_graph`, :func:`attach_nodes`
  — transition times and the spatio-temporal graph (G-Fusion Eq. 3–6, 16).
* :func:`cross_modality_graph` — visible ↔ infrared affinity (GUR Eq. 10, 12).
* :func:`pair_subgraphs` — SEAL-style enclosing subgraphs with DRNL labels
  (MPRD Eq. 4).

Analysis: :func:`to_networkx` / :func:`from_networkx`, graph quality against
known identities (:func:`graph_quality` and friends), and
:func:`plot_transition_histogram`.
"""

from reidgraph.graph.convert import from_networkx, to_networkx
from reidgraph.graph.cross_modality import (
    CrossModalityGraph,
    CrossModalityMatrices,
    cross_modality_graph,
)
from reidgraph.graph.drnl import drnl_hash, drnl_node_labels, drnl_one_hot
from reidgraph.graph.edge_types import CROSS_MODALITY, EDGE_TYPE_NAMES, SPATIOTEMPORAL, VISUAL
from reidgraph.graph.knn import VisualKNNGraph, knn_graph
from reidgraph.graph.pair_subgraphs import pair_subgraphs
from reidgraph.graph.plots import plot_transition_histogram
from reidgraph.graph.quality import (
    adjusted_rand_index,
    communities_to_labels,
    connected_components,
    edge_precision,
    graph_quality,
    pair_recall,
    purity,
)
from reidgraph.graph.spatiotemporal import SpatioTemporalGraph, attach_nodes, spatiotemporal_graph
from reidgraph.graph.transitions import TransitionSet
from reidgraph.graph.utils import (
    coalesce_edges,
    gaussian_kernel,
    gfusion_norm,
    row_normalize,
    symmetrize,
    to_sparse_adjacency,
)

__all__ = [
    "knn_graph",
    "VisualKNNGraph",
    "TransitionSet",
    "spatiotemporal_graph",
    "SpatioTemporalGraph",
    "attach_nodes",
    "cross_modality_graph",
    "CrossModalityGraph",
    "CrossModalityMatrices",
    "pair_subgraphs",
    "drnl_hash",
    "drnl_node_labels",
    "drnl_one_hot",
    "symmetrize",
    "row_normalize",
    "gfusion_norm",
    "coalesce_edges",
    "to_sparse_adjacency",
    "gaussian_kernel",
    "to_networkx",
    "from_networkx",
    "edge_precision",
    "pair_recall",
    "connected_components",
    "communities_to_labels",
    "purity",
    "adjusted_rand_index",
    "graph_quality",
    "plot_transition_histogram",
    "VISUAL",
    "SPATIOTEMPORAL",
    "CROSS_MODALITY",
    "EDGE_TYPE_NAMES",
]
