r"""Batch-hard triplet loss (Hermans et al., 2017), IICS Eq. 11 with margin 0.3."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidgraph._validation import check_matrix, check_vector

__all__ = ["hard_triplet_loss", "HardTripletLoss"]


def _check_margin(margin: Any) -> float:
    if isinstance(margin, bool) or not isinstance(margin, Real):
        raise TypeError(f"'margin' must be a float, got {type(margin).__name__}")
    margin = float(margin)
    if not margin >= 0:
        raise ValueError(f"'margin' must be >= 0, got {margin}")
    return margin


def hard_triplet_loss(
    feat: Tensor, labels: Tensor, margin: float = 0.3, *, normalize: bool = False
) -> Tensor:
    r"""Batch-hard triplet loss ("hard-batch triplet loss" of IICS Eq. 11,
    from Hermans et al., "In Defense of the Triplet Loss", 2017).

    For every anchor :math:`a` of the batch, its farthest positive and its
    nearest negative:

    .. math::
        \mathcal{L} = \frac{1}{|A|} \sum_{a \in A}
            \Big[ m + \max_{p:\, y_p = y_a} d(a, p)
                    - \min_{n:\, y_n \ne y_a} d(a, n) \Big]_+

    with the Euclidean distance :math:`d` (not squared) and margin
    :math:`m = 0.3` (IICS Sec. 4.1). An anchor with no other sample of its
    label uses :math:`d(a, a) = 0` as its positive; anchors with no
    negative (:math:`A` excludes them) cannot form a triplet. Computed on
    the :math:`B \times B` batch distances (:math:`O(B^2 D)`), which is
    small.

    Args:
        feat (torch.Tensor): ``[B, D]`` features (the pooled feature before
            BNNeck in the strong baseline).
        labels (torch.Tensor): ``[B]`` labels (pseudo-labels, :math:`\ge 0`).
        margin (float, optional): :math:`m \ge 0`. (default: :obj:`0.3`)
        normalize (bool, optional): L2-normalise ``feat`` first.
            (default: :obj:`False`)

    Returns:
        torch.Tensor: Scalar mean loss over the anchors with a negative.

    Example:
        >>> f = torch.tensor([[0.0], [1.0], [1.5]])
        >>> # anchors: [.3 + 1 - 1.5]_+ = 0, [.3 + 1 - .5]_+ = .8, [.3 + 0 - .5]_+ = 0
        >>> hard_triplet_loss(f, torch.tensor([0, 0, 1]))
        tensor(0.2667)
    """
    margin = _check_margin(margin)
    feat = check_matrix(feat, "feat", finite=False)
    labels = check_vector(labels, "labels", length=feat.size(0), length_of="rows of 'feat'")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"'labels' must be integer labels, got dtype {labels.dtype}")
    labels = labels.long().to(feat.device)
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(
            f"'labels' must be >= 0, found {int(labels.min())}; outliers (-1) must be left "
            "out of the batch"
        )
    if normalize:
        feat = F.normalize(feat, dim=1)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    has_negative = (~same).any(1)
    if not bool(has_negative.any()):
        raise ValueError(
            f"hard_triplet_loss needs at least two labels in the batch (a negative for some "
            f"anchor), got {feat.size(0)} samples of one label; sample P > 1 identities"
        )
    sq = feat.pow(2).sum(1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * feat @ feat.t()
    # Clamping before the square root keeps its gradient finite at d = 0.
    eye = torch.eye(feat.size(0), dtype=torch.bool, device=feat.device)
    dist = d2.clamp(min=1e-12).sqrt().masked_fill(eye, 0.0)
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(1)
    loss = F.relu(margin + hardest_pos - hardest_neg)
    return loss[has_negative].mean()


class HardTripletLoss(nn.Module):
    r"""Module form of :func:`hard_triplet_loss`.

    Args:
        margin (float, optional): :math:`m`. (default: :obj:`0.3`)
        normalize (bool, optional): L2-normalise first. (default: :obj:`False`)

    Example:
        >>> HardTripletLoss(2.0)(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1]))  # 2 + 0 - 1
        tensor(1.)
    """

    def __init__(self, margin: float = 0.3, *, normalize: bool = False) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.normalize = normalize

    def forward(self, feat: Tensor, labels: Tensor) -> Tensor:
        return hard_triplet_loss(feat, labels, self.margin, normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, normalize={self.normalize}"
