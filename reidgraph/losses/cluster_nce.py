r"""ClusterNCE: the contrastive loss against cluster centroids (GUR Eq. 3–4, Cluster Contrast)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from reidgraph._validation import check_matrix
from reidgraph.losses.cross_entropy import _check_targets
from reidgraph.nn.memory import ClusterMemory

__all__ = ["cluster_nce", "ClusterNCE"]


def _check_temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"'temperature' must be a float, got {type(value).__name__}")
    if not float(value) > 0:
        raise ValueError(f"'temperature' must be > 0, got {value}")
    return float(value)


def cluster_nce(
    feats: Tensor,
    targets: Tensor,
    memory: ClusterMemory | Tensor,
    temperature: float | None = None,
) -> Tensor:
    r"""ClusterNCE loss of GUR (ICCV 2023, Eq. 3–4), from Cluster Contrast.

    .. math::
        \mathcal{L}_q = -\log \frac{\exp(q \cdot m_+ / \tau)}
                                   {\sum_{k=0}^{K} \exp(q \cdot m_k / \tau)}

    averaged over the batch, with :math:`q` the L2-normalised query feature,
    :math:`m_k` the cluster centroids of the memory, :math:`m_+` the
    centroid of :math:`q`'s pseudo-label and :math:`\tau = 0.05` (GUR's
    ``--temp 0.05``). GUR sums this over the infrared and visible memories
    (Eq. 5): call it once per memory and add. Gradients reach ``feats`` only;
    the memory is updated separately (:meth:`ClusterMemory.update`).

    Args:
        feats (torch.Tensor): ``[B, D]`` query features :math:`q`
            (normalised here).
        targets (torch.Tensor): ``[B]`` cluster labels in :math:`[0, K]`;
            outliers must not be in the batch.
        memory (ClusterMemory or torch.Tensor): The memory, or its
            centroids ``[K+1, D]`` (L2-normalised).
        temperature (float, optional): :math:`\tau`; :obj:`None` takes the
            memory's (or 0.05 for a bare tensor). (default: :obj:`None`)

    Returns:
        torch.Tensor: Scalar mean loss.

    Example:
        >>> import torch
        >>> m = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> # -log(e^{1/0.5} / (e^{1/0.5} + e^{0})) = log(1 + e^{-2})
        >>> cluster_nce(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), m, 0.5)
        tensor(0.1269)
    """
    if isinstance(memory, ClusterMemory):
        tau = memory.temperature if temperature is None else _check_temperature(temperature)
        memory._check_ready()
        centroids = memory.features
    elif isinstance(memory, Tensor):
        tau = 0.05 if temperature is None else _check_temperature(temperature)
        centroids = check_matrix(memory, "memory")
    else:
        raise TypeError(
            f"'memory' must be a ClusterMemory or a [K, D] centroid tensor, got "
            f"{type(memory).__name__}"
        )
    feats = check_matrix(feats, "feats", finite=False)
    if feats.size(1) != centroids.size(1):
        raise ValueError(
            f"'feats' must have {centroids.size(1)} columns (the memory's dim), got {feats.size(1)}"
        )
    targets = _check_targets(targets, centroids.size(0), feats.size(0), "cluster")
    logits = F.normalize(feats, dim=1) @ centroids.to(feats.dtype).detach().t() / tau
    return F.cross_entropy(logits, targets.to(feats.device))


class ClusterNCE(nn.Module):
    r"""Module form of :func:`cluster_nce`: ``ClusterNCE()(feats, targets, memory)``.

    Args:
        temperature (float, optional): :math:`\tau`; :obj:`None` uses the
            memory's. (default: :obj:`None`)

    Example:
        >>> import torch
        >>> mem = ClusterMemory(2, temperature=0.5)
        >>> mem.reset(torch.eye(2), torch.tensor([0, 1]))
        >>> ClusterNCE()(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), mem)
        tensor(0.1269)
    """

    def __init__(self, temperature: float | None = None) -> None:
        super().__init__()
        self.temperature = None if temperature is None else _check_temperature(temperature)

    def forward(self, feats: Tensor, targets: Tensor, memory: ClusterMemory | Tensor) -> Tensor:
        return cluster_nce(feats, targets, memory, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
