r"""Graph quality against known identities: how much of a graph is right.

A re-ID graph is good when its edges join images of the same person
(precision), when it joins most such images (recall), and when its
components or communities are pure identities (purity, adjusted Rand index).
These numbers diagnose builders (kNN, spatio-temporal, cross-modality) and
pseudo-labelers on data with ground-truth :obj:`pid` (synthetic worlds, or a
labelled split used for analysis only).

Everything is vectorised: same-identity pairs are counted from per-identity
counts :math:`\sum_p n_p (n_p - 1)`, never by enumerating :math:`N \times N`
pairs. Nodes with unknown identity (:obj:`pid` :math:`= -1`) are left out of
every number (they are neither right nor wrong).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from reidgraph._validation import as_tensor, check_choice, check_int, check_vector
from reidgraph.graph.edge_types import EDGE_TYPE_NAMES

__all__ = [
    "edge_precision",
    "pair_recall",
    "connected_components",
    "communities_to_labels",
    "purity",
    "adjusted_rand_index",
    "graph_quality",
]

_OUTLIERS = ("singleton", "ignore")


def _check_edges(edge_index: Any, num_nodes: int) -> torch.Tensor:
    edge_index = as_tensor(edge_index, "edge_index")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'edge_index' must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'edge_index' must be an integer tensor, got {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"'edge_index' must index nodes in [0, {num_nodes - 1}] (the length of 'pid'), "
            f"found values in [{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index


def _check_pid(pid: Any) -> torch.Tensor:
    pid = check_vector(pid, "pid")
    if pid.is_floating_point() or pid.dtype == torch.bool:
        raise TypeError(f"'pid' must be an integer tensor, got {pid.dtype}")
    pid = pid.long()
    if pid.numel() and int(pid.min()) < -1:
        raise ValueError(f"'pid' must be >= -1 (-1 = unknown), found {int(pid.min())}")
    return pid


def _type_name(t: int) -> str:
    return EDGE_TYPE_NAMES.get(t, str(t))


def edge_precision(
    edge_index: Any,
    pid: Any,
    edge_type: Any = None,
    *,
    self_loops: bool = False,
) -> dict[str, float]:
    r"""Fraction of edges that join two images of the same identity, per edge type.

    .. math::
        \mathrm{precision}_\tau = \frac{|\{(i, j) \in E_\tau :
        \mathrm{pid}_i = \mathrm{pid}_j\}|}{|E_\tau|}

    over the edges :math:`E_\tau` of type :math:`\tau` whose two ends have a
    known identity. Parallel edges count once per edge (each is a decision of
    the builder).

    Cost: :math:`O(E)`.

    Args:
        edge_index (torch.Tensor): Edges ``[2, E]``.
        pid (torch.Tensor): Identities ``[N]``, :math:`-1` unknown.
        edge_type (torch.Tensor, optional): Edge types ``[E]``
            (:mod:`reidgraph.graph.edge_types`). (default: :obj:`None`, one type)
        self_loops (bool, optional): Count self-loops (always correct).
            (default: :obj:`False`)

    Returns:
        dict: ``"all"`` and, with :obj:`edge_type`, one entry per type present,
        keyed by its name (``"visual"``, ``"spatiotemporal"``,
        ``"cross_modality"``, or the integer as a string). A type with no
        evaluable edge maps to NaN.

    Example:
        >>> edge_precision(torch.tensor([[0, 0], [1, 2]]), torch.tensor([5, 5, 6]))
        {'all': 0.5}
    """
    pid = _check_pid(pid)
    edge_index = _check_edges(edge_index, pid.numel())
    num_edges = edge_index.size(1)
    if edge_type is not None:
        edge_type = check_vector(edge_type, "edge_type", length=num_edges, length_of="edges")
        edge_type = edge_type.long()
    src, dst = pid[edge_index[0]], pid[edge_index[1]]
    keep = (src >= 0) & (dst >= 0)
    if not self_loops:
        keep &= edge_index[0] != edge_index[1]
    correct = (src == dst) & keep

    def ratio(mask: torch.Tensor) -> float:
        n = int((keep & mask).sum())
        return int((correct & mask).sum()) / n if n else math.nan

    out = {"all": ratio(torch.ones_like(keep))}
    if edge_type is not None:
        for t in torch.unique(edge_type).tolist():
            out[_type_name(t)] = ratio(edge_type == t)
    return out


def pair_recall(
    edge_index: Any,
    pid: Any,
    *,
    undirected: bool = True,
) -> float:
    r"""Fraction of all same-identity pairs that the graph joins by an edge.

    .. math::
        \mathrm{recall} = \frac{|\{\{i, j\} : i \neq j,\ \mathrm{pid}_i =
        \mathrm{pid}_j \ne -1,\ (i, j) \in E \text{ or } (j, i) \in E\}|}
        {\sum_p n_p (n_p - 1) / 2}

    where :math:`n_p` is the number of images of identity :math:`p`. With
    ``undirected=False`` ordered pairs are counted instead (numerator: distinct
    directed edges :math:`(i, j)`, denominator :math:`\sum_p n_p (n_p - 1)`).
    Parallel edges and both directions of one pair count once.

    Cost: :math:`O(N + E \log E)`; no :math:`N \times N` allocation.

    Args:
        edge_index (torch.Tensor): Edges ``[2, E]``.
        pid (torch.Tensor): Identities ``[N]``, :math:`-1` unknown.
        undirected (bool, optional): Count unordered pairs. (default: :obj:`True`)

    Returns:
        float: The recall; NaN when no identity has two known images.

    Example:
        >>> # identity 5 has 3 images -> 3 pairs; the graph joins {0,1} and {1,2}
        >>> pair_recall(torch.tensor([[0, 2], [1, 1]]), torch.tensor([5, 5, 5]))
        0.6666666666666666
    """
    pid = _check_pid(pid)
    num_nodes = pid.numel()
    edge_index = _check_edges(edge_index, num_nodes)
    known = pid[pid >= 0]
    counts = torch.bincount(known) if known.numel() else known.new_zeros(0)
    total = int((counts * (counts - 1)).sum())
    if undirected:
        total //= 2
    if total == 0:
        return math.nan
    src, dst = edge_index
    same = (pid[src] == pid[dst]) & (pid[src] >= 0) & (src != dst)
    src, dst = src[same], dst[same]
    if undirected:
        src, dst = torch.minimum(src, dst), torch.maximum(src, dst)
    hits = torch.unique(src * num_nodes + dst).numel()
    return hits / total


def connected_components(
    edge_index: Any,
    num_nodes: int,
    *,
    connection: str = "weak",
) -> torch.Tensor:
    r"""Labels every node with its connected component (``scipy.sparse.csgraph``).

    Args:
        edge_index (torch.Tensor): Edges ``[2, E]``.
        num_nodes (int): :math:`N`.
        connection (str, optional): ``"weak"`` ignores edge direction,
            ``"strong"`` needs directed paths both ways. (default: ``"weak"``)

    Returns:
        torch.Tensor: Component ids ``[N]`` (long, :math:`0..K-1`, on the
        device of :obj:`edge_index`).

    Example:
        >>> connected_components(torch.tensor([[0, 2], [1, 3]]), 5)
        tensor([0, 0, 1, 1, 2])
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components as cc

    num_nodes = check_int(num_nodes, "num_nodes", min_value=0)
    connection = check_choice(connection, "connection", ("weak", "strong"))
    edge_index = _check_edges(edge_index, num_nodes)
    if num_nodes == 0:
        return torch.empty(0, dtype=torch.long, device=edge_index.device)
    e = edge_index.cpu().numpy()
    adj = sp.coo_matrix(
        (np.ones(e.shape[1], dtype=np.int8), (e[0], e[1])), shape=(num_nodes, num_nodes)
    ).tocsr()
    _, labels = cc(adj, directed=True, connection=connection)
    return torch.from_numpy(labels.astype(np.int64)).to(edge_index.device)


