r"""Pair labelers from visual similarity alone: the kNN and similarity-score
baselines of MPRD (ICCV 2021, Table 1 and Sec. 5.3).

MPRD compares its GCN pair labels with two simple ways of choosing the
positive list :math:`\mathbf{P}_i` of each anchor :math:`x_i`: its
:math:`K = 8` nearest neighbours ("KNN") and every image whose cosine
similarity exceeds 0.6 ("SS"). Both feed the same binomial deviance loss,
which mines the hard negatives itself (Eq. 2–3), so these labelers emit
positive pairs only (``target = 1``, confidence 1).
"""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import check_choice, check_int
from reidgraph.graph.knn import _neighbors
from reidgraph.labelers.base import LabelledPairs, PseudoLabeler
from reidgraph.ops import BACKENDS

__all__ = ["KNNPairs", "ThresholdPairs"]

logger = logging.getLogger(__name__)


def _pairs(anchor: Tensor, other: Tensor, n: int) -> LabelledPairs:
    pair_index = torch.stack([anchor, other])
    target = torch.ones(anchor.numel(), dtype=torch.long, device=anchor.device)
    return LabelledPairs(pair_index, target, num_nodes=n)


class KNNPairs(PseudoLabeler):
    r"""Positive pairs from the :math:`k` nearest neighbours (MPRD Table 1, "KNN").

    .. math::
        \mathbf{P}_i = \mathrm{NN}_k(x_i)
        = \operatorname*{arg\,top\text{-}k}_{j \ne i} \hat{x}_i^\top \hat{x}_j

    Each anchor :math:`i` gets exactly :math:`k` pairs ``(i, j)`` (the node
    itself excluded, even when a duplicate ties with it), grouped by anchor
    and nearest first. MPRD sets :math:`K = 8` "where its performance peaks"
    (Sec. 5.3).

    **Cost**: one top-:math:`k` search (:func:`reidgraph.ops.topk`,
    :math:`O(N^2 d)` time in bounded blocks) and :math:`O(N k)` memory.

    Args:
        k (int, optional): Neighbours per anchor, :math:`1 \le k < N`.
            (default: :obj:`8`)
        backend (str, optional): Search backend of :func:`reidgraph.ops.topk`.
            (default: :obj:`"auto"`)

    Attributes:
        supervision_ (LabelledPairs): ``N k`` positive pairs.
        n_pairs_ (int): :math:`N k`.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> KNNPairs(k=1, backend="torch").fit(x).supervision_.pair_index
        tensor([[0, 1, 2],
                [1, 0, 1]])
    """

    def __init__(self, k: int = 8, *, backend: str = "auto") -> None:
        self.k = k
        self.backend = backend

    def _min_samples(self) -> int:
        return check_int(self.k, "k", min_value=1) + 1

    def label(self, data: Data) -> LabelledPairs:
        r"""Lists the :math:`k` nearest neighbours of every node."""
        k = check_int(self.k, "k", min_value=1)
        backend = check_choice(self.backend, "backend", BACKENDS)
        n = data.x.size(0)
        _, nbr = _neighbors(data.x, k + 1, "cosine", backend)
        anchor = torch.arange(n, device=nbr.device).repeat_interleave(k)
        return _pairs(anchor, nbr.reshape(-1), n)


