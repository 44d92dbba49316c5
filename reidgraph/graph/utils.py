r"""Sparse adjacency helpers shared by the G-Fusion builders and layers.

Every helper works on an edge list (``edge_index`` ``[2, E]``, ``edge_weight``
``[E]``, optional ``edge_type`` ``[E]``) and never materialises an
:math:`N \times N` matrix: time :math:`O(E \log E)`, memory :math:`O(E)`.

**Convention.** reidgraph follows PyG (source → target). The weighted
adjacency :math:`A` of G-Fusion (Eq. 5) has :math:`A_{ij} \neq 0` when
:math:`j` is a neighbour of :math:`i`; that entry is stored as the edge
``j -> i`` (``edge_index[0] = j``, ``edge_index[1] = i``), so messages flow
into :math:`i`. Row :math:`i` of :math:`A` is therefore the set of edges whose
*target* is :math:`i`; :func:`row_normalize` divides by the weighted in-degree.
Note that :func:`torch_geometric.utils.to_dense_adj` places the edge at
``adj[source, target]``, which is :math:`A^\top` in this convention;
:func:`to_sparse_adjacency` returns :math:`A` itself.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils import add_remaining_self_loops, scatter

from reidgraph._validation import as_tensor, check_choice

__all__ = [
    "gaussian_kernel",
    "check_edge_index",
    "coalesce_edges",
    "symmetrize",
    "row_normalize",
    "gfusion_norm",
    "to_sparse_adjacency",
]

_REDUCES = ("sum", "mean", "min", "max")


def gaussian_kernel(sq_dist: Tensor, alpha: float = 1.0) -> Tensor:
    r"""The Gaussian affinity of G-Fusion Eq. 2 (and Eq. 8) from squared distances.

    .. math::
        S_{ij} = \exp\left(-\frac{\lVert v_i - v_j \rVert^2}{2 \alpha^2}\right)

    Args:
        sq_dist (torch.Tensor): Squared Euclidean distances
            :math:`\lVert v_i - v_j \rVert^2`, any shape.
        alpha (float, optional): Bandwidth :math:`\alpha`; G-Fusion Sec. 4.2
            sets it to 1. (default: :obj:`1.0`)

    Returns:
        torch.Tensor: Same shape as ``sq_dist``, values in :math:`(0, 1]`.

    Example:
        >>> gaussian_kernel(torch.tensor([0.0, 2.0]))  # exp(0), exp(-1)
        tensor([1.0000, 0.3679])
    """
    alpha = _check_alpha(alpha)
    return torch.exp(-sq_dist / (2.0 * alpha * alpha))


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise TypeError(f"'alpha' must be a positive float, got {type(alpha).__name__}")
    alpha = float(alpha)
    if not alpha > 0.0 or alpha == float("inf"):
        raise ValueError(f"'alpha' must be a finite float > 0 (Gaussian bandwidth), got {alpha}")
    return alpha


def check_edge_index(edge_index: Any, num_nodes: int | None = None) -> tuple[Tensor, int]:
    r"""Validates ``edge_index`` (``[2, E]`` integer) and infers ``num_nodes``.

    Returns:
        (torch.Tensor, int): ``edge_index`` as ``torch.long`` and the number
        of nodes (``max + 1`` when ``num_nodes`` is :obj:`None`).
    """
    edge_index = as_tensor(edge_index, "edge_index")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"'edge_index' must have shape [2, E], got shape {tuple(edge_index.shape)}"
        )
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'edge_index' must hold integer node ids, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    top = int(edge_index.max()) + 1 if edge_index.numel() else 0
    if edge_index.numel() and int(edge_index.min()) < 0:
        raise ValueError(f"'edge_index' must hold node ids >= 0, found {int(edge_index.min())}")
    if num_nodes is None:
        num_nodes = top
    elif top > num_nodes:
        raise ValueError(
            f"'edge_index' contains larger indices than the number of nodes ({num_nodes}) "
            f"(found {top - 1})"
        )
    return edge_index, int(num_nodes)


def _check_edge_values(value: Any, name: str, num_edges: int, device: torch.device) -> Tensor:
    out = as_tensor(value, name, device=device)
    if out.dim() != 1 or out.numel() != num_edges:
        raise ValueError(
            f"'{name}' must have shape [E] = [{num_edges}] (one entry per edge), "
            f"got shape {tuple(out.shape)}"
        )
    return out


def coalesce_edges(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    edge_type: Tensor | None = None,
    num_nodes: int | None = None,
    reduce: str = "sum",
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    r"""Sorts edges by ``(source, target)`` and merges duplicates.

    Duplicate weights are combined with ``reduce``; duplicate edge types take
    the *smallest* type id, so a visual edge (:obj:`~reidgraph.graph.edge_types.VISUAL`
    = 0) wins over a spatio-temporal one (1) when both link the same pair.

    Args:
        edge_index (torch.Tensor): ``[2, E]``.
        edge_weight (torch.Tensor, optional): ``[E]``. (default: :obj:`None`)
        edge_type (torch.Tensor, optional): ``[E]`` integer. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes. (default: :obj:`None`,
            ``edge_index.max() + 1``)
        reduce (str, optional): ``"sum"``, ``"mean"``, ``"min"`` or ``"max"``.
            (default: :obj:`"sum"`)

    Returns:
        (torch.Tensor, torch.Tensor or None, torch.Tensor or None):
        ``(edge_index, edge_weight, edge_type)``, lexicographically sorted.

    Example:
        >>> ei = torch.tensor([[1, 0, 1], [0, 1, 0]])
        >>> coalesce_edges(ei, torch.tensor([1.0, 2.0, 3.0]))[:2]
        (tensor([[0, 1],
                [1, 0]]), tensor([2., 4.]))
    """
    reduce = check_choice(reduce, "reduce", _REDUCES)
    edge_index, num_nodes = check_edge_index(edge_index, num_nodes)
    num_edges = edge_index.size(1)
    if edge_weight is not None:
        edge_weight = _check_edge_values(edge_weight, "edge_weight", num_edges, edge_index.device)
    if edge_type is not None:
        edge_type = _check_edge_values(edge_type, "edge_type", num_edges, edge_index.device)
    if num_edges == 0:
        return edge_index, edge_weight, edge_type
    key = edge_index[0] * max(num_nodes, 1) + edge_index[1]
    uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
    out_index = torch.stack([uniq // max(num_nodes, 1), uniq % max(num_nodes, 1)])
    n_out = uniq.numel()
    out_weight = out_type = None
    if edge_weight is not None:
        out_weight = scatter(edge_weight, inverse, 0, dim_size=n_out, reduce=reduce)
    if edge_type is not None:
        out_type = scatter(edge_type, inverse, 0, dim_size=n_out, reduce="min")
    return out_index, out_weight, out_type


def symmetrize(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    edge_type: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""The symmetric adjacency of G-Fusion Eq. 6.

    .. math::
        A^{*} = \tfrac{1}{2}\left(A + A^\top\right)

    A pair linked in one direction only gets weight :math:`A_{ij}/2` both
    ways; a pair linked both ways keeps :math:`(A_{ij} + A_{ji})/2` (equal to
    :math:`S_{ij}` for the symmetric Gaussian weights of Eq. 2); a self loop
    keeps its weight. Edge types follow :func:`coalesce_edges` (the smaller
    id wins where the two directions differ). Cost :math:`O(E \log E)`.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges of :math:`A` (``j -> i``
            for :math:`A_{ij}`; symmetrisation does not depend on it).
        edge_weight (torch.Tensor, optional): ``[E]``; :obj:`None` means all
            ones. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes. (default: :obj:`None`)
        edge_type (torch.Tensor, optional): ``[E]``. (default: :obj:`None`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor or None):
        ``(edge_index, edge_weight, edge_type)`` of :math:`A^{*}`, coalesced.

    Example:
        >>> ei = torch.tensor([[0], [1]])  # A[1, 0] = 0.8
        >>> symmetrize(ei, torch.tensor([0.8]))[:2]
        (tensor([[0, 1],
                [1, 0]]), tensor([0.4000, 0.4000]))
    """
    edge_index, num_nodes = check_edge_index(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_weight = _check_edge_values(
        edge_weight, "edge_weight", edge_index.size(1), edge_index.device
    )
    if not edge_weight.is_floating_point():
        edge_weight = edge_weight.float()
    both_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both_weight = torch.cat([edge_weight, edge_weight]) * 0.5
    both_type = None if edge_type is None else torch.cat([edge_type, edge_type])
    out_index, out_weight, out_type = coalesce_edges(
        both_index, both_weight, both_type, num_nodes=num_nodes, reduce="sum"
    )
    return out_index, out_weight, out_type  # type: ignore[return-value]


def row_normalize(
    edge_index: Tensor, edge_weight: Tensor | None = None, num_nodes: int | None = None
) -> Tensor:
    r"""Row normalisation :math:`D^{-1} A` (G-Fusion Eq. 7, "row normalization").

    .. math::
        \left(D^{-1} A\right)_{ij} = \frac{A_{ij}}{\sum_{k} A_{ik}}

    Rows are *targets* (``edge_index[1]``), so the weights into each node
    sum to 1 and a sum-aggregating layer computes a weighted mean. A row
    whose weights sum to 0 stays 0.

    Args:
        edge_index (torch.Tensor): ``[2, E]``.
        edge_weight (torch.Tensor, optional): ``[E]`` non-negative; :obj:`None`
            means all ones. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes. (default: :obj:`None`)

    Returns:
        torch.Tensor: ``[E]`` normalised weights, in the order of ``edge_index``.

    Example:
        >>> ei = torch.tensor([[0, 1, 2], [2, 2, 0]])
        >>> row_normalize(ei, torch.tensor([1.0, 3.0, 5.0]))
        tensor([0.2500, 0.7500, 1.0000])
    """
    edge_index, num_nodes = check_edge_index(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_weight = _check_edge_values(
        edge_weight, "edge_weight", edge_index.size(1), edge_index.device
    )
    if not edge_weight.is_floating_point():
        edge_weight = edge_weight.float()
    if edge_weight.numel() and bool((edge_weight < 0).any()):
        raise ValueError(
            "'edge_weight' must be non-negative for row normalisation, "
            f"found minimum {float(edge_weight.min())}"
        )
    target = edge_index[1]
    deg = scatter(edge_weight, target, 0, dim_size=num_nodes, reduce="sum")
    inv = deg.reciprocal()
    inv.masked_fill_(deg == 0, 0.0)
    return edge_weight * inv[target]


def gfusion_norm(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    self_loop_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    r"""The propagation operator of G-Fusion Eq. 7 from a (symmetrised) adjacency.

    Adds a self loop of weight ``self_loop_weight`` to every node that has
    none (the :math:`\mathbb{N}(i) \cup i` of Eq. 7; Eq. 2 gives
    :math:`S_{ii} = e^0 = 1`), then row-normalises:

    .. math::
        P = D^{-1} \left(A^{*} + \operatorname{diag}(\text{missing loops})\right)

    Symmetrisation (Eq. 6) is *not* done here: pass :math:`A^{*}` from
    :func:`symmetrize` (or a builder called with ``symmetric=True``). Keeping it
    out lets query nodes attached with
    :func:`~reidgraph.graph.spatiotemporal.attach_nodes` receive messages from
    the gallery without sending any back (G-Fusion Eq. 16).

    Args:
        edge_index (torch.Tensor): ``[2, E]``.
        edge_weight (torch.Tensor, optional): ``[E]``; :obj:`None` means all
            ones. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes. (default: :obj:`None`)
        self_loop_weight (float, optional): Weight of added self loops.
            (default: :obj:`1.0`)

    Returns:
        (torch.Tensor, torch.Tensor): ``(edge_index, edge_weight)`` of :math:`P`.

    Example:
        >>> ei = torch.tensor([[1], [0]])  # A[0, 1] = 1
        >>> gfusion_norm(ei, torch.tensor([1.0]), num_nodes=2)
        (tensor([[1, 0, 1],
                [0, 0, 1]]), tensor([0.5000, 0.5000, 1.0000]))
    """
    edge_index, num_nodes = check_edge_index(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_weight = _check_edge_values(
        edge_weight, "edge_weight", edge_index.size(1), edge_index.device
    )
    if not edge_weight.is_floating_point():
        edge_weight = edge_weight.float()
    edge_index, edge_weight = add_remaining_self_loops(
        edge_index, edge_weight, fill_value=float(self_loop_weight), num_nodes=num_nodes
    )
    return edge_index, row_normalize(edge_index, edge_weight, num_nodes)


def to_sparse_adjacency(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    layout: str = "coo",
) -> Tensor:
    r"""The adjacency :math:`A` (``A[i, j]`` = weight of edge ``j -> i``) as a
    :mod:`torch.sparse` tensor.

    Duplicate edges are summed. This is the matrix a sum-aggregating
    :class:`~torch_geometric.nn.conv.MessagePassing` layer multiplies by
    (``adj_t`` in PyG's naming).

    Args:
        edge_index (torch.Tensor): ``[2, E]``.
        edge_weight (torch.Tensor, optional): ``[E]``; :obj:`None` means all
            ones. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes. (default: :obj:`None`)
        layout (str, optional): ``"coo"`` or ``"csr"``. (default: :obj:`"coo"`)

    Returns:
        torch.Tensor: Sparse ``[N, N]``.

    Example:
        >>> to_sparse_adjacency(torch.tensor([[1], [0]]), num_nodes=2).to_dense()
        tensor([[0., 1.],
                [0., 0.]])
    """
    layout = check_choice(layout, "layout", ("coo", "csr"))
    edge_index, num_nodes = check_edge_index(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    edge_weight = _check_edge_values(
        edge_weight, "edge_weight", edge_index.size(1), edge_index.device
    )
    adj = torch.sparse_coo_tensor(
        edge_index.flip(0), edge_weight, (num_nodes, num_nodes), check_invariants=False
    ).coalesce()
    if layout == "coo":
        return adj
    with warnings.catch_warnings():
        # torch flags CSR as "beta" on first use; the sum-spmm we need from it is stable.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return adj.to_sparse_csr()
