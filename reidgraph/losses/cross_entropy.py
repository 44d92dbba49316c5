r"""Softmax cross-entropy with label smoothing (the re-ID classification loss)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidgraph._validation import check_matrix, check_vector

__all__ = ["cross_entropy_with_label_smoothing", "CrossEntropyLabelSmooth"]


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real):
        raise TypeError(f"'epsilon' must be a float in [0, 1), got {type(epsilon).__name__}")
    epsilon = float(epsilon)
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"'epsilon' must be in [0, 1), got {epsilon}")
    return epsilon


def _check_targets(target: Any, num: int, length: int, what: str) -> Tensor:
    target = check_vector(target, "target", length=length, length_of="rows of 'logits'")
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"'target' must hold integer {what} indices, got dtype {target.dtype}")
    target = target.long()
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num):
        hint = "; outliers (-1) must be left out of the batch" if int(target.min()) < 0 else ""
        raise ValueError(
            f"'target' must hold {what} indices in [0, {num - 1}], found "
            f"[{int(target.min())}, {int(target.max())}]{hint}"
        )
    return target


def cross_entropy_with_label_smoothing(
    logits: Tensor, target: Tensor, epsilon: float = 0.1
) -> Tensor:
    r"""Cross-entropy against label-smoothed targets (Szegedy et al., CVPR
    2016, Sec. 7; the re-ID "strong baseline" of Luo et al., CVPRW 2019),
    the softmax loss of IICS's Eq. 4, 8 and 11.

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_{b=1}^{B} \sum_{c=1}^{K} q_{bc}
            \log \operatorname{softmax}(z_b)_c, \qquad
        q_{bc} = (1 - \varepsilon)\,[c = y_b] + \frac{\varepsilon}{K}

    with :math:`K` classes; :math:`\varepsilon = 0` is the plain
    cross-entropy. Same as :func:`torch.nn.functional.cross_entropy` with
    ``label_smoothing=epsilon``, which this calls after validation.

    Args:
        logits (torch.Tensor): ``[B, K]`` classifier outputs :math:`z`.
        target (torch.Tensor): ``[B]`` class indices :math:`y_b \in [0, K)`.
        epsilon (float, optional): Smoothing :math:`\varepsilon \in [0, 1)`.
            (default: :obj:`0.1`)

    Returns:
        torch.Tensor: Scalar mean loss.

    Example:
        >>> z = torch.tensor([[0.0, 0.0]])
        >>> cross_entropy_with_label_smoothing(z, torch.tensor([0]))  # log 2
        tensor(0.6931)
    """
    epsilon = _check_epsilon(epsilon)
    logits = check_matrix(logits, "logits", finite=False)
    target = _check_targets(target, logits.size(1), logits.size(0), "class")
    return F.cross_entropy(logits, target.to(logits.device), label_smoothing=epsilon)


class CrossEntropyLabelSmooth(nn.Module):
    r"""Module form of :func:`cross_entropy_with_label_smoothing`.

    Args:
        epsilon (float, optional): Smoothing :math:`\varepsilon`.
            (default: :obj:`0.1`)

    Example:
        >>> CrossEntropyLabelSmooth(0.0)(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))
        tensor(0.6931)
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = _check_epsilon(epsilon)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy_with_label_smoothing(logits, target, self.epsilon)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
