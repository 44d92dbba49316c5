r"""Graph layers that turn re-ID graphs into supervision signals.

* :class:`RandomSAGE`, :func:`gaussian_affinity` — G-Fusion's untrained
  two-layer GraphSAGE and its affinity (Eq. 7–8).
* :class:`PairGCN` — MPRD's pair classifier on enclosing subgraphs (Eq. 5).
* :class:`CrossModalityLabelPropagation` — GUR's cross-modality label
  unification (Eq. 9–13).
* :class:`InstanceMemory`, :class:`ClusterMemory`, :class:`ClassMemory` —
  feature memories (G-Fusion Eq. 14, MPRD Eq. 1, GUR Eq. 1–2, QAConv).
"""

from reidgraph.nn.label_propagation import (
    CrossModalityLabelPropagation,
    cross_modality_label_propagation,
    label_vote,
)
from reidgraph.nn.memory import (
    ClassMemory,
    ClusterMemory,
    InstanceMemory,
    all_gather_varlen,
    momentum_update_,
    mprd_update_rate,
)
from reidgraph.nn.pair_gcn import MeanGraphConv, PairGCN
from reidgraph.nn.random_sage import RandomSAGE
from reidgraph.nn.random_sage import affinity as gaussian_affinity

__all__ = [
    "RandomSAGE",
    "gaussian_affinity",
    "MeanGraphConv",
    "PairGCN",
    "CrossModalityLabelPropagation",
    "cross_modality_label_propagation",
    "label_vote",
    "InstanceMemory",
    "ClusterMemory",
    "ClassMemory",
    "momentum_update_",
    "mprd_update_rate",
    "all_gather_varlen",
]
