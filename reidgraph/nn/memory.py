r"""Feature memories: per-sample, per-cluster and per-class banks of features.

Three memories the papers train against, all :class:`torch.nn.Module` whose
bank is a **buffer** (saved in ``state_dict``, moved by ``.to()``, never
given gradients) and updated under :func:`torch.no_grad` after the loss:

* :class:`InstanceMemory` — one feature per training sample, momentum update
  (G-Fusion Eq. 14; MPRD Eq. 1 with its :math:`\gamma^{(t)}` schedule,
  :func:`mprd_update_rate`);
* :class:`ClusterMemory` — one centroid per pseudo-label cluster,
  initialised as cluster means (GUR Eq. 1–2), momentum update (Cluster
  Contrast), the logits of ClusterNCE (GUR Eq. 3–4);
* :class:`ClassMemory` — the most recent feature (map) of each class,
  direct replacement (QAConv Sec. 3.3).

**Order within a batch.** A momentum memory is updated sample by sample in
batch order, as Cluster Contrast's backward pass does: with :math:`K`
samples of one cluster in a batch (P×K sampling) the centroid moves
:math:`K` times. :func:`momentum_update_` reproduces this without a loop
over samples: the batch is split into "rounds" (round :math:`r` holds the
:math:`r`-th occurrence of every index), and each round is one vectorised
update, so the loop runs :math:`K` times, not :math:`B`.

**Distributed training.** With ``sync=True`` (default) and
:mod:`torch.distributed` initialised, ``update`` first all-gathers the batch
features and indices of every rank (batches of different sizes allowed) and
applies them in rank order, so every rank keeps the same memory. All ranks
must call ``update`` together.
"""

from __future__ import annotations

import logging
from numbers import Real
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from reidgraph._validation import as_tensor, check_finite, check_int, check_matrix, check_vector

__all__ = [
    "InstanceMemory",
    "ClusterMemory",
    "ClassMemory",
    "momentum_update_",
    "mprd_update_rate",
    "all_gather_varlen",
]

logger = logging.getLogger(__name__)


def _check_momentum(value: Any, name: str = "momentum") -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"'{name}' must be a float in [0, 1], got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"'{name}' must be in [0, 1], got {value}")
    return value


def _check_index(value: Any, name: str, size: int, length: int, what: str) -> Tensor:
    value = check_vector(value, name, length=length, length_of="rows of 'feats'")
    if value.is_floating_point() or value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"'{name}' must hold integer {what} indices, got dtype {value.dtype}")
    value = value.long()
    if value.numel() and (int(value.min()) < 0 or int(value.max()) >= size):
        hint = ""
        if int(value.min()) < 0 and what == "cluster":
            hint = "; outliers (-1) must be left out of the batch"
        raise ValueError(
            f"'{name}' must hold {what} indices in [0, {size - 1}], found "
            f"[{int(value.min())}, {int(value.max())}]{hint}"
        )
    return value