class ThresholdPairs(PseudoLabeler):
    r"""Positive pairs above a cosine-similarity threshold (MPRD Table 1, "SS").

    .. math::
        \mathbf{P}_i = \{\, j \ne i : \hat{x}_i^\top \hat{x}_j > \theta \,\}
        \;\cup\; \mathrm{NN}_{k_{\min}}(x_i)

    with :math:`\theta = 0.6` (Sec. 5.3). ``min_k`` adds the
    :math:`k_{\min}` nearest neighbours whatever their similarity: MPRD's own
    candidate list takes "the maximum between 8 and the number of images
    whose cosine similarity to the input image is larger than 0.6"
    (Sec. 5.2), i.e. ``ThresholdPairs(0.6, min_k=8)``.

    **No** :math:`N \times N` **matrix**: the candidates of each anchor are its
    ``max_neighbors`` nearest neighbours (one top-k search), filtered by the
    threshold (compared in the features' precision). An anchor with more
    than ``max_neighbors`` images above the threshold keeps only the
    ``max_neighbors`` most similar; the number of such anchors (detected
    with one extra candidate) is stored in ``n_truncated_`` and logged as a
    warning; raise ``max_neighbors`` if it is not 0 (a re-ID identity rarely
    has more than 100 images).

    **Cost**: one top-(``max_neighbors`` + 1) search (:math:`O(N^2 d)` time in
    bounded blocks), :math:`O(N \cdot` ``max_neighbors`` :math:`)` memory.

    Args:
        threshold (float, optional): Cosine similarity :math:`\theta` a pair
            must exceed, in :math:`[-1, 1]`. (default: :obj:`0.6`)
        min_k (int, optional): Nearest neighbours always kept,
            ``min_k <= max_neighbors``. (default: :obj:`0`)
        max_neighbors (int, optional): Candidates per anchor (capped at
            :math:`N - 1`). (default: :obj:`100`)
        backend (str, optional): Search backend of :func:`reidgraph.ops.topk`.
            (default: :obj:`"auto"`)

    Attributes:
        supervision_ (LabelledPairs): The positive pairs, grouped by anchor,
            most similar first.
        n_pairs_ (int): Their number.
        n_truncated_ (int): Anchors whose list was cut at ``max_neighbors``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> ThresholdPairs(0.6, backend="torch").fit(x).supervision_.pair_index
        tensor([[0, 1],
                [1, 0]])
    """

    def __init__(
        self,
        threshold: float = 0.6,
        *,
        min_k: int = 0,
        max_neighbors: int = 100,
        backend: str = "auto",
    ) -> None:
        self.threshold = threshold
        self.min_k = min_k
        self.max_neighbors = max_neighbors
        self.backend = backend

    def _empty_hint(self) -> str:
        return f"no cosine similarity exceeds threshold={self.threshold}; lower it or set min_k"

    def _min_samples(self) -> int:
        return max(2, check_int(self.min_k, "min_k", min_value=0) + 1)

    def label(self, data: Data) -> LabelledPairs:
        r"""Lists, for every node, the nodes more similar than the threshold."""
        threshold = _check_threshold(self.threshold)
        max_neighbors = check_int(self.max_neighbors, "max_neighbors", min_value=1)
        min_k = check_int(
            self.min_k,
            "min_k",
            min_value=0,
            max_value=max_neighbors,
            max_reason=f"min_k neighbours must fit in max_neighbors={max_neighbors}",
        )
        backend = check_choice(self.backend, "backend", BACKENDS)
        n = data.x.size(0)
        cap = min(max_neighbors, n - 1)
        # One candidate beyond the cap tells whether the cap cut a list short.
        extra = int(cap < n - 1)
        score, nbr = _neighbors(data.x, cap + 1 + extra, "cosine", backend)
        truncated = int((score[:, cap] > threshold).sum()) if extra else 0
        score, nbr = score[:, :cap], nbr[:, :cap]
        keep = score > threshold
        if min_k:
            keep[:, :min_k] = True
        self.n_truncated_ = truncated
        if truncated:
            logger.warning(
                "ThresholdPairs: %d of %d anchors have more than max_neighbors=%d neighbours "
                "above threshold=%s and keep only the %d most similar; raise max_neighbors",
                truncated,
                n,
                max_neighbors,
                threshold,
                cap,
            )
        anchor = torch.arange(n, device=nbr.device).unsqueeze(1).expand_as(nbr)
        return _pairs(anchor[keep], nbr[keep], n)


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"'threshold' must be a float, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"'threshold' must be a cosine similarity in [-1, 1], got {value}")
    return value
