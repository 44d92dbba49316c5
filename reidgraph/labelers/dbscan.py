r"""DBSCAN on the sparse k-reciprocal Jaccard distance: the Cluster Contrast labeler.

The pseudo-labeler of Cluster Contrast and of the methods built on it (GUR,
the public MPRD code): features → k-reciprocal Jaccard distance (Zhong et
al., CVPR 2017, with :math:`k_1 = 30, k_2 = 6`) → DBSCAN
(``min_samples = 4``, metric precomputed) → cluster labels, DBSCAN's noise
points being outliers (:math:`-1`).

The Jaccard distance is kept sparse: only pairs whose k-reciprocal
encodings overlap are stored (:func:`reidgraph.ops.k_reciprocal.jaccard_distance`),
every other pair has the maximal distance 1 and can never be within ``eps``
:math:`< 1`. DBSCAN's neighbourhood queries then read the stored entries of
one row, so neither the distance nor DBSCAN's neighbourhoods ever need the
:math:`N \times N` matrix that the dense way allocates (13 GB at MSMT17's
32,621 training images); see ``benchmarks/bench_clustering.py``.
"""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.cluster import DBSCAN
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import check_int
from reidgraph.labelers.base import ClusterLabels, PseudoLabeler, label_groups

__all__ = ["JaccardDBSCAN", "dbscan_precomputed", "EPS"]

logger = logging.getLogger(__name__)

#: DBSCAN ``eps`` on the Jaccard distance per dataset, from the authors' scripts:
#: MPRD's public code (README: Market 0.4, Duke 0.6, MSMT 0.7) and GUR's
#: hard-coded values (SYSU-MM01 0.6 global / 0.55 per camera, RegDB 0.3).
EPS: dict[str, float] = {
    "market1501": 0.4,
    "dukemtmc": 0.6,
    "msmt17": 0.7,
    "sysu_mm01": 0.6,
    "sysu_mm01_camera": 0.55,
    "regdb": 0.3,
}


def _check_eps(eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, Real):
        raise TypeError(f"'eps' must be a float, got {type(eps).__name__} ({eps!r})")
    eps = float(eps)
    if not 0.0 < eps < 1.0:
        raise ValueError(
            f"'eps' must be in (0, 1) for the Jaccard distance (1 = no shared neighbour), got {eps}"
        )
    return eps


def dbscan_precomputed(dist: Any, eps: float, min_samples: int) -> np.ndarray:
    r"""DBSCAN (Ester et al., KDD 1996) on a precomputed sparse distance matrix.

    A point is a *core* point when at least ``min_samples`` points (itself
    included) lie within distance ``eps`` of it; clusters are the connected
    groups of core points plus the border points they reach; the rest is
    noise, :math:`-1`. With a sparse matrix only stored entries are
    candidate neighbours (a missing entry is "farther than any ``eps``"); the
    diagonal is always a neighbour. This wraps :class:`sklearn.cluster.DBSCAN`
    with ``metric="precomputed"``.

    **Cost**: :math:`O(\mathrm{nnz})` time and memory for a sparse matrix,
    :math:`O(N^2)` for a dense one.

    Args:
        dist (scipy.sparse matrix or numpy.ndarray): ``[N, N]`` distances.
        eps (float): Neighbourhood radius.
        min_samples (int): Neighbours (self included) that make a core point.

    Returns:
        numpy.ndarray: ``[N]`` int64 labels, :math:`-1` noise.

    Example:
        >>> import scipy.sparse as sp
        >>> d = sp.csr_matrix(np.array([[0, .1, 0], [.1, 0, 0], [0, 0, 0]]))
        >>> dbscan_precomputed(d, eps=0.5, min_samples=2)
        array([ 0,  0, -1])
    """
    model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed")
    return model.fit_predict(dist).astype(np.int64)


