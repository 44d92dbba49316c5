r"""Visual k-nearest-neighbour graph, the :math:`E_v` of G-Fusion (MM 2023, Sec. 3.1)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from reidgraph._validation import check_choice, check_int, check_matrix, check_vector
from reidgraph.graph.edge_types import VISUAL
from reidgraph.graph.utils import _check_alpha, gaussian_kernel, symmetrize
from reidgraph.ops import topk

__all__ = ["knn_graph", "VisualKNNGraph", "WEIGHTS"]

#: Edge weightings accepted by :func:`knn_graph`.
WEIGHTS: tuple[str, ...] = ("gaussian", "cosine")


def _check_data(data: Any, builder: str) -> Data:
    if not isinstance(data, Data):
        raise TypeError(f"{builder} expects a torch_geometric.data.Data, got {type(data).__name__}")
    if getattr(data, "x", None) is None:
        raise ValueError(f"{builder} needs node features 'x' [N, d]; data.x is missing")
    return data


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"'{name}' must be a bool, got {type(value).__name__} ({value!r})")
    return value


def _check_node_attr(data: Data, key: str, builder: str, num_nodes: int) -> Tensor:
    r"""Returns ``data[key]`` as a validated ``[N]`` vector (``camid`` long
    :math:`\ge 0`, ``time`` float64 finite), naming the builder on error."""
    value = getattr(data, key, None)
    if value is None:
        what = {"camid": "camera ids [N] (0-based)", "time": "timestamps [N] in seconds"}[key]
        raise ValueError(f"{builder} needs '{key}' ({what}); data.{key} is missing")
    value = check_vector(value, f"data.{key}", length=num_nodes, length_of="nodes")
    if key == "camid":
        if value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"'data.camid' must be integer camera ids, got dtype {value.dtype}")
        value = value.long()
        if value.numel() and int(value.min()) < 0:
            raise ValueError(
                f"'data.camid' must be 0-based camera ids >= 0, found {int(value.min())}"
            )
        return value
    value = value.to(torch.float64)
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        raise ValueError(
            f"{builder} needs finite timestamps, but 'data.time' has {int(bad.sum())} NaN or "
            f"infinite entr{'y' if int(bad.sum()) == 1 else 'ies'} (first at node "
            f"{int(bad.nonzero()[0])})"
        )
    return value


def _neighbors(
    x: Tensor,
    k: int,
    weight: str = "gaussian",
    backend: str = "auto",
    database: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Top-``k`` visual neighbours, ranked as G-Fusion ranks them (Eq. 2).

    With ``database=None`` the ``k`` counts the node itself (G-Fusion
    Sec. 4.5: :math:`k_s = 1` is the node alone), and the returned lists drop
    it: ``[N, k - 1]``. If a tie (an exact duplicate) pushes the node out of
    its own list, the last entry is dropped instead, so every row keeps
    exactly the ``k - 1`` best other nodes. With a ``database`` the lists
    are ``[N, k]`` database indices.

    The ranking is by squared Euclidean distance for ``"gaussian"`` (the
    Gaussian of Eq. 2 is monotone in it) and by cosine similarity for
    ``"cosine"``; they coincide on L2-normalised features.

    Returns:
        (torch.Tensor, torch.Tensor): ``(score, index)``, best first; ``score``
        is the squared distance (``"gaussian"``, clamped at 0) or the cosine.
    """
    metric = "euclidean" if weight == "gaussian" else "cosine"
    score, index = topk(x, k, database=database, metric=metric, backend=backend)
    if metric == "euclidean":
        score = score.clamp(min=0.0)
    if database is not None:
        return score, index
    n = x.size(0)
    ids = torch.arange(n, device=index.device)
    if bool((index[:, 0] == ids).all()):  # the usual case: self ranked first everywhere
        return score[:, 1:], index[:, 1:]
    is_self = index == ids.unsqueeze(1)
    drop = torch.where(is_self.any(1), is_self.to(torch.uint8).argmax(1), k - 1)
    keep = torch.arange(k, device=index.device).unsqueeze(0) != drop.unsqueeze(1)
    return score[keep].view(n, k - 1), index[keep].view(n, k - 1)


