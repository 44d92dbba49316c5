r"""Spatio-temporal fusion graph of G-Fusion (MM 2023, Sec. 3.1, Eq. 1–5) and
attaching query nodes to it (Sec. 3.4, Eq. 16)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from reidgraph._validation import check_int, check_matrix
from reidgraph.graph.edge_types import SPATIOTEMPORAL, VISUAL
from reidgraph.graph.knn import (
    _check_bool,
    _check_data,
    _check_node_attr,
    _neighbors,
    _pair_sq_dist,
)
from reidgraph.graph.transitions import TransitionSet, _check_cameras, _check_delta
from reidgraph.graph.utils import _check_alpha, gaussian_kernel, symmetrize

__all__ = ["spatiotemporal_graph", "attach_nodes", "SpatioTemporalGraph"]

logger = logging.getLogger(__name__)


def _check_ks_kl(k_s: Any, k_l: Any, n: int, what: str) -> tuple[int, int]:
    k_s = check_int(k_s, "k_s", min_value=1, max_value=n, max_reason=f"{what} has {n} nodes")
    k_l = check_int(k_l, "k_l", min_value=1, max_value=n, max_reason=f"{what} has {n} nodes")
    if k_l < k_s:
        raise ValueError(
            f"'k_l' must be >= 'k_s' (the top-k_l candidates of Eq. 4 contain the top-k_s "
            f"visual neighbours), got k_s={k_s} and k_l={k_l}"
        )
    return k_s, k_l


def _check_transitions(transitions: Any) -> TransitionSet | None:
    if transitions is not None and not isinstance(transitions, TransitionSet):
        raise TypeError(
            "'transitions' must be a TransitionSet (e.g. TransitionSet.fit(train, k_s=3)) or "
            f"None, got {type(transitions).__name__}"
        )
    return transitions


def _st_select(
    nbr: Tensor,
    first_candidate: int,
    cam_anchor: Tensor,
    time_anchor: Tensor,
    cam_db: Tensor,
    time_db: Tensor,
    transitions: TransitionSet,
    delta: float,
) -> Tensor:
    r"""Eq. 4 on the candidate columns ``nbr[:, first_candidate:]``: a
    ``[rows, cols]`` mask of those that pass the window test (anchor = row)."""
    cand = nbr[:, first_candidate:]
    if cand.numel() == 0:
        return torch.zeros_like(cand, dtype=torch.bool)
    cam_a = cam_anchor.unsqueeze(1).expand_as(cand).reshape(-1)
    dt = (time_anchor.unsqueeze(1) - time_db[cand]).reshape(-1)
    # Cameras were checked against transitions.num_cameras by the caller.
    ok = transitions._contains(cam_a, cam_db[cand].reshape(-1), dt, delta)
    return ok.view_as(cand)


def spatiotemporal_graph(
    data: Data,
    k_s: int = 3,
    k_l: int = 60,
    delta: float = 1.0,
    alpha: float = 1.0,
    transitions: TransitionSet | None = None,
    *,
    transition_k: int | None = None,
    symmetric: bool = False,
    backend: str = "auto",
    return_transitions: bool = False,
) -> Data | tuple[Data, TransitionSet]:
    r"""The spatio-temporal fusion graph of G-Fusion (MM 2023, Sec. 3.1, Eq. 1–5).

    .. math::
        E = E_v \cup E_{st}, \qquad
        S_{ij} = \exp\left(-\lVert v_i - v_j \rVert^2 / 2\alpha^2\right)

    * :math:`E_v`: node :math:`i` links to its top-:math:`k_s` visual
      neighbours :math:`\{S_i\}_{k_s}`, itself counted (Sec. 4.5), i.e. the
      edges of :func:`~reidgraph.graph.knn.knn_graph` with ``k = k_s``.
    * :math:`E_{st}` (Eq. 4): node :math:`i` (camera :math:`a`) links to
      :math:`j` (camera :math:`b \neq a`) in its top-:math:`k_l` list when
      :math:`[\Delta t_{ij} - \delta, \Delta t_{ij} + \delta] \cap T(a, b)
      \neq \emptyset`, with :math:`\Delta t_{ij} = t_i - t_j`.
    * Weights :math:`A_{ij} = S_{ij}` (Eq. 5). A link :math:`j \in` row
      :math:`i` is the edge ``j -> i`` (PyG source → target). A pair in both
      sets appears once, typed :obj:`~reidgraph.graph.edge_types.VISUAL`; the
      others are :obj:`~reidgraph.graph.edge_types.SPATIOTEMPORAL`.

    **Units**: ``data.time`` and ``delta`` are seconds. The paper sets
    :math:`\delta = 25` frames at Market-1501's 25 fps, i.e. 1.0 s
    (:math:`\delta_s = \delta_{\text{frames}} / \text{fps}`).

    **transitions**: the sets :math:`T(a, b)` of Eq. 3. At training time
    (Sec. 3.1) they come from the graph's own data: ``None`` fits them on
    ``data`` from the same search's top-``transition_k`` lists (equal to
    ``TransitionSet.fit(data, transition_k)``; one neighbour search serves
    both). At test time (Sec. 3.4) pass the
    :class:`~reidgraph.graph.transitions.TransitionSet` fitted on the
    training set. For a visual-only graph (no :math:`E_{st}`, the ablation
    without spatio-temporal information) use
    :func:`~reidgraph.graph.knn.knn_graph`.

    **Cost**: one :func:`reidgraph.ops.topk` search with :math:`k_l`
    (:math:`O(N^2 d)` time, bounded memory), then :math:`O(N k_l \log |T|)`
    for the window tests; memory :math:`O(N k_l)`, never :math:`N \times N`.

    Args:
        data (torch_geometric.data.Data): ``x`` ``[N, d]``, ``camid`` ``[N]``
            (0-based), ``time`` ``[N]`` (seconds, finite).
        k_s (int, optional): Visual neighbours, self included.
            (default: :obj:`3`, Sec. 4.2)
        k_l (int, optional): Candidate list of Eq. 4, self included,
            :math:`k_s \le k_l \le N`. (default: :obj:`60`, Sec. 4.2)
        delta (float, optional): Half window :math:`\delta` in seconds.
            (default: :obj:`1.0` = 25 frames at 25 fps, Sec. 4.2)
        alpha (float, optional): Bandwidth :math:`\alpha` of Eq. 2.
            (default: :obj:`1.0`, Sec. 4.2)
        transitions (TransitionSet, optional): :math:`T(a, b)`; :obj:`None`
            fits them on ``data`` (see above). (default: :obj:`None`)
        transition_k (int, optional): Neighbours (self counted) that
            :math:`T(a, b)` is fitted from when ``transitions`` is
            :obj:`None`, :math:`\le k_l`. (default: :obj:`None`, ``k_s`` as
            in Eq. 3)
        symmetric (bool, optional): Return :math:`A^*` of Eq. 6 instead of
            :math:`A`. (default: :obj:`False`)
        backend (str, optional): :func:`reidgraph.ops.topk` backend.
            (default: :obj:`"auto"`)
        return_transitions (bool, optional): Also return the
            :math:`T(a, b)` used (fitted or given). (default: :obj:`False`)

    Returns:
        torch_geometric.data.Data: A shallow copy of ``data`` with
        ``edge_index`` ``[2, E]``, ``edge_weight`` ``[E]`` (:math:`S_{ij}`)
        and ``edge_type`` ``[E]``; without ``symmetric``, edges are grouped
        by target in rank order. With ``return_transitions``, the pair
        ``(graph, transitions)``.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [0.3], [0.45]])
        >>> data = Data(x=x, camid=torch.tensor([0, 1, 0, 1]),
        ...             time=torch.tensor([0.0, 5.0, 0.5, 5.2]))
        >>> g = spatiotemporal_graph(data, k_s=2, k_l=4, backend="torch")
        >>> g.edge_index  # T(0,1) = {-5, -4.7}: e.g. 3 -> 0 since t_0 - t_3 = -5.2
        tensor([[1, 3, 0, 2, 3, 1, 2, 0],
                [0, 0, 1, 1, 2, 2, 3, 3]])
        >>> g.edge_type
        tensor([0, 1, 0, 1, 0, 1, 0, 1])
    """
    data = _check_data(data, "spatiotemporal_graph")
    x = check_matrix(data.x, "data.x")
    n = x.size(0)
    camid = _check_node_attr(data, "camid", "spatiotemporal_graph", n)
    time = _check_node_attr(data, "time", "spatiotemporal_graph", n)
    k_s, k_l = _check_ks_kl(k_s, k_l, n, "data")
    delta, alpha = _check_delta(delta), _check_alpha(alpha)
    transitions = _check_transitions(transitions)
    symmetric = _check_bool(symmetric, "symmetric")
    return_transitions = _check_bool(return_transitions, "return_transitions")
    if transition_k is None:
        transition_k = k_s
    transition_k = check_int(
        transition_k, "transition_k", min_value=1, max_value=k_l,
        max_reason=f"T(a, b) is fitted from the same top-k_l search (k_l = {k_l})",
    )  # fmt: skip

    _, nbr = _neighbors(x, k_l, "gaussian", backend)  # [N, k_l - 1], self removed
    anchor = torch.arange(n, device=x.device)
    if transitions is None:
        vis = nbr[:, : transition_k - 1]
        pairs = torch.stack([anchor.unsqueeze(1).expand_as(vis).reshape(-1), vis.reshape(-1)])
        transitions = TransitionSet.from_pairs(camid, time, pairs, k_s=transition_k)
    else:
        _check_cameras(camid, "data.camid", transitions.num_cameras)

    keep = torch.ones_like(nbr, dtype=torch.bool)
    keep[:, k_s - 1 :] = _st_select(nbr, k_s - 1, camid, time, camid, time, transitions, delta)
    etype = torch.full_like(nbr, SPATIOTEMPORAL)
    etype[:, : k_s - 1] = VISUAL
    src = nbr[keep]
    dst = anchor.unsqueeze(1).expand_as(nbr)[keep]
    weight = gaussian_kernel(_pair_sq_dist(x, x, src, dst), alpha)
    edge_type = etype[keep]
    edge_index = torch.stack([src, dst])
    if logger.isEnabledFor(logging.DEBUG):  # the counts cost a device sync
        logger.debug(
            "spatiotemporal_graph: %d visual + %d spatio-temporal edges on %d nodes",
            int((edge_type == VISUAL).sum()),
            int((edge_type == SPATIOTEMPORAL).sum()),
            n,
        )
    if symmetric:
        edge_index, weight, edge_type = symmetrize(edge_index, weight, n, edge_type)
    out = copy.copy(data)
    out.edge_index, out.edge_weight, out.edge_type = edge_index, weight, edge_type
    if "edge_attr" in out:
        out.edge_attr = None
    return (out, transitions) if return_transitions else out


_EDGE_KEYS = ("edge_index", "edge_weight", "edge_type")


def attach_nodes(
    graph: Data,
    new: Data,
    k_s: int = 3,
    k_l: int = 60,
    delta: float = 1.0,
    alpha: float = 1.0,
    *,
    transitions: TransitionSet | None,
    backend: str = "auto",
) -> Data:
    r"""Appends new nodes (queries) to an existing graph, G-Fusion Sec. 3.4 / Eq. 16.

    .. math::
        \left(v_i^q\right)^n = \sigma\left(W^n \cdot
        \left((D^{qg})^{-1} (A^{qg})^*\right)_{ij} \left(v_j^g\right)^{n-1}\right),
        \quad \forall j \in \mathbb{N}(i) \cup i

    Each new node :math:`i` gets in-edges ``j -> N + i`` from

    * its top-:math:`k_s` gallery nodes (Sec. 3.4: "the top :math:`k_s`
      gallery-set images for each query image"; the query is not in the
      gallery, so all :math:`k_s` are gallery images, as in the public code,
      REFERENCE_NOTES A.5), typed ``VISUAL``;
    * gallery nodes ranked :math:`k_s+1 \dots k_l` that pass the window test
      of Eq. 4 (:math:`a = C(V_i^q)`, :math:`b = C(V_j^g)`,
      :math:`\Delta t = t_i - t_j`), typed ``SPATIOTEMPORAL``,

    weighted :math:`S_{ij}^{qg}` (Eq. 2). The gallery graph is not rebuilt or
    changed and gets no edges from new nodes, so gallery embeddings stay
    those of Eq. 15; new nodes see gallery nodes and themselves (the self
    loop added by :class:`~reidgraph.nn.RandomSAGE`), never other new
    nodes. Query rows are not halved by Eq. 6: :math:`A^{qg}_{ij} = S_{ij}`
    as in the public code (self loop 1, row-normalised by the layer).

    **Cost**: one :func:`reidgraph.ops.topk` of :math:`M` queries against
    :math:`N` gallery nodes (:math:`O(M N d)`), :math:`O(M k_l)` memory.

    Args:
        graph (torch_geometric.data.Data): The gallery graph: ``x``, and
            ``camid`` / ``time`` when ``transitions`` is given; its edges
            (``edge_index``, ``edge_weight``, ``edge_type``) are kept as they
            are (build it with ``symmetric=True`` for Eq. 15).
        new (torch_geometric.data.Data): New nodes, the same node attributes.
        k_s (int, optional): Visual gallery neighbours per new node.
            (default: :obj:`3`)
        k_l (int, optional): Candidate list of Eq. 4, :math:`k_s \le k_l \le N`.
            (default: :obj:`60`)
        delta (float, optional): :math:`\delta` in seconds. (default: :obj:`1.0`)
        alpha (float, optional): :math:`\alpha` of Eq. 2. (default: :obj:`1.0`)
        transitions (TransitionSet or None): :math:`T(a, b)` fitted on the
            training set; required keyword. :obj:`None` attaches through the
            visual top-:math:`k_s` only (visual-only re-ranking).
        backend (str, optional): :func:`reidgraph.ops.topk` backend.
            (default: :obj:`"auto"`)

    Returns:
        torch_geometric.data.Data: ``N + M`` nodes, the new ones at
        ``N .. N + M - 1`` (node attributes concatenated), the gallery edges
        followed by the new ones, and ``new_mask`` ``[N + M]`` (bool,
        :obj:`True` for appended nodes).

    Example:
        >>> g = Data(x=torch.tensor([[0.0], [1.0], [5.0]]),
        ...          edge_index=torch.empty(2, 0, dtype=torch.long),
        ...          edge_weight=torch.empty(0), edge_type=torch.empty(0, dtype=torch.long))
        >>> q = Data(x=torch.tensor([[0.9]]))
        >>> out = attach_nodes(g, q, k_s=1, k_l=1, transitions=None, backend="torch")
        >>> out.edge_index, out.new_mask
        (tensor([[1],
                [3]]), tensor([False, False, False,  True]))
    """
    graph = _check_data(graph, "attach_nodes (graph)")
    new = _check_data(new, "attach_nodes (new)")
    xg = check_matrix(graph.x, "graph.x")
    xq = check_matrix(new.x, "new.x")
    if xq.size(1) != xg.size(1):
        raise ValueError(
            f"'new.x' must have the gallery's feature dimension {xg.size(1)}, got {xq.size(1)}"
        )
    if xq.device != xg.device:
        raise ValueError(f"'new.x' is on {xq.device} but 'graph.x' is on {xg.device}")
    n, m = xg.size(0), xq.size(0)
    k_s, k_l = _check_ks_kl(k_s, k_l, n, "graph")
    delta, alpha = _check_delta(delta), _check_alpha(alpha)
    transitions = _check_transitions(transitions)
    edge_index, edge_weight, edge_type = _graph_edges(graph, n)
    node_keys = _node_keys(graph, new, n, m)

    k = k_l if transitions is not None else k_s
    _, nbr = _neighbors(xq, k, "gaussian", backend, database=xg)  # [M, k]
    keep = torch.ones_like(nbr, dtype=torch.bool)
    if transitions is not None:
        cam_g = _check_node_attr(graph, "camid", "attach_nodes (graph)", n)
        time_g = _check_node_attr(graph, "time", "attach_nodes (graph)", n)
        cam_q = _check_node_attr(new, "camid", "attach_nodes (new)", m)
        time_q = _check_node_attr(new, "time", "attach_nodes (new)", m)
        _check_cameras(cam_g, "graph.camid", transitions.num_cameras)
        _check_cameras(cam_q, "new.camid", transitions.num_cameras)
        keep[:, k_s:] = _st_select(nbr, k_s, cam_q, time_q, cam_g, time_g, transitions, delta)
    etype = torch.full_like(nbr, SPATIOTEMPORAL)
    etype[:, :k_s] = VISUAL
    target = (torch.arange(m, device=xg.device) + n).unsqueeze(1).expand_as(nbr)
    new_index = torch.stack([nbr[keep], target[keep]])
    new_weight = gaussian_kernel(_pair_sq_dist(xg, xq, new_index[0], new_index[1] - n), alpha)

    out = copy.copy(graph)
    for key in node_keys:
        out[key] = torch.cat([graph[key], new[key].to(graph[key].device)], dim=0)
    out.edge_index = torch.cat([edge_index, new_index], dim=1)
    out.edge_weight = torch.cat([edge_weight, new_weight.to(edge_weight.dtype)])
    out.edge_type = torch.cat([edge_type, etype[keep]])
    out.num_nodes = n + m  # a stale explicit count would survive the shallow copy
    mask = torch.zeros(n + m, dtype=torch.bool, device=xg.device)
    mask[n:] = True
    out.new_mask = mask
    return out


def _graph_edges(graph: Data, n: int) -> tuple[Tensor, Tensor, Tensor]:
    device = graph.x.device
    if graph.edge_index is None:
        return (
            torch.empty(2, 0, dtype=torch.long, device=device),
            torch.empty(0, device=device),
            torch.empty(0, dtype=torch.long, device=device),
        )
    for key in ("edge_weight", "edge_type"):
        if getattr(graph, key, None) is None:
            raise ValueError(
                f"attach_nodes needs 'graph.{key}' alongside graph.edge_index (build the graph "
                "with spatiotemporal_graph or knn_graph)"
            )
    others = sorted(
        k
        for k in graph.keys()
        if k.startswith("edge_") and k not in _EDGE_KEYS and graph[k] is not None
    )
    if others:
        raise ValueError(
            f"attach_nodes cannot extend edge attribute(s) {others} for the new edges; "
            "remove them from the graph first"
        )
    return graph.edge_index, graph.edge_weight, graph.edge_type


def _node_keys(graph: Data, new: Data, n: int, m: int) -> list[str]:
    def keys(d: Data, size: int) -> set[str]:
        return {
            k
            for k in d.keys()
            if not k.startswith("edge_")
            and k != "new_mask"
            and isinstance(d[k], Tensor)
            and d[k].dim() > 0
            and d[k].size(0) == size
        }

    kg, kq = keys(graph, n), keys(new, m)
    if kg != kq:
        raise ValueError(
            "attach_nodes needs the same node attributes on 'graph' and 'new': only in graph "
            f"{sorted(kg - kq)}, only in new {sorted(kq - kg)}"
        )
    return sorted(kg)


class SpatioTemporalGraph(BaseTransform):
    r"""Transform wrapper of :func:`spatiotemporal_graph` (G-Fusion Sec. 3.1).

    Args:
        k_s (int, optional): Visual neighbours, self included. (default: :obj:`3`)
        k_l (int, optional): Candidate list of Eq. 4. (default: :obj:`60`)
        delta (float, optional): :math:`\delta` in seconds. (default: :obj:`1.0`)
        alpha (float, optional): :math:`\alpha` of Eq. 2. (default: :obj:`1.0`)
        transitions (TransitionSet, optional): :math:`T(a, b)`; :obj:`None`
            fits them on each graph. (default: :obj:`None`)
        symmetric (bool, optional): Return :math:`A^*` (Eq. 6).
            (default: :obj:`False`)
        backend (str, optional): Neighbour-search backend. (default: :obj:`"auto"`)

    Example:
        >>> SpatioTemporalGraph()
        SpatioTemporalGraph(k_s=3, k_l=60, delta=1.0, alpha=1.0, transitions=None, symmetric=False)
    """

    def __init__(
        self,
        k_s: int = 3,
        k_l: int = 60,
        delta: float = 1.0,
        alpha: float = 1.0,
        transitions: TransitionSet | None = None,
        symmetric: bool = False,
        backend: str = "auto",
    ) -> None:
        self.k_s = k_s
        self.k_l = k_l
        self.delta = delta
        self.alpha = alpha
        self.transitions = transitions
        self.symmetric = symmetric
        self.backend = backend

    def forward(self, data: Data) -> Data:
        return spatiotemporal_graph(
            data,
            self.k_s,
            self.k_l,
            self.delta,
            self.alpha,
            self.transitions,
            symmetric=self.symmetric,
            backend=self.backend,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(k_s={self.k_s}, k_l={self.k_l}, delta={self.delta}, "
            f"alpha={self.alpha}, transitions={self.transitions!r}, symmetric={self.symmetric})"
        )
