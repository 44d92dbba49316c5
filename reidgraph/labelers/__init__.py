r"""Pseudo-labelers: the spine graph in, one form of supervision out.

One small protocol (:class:`PseudoLabeler`, scikit-learn's estimator style):
parameters in ``__init__``, ``fit(data)`` returns ``self`` and sets
``supervision_`` to exactly one of

* :class:`ClusterLabels` — a label per node, :math:`-1` outlier
  (``labels_``, ``n_clusters_``);
* :class:`LabelledPairs` — (anchor, other) pairs with a 1/0 target and a
  confidence;
* :class:`SoftAffinity` — a sparse soft-affinity target.

Labelers here (the baselines the papers compare against):

* :class:`JaccardDBSCAN` — DBSCAN on the sparse k-reciprocal Jaccard
  distance (Cluster Contrast; GUR, MPRD's code);
* :class:`FixedClusters` — agglomerative clustering into a fixed number of
  clusters (IICS);
* :class:`KNNPairs`, :class:`ThresholdPairs` — the "KNN" and "SS" pair
  baselines of MPRD's Table 1;
* :class:`GFusionAffinity` — G-Fusion's camera-grouped affinity targets
  (spatio-temporal graph, random GraphSAGE, Eq. 1–10).

A new labeler subclasses :class:`PseudoLabeler` and writes ``label(data)``;
see ``docs/tutorial_gnn_labeler.md``.
"""

from reidgraph.labelers.agglomerative import FixedClusters
from reidgraph.labelers.base import (
    GROUP_KEYS,
    ClusterLabels,
    EmptySupervisionError,
    LabelledPairs,
    PseudoLabeler,
    SoftAffinity,
    Supervision,
    check_spine,
    compact_labels,
    label_groups,
)
from reidgraph.labelers.dbscan import EPS, JaccardDBSCAN, dbscan_precomputed
from reidgraph.labelers.gfusion import (
    GFusionAffinity,
    NoTimestampsError,
    camera_grouped_targets,
    propagated_affinity,
)
from reidgraph.labelers.pairs import KNNPairs, ThresholdPairs

__all__ = [
    "PseudoLabeler",
    "ClusterLabels",
    "LabelledPairs",
    "SoftAffinity",
    "Supervision",
    "EmptySupervisionError",
    "compact_labels",
    "check_spine",
    "label_groups",
    "GROUP_KEYS",
    "JaccardDBSCAN",
    "dbscan_precomputed",
    "EPS",
    "FixedClusters",
    "KNNPairs",
    "ThresholdPairs",
    "GFusionAffinity",
    "NoTimestampsError",
    "camera_grouped_targets",
    "propagated_affinity",
]
