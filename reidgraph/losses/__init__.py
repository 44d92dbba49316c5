r"""Losses that consume the supervision forms of :mod:`reidgraph.labelers`.

* :func:`cross_entropy_with_label_smoothing` / :class:`CrossEntropyLabelSmooth`
  — classification on cluster labels (IICS);
* :func:`hard_triplet_loss` / :class:`HardTripletLoss` — batch-hard triplet,
  margin 0.3 (IICS Eq. 11);
* :func:`cluster_nce` / :class:`ClusterNCE` — contrast against the centroids
  of a :class:`~reidgraph.nn.memory.ClusterMemory` (GUR Eq. 3–4);
* :func:`camera_grouped_distillation` / :class:`CameraGroupedDistillation`
  — G-Fusion's affinity distillation against an instance memory (Eq. 9–13).
"""

from reidgraph.losses.camera_distillation import (
    CameraGroupedDistillation,
    camera_grouped_distillation,
)
from reidgraph.losses.cluster_nce import ClusterNCE, cluster_nce
from reidgraph.losses.cross_entropy import (
    CrossEntropyLabelSmooth,
    cross_entropy_with_label_smoothing,
)
from reidgraph.losses.triplet import HardTripletLoss, hard_triplet_loss

__all__ = [
    "cross_entropy_with_label_smoothing",
    "CrossEntropyLabelSmooth",
    "hard_triplet_loss",
    "HardTripletLoss",
    "cluster_nce",
    "ClusterNCE",
    "camera_grouped_distillation",
    "CameraGroupedDistillation",
]