def _pair_sq_dist(
    a: Tensor, b: Tensor, ia: Tensor, ib: Tensor, max_elements: int = 2**24
) -> Tensor:
    r""":math:`\lVert a_{ia} - b_{ib} \rVert^2` for the given index pairs, computed
    from the differences (no :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2ab`
    cancellation), in chunks of at most ``max_elements`` floats."""
    out = a.new_empty(ia.numel())
    step = max(1, max_elements // max(a.size(1), 1))
    for s in range(0, ia.numel(), step):
        out[s : s + step] = (a[ia[s : s + step]] - b[ib[s : s + step]]).pow(2).sum(1)
    return out


def _edge_values(
    x: Tensor,
    src: Tensor,
    dst: Tensor,
    score: Tensor,
    weight: str,
    alpha: float,
    x_dst: Tensor | None = None,
) -> Tensor:
    r"""Edge weights of the edges ``src -> dst``: Eq. 2 on the exact squared
    distance, or the cosine score of the search. ``x_dst`` holds the targets'
    features when they differ from ``x`` (attached nodes)."""
    if weight == "gaussian":
        return gaussian_kernel(_pair_sq_dist(x, x if x_dst is None else x_dst, src, dst), alpha)
    return score


def knn_graph(
    data: Data,
    k: int = 3,
    *,
    weight: str = "gaussian",
    alpha: float = 1.0,
    mutual: bool = False,
    loop: bool = False,
    symmetric: bool = False,
    backend: str = "auto",
) -> Data:
    r"""The visual kNN graph :math:`E_v` of G-Fusion (MM 2023, Sec. 3.1, Eq. 1–2).

    Node :math:`i` is linked to its top-:math:`k` visual neighbours
    :math:`\{S_i\}_{k}` (ranked by the affinity of Eq. 2), **the node itself
    counted** as G-Fusion counts it: :math:`k = 1` gives a node only itself
    (Sec. 4.5), :math:`k = 3` (the paper's :math:`k_s`, Sec. 4.2) two other
    nodes. Each link :math:`j \in \{S_i\}_k` is stored as the edge
    ``j -> i`` (PyG source → target), so messages flow into :math:`i` and
    row :math:`i` of the adjacency of Eq. 5 is the set of edges into
    :math:`i`. Weights:

    .. math::
        S_{ij} = \exp\left(-\lVert v_i - v_j \rVert^2 / 2\alpha^2\right)
        \quad (\text{``gaussian''}), \qquad
        S_{ij} = \hat{v}_i^\top \hat{v}_j \quad (\text{``cosine''}).

    This is the visual-only graph (G-Fusion's ablation without
    spatio-temporal edges); :func:`~reidgraph.graph.spatiotemporal.spatiotemporal_graph`
    adds :math:`E_{st}`.

    **Cost**: the neighbour search of :func:`reidgraph.ops.topk`
    (:math:`O(N^2 d)` time, one bounded score block of memory) plus
    :math:`O(N k)` for the edges; never :math:`N \times N` memory.

    Args:
        data (torch_geometric.data.Data): Graph with node features ``x``
            ``[N, d]`` (L2-normalised in the spine).
        k (int, optional): Neighbours per node, self included,
            :math:`1 \le k \le N`. (default: :obj:`3`, G-Fusion's :math:`k_s`)
        weight (str, optional): ``"gaussian"`` (Eq. 2) or ``"cosine"``.
            (default: :obj:`"gaussian"`)
        alpha (float, optional): Gaussian bandwidth :math:`\alpha` of Eq. 2.
            (default: :obj:`1.0`, Sec. 4.2)
        mutual (bool, optional): Keep ``j -> i`` only if :math:`i` is also in
            :math:`j`'s top-:math:`k` (mutual kNN). (default: :obj:`False`)
        loop (bool, optional): Also store the self loop ``i -> i`` (weight
            :math:`S_{ii}`: 1 for ``"gaussian"``). (default: :obj:`False`;
            :class:`~reidgraph.nn.RandomSAGE` adds it itself)
        symmetric (bool, optional): Return :math:`A^* = (A + A^\top)/2` of
            Eq. 6 (:func:`~reidgraph.graph.utils.symmetrize`) instead of
            :math:`A`. (default: :obj:`False`)
        backend (str, optional): Neighbour-search backend of
            :func:`reidgraph.ops.topk`. (default: :obj:`"auto"`)

    Returns:
        torch_geometric.data.Data: A shallow copy of ``data`` with
        ``edge_index`` ``[2, E]``, ``edge_weight`` ``[E]`` and ``edge_type``
        ``[E]`` (all :obj:`~reidgraph.graph.edge_types.VISUAL`); a previous
        ``edge_attr`` is cleared. Without ``symmetric`` the edges are grouped
        by target, best neighbour first.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> g = knn_graph(Data(x=x), k=2, backend="torch")
        >>> g.edge_index  # 1 -> 0, 0 -> 1, 1 -> 2
        tensor([[1, 0, 1],
                [0, 1, 2]])
        >>> g.edge_weight  # exp(-1/2), exp(-1/2), exp(-4/2)
        tensor([0.6065, 0.6065, 0.1353])
    """
    data = _check_data(data, "knn_graph")
    weight = check_choice(weight, "weight", WEIGHTS)
    alpha = _check_alpha(alpha)
    mutual, loop = _check_bool(mutual, "mutual"), _check_bool(loop, "loop")
    symmetric = _check_bool(symmetric, "symmetric")
    x = check_matrix(data.x, "data.x")
    n = x.size(0)
    k = check_int(
        k, "k", min_value=1, max_value=n, max_reason=f"k counts the node itself; N = {n} nodes"
    )
    score, nbr = _neighbors(x, k, weight, backend)
    target = torch.arange(n, device=x.device).unsqueeze(1).expand_as(nbr)
    keep = torch.ones_like(nbr, dtype=torch.bool)
    if mutual and k > 1:
        keys = (target * n + nbr).reshape(-1)
        keep = torch.isin((nbr * n + target).reshape(-1), keys).view_as(nbr)
    if loop:
        # Self first in each target's group, as in the ranked list; S_ii = exp(0) = 1.
        self_score = torch.ones(n, 1, dtype=score.dtype, device=x.device)
        if weight == "cosine":
            self_score = (x.norm(dim=1, keepdim=True) > 0).to(score.dtype)  # zero vector: 0
        nbr = torch.cat([torch.arange(n, device=x.device).unsqueeze(1), nbr], 1)
        score = torch.cat([self_score, score], 1)
        target = torch.arange(n, device=x.device).unsqueeze(1).expand_as(nbr)
        keep = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=x.device), keep], 1)
    src, dst = nbr[keep], target[keep]
    w = _edge_values(x, src, dst, score[keep], weight, alpha)
    edge_index = torch.stack([src, dst])
    edge_type = torch.full_like(src, VISUAL)
    if symmetric:
        edge_index, w, edge_type = symmetrize(edge_index, w, n, edge_type)
    out = copy.copy(data)
    out.edge_index, out.edge_weight, out.edge_type = edge_index, w, edge_type
    if "edge_attr" in out:
        out.edge_attr = None
    return out