class JaccardDBSCAN(PseudoLabeler):
    r"""DBSCAN on the k-reciprocal Jaccard distance (Cluster Contrast; GUR
    Sec. 3.1 / 4.2, "DBSCAN is performed to generate pseudo labels").

    .. math::
        d_J(i, j) = 1 - \frac{\sum_k \min(V_{ik}, V_{jk})}
                             {\sum_k \max(V_{ik}, V_{jk})}

    with :math:`V_i` the Gaussian-weighted k-reciprocal encoding of node
    :math:`i` (:math:`k_1` neighbours, averaged over its :math:`k_2`
    nearest; Zhong et al., CVPR 2017, Eq. 7–12), then DBSCAN with radius
    ``eps`` and ``min_samples`` on :math:`d_J`. Noise points get :math:`-1`.

    The defaults are the practice of Cluster Contrast that GUR and MPRD's
    code follow: :math:`k_1 = 30`, :math:`k_2 = 6`, ``min_samples = 4``,
    ``eps = 0.6`` (GUR's SYSU-MM01 value). ``eps`` depends on the dataset:
    :data:`EPS` lists the authors' values (Market-1501 0.4, DukeMTMC 0.6,
    MSMT17 0.7, RegDB 0.3).

    **Cost**: the sparse Jaccard distance (:math:`O(N^2 d)` neighbour
    search in bounded blocks, :math:`O(N k_1^2)` sparse entries) plus DBSCAN
    on its stored entries; memory :math:`O(N k_1^2)`, never
    :math:`N \times N`.

    Args:
        eps (float, optional): DBSCAN radius on :math:`d_J`, in (0, 1).
            (default: :obj:`0.6`)
        min_samples (int, optional): Neighbours within ``eps`` (self
            included) that make a core point. (default: :obj:`4`)
        k1 (int, optional): k-reciprocal neighbourhood size :math:`k_1`.
            (default: :obj:`30`)
        k2 (int, optional): Query-expansion size :math:`k_2`.
            (default: :obj:`6`)
        group_by (str, optional): Cluster each camera (``"camid"``, GUR's
            intra-camera stage with ``eps = 0.55``) or each modality
            (``"modality"``) on its own; :obj:`None` clusters all nodes
            together. (default: :obj:`None`)

    Attributes:
        supervision_ (ClusterLabels): The result.
        labels_ (torch.Tensor): ``[N]`` cluster labels, :math:`-1` outlier.
        n_clusters_ (int): Number of clusters.
        n_outliers_ (int): Number of outliers.

    Example:
        >>> from reidgraph.data.synthetic import make_world
        >>> data = make_world("tiny", seed=0).to_data("train")
        >>> labeler = JaccardDBSCAN(eps=0.6, k1=10, k2=3).fit(data)
        >>> labeler.labels_.shape == (data.num_nodes,)
        True
    """

    def __init__(
        self,
        eps: float = 0.6,
        min_samples: int = 4,
        k1: int = 30,
        k2: int = 6,
        *,
        group_by: str | None = None,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.k1 = k1
        self.k2 = k2
        self.group_by = group_by

    def _min_samples(self) -> int:
        # The k-reciprocal search needs k1 neighbours besides the node itself.
        return check_int(self.k1, "k1", min_value=1) + 1

    def _empty_hint(self) -> str:
        return (
            f"raise eps (now {self.eps}) or lower min_samples (now {self.min_samples}); "
            "EPS lists the published values per dataset"
        )

    def label(self, data: Data) -> ClusterLabels:
        r"""Clusters ``data.x`` (see the class docstring)."""
        from reidgraph.ops.k_reciprocal import jaccard_distance

        eps = _check_eps(self.eps)
        min_samples = check_int(self.min_samples, "min_samples", min_value=1)
        k1 = check_int(self.k1, "k1", min_value=1)
        k2 = check_int(self.k2, "k2", min_value=1)
        x = data.x

        def cluster(index: Tensor) -> Tensor:
            n = index.numel()
            if n <= k1:
                where = ""
                if self.group_by is not None:
                    where = f" (group {self.group_by}={int(data[self.group_by][index[0]])})"
                raise ValueError(
                    f"JaccardDBSCAN needs more than k1={k1} samples per clustering{where}, "
                    f"got {n}; lower k1 or cluster without group_by"
                )
            dist = jaccard_distance(x[index], k1=k1, k2=k2, metric="cosine")
            return torch.from_numpy(dbscan_precomputed(dist, eps, min_samples))

        return ClusterLabels(label_groups(data, self.group_by, cluster, "JaccardDBSCAN"))
