r"""The pseudo-labeler protocol and the three forms of supervision it produces.

A pseudo-labeler turns the spine graph (features ``x`` plus ``camid``,
``time``, ``modality`` and, optionally, edges) into supervision for the CNN.
It follows scikit-learn's estimator contract (DESIGN.md, STYLE_NOTES 1.5.3):
hyper-parameters are stored by ``__init__`` and nothing else happens there,
:meth:`PseudoLabeler.fit` returns ``self``, and what was learned ends in an
underscore. Exactly one of three forms comes out as ``supervision_``:

* :class:`ClusterLabels` — one label per node, :math:`-1` for an outlier
  (DBSCAN, agglomerative clustering, label propagation);
* :class:`LabelledPairs` — (anchor, other) index pairs with a target
  (1 same identity, 0 different) and a confidence (MPRD's pair labels);
* :class:`SoftAffinity` — a sparse weighted graph used as a soft target
  (G-Fusion's affinity distillation).

Losses and memories take these forms; a trainer calls ``labeler.fit(data)``
and hands ``labeler.supervision_`` on without asking which labeler made it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from sklearn.base import BaseEstimator
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import as_tensor, check_finite, check_matrix, check_vector

__all__ = [
    "ClusterLabels",
    "LabelledPairs",
    "SoftAffinity",
    "Supervision",
    "PseudoLabeler",
    "EmptySupervisionError",
    "compact_labels",
    "check_spine",
    "GROUP_KEYS",
    "label_groups",
]

logger = logging.getLogger(__name__)


class EmptySupervisionError(RuntimeError):
    r"""A labeler found nothing to learn from: no cluster (every node an
    outlier) or no positive pair.

    Raised by :meth:`PseudoLabeler.fit`; the message names the parameters to
    change. A trainer should stop on it rather than train on empty labels.
    """


def _check_index(value: Any, name: str) -> Tensor:
    value = as_tensor(value, name)
    if value.is_floating_point() or value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"'{name}' must hold integer node indices, got dtype {value.dtype}")
    return value.long()


def compact_labels(labels: Any) -> Tensor:
    r"""Renumbers cluster labels to :math:`0 .. C-1`, keeping :math:`-1` (outlier).

    Clusters keep their relative order (the smallest old label becomes 0), so
    labels that are already contiguous come back unchanged.

    Args:
        labels (torch.Tensor): ``[N]`` integer labels, :math:`\ge -1`.

    Returns:
        torch.Tensor: ``[N]`` long labels in :math:`\{-1, 0, \dots, C-1\}`.

    Example:
        >>> compact_labels(torch.tensor([7, -1, 3, 7]))
        tensor([ 1, -1,  0,  1])
    """
    labels = _check_cluster_vector(labels, "labels")
    keep = labels >= 0
    out = torch.full_like(labels, -1)
    if bool(keep.any()):
        out[keep] = torch.unique(labels[keep], return_inverse=True)[1]
    return out


def _check_cluster_vector(labels: Any, name: str) -> Tensor:
    labels = check_vector(labels, name)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"'{name}' must be integer cluster labels (-1 outlier), got {labels.dtype}")
    labels = labels.long()
    if labels.numel() and int(labels.min()) < -1:
        raise ValueError(f"'{name}' must be >= -1 (-1 = outlier), found {int(labels.min())}")
    return labels


@dataclass(eq=False)
class ClusterLabels:
    r"""Hard pseudo-labels, one per node: the clusters of DBSCAN or
    agglomerative clustering (GUR Sec. 3.2, IICS Sec. 3.3).

    Labels are contiguous, :math:`0 .. C-1`, with :math:`-1` for an outlier
    (scikit-learn's convention); non-contiguous input is renumbered with
    :func:`compact_labels`. Outliers are left out of training, as in Cluster
    Contrast and GUR's code.

    Args:
        labels (torch.Tensor): ``[N]`` integer labels, :math:`\ge -1`.

    Example:
        >>> s = ClusterLabels(torch.tensor([5, 5, -1, 9]))
        >>> s.labels, s.num_clusters, s.num_outliers
        (tensor([ 0,  0, -1,  1]), 2, 1)
    """

    labels: Tensor

    def __post_init__(self) -> None:
        self.labels = compact_labels(self.labels)

    @property
    def num_nodes(self) -> int:
        r"""Number of labelled nodes :math:`N`."""
        return self.labels.numel()

    @property
    def num_clusters(self) -> int:
        r"""Number of clusters :math:`C` (outliers not counted)."""
        return int(self.labels.max()) + 1 if self.labels.numel() else 0

    @property
    def num_outliers(self) -> int:
        r"""Number of nodes labelled :math:`-1`."""
        return int((self.labels < 0).sum())

    def cluster_sizes(self) -> Tensor:
        r"""``[C]`` number of nodes in each cluster."""
        inliers = self.labels[self.labels >= 0]
        return torch.bincount(inliers, minlength=self.num_clusters)

    def to(self, device: torch.device | str) -> ClusterLabels:
        r"""A copy on ``device``."""
        return ClusterLabels(self.labels.to(device))


@dataclass(eq=False)
class LabelledPairs:
    r"""Pairwise pseudo-labels: index pairs, a same-identity target and a
    confidence (MPRD Sec. 4.1, Eq. 7 and the baselines of its Table 1).

    Pair :math:`p` says that node ``pair_index[0, p]`` (the anchor
    :math:`x_i`) and node ``pair_index[1, p]`` (:math:`x_j`) are the same
    identity (``target[p] = 1``, :math:`x_j \in \mathbf{P}_i`) or not
    (``target[p] = 0``), with confidence ``weight[p]`` in :math:`[0, 1]`.
    Pairs are directed, as :math:`\mathbf{P}_i` is a list per anchor; pairs
    that are not listed carry no label (a loss such as MPRD's binomial
    deviance mines its negatives among them, Eq. 3).

    Args:
        pair_index (torch.Tensor): ``[2, P]`` node indices (a ``*_index``
            name, so PyG shifts it when graphs are batched).
        target (torch.Tensor): ``[P]`` 1 (same identity) or 0 (different).
        weight (torch.Tensor, optional): ``[P]`` confidences in
            :math:`[0, 1]`. (default: :obj:`None`, all 1)
        num_nodes (int, optional): :math:`N`; set by
            :meth:`PseudoLabeler.fit`. (default: :obj:`None`, one more than the
            largest index)

    Example:
        >>> s = LabelledPairs(torch.tensor([[0, 0], [1, 2]]), torch.tensor([1, 0]))
        >>> s.num_positive, s.weight
        (1, tensor([1., 1.]))
    """

    pair_index: Tensor
    target: Tensor
    weight: Tensor | None = None
    num_nodes: int | None = None

    def __post_init__(self) -> None:
        pair_index = _check_index(self.pair_index, "pair_index")
        if pair_index.dim() != 2 or pair_index.size(0) != 2:
            raise ValueError(f"'pair_index' must have shape [2, P], got {tuple(pair_index.shape)}")
        num_pairs = pair_index.size(1)
        target = check_vector(self.target, "target", length=num_pairs, length_of="pairs")
        if target.is_floating_point():
            bad = (target != 0) & (target != 1)
        else:
            bad = (target.long() != 0) & (target.long() != 1)
        if bool(bad.any()):
            raise ValueError(
                f"'target' must be 1 (same identity) or 0 (different), found "
                f"{target[bad][0].item()!r}"
            )
        target = target.to(device=pair_index.device, dtype=torch.long)
        if self.weight is None:
            weight = torch.ones(num_pairs, device=pair_index.device)
        else:
            weight = check_vector(self.weight, "weight", length=num_pairs, length_of="pairs")
            if not weight.is_floating_point():
                weight = weight.float()
            check_finite(weight, "weight")
            if weight.numel() and (float(weight.min()) < 0 or float(weight.max()) > 1):
                raise ValueError(
                    f"'weight' must be confidences in [0, 1], found "
                    f"[{float(weight.min())}, {float(weight.max())}]"
                )
            weight = weight.to(pair_index.device)
        if num_pairs and int(pair_index.min()) < 0:
            raise ValueError(f"'pair_index' must be >= 0, found {int(pair_index.min())}")
        needed = int(pair_index.max()) + 1 if num_pairs else 0
        if self.num_nodes is not None:
            if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int):
                raise TypeError(f"'num_nodes' must be an int, got {type(self.num_nodes).__name__}")
            if self.num_nodes < needed:
                raise ValueError(
                    f"'pair_index' must index nodes in [0, {self.num_nodes - 1}] "
                    f"(num_nodes={self.num_nodes}), found {needed - 1}"
                )
        self.pair_index, self.target, self.weight = pair_index, target, weight

    @property
    def num_pairs(self) -> int:
        r"""Number of labelled pairs :math:`P`."""
        return self.pair_index.size(1)

    @property
    def num_positive(self) -> int:
        r"""Number of same-identity pairs."""
        return int(self.target.sum())

    def to(self, device: torch.device | str) -> LabelledPairs:
        r"""A copy on ``device``."""
        return LabelledPairs(
            self.pair_index.to(device),
            self.target.to(device),
            self.weight.to(device),
            self.num_nodes,
        )


@dataclass(eq=False)
class SoftAffinity:
    r"""A sparse soft target: weighted edges :math:`w_{ij}` between nodes
    (G-Fusion's affinity :math:`\mathbb{M}_{ij}` of Eq. 10, distilled by Eq. 12).

    Edge :math:`e` goes from ``edge_index[0, e]`` to ``edge_index[1, e]``
    (PyG's source → target) with non-negative weight ``weight[e]``; absent
    edges have target affinity 0.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` node indices.
        weight (torch.Tensor): ``[E]`` non-negative finite weights.
        num_nodes (int): Number of nodes :math:`N`.

    Example:
        >>> s = SoftAffinity(torch.tensor([[0, 1], [1, 0]]), torch.tensor([0.5, 0.5]), 3)
        >>> s.num_edges
        2
    """

    edge_index: Tensor
    weight: Tensor
    num_nodes: int

    def __post_init__(self) -> None:
        edge_index = _check_index(self.edge_index, "edge_index")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, E], got {tuple(edge_index.shape)}")
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int):
            raise TypeError(f"'num_nodes' must be an int, got {type(self.num_nodes).__name__}")
        num_edges = edge_index.size(1)
        weight = check_vector(self.weight, "weight", length=num_edges, length_of="edges")
        if not weight.is_floating_point():
            weight = weight.float()
        check_finite(weight, "weight")
        if num_edges:
            lo, hi = int(edge_index.min()), int(edge_index.max())
            if lo < 0 or hi >= self.num_nodes:
                raise ValueError(
                    f"'edge_index' must index nodes in [0, {self.num_nodes - 1}], "
                    f"found [{lo}, {hi}]"
                )
            if float(weight.min()) < 0:
                raise ValueError(
                    f"'weight' must be non-negative affinities, found {float(weight.min())}"
                )
        self.edge_index, self.weight = edge_index, weight.to(edge_index.device)

    @property
    def num_edges(self) -> int:
        r"""Number of weighted edges :math:`E`."""
        return self.edge_index.size(1)

    def to(self, device: torch.device | str) -> SoftAffinity:
        r"""A copy on ``device``."""
        return SoftAffinity(self.edge_index.to(device), self.weight.to(device), self.num_nodes)


#: The three supervision forms a labeler may produce.
Supervision = ClusterLabels | LabelledPairs | SoftAffinity
_FORMS: tuple[type, ...] = (ClusterLabels, LabelledPairs, SoftAffinity)


def check_spine(data: Any, who: str, *, min_samples: int = 2) -> Data:
    r"""Validates the input of a labeler: a spine ``Data`` (or a bare feature
    matrix, wrapped as ``Data(x=x)``) with finite features and enough nodes.

    Args:
        data (torch_geometric.data.Data or torch.Tensor): The spine graph, or
            features ``[N, d]``.
        who (str): The labeler's name, for the messages.
        min_samples (int, optional): Fewest nodes accepted. (default: :obj:`2`)

    Returns:
        torch_geometric.data.Data: ``data`` (a new ``Data`` for a matrix),
        with ``x`` a floating tensor.

    Example:
        >>> check_spine(torch.eye(3), "demo").num_nodes
        3
    """
    if isinstance(data, Data):
        if getattr(data, "x", None) is None:
            raise ValueError(f"{who} needs node features 'x' [N, d]; data.x is missing")
        x = data.x
    elif isinstance(data, torch.Tensor) or hasattr(data, "__array__"):
        x = data
        data = None
    else:
        raise TypeError(
            f"{who}.fit expects a torch_geometric.data.Data (the spine graph) or a feature "
            f"matrix [N, d], got {type(data).__name__}"
        )
    x = check_matrix(x, "data.x", finite=False)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = bad.any(1).nonzero().flatten()
        raise ValueError(
            f"{who} needs finite features, but 'data.x' has NaN or infinite values in "
            f"{rows.numel()} of {x.size(0)} rows (first at row {int(rows[0])}); a diverged "
            "model or a broken image gives this: check the loss and the input images"
        )
    if x.size(0) < min_samples:
        raise ValueError(
            f"{who} needs at least {min_samples} samples, got {x.size(0)} rows in 'data.x'"
        )
    if data is None:
        return Data(x=x, num_nodes=x.size(0))
    if data.x is not x:  # converted (numpy, integer dtype): leave the caller's Data alone
        data = copy.copy(data)
        data.x = x
    return data


#: Node attributes a clustering labeler may cluster within (``group_by``).
GROUP_KEYS: tuple[str, ...] = ("camid", "modality")


def label_groups(
    data: Data,
    group_by: str | None,
    cluster: Callable[[Tensor], Tensor],
    who: str,
) -> Tensor:
    r"""Clusters each group of nodes on its own and joins the labels.

    With ``group_by="camid"`` every camera is clustered separately, as in
    IICS's intra-camera stage (Sec. 3.2) and GUR's intra-camera training
    (Sec. 3.1); with ``"modality"`` each modality (GUR's inter-camera stage).
    Group :math:`g`'s clusters are shifted by the number of clusters of the
    groups before it, so no two groups share a label; outliers stay
    :math:`-1`. Groups are visited in increasing ``data[group_by]``.

    Args:
        data (torch_geometric.data.Data): The validated spine graph.
        group_by (str, optional): ``"camid"``, ``"modality"`` or :obj:`None`
            (one group of all nodes).
        cluster (Callable): ``cluster(index) -> labels``: clusters the nodes
            ``index`` (``[n_g]`` long) and returns their ``[n_g]`` labels.
        who (str): The labeler's name, for the messages.

    Returns:
        torch.Tensor: ``[N]`` long labels on ``data.x``'s device (clustering
        backends such as scikit-learn run on the CPU).

    Example:
        >>> data = Data(x=torch.zeros(4, 1), camid=torch.tensor([1, 0, 1, 0]))
        >>> label_groups(data, "camid", lambda i: torch.zeros_like(i), "demo")
        tensor([1, 0, 1, 0])
    """
    n = data.x.size(0)
    if group_by is None:
        return compact_labels(cluster(torch.arange(n, device=data.x.device))).to(data.x.device)
    if not isinstance(group_by, str) or group_by not in GROUP_KEYS:
        raise ValueError(
            f"Could not resolve group_by={group_by!r} among choices {list(GROUP_KEYS)} or None"
        )
    key = getattr(data, group_by, None)
    if key is None:
        raise ValueError(f"{who}(group_by={group_by!r}) needs 'data.{group_by}'; it is missing")
    key = check_vector(key, f"data.{group_by}", length=n, length_of="nodes")
    if key.is_floating_point() or key.dtype == torch.bool:
        raise TypeError(f"'data.{group_by}' must hold integer ids, got dtype {key.dtype}")
    key = key.to(data.x.device)
    labels = torch.full((n,), -1, dtype=torch.long, device=data.x.device)
    offset = 0
    for value in torch.unique(key).tolist():
        index = (key == value).nonzero().flatten()
        part = compact_labels(cluster(index)).to(labels.device)
        if part.numel() != index.numel():
            raise ValueError(
                f"{who}: group {group_by}={value} has {index.numel()} nodes but got "
                f"{part.numel()} labels"
            )
        labels[index] = torch.where(part >= 0, part + offset, part)
        offset += int(part.max()) + 1 if bool((part >= 0).any()) else 0
    return labels


class PseudoLabeler(BaseEstimator):
    r"""Base class of the pseudo-labelers: graph in, one supervision form out.

    Follows scikit-learn's estimator contract, so :func:`sklearn.base.clone`,
    ``get_params`` / ``set_params`` and ``repr`` work:

    * ``__init__`` stores its keyword arguments as attributes of the same
      name and does nothing else (no validation, no work);
    * :meth:`fit` validates the input (:func:`check_spine`), calls
      :meth:`label` — the one method a new labeler writes — checks that it
      returned exactly one of :class:`ClusterLabels`, :class:`LabelledPairs`
      or :class:`SoftAffinity` covering all :math:`N` nodes, and stores it as
      ``supervision_``;
    * for clusters it also sets ``labels_`` (``[N]``, :math:`-1` outlier),
      ``n_clusters_`` and ``n_outliers_``; for pairs ``n_pairs_``; for
      affinities ``n_edges_``.

    An empty result (no cluster, or no positive pair) raises
    :class:`EmptySupervisionError` with the parameters to change, instead of
    handing a trainer nothing to learn from.

    Subclasses set :attr:`min_samples_required` (or override
    ``_min_samples``) when they need more nodes,
    and may override :meth:`_empty_hint` to name their own parameters.

    Example:
        >>> class Halves(PseudoLabeler):
        ...     def __init__(self, cut=0.0):
        ...         self.cut = cut
        ...     def label(self, data):
        ...         return ClusterLabels((data.x[:, 0] > self.cut).long())
        >>> Halves().fit(torch.tensor([[-1.0], [2.0], [3.0]])).labels_
        tensor([0, 1, 1])
    """

    #: Fewest nodes :meth:`fit` accepts (see :meth:`_min_samples`).
    min_samples_required: ClassVar[int] = 2

    def _min_samples(self) -> int:
        # Overridden where the bound depends on a parameter (k1 + 1 for the Jaccard).
        return self.min_samples_required

    def label(self, data: Data) -> Supervision:
        r"""Computes the supervision for validated spine ``data``.

        Args:
            data (torch_geometric.data.Data): ``x`` ``[N, d]`` (finite), and
                whatever else the labeler reads (``camid``, ``edge_index``…).

        Returns:
            ClusterLabels or LabelledPairs or SoftAffinity: exactly one form.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement label(data)")

    def _empty_hint(self) -> str:
        return f"the parameters of {type(self).__name__} are too strict for these features"

    def fit(self, data: Data | Tensor, y: Any = None) -> PseudoLabeler:
        r"""Labels the nodes of ``data``.

        Args:
            data (torch_geometric.data.Data or torch.Tensor): The spine graph
                (``x`` ``[N, d]``, L2-normalised, plus metadata), or the bare
                feature matrix.
            y (None): Ignored; present for scikit-learn compatibility.

        Returns:
            PseudoLabeler: ``self``, with ``supervision_`` set.

        Raises:
            TypeError: ``data`` is neither ``Data`` nor a matrix, or
                :meth:`label` returned something else than one form.
            ValueError: Missing, NaN or infinite features, too few nodes.
            EmptySupervisionError: No cluster or no positive pair found.
        """
        name = type(self).__name__
        # A failed fit must not leave the previous fit's results behind.
        for attr in ("supervision_", "labels_", "n_clusters_", "n_outliers_", "n_pairs_"):
            self.__dict__.pop(attr, None)
        self.__dict__.pop("n_edges_", None)
        data = check_spine(data, name, min_samples=self._min_samples())
        n = data.x.size(0)
        out = self.label(data)
        if not isinstance(out, _FORMS):
            raise TypeError(
                f"{name}.label must return exactly one of ClusterLabels, LabelledPairs or "
                f"SoftAffinity, got {type(out).__name__}"
            )
        if isinstance(out, ClusterLabels):
            if out.num_nodes != n:
                raise ValueError(f"{name}.label returned {out.num_nodes} labels for {n} nodes")
            if out.num_clusters == 0:
                raise EmptySupervisionError(
                    f"no clusters found: all {n} samples are outliers; {self._empty_hint()}"
                )
            self.labels_ = out.labels
            self.n_clusters_ = out.num_clusters
            self.n_outliers_ = out.num_outliers
            logger.info(
                "%s: %d clusters, %d of %d samples outliers",
                name,
                out.num_clusters,
                out.num_outliers,
                n,
            )
            if out.num_clusters == 1:
                logger.warning(
                    "%s put every clustered sample into ONE cluster: a contrastive loss has "
                    "nothing to contrast; make the labeler stricter (DBSCAN: lower eps, "
                    "raise min_samples) or start from better features",
                    name,
                )
        elif isinstance(out, LabelledPairs):
            if out.num_nodes is None:
                out.num_nodes = n
            if out.num_nodes != n or (out.num_pairs and int(out.pair_index.max()) >= n):
                raise ValueError(f"{name}.label returned pairs over other nodes than the {n} given")
            if out.num_positive == 0:
                raise EmptySupervisionError(
                    f"no positive pairs found among {n} samples; {self._empty_hint()}"
                )
            self.n_pairs_ = out.num_pairs
            logger.info("%s: %d pairs (%d positive)", name, out.num_pairs, out.num_positive)
        else:
            if out.num_nodes != n:
                raise ValueError(
                    f"{name}.label returned an affinity over {out.num_nodes} nodes, not {n}"
                )
            if out.num_edges == 0 or float(out.weight.sum()) == 0.0:
                raise EmptySupervisionError(
                    f"the soft affinity among {n} samples is empty; {self._empty_hint()}"
                )
            self.n_edges_ = out.num_edges
        self.supervision_ = out
        return self

    def fit_predict(self, data: Data | Tensor, y: Any = None) -> Tensor:
        r"""``fit(data).labels_``, for labelers that produce clusters.

        Returns:
            torch.Tensor: ``[N]`` long labels, :math:`-1` outlier.
        """
        self.fit(data)
        if not isinstance(self.supervision_, ClusterLabels):
            raise TypeError(
                f"{type(self).__name__} produces {type(self.supervision_).__name__}, not "
                "cluster labels; read 'supervision_' instead of fit_predict"
            )
        return self.labels_