class VisualKNNGraph(BaseTransform):
    r"""Transform wrapper of :func:`knn_graph` (G-Fusion :math:`E_v`, Sec. 3.1).

    Args:
        k (int, optional): Neighbours per node, self included.
            (default: :obj:`3`)
        weight (str, optional): ``"gaussian"`` or ``"cosine"``.
            (default: :obj:`"gaussian"`)
        alpha (float, optional): Gaussian bandwidth. (default: :obj:`1.0`)
        mutual (bool, optional): Mutual kNN. (default: :obj:`False`)
        loop (bool, optional): Store self loops. (default: :obj:`False`)
        symmetric (bool, optional): Return :math:`A^*` (Eq. 6).
            (default: :obj:`False`)
        backend (str, optional): Neighbour-search backend.
            (default: :obj:`"auto"`)

    Example:
        >>> VisualKNNGraph(k=3)
        VisualKNNGraph(k=3, weight=gaussian, alpha=1.0, mutual=False, loop=False, symmetric=False)
    """

    def __init__(
        self,
        k: int = 3,
        weight: str = "gaussian",
        alpha: float = 1.0,
        mutual: bool = False,
        loop: bool = False,
        symmetric: bool = False,
        backend: str = "auto",
    ) -> None:
        self.k = k
        self.weight = weight
        self.alpha = alpha
        self.mutual = mutual
        self.loop = loop
        self.symmetric = symmetric
        self.backend = backend

    def forward(self, data: Data) -> Data:
        return knn_graph(
            data,
            self.k,
            weight=self.weight,
            alpha=self.alpha,
            mutual=self.mutual,
            loop=self.loop,
            symmetric=self.symmetric,
            backend=self.backend,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(k={self.k}, weight={self.weight}, alpha={self.alpha}, "
            f"mutual={self.mutual}, loop={self.loop}, symmetric={self.symmetric})"
        )
