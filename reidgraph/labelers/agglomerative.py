r"""Agglomerative clustering into a fixed number of clusters (IICS, CVPR 2021).

IICS (Sec. 4.1, "Implementation details") clusters with "the standard
Agglomerative Hierarchical method" into a fixed number of clusters: 600 per
camera in the intra-camera stage, 800 (Market-1501, DukeMTMC) or 1200
(MSMT17) over all images in the inter-camera stage. Its code uses
``AgglomerativeClustering(affinity='precomputed', linkage='average')`` on
the distance :math:`1 - \cos` (REFERENCE_NOTES A.3).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from sklearn.cluster import AgglomerativeClustering
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import check_choice, check_int
from reidgraph.labelers.base import ClusterLabels, PseudoLabeler, label_groups
from reidgraph.ops import pairwise_distance

__all__ = ["FixedClusters", "LINKAGES", "SMALL_GROUP"]

logger = logging.getLogger(__name__)

#: Linkages accepted by :class:`FixedClusters` (``"ward"`` needs raw features,
#: not a precomputed distance, so it is not offered).
LINKAGES: tuple[str, ...] = ("average", "complete", "single")
#: What :class:`FixedClusters` does with a group smaller than ``n_clusters``.
SMALL_GROUP: tuple[str, ...] = ("raise", "halve")
_METRICS: tuple[str, ...] = ("cosine", "euclidean")


class FixedClusters(PseudoLabeler):
    r"""Agglomerative clustering into exactly ``n_clusters`` clusters (IICS
    Sec. 3.2–3.3 and 4.1).

    Starting from singletons, the two clusters :math:`A, B` with the smallest
    linkage distance are merged until ``n_clusters`` remain; with average
    linkage (IICS's choice)

    .. math::
        d(A, B) = \frac{1}{|A|\,|B|} \sum_{a \in A} \sum_{b \in B} d(a, b),
        \qquad d(a, b) = 1 - \hat{x}_a^\top \hat{x}_b .

    Every node gets a cluster (no outliers). This wraps
    :class:`sklearn.cluster.AgglomerativeClustering` with
    ``metric="precomputed"``.

    **Groups smaller than** ``n_clusters``: IICS's code clusters a camera
    with :math:`n < 600` images into :math:`\lfloor n/2 \rfloor` clusters,
    but overwrites the cluster count for every later camera as well, which
    looks like a bug (REFERENCE_NOTES A.3). Here ``small_group="raise"``
    (default) stops with a clear error, and ``small_group="halve"`` uses
    :math:`\max(1, \lfloor n/2 \rfloor)` clusters for that group **only**
    (logged as a warning), leaving the others at ``n_clusters``.

    **Cost**: agglomerative clustering needs all pairwise distances of a
    group: :math:`O(n^2 d + n^2 \log n)` time and about :math:`12 n^2`
    bytes (the float32 matrix plus scipy's float64 condensed copy and its
    working copy) for the largest group of :math:`n` nodes; groups larger
    than ``max_samples`` are refused rather than exhausting memory.

    Args:
        n_clusters (int): Clusters per group (per camera with
            ``group_by="camid"``). IICS: 600 per camera, 800 (Market, Duke)
            or 1200 (MSMT17) over all images.
        linkage (str, optional): ``"average"``, ``"complete"`` or
            ``"single"``. (default: :obj:`"average"`, IICS)
        metric (str, optional): ``"cosine"`` (:math:`1 - \cos`, IICS) or
            ``"euclidean"``. (default: :obj:`"cosine"`)
        group_by (str, optional): ``"camid"`` for IICS's intra-camera stage
            (clusters of different cameras get different labels),
            ``"modality"``, or :obj:`None`. (default: :obj:`None`)
        small_group (str, optional): ``"raise"`` or ``"halve"`` (see above).
            (default: :obj:`"raise"`)
        max_samples (int, optional): Largest group accepted.
            (default: :obj:`20000`, about 4.8 GB)

    Attributes:
        supervision_ (ClusterLabels): The result.
        labels_ (torch.Tensor): ``[N]`` cluster labels.
        n_clusters_ (int): Number of clusters found (summed over groups).

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> FixedClusters(2).fit(x).labels_
        tensor([1, 1, 0, 0])
    """

    def __init__(
        self,
        n_clusters: int,
        linkage: str = "average",
        *,
        metric: str = "cosine",
        group_by: str | None = None,
        small_group: str = "raise",
        max_samples: int = 20000,
    ) -> None:
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.metric = metric
        self.group_by = group_by
        self.small_group = small_group
        self.max_samples = max_samples

    def _empty_hint(self) -> str:  # pragma: no cover - every node gets a cluster
        return "check the input"

    def label(self, data: Data) -> ClusterLabels:
        r"""Clusters ``data.x`` (see the class docstring)."""
        n_clusters = check_int(self.n_clusters, "n_clusters", min_value=1)
        linkage = check_choice(self.linkage, "linkage", LINKAGES)
        metric = check_choice(self.metric, "metric", _METRICS)
        small_group = check_choice(self.small_group, "small_group", SMALL_GROUP)
        max_samples = check_int(self.max_samples, "max_samples", min_value=2)
        x = data.x

        def cluster(index: Tensor) -> Tensor:
            n = index.numel()
            where = ""
            if self.group_by is not None:
                where = f" (group {self.group_by}={int(data[self.group_by][index[0]])})"
            if n > max_samples:
                raise ValueError(
                    f"FixedClusters: {n} samples{where} exceed max_samples={max_samples}; "
                    f"agglomerative clustering needs all pairwise distances (about "
                    f"{12 * n * n / 2**30:.1f} GiB here). Raise max_samples if the memory is "
                    "there, cluster per camera (group_by='camid') or use JaccardDBSCAN"
                )
            k = n_clusters
            if n < k:
                if small_group == "raise":
                    raise ValueError(
                        f"FixedClusters: n_clusters={k} exceeds the {n} samples{where}; lower "
                        "n_clusters, or pass small_group='halve' to use n // 2 clusters for "
                        "such groups (IICS's fallback, applied to that group only)"
                    )
                k = max(1, n // 2)
                logger.warning(
                    "FixedClusters: %d samples%s < n_clusters=%d; using %d clusters for this "
                    "group only",
                    n,
                    where,
                    n_clusters,
                    k,
                )
            if n == 1:
                return torch.zeros(1, dtype=torch.long)
            dist = _distance(x[index], metric)
            model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage=linkage)
            return torch.from_numpy(model.fit_predict(dist)).long()

        return ClusterLabels(label_groups(data, self.group_by, cluster, "FixedClusters"))


def _distance(x: Tensor, metric: str) -> Any:
    r"""Dense ``[n, n]`` float32 numpy distances with an exact zero diagonal."""
    if metric == "cosine":
        d = pairwise_distance(x, metric="cosine")
    else:
        d = pairwise_distance(x, metric="euclidean").sqrt_()
    d = d.clamp_(min=0.0)
    d.fill_diagonal_(0.0)
    return d.cpu().numpy()