def all_gather_varlen(*tensors: Tensor) -> tuple[Tensor, ...]:
    r"""Concatenates each tensor over all ranks, in rank order.

    Rows may differ in number between ranks (the last batch of an epoch);
    they are padded for :func:`torch.distributed.all_gather` and the padding
    is cut off again. Without an initialised process group (or with one
    rank) the tensors are returned as they are. Every tensor must have the
    same number of rows on a rank.

    Args:
        *tensors (torch.Tensor): ``[B_r, ...]`` on this rank's device
            (CUDA for NCCL).

    Returns:
        tuple[torch.Tensor, ...]: ``[sum_r B_r, ...]`` each, identical on
        every rank.

    Example:
        >>> all_gather_varlen(torch.tensor([1, 2]))  # no process group
        (tensor([1, 2]),)
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    world = dist.get_world_size()
    device = tensors[0].device
    n = torch.tensor([tensors[0].size(0)], device=device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    sizes_int = [int(s) for s in sizes]
    rows = max(sizes_int)
    out = []
    for t in tensors:
        padded = t.new_zeros((rows, *t.shape[1:]))
        padded[: t.size(0)] = t
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        out.append(torch.cat([p[:s] for p, s in zip(parts, sizes_int, strict=True)]))
    return tuple(out)


@torch.no_grad()
def momentum_update_(
    bank: Tensor,
    index: Tensor,
    value: Tensor,
    momentum: float,
    *,
    normalize: bool = False,
) -> Tensor:
    r"""In-place momentum update of the rows ``index`` of ``bank``, one
    sample at a time in batch order (G-Fusion Eq. 14, Cluster Contrast).

    .. math::
        b_{i_t} \leftarrow m\, b_{i_t} + (1 - m)\, v_t, \qquad
        b_{i_t} \leftarrow b_{i_t} / \lVert b_{i_t} \rVert_2
        \ (\text{with } \texttt{normalize})

    for :math:`t = 1 .. B` in order. :math:`m` weights the **old** value,
    as in G-Fusion Eq. 14 (:math:`m = 0.01`) and Cluster Contrast
    (:math:`m = 0.1`); MPRD's Eq. 1 weights the new feature by
    :math:`\gamma`, i.e. :math:`m = 1 - \gamma`. Repeated indices are
    applied in rounds (see the module docstring), exactly as the sequential
    loop; :math:`O(B \cdot K \cdot D)` time for at most :math:`K`
    repetitions of one index.

    Args:
        bank (torch.Tensor): ``[M, ...]`` memory, changed in place.
        index (torch.Tensor): ``[B]`` long rows of ``bank``.
        value (torch.Tensor): ``[B, ...]`` new values (cast to ``bank``'s
            dtype and device).
        momentum (float): :math:`m \in [0, 1]`.
        normalize (bool, optional): L2-normalise each updated row (over all
            but the first dimension). (default: :obj:`False`)

    Returns:
        torch.Tensor: ``bank``.

    Example:
        >>> bank = torch.zeros(2, 1)
        >>> momentum_update_(bank, torch.tensor([1, 1]), torch.tensor([[1.0], [2.0]]), 0.5)
        tensor([[0.0000],
                [1.2500]])
    """
    if index.numel() == 0:
        return bank
    value = value.to(device=bank.device, dtype=bank.dtype)
    index = index.to(bank.device)
    n = index.numel()
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    pos = torch.arange(n, device=index.device)
    is_start = torch.ones(n, dtype=torch.bool, device=index.device)
    is_start[1:] = sorted_index[1:] != sorted_index[:-1]
    run_start = torch.cummax(torch.where(is_start, pos, torch.zeros_like(pos)), 0).values
    rank = torch.empty_like(pos)
    rank[order] = pos - run_start
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        rows = index[sel]
        new = bank[rows].mul(momentum).add_(value[sel], alpha=1.0 - momentum)
        if normalize:
            flat = F.normalize(new.reshape(new.size(0), -1), dim=1)
            new = flat.view_as(new)
        bank[rows] = new
    return bank


def mprd_update_rate(
    epoch: int, num_epochs: int = 40, *, start: float = 1.0, end: float = 0.5
) -> float:
    r"""MPRD's memory updating rate :math:`\gamma^{(t)}` (Sec. 5.2): 1 at the
    first epoch, decreasing linearly to 0.5 at the 40th.

    .. math::
        \gamma(e) = \gamma_0 + (\gamma_1 - \gamma_0)
            \frac{\min(e, E - 1)}{E - 1}

    for 0-based epoch :math:`e` of :math:`E`. Eq. 1 weights the **new**
    feature by :math:`\gamma`, so pass ``momentum = 1 - gamma`` to
    :meth:`InstanceMemory.update`.

    Args:
        epoch (int): 0-based epoch :math:`e \ge 0`.
        num_epochs (int, optional): :math:`E`. (default: :obj:`40`)
        start (float, optional): :math:`\gamma_0`. (default: :obj:`1.0`)
        end (float, optional): :math:`\gamma_1`. (default: :obj:`0.5`)

    Returns:
        float: :math:`\gamma(e) \in [0, 1]`.

    Example:
        >>> mprd_update_rate(0), mprd_update_rate(39), mprd_update_rate(13, 27)
        (1.0, 0.5, 0.75)
    """
    epoch = check_int(epoch, "epoch", min_value=0)
    num_epochs = check_int(num_epochs, "num_epochs", min_value=1)
    start, end = _check_momentum(start, "start"), _check_momentum(end, "end")
    if num_epochs == 1:
        return start
    return start + (end - start) * min(epoch, num_epochs - 1) / (num_epochs - 1)


def _check_feats(feats: Any, dim: int, name: str = "feats") -> Tensor:
    feats = check_matrix(feats, name, min_rows=0)
    if feats.size(1) != dim:
        raise ValueError(
            f"'{name}' must have {dim} columns (the memory's dim), got {feats.size(1)}"
        )
    return feats


class InstanceMemory(nn.Module):
    r"""One feature per training sample, updated by momentum (G-Fusion
    Eq. 14; MPRD Eq. 1).

    .. math::
        \mathbb{I}_i \leftarrow m\, \mathbb{I}_i + (1 - m)\, v_i

    for every sample :math:`i` of the batch (G-Fusion Eq. 14, :math:`m =
    0.01`, Sec. 4.2: the memory follows the new features closely). MPRD's
    Eq. 1 is the same update with :math:`m = 1 - \gamma^{(t)}`
    (:func:`mprd_update_rate`) followed by L2 normalisation
    (``normalize=True``); G-Fusion's Eq. 14 does not normalise.

    The bank ``features`` ``[N, D]`` is a buffer; fill it with :meth:`reset`
    (all features, e.g. from :func:`reidgraph.train.extract_features`) before
    training.

    Args:
        num_samples (int): :math:`N`, training samples.
        dim (int): :math:`D`, feature dimension.
        momentum (float, optional): :math:`m`, the weight of the old value.
            (default: :obj:`0.01`, G-Fusion Sec. 4.2)
        normalize (bool, optional): L2-normalise after each update (MPRD
            Eq. 1) and in :meth:`reset`. (default: :obj:`False`)

    Example:
        >>> mem = InstanceMemory(3, 2, momentum=0.5)
        >>> mem.reset(torch.ones(3, 2))
        >>> mem.update(torch.tensor([[3.0, 1.0]]), torch.tensor([2]))
        >>> mem.features[2]
        tensor([2., 1.])
    """

    features: Tensor

    def __init__(
        self, num_samples: int, dim: int, momentum: float = 0.01, *, normalize: bool = False
    ) -> None:
        super().__init__()
        self.num_samples = check_int(num_samples, "num_samples", min_value=1)
        self.dim = check_int(dim, "dim", min_value=1)
        self.momentum = _check_momentum(momentum)
        if not isinstance(normalize, bool):
            raise TypeError(f"'normalize' must be a bool, got {type(normalize).__name__}")
        self.normalize = normalize
        self.register_buffer("features", torch.zeros(self.num_samples, self.dim))

    @torch.no_grad()
    def reset(self, features: Any) -> None:
        r"""Sets every entry: ``features`` ``[N, D]`` (normalised first with
        ``normalize=True``)."""
        features = _check_feats(features, self.dim, "features")
        if features.size(0) != self.num_samples:
            raise ValueError(
                f"'features' must have one row per sample ({self.num_samples}), got "
                f"{features.size(0)}"
            )
        features = features.to(self.features.device, self.features.dtype)
        self.features.copy_(F.normalize(features, dim=1) if self.normalize else features)

    @torch.no_grad()
    def update(
        self,
        feats: Tensor,
        indices: Tensor,
        *,
        momentum: float | None = None,
        sync: bool = True,
    ) -> None:
        r"""Momentum update of the entries ``indices`` with ``feats``.

        Args:
            feats (torch.Tensor): ``[B, D]`` batch features (detached here).
            indices (torch.Tensor): ``[B]`` sample indices in :math:`[0, N)`.
            momentum (float, optional): Overrides :math:`m` for this call
                (``1 - mprd_update_rate(epoch)`` for MPRD).
                (default: :obj:`None`)
            sync (bool, optional): All-gather across ranks first when
                distributed. (default: :obj:`True`)
        """
        m = self.momentum if momentum is None else _check_momentum(momentum)
        feats = check_finite(_check_feats(feats.detach(), self.dim), "feats")
        indices = _check_index(indices, "indices", self.num_samples, feats.size(0), "sample")
        if sync:
            feats, indices = all_gather_varlen(feats, indices.to(feats.device))
        momentum_update_(self.features, indices, feats, m, normalize=self.normalize)

    def forward(self, feats: Tensor) -> Tensor:
        r"""Similarities ``feats @ features.T``: ``[B, N]``."""
        return _check_feats(feats, self.dim) @ self.features.t()

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, dim={self.dim}, momentum={self.momentum}, "
            f"normalize={self.normalize}"
        )


class ClusterMemory(nn.Module):
    r"""One centroid per pseudo-label cluster (GUR Sec. 3.2; Cluster Contrast).

    :meth:`reset` initialises each centroid as the mean feature of its
    cluster (GUR Eq. 1–2), outliers (:math:`-1`) left out, then L2-normalised
    as Cluster Contrast's code does; :meth:`update` moves the centroid of
    each sample's cluster, sample by sample in batch order,

    .. math::
        m_k \leftarrow \frac{\mu\, m_k + (1 - \mu)\, q}
                            {\lVert \mu\, m_k + (1 - \mu)\, q \rVert_2},

    with :math:`\mu = 0.1` (GUR's scripts, ``--momentum 0.1``); and
    :meth:`logits` gives :math:`q \cdot m_k / \tau` for ClusterNCE
    (GUR Eq. 3–4, :math:`\tau = 0.05`;
    :func:`reidgraph.losses.cluster_nce`). Queries are L2-normalised.

    The bank ``features`` ``[C, D]`` is a buffer whose number of rows follows
    the clustering; loading a ``state_dict`` resizes it.

    Args:
        dim (int): :math:`D`, feature dimension.
        momentum (float, optional): :math:`\mu`, the weight of the old
            centroid. (default: :obj:`0.1`)
        temperature (float, optional): :math:`\tau > 0`.
            (default: :obj:`0.05`)

    Example:
        >>> mem = ClusterMemory(2, momentum=0.5)
        >>> mem.reset(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        ...           torch.tensor([0, 0, 1]))
        >>> mem.features
        tensor([[1., 0.],
                [0., 1.]])
    """

    features: Tensor

    def __init__(self, dim: int, *, momentum: float = 0.1, temperature: float = 0.05) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", min_value=1)
        self.momentum = _check_momentum(momentum)
        if isinstance(temperature, bool) or not isinstance(temperature, Real):
            raise TypeError(f"'temperature' must be a float, got {type(temperature).__name__}")
        if not float(temperature) > 0:
            raise ValueError(f"'temperature' must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.register_buffer("features", torch.zeros(0, self.dim))

    @property
    def num_clusters(self) -> int:
        r"""Number of centroids :math:`C` (0 before :meth:`reset`)."""
        return self.features.size(0)

    @torch.no_grad()
    def reset(self, features: Any, labels: Any) -> None:
        r"""Centroids from cluster means (GUR Eq. 1–2), outliers excluded.

        .. math::
            m_k = \frac{1}{|\mathcal{H}_k|} \sum_{u \in \mathcal{H}_k} u,
            \qquad m_k \leftarrow m_k / \lVert m_k \rVert_2

        Args:
            features (torch.Tensor): ``[N, D]`` features of all samples.
            labels (torch.Tensor or ClusterLabels): ``[N]`` labels
                :math:`0..C-1`, :math:`-1` outlier (every cluster must have a
                member: compact them with
                :func:`reidgraph.labelers.compact_labels`).
        """
        labels = getattr(labels, "labels", labels)
        features = check_finite(_check_feats(features, self.dim, "features"), "features")
        labels = check_vector(
            labels, "labels", length=features.size(0), length_of="rows of 'features'"
        )
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"'labels' must be integer cluster labels, got {labels.dtype}")
        labels = labels.long().to(features.device)
        if labels.numel() and int(labels.min()) < -1:
            raise ValueError(f"'labels' must be >= -1 (-1 outlier), found {int(labels.min())}")
        keep = labels >= 0
        if not bool(keep.any()):
            raise ValueError("'labels' has no cluster (all -1): nothing to initialise the memory")
        lab, feat = labels[keep], features[keep].to(torch.float64)
        num = int(lab.max()) + 1
        sums = torch.zeros(num, self.dim, dtype=torch.float64, device=features.device)
        sums.index_add_(0, lab, feat)
        counts = torch.bincount(lab, minlength=num)
        if bool((counts == 0).any()):
            missing = (counts == 0).nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"'labels' must be contiguous 0..{num - 1}; clusters {missing} have no member "
                "(renumber with reidgraph.labelers.compact_labels)"
            )
        centroids = F.normalize(sums / counts.unsqueeze(1), dim=1)
        self.features = centroids.to(device=self.features.device, dtype=self.features.dtype)

    def _check_ready(self) -> None:
        if self.num_clusters == 0:
            raise RuntimeError(
                "ClusterMemory is empty: call reset(features, labels) after each clustering"
            )

    @torch.no_grad()
    def update(self, feats: Tensor, targets: Tensor, *, sync: bool = True) -> None:
        r"""Momentum update of the centroids of ``targets`` (then re-normalised).

        Args:
            feats (torch.Tensor): ``[B, D]`` batch features (detached and
                L2-normalised here).
            targets (torch.Tensor): ``[B]`` cluster labels in :math:`[0, C)`.
            sync (bool, optional): All-gather across ranks first when
                distributed. (default: :obj:`True`)
        """
        self._check_ready()
        feats = check_finite(_check_feats(feats.detach(), self.dim), "feats")
        targets = _check_index(targets, "targets", self.num_clusters, feats.size(0), "cluster")
        if sync:
            feats, targets = all_gather_varlen(feats, targets.to(feats.device))
        momentum_update_(
            self.features, targets, F.normalize(feats, dim=1), self.momentum, normalize=True
        )

    def logits(self, feats: Tensor) -> Tensor:
        r"""ClusterNCE logits :math:`\hat{q} \cdot m_k / \tau`: ``[B, C]``
        (gradients flow to ``feats`` only)."""
        self._check_ready()
        feats = _check_feats(feats, self.dim)
        centroids = self.features.to(feats.dtype)
        return F.normalize(feats, dim=1) @ centroids.t() / self.temperature

    forward = logits

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "features"
        if key in state_dict:  # the number of clusters changes with every clustering
            saved = state_dict[key]
            self.features = self.features.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_clusters={self.num_clusters}, momentum={self.momentum}, "
            f"temperature={self.temperature}"
        )


class ClassMemory(nn.Module):
    r"""The most recent feature (map) of every class, by direct replacement
    (QAConv Sec. 3.3).

    A ``[C, *shape]`` buffer; after each batch, "each sample of class
    :math:`i` from the mini batch will be assigned into location :math:`i`"
    (QAConv). When a class occurs several times in a batch the **last**
    occurrence is kept, the most recent sample. QAConv prefers this to a
    moving average, which "may smooth the local details" of feature maps.
    ``filled`` ``[C]`` tells which classes have been written at least once.

    Args:
        num_classes (int): :math:`C`.
        shape (int or tuple[int, ...]): Shape of one entry, e.g. ``D`` or
            QAConv's feature map ``(d, h, w)``.
        dtype (torch.dtype, optional): Storage type (``torch.float16``
            halves the memory of feature maps). (default: :obj:`torch.float32`)

    Example:
        >>> mem = ClassMemory(3, 1)
        >>> mem.update(torch.tensor([[1.0], [2.0], [5.0]]), torch.tensor([2, 0, 2]))
        >>> mem.features.flatten(), mem.filled
        (tensor([2., 0., 5.]), tensor([ True, False,  True]))
    """

    features: Tensor
    filled: Tensor

    def __init__(
        self,
        num_classes: int,
        shape: int | tuple[int, ...],
        *,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes", min_value=1)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        for s in shape:
            check_int(s, "shape", min_value=1)
        if not dtype.is_floating_point:
            raise TypeError(f"'dtype' must be a floating type, got {dtype}")
        self.shape = shape
        self.register_buffer("features", torch.zeros(self.num_classes, *shape, dtype=dtype))
        self.register_buffer("filled", torch.zeros(self.num_classes, dtype=torch.bool))

    @torch.no_grad()
    def update(self, feats: Tensor, labels: Tensor, *, sync: bool = True) -> None:
        r"""Writes each sample into its class's slot (last occurrence wins).

        Args:
            feats (torch.Tensor): ``[B, *shape]`` (detached here).
            labels (torch.Tensor): ``[B]`` class indices in :math:`[0, C)`.
            sync (bool, optional): All-gather across ranks first when
                distributed. (default: :obj:`True`)
        """
        feats = as_tensor(feats, "feats").detach()
        if tuple(feats.shape[1:]) != self.shape or feats.dim() != len(self.shape) + 1:
            raise ValueError(
                f"'feats' must have shape [B, {', '.join(map(str, self.shape))}], got "
                f"{tuple(feats.shape)}"
            )
        check_finite(feats, "feats")
        labels = _check_index(labels, "labels", self.num_classes, feats.size(0), "class")
        if sync:
            feats, labels = all_gather_varlen(feats, labels.to(feats.device))
        if labels.numel() == 0:
            return
        labels = labels.to(self.features.device)
        # The last position of each class: scatter the positions with amax.
        pos = torch.arange(labels.numel(), device=labels.device)
        last = torch.full((self.num_classes,), -1, dtype=torch.long, device=labels.device)
        last.scatter_reduce_(0, labels, pos, reduce="amax")
        classes = (last >= 0).nonzero().flatten()
        self.features[classes] = feats[last[classes]].to(self.features.device, self.features.dtype)
        self.filled[classes] = True

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, shape={self.shape}, dtype={self.features.dtype}"