def communities_to_labels(communities: Iterable[Iterable[int]], num_nodes: int) -> torch.Tensor:
    r"""Turns a networkx-style community list (e.g. ``louvain_communities``) into labels.

    Args:
        communities (iterable of iterables of int): Disjoint node sets.
        num_nodes (int): :math:`N`; nodes in no community get :math:`-1`.

    Returns:
        torch.Tensor: Labels ``[N]`` (long), community :math:`c` is label :math:`c`.

    Example:
        >>> communities_to_labels([{0, 2}, {1}], 4)
        tensor([ 0,  1,  0, -1])
    """
    num_nodes = check_int(num_nodes, "num_nodes", min_value=0)
    labels = torch.full((num_nodes,), -1, dtype=torch.long)
    for c, members in enumerate(communities):
        idx = torch.as_tensor(sorted(members), dtype=torch.long)
        if idx.numel() == 0:
            continue
        if int(idx.min()) < 0 or int(idx.max()) >= num_nodes:
            raise ValueError(
                f"community {c} holds node ids outside [0, {num_nodes - 1}]: "
                f"[{int(idx.min())}, {int(idx.max())}]"
            )
        if bool((labels[idx] >= 0).any()):
            raise ValueError(
                f"'communities' must be disjoint; community {c} overlaps an earlier one"
            )
        labels[idx] = c
    return labels


def _prepare_labels(labels: Any, pid: Any, outliers: str) -> tuple[torch.Tensor, torch.Tensor]:
    pid = _check_pid(pid)
    labels = check_vector(labels, "labels", length=pid.numel(), length_of="entries of 'pid'")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"'labels' must be an integer tensor, got {labels.dtype}")
    labels = labels.long().to(pid.device)
    if labels.numel() and int(labels.min()) < -1:
        raise ValueError(f"'labels' must be >= -1 (-1 = outlier), found {int(labels.min())}")
    outliers = check_choice(outliers, "outliers", _OUTLIERS)
    keep = pid >= 0
    out = labels < 0
    if outliers == "ignore":
        keep &= ~out
    elif bool(out.any()):
        # Each outlier becomes its own cluster, numbered after the real ones.
        labels = labels.clone()
        start = int(labels.max()) + 1
        labels[out] = torch.arange(start, start + int(out.sum()), device=labels.device)
    return labels[keep], pid[keep]


def purity(labels: Any, pid: Any, *, outliers: str = "singleton") -> float:
    r"""Cluster purity of node labels (components, communities, pseudo-labels).

    .. math::
        \mathrm{purity} = \frac{1}{n} \sum_{c} \max_p |C_c \cap P_p|

    over the :math:`n` nodes with known identity: each cluster :math:`C_c` is
    credited with its most frequent identity :math:`P_p`.

    Cost: :math:`O(n \log n)`.

    Args:
        labels (torch.Tensor): Cluster labels ``[N]``, :math:`-1` outlier.
        pid (torch.Tensor): Identities ``[N]``, :math:`-1` unknown (left out).
        outliers (str, optional): ``"singleton"`` makes each outlier its own
            cluster, ``"ignore"`` leaves outliers out. (default: ``"singleton"``)

    Returns:
        float: Purity in :math:`[0, 1]`; NaN when no node is left.

    Example:
        >>> purity(torch.tensor([0, 0, 0, 1]), torch.tensor([4, 4, 5, 5]))
        0.75
    """
    labels, pid = _prepare_labels(labels, pid, outliers)
    n = labels.numel()
    if n == 0:
        return math.nan
    # Count (cluster, pid) pairs via a unique over the combined key.
    _, lab = torch.unique(labels, return_inverse=True)
    _, p = torch.unique(pid, return_inverse=True)
    num_p = int(p.max()) + 1
    keys, counts = torch.unique(lab * num_p + p, return_counts=True)
    best = torch.zeros(int(lab.max()) + 1, dtype=torch.long, device=counts.device)
    best.scatter_reduce_(0, keys // num_p, counts, reduce="amax")
    return int(best.sum()) / n


def adjusted_rand_index(labels: Any, pid: Any, *, outliers: str = "singleton") -> float:
    r"""Adjusted Rand index of node labels against identities.

    :func:`sklearn.metrics.adjusted_rand_score` on the nodes with known
    identity; outliers handled as in :func:`purity`.

    Args:
        labels (torch.Tensor): Cluster labels ``[N]``, :math:`-1` outlier.
        pid (torch.Tensor): Identities ``[N]``, :math:`-1` unknown (left out).
        outliers (str, optional): ``"singleton"`` or ``"ignore"``.
            (default: ``"singleton"``)

    Returns:
        float: ARI (1 = identical partitions, about 0 = chance); NaN when no
        node is left.

    Example:
        >>> adjusted_rand_index(torch.tensor([1, 1, 0, 0]), torch.tensor([4, 4, 5, 5]))
        1.0
    """
    from sklearn.metrics import adjusted_rand_score

    labels, pid = _prepare_labels(labels, pid, outliers)
    if labels.numel() == 0:
        return math.nan
    return float(adjusted_rand_score(pid.cpu().numpy(), labels.cpu().numpy()))


def graph_quality(
    data: Data,
    labels: Any = None,
    *,
    undirected: bool = True,
    outliers: str = "singleton",
) -> dict[str, float]:
    r"""All quality numbers of a spine graph against :obj:`data.pid`, in one flat dict.

    Keys: ``precision`` and ``precision/<type>`` (:func:`edge_precision`),
    ``recall`` and ``recall/<type>`` (:func:`pair_recall` on all edges and on
    the edges of each type), ``num_components``, ``component_purity`` and
    ``component_ari`` (weakly connected components), and, when
    :obj:`labels` is given (communities or pseudo-labels), ``label_purity``
    and ``label_ari``. The flat form goes straight into a
    :class:`pandas.DataFrame` row.

    Args:
        data (torch_geometric.data.Data): Needs :obj:`pid` and
            :obj:`edge_index`; :obj:`edge_type` is used when present.
        labels (torch.Tensor, optional): Node labels ``[N]`` to score as well.
            (default: :obj:`None`)
        undirected (bool, optional): See :func:`pair_recall`. (default: :obj:`True`)
        outliers (str, optional): See :func:`purity`. (default: ``"singleton"``)

    Returns:
        dict[str, float]

    Example:
        >>> data = Data(edge_index=torch.tensor([[0], [1]]), pid=torch.tensor([3, 3, 4]))
        >>> graph_quality(data)["component_purity"]
        1.0
    """
    if not isinstance(data, Data):
        raise TypeError(f"'data' must be a torch_geometric Data, got {type(data).__name__}")
    if data.get("pid") is None:
        raise ValueError("graph_quality needs 'data.pid' (ground-truth identities, -1 unknown)")
    if data.get("edge_index") is None:
        raise ValueError("graph_quality needs 'data.edge_index'")
    pid = _check_pid(data.pid)
    edge_index = _check_edges(data.edge_index, pid.numel())
    edge_type = data.get("edge_type")

    out: dict[str, float] = {}
    for key, value in edge_precision(edge_index, pid, edge_type).items():
        out["precision" if key == "all" else f"precision/{key}"] = value
    out["recall"] = pair_recall(edge_index, pid, undirected=undirected)
    if edge_type is not None:
        edge_type = check_vector(
            edge_type, "data.edge_type", length=edge_index.size(1), length_of="edges"
        ).long()
        for t in torch.unique(edge_type).tolist():
            sub = edge_index[:, edge_type == t]
            out[f"recall/{_type_name(t)}"] = pair_recall(sub, pid, undirected=undirected)
    comp = connected_components(edge_index, pid.numel())
    out["num_components"] = float(int(comp.max()) + 1) if comp.numel() else 0.0
    out["component_purity"] = purity(comp, pid, outliers=outliers)
    out["component_ari"] = adjusted_rand_index(comp, pid, outliers=outliers)
    if labels is not None:
        out["label_purity"] = purity(labels, pid, outliers=outliers)
        out["label_ari"] = adjusted_rand_index(labels, pid, outliers=outliers)
    return out
