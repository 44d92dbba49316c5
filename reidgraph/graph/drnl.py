r"""Double-Radius Node Labelling (DRNL) on batches of pair subgraphs.

DRNL (Zhang & Chen, "Link Prediction Based on Graph Neural Networks",
NeurIPS 2018, Eq. 8 there) gives every node of an enclosing subgraph of a
target pair :math:`(i, j)` an integer that encodes its pair of distances to
the two targets. MPRD (ICCV 2021, Sec. 3.2) uses it as the position part of
the node embedding :math:`\mathbf{V}_{ij}`, one-hot encoded to 16 classes and
concatenated with the CNN feature.

The computation follows PyG's SEAL example (``examples/seal_link_pred.py``,
``drnl_node_labeling``): the distance to :math:`i` is measured in the
subgraph with :math:`j` removed, the distance to :math:`j` with :math:`i`
removed, the two targets get label 1 and nodes that cannot reach one of the
targets get label 0. Here it runs for all subgraphs of a batch at once, as a
multi-source breadth-first search over the disjoint union (no loop over
pairs).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from reidgraph._validation import as_tensor, check_int

__all__ = ["drnl_hash", "drnl_node_labels", "drnl_one_hot", "bfs_distances"]


def drnl_hash(dist_src: torch.Tensor, dist_dst: torch.Tensor) -> torch.Tensor:
    r"""The DRNL hash of a node's two distances (Zhang & Chen 2018, Eq. 8).

    .. math::
        z = 1 + \min(d_i, d_j) + \lfloor d/2 \rfloor
            \left(\lfloor d/2 \rfloor + (d \bmod 2) - 1\right),
        \qquad d = d_i + d_j,

    and :math:`z = 0` where either distance is unreachable (marked by a
    negative value). Examples: :math:`(1,1)\to 2`, :math:`(1,2)\to 3`,
    :math:`(1,3)\to 4`, :math:`(2,2)\to 5`, :math:`(2,3)\to 7`.
    The targets themselves (distance 0 to one end) must be set to 1 by the
    caller, as :func:`drnl_node_labels` does.

    Args:
        dist_src (torch.Tensor): Integer distances :math:`d_i`, ``-1`` for
            unreachable. Shape :math:`[N]`.
        dist_dst (torch.Tensor): Integer distances :math:`d_j`, same shape.

    Returns:
        torch.Tensor: Long labels, shape :math:`[N]`.

    Example:
        >>> drnl_hash(torch.tensor([1, 2, 1, -1]), torch.tensor([1, 2, 3, 1]))
        tensor([2, 5, 4, 0])
    """
    dist_src = as_tensor(dist_src, "dist_src").long()
    dist_dst = as_tensor(dist_dst, "dist_dst").long()
    if dist_src.shape != dist_dst.shape:
        raise ValueError(
            f"'dist_src' and 'dist_dst' must have the same shape, got {tuple(dist_src.shape)} "
            f"and {tuple(dist_dst.shape)}"
        )
    d = dist_src + dist_dst
    half = torch.div(d, 2, rounding_mode="floor")
    z = 1 + torch.minimum(dist_src, dist_dst) + half * (half + d % 2 - 1)
    return torch.where((dist_src < 0) | (dist_dst < 0), torch.zeros_like(z), z)


def bfs_distances(
    edge_index: torch.Tensor,
    source_mask: torch.Tensor,
    blocked_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Unweighted shortest-path distances from a set of sources, vectorised.

    One breadth-first search expanding all sources together, so on a batch of
    disjoint subgraphs with one source per subgraph it returns every node's
    distance to its own subgraph's source. Each level gathers the out-edges
    of the current frontier from a CSR view of ``edge_index``, so every edge
    is read once: :math:`O(E + N L)` time for :math:`L` levels, after an
    :math:`O(E \log E)` sort that is skipped when ``edge_index`` is already
    grouped by source; :math:`O(N + E)` memory.

    Args:
        edge_index (torch.Tensor): Directed edges :math:`[2, E]` (pass both
            directions for an undirected graph).
        source_mask (torch.Tensor): Bool :math:`[N]`, the sources (distance 0).
        blocked_mask (torch.Tensor, optional): Bool :math:`[N]`, nodes treated
            as removed from the graph (never reached, never expanded; their
            distance is ``-1``). (default: :obj:`None`)

    Returns:
        torch.Tensor: Long :math:`[N]`, ``-1`` where unreachable.

    Example:
        >>> # path 0 - 1 - 2, source 0
        >>> e = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> bfs_distances(e, torch.tensor([True, False, False]))
        tensor([0, 1, 2])
    """
    source_mask = _check_mask(source_mask, "source_mask")
    num_nodes = source_mask.numel()
    if blocked_mask is not None:
        blocked_mask = _check_mask(blocked_mask, "blocked_mask", num_nodes)
    edge_index = _check_edge_index(edge_index, num_nodes).to(source_mask.device)
    return _bfs(edge_index, source_mask, blocked_mask)


def _bfs(
    edge_index: torch.Tensor, source_mask: torch.Tensor, blocked_mask: torch.Tensor | None
) -> torch.Tensor:
    # Unchecked core of bfs_distances.
    num_nodes = source_mask.numel()
    device = source_mask.device
    row, col = edge_index[0], edge_index[1]
    if row.numel() > 1 and bool((row[1:] < row[:-1]).any()):
        order = torch.argsort(row, stable=True)
        row, col = row.index_select(0, order), col.index_select(0, order)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    # -2 marks blocked nodes: never reached, never expanded.
    dist = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    if blocked_mask is not None:
        dist[blocked_mask] = -2
        source_mask = source_mask & ~blocked_mask
    frontier = source_mask.nonzero().view(-1)
    dist.index_fill_(0, frontier, 0)
    level = 0
    while frontier.numel() > 0:
        start = rowptr.index_select(0, frontier)
        deg = rowptr.index_select(0, frontier + 1) - start
        total = int(deg.sum())
        if total == 0:
            break
        shift = torch.repeat_interleave(
            start - (torch.cumsum(deg, 0) - deg), deg, output_size=total
        )
        nbr = col.index_select(0, shift.add_(torch.arange(total, device=device)))
        nbr = nbr.masked_select(dist.index_select(0, nbr) == -1)
        if nbr.numel() == 0:
            break
        level += 1
        # Duplicates in `nbr` are harmless here; the scan below lists each once.
        dist.index_fill_(0, nbr, level)
        frontier = (dist == level).nonzero().view(-1)
    dist[dist == -2] = -1
    return dist


def drnl_node_labels(
    edge_index: Any,
    pair_index: Any,
    num_nodes: int,
    batch: Any | None = None,
) -> torch.Tensor:
    r"""DRNL labels of every node relative to its subgraph's target pair.

    For each target pair :math:`(i, j)` (a column of ``pair_index``), the
    distance :math:`d_i` to :math:`i` is taken in the graph with :math:`j`
    removed and :math:`d_j` with :math:`i` removed (SEAL; PyG's
    ``seal_link_pred.py``), then

    .. math::
        z = 1 + \min(d_i, d_j) + \lfloor d/2 \rfloor
            \left(\lfloor d/2 \rfloor + (d \bmod 2) - 1\right),
        \quad d = d_i + d_j,

    with :math:`z_i = z_j = 1` and :math:`z = 0` for nodes that cannot reach
    one of the two targets. MPRD (ICCV 2021, Sec. 3.2, step 1 of the node
    embedding) uses these labels as the position embedding.

    All pairs are labelled in one multi-source search, so the pairs must sit
    in disjoint subgraphs (a :class:`~torch_geometric.data.Batch` of enclosing
    subgraphs, as :func:`~reidgraph.graph.pair_subgraphs` returns); pass
    ``batch`` to have that checked. Because :math:`j` is removed while
    measuring :math:`d_i` (and vice versa), an edge between the targets does
    not change any label. Cost :math:`O(E \cdot L)` time, :math:`O(N + E)`
    memory, with :math:`L` the largest distance.

    Args:
        edge_index (torch.Tensor): Edges :math:`[2, E]`; treated as undirected
            (both directions are used).
        pair_index (torch.Tensor): Target nodes :math:`[2, P]`; row 0 holds
            :math:`i`, row 1 holds :math:`j`.
        num_nodes (int): Number of nodes :math:`N`.
        batch (torch.Tensor, optional): Graph id of every node :math:`[N]`;
            when given, edges must not cross graphs and every graph must hold
            exactly one pair. (default: :obj:`None`)

    Returns:
        torch.Tensor: Long labels :math:`[N]`.

    Example:
        >>> # path 0 - 2 - 1 plus node 3 hanging off node 2, pair (0, 1):
        >>> # node 2 has (d_i, d_j) = (1, 1) -> 2, node 3 has (2, 2) -> 5
        >>> edge_index = torch.tensor([[0, 2, 2], [2, 1, 3]])
        >>> drnl_node_labels(edge_index, torch.tensor([[0], [1]]), num_nodes=4)
        tensor([1, 1, 2, 5])
    """
    num_nodes = check_int(num_nodes, "num_nodes", min_value=1)
    edge_index = _check_edge_index(edge_index, num_nodes)
    pair_index = as_tensor(pair_index, "pair_index", device=edge_index.device)
    if pair_index.dim() != 2 or pair_index.size(0) != 2:
        raise ValueError(
            f"'pair_index' must have shape [2, P], got shape {tuple(pair_index.shape)}"
        )
    if pair_index.is_floating_point() or pair_index.dtype == torch.bool:
        raise TypeError(f"'pair_index' must hold integers, got dtype {pair_index.dtype}")
    pair_index = pair_index.long()
    if pair_index.numel() > 0 and (int(pair_index.min()) < 0 or int(pair_index.max()) >= num_nodes):
        raise ValueError(
            f"'pair_index' must hold node ids in [0, {num_nodes - 1}], got values in "
            f"[{int(pair_index.min())}, {int(pair_index.max())}]"
        )
    if bool((pair_index[0] == pair_index[1]).any()):
        bad = int((pair_index[0] == pair_index[1]).nonzero()[0, 0])
        raise ValueError(
            f"'pair_index' column {bad} pairs node {int(pair_index[0, bad])} with itself; "
            "the two targets must differ"
        )
    both = pair_index.reshape(-1)
    if torch.unique(both).numel() != both.numel():
        raise ValueError(
            "'pair_index' uses a node in more than one target slot; each pair "
            "must live in its own subgraph"
        )
    if batch is not None:
        _check_batch(batch, edge_index, pair_index, num_nodes)

    undirected = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return _drnl_symmetric(undirected, pair_index, num_nodes)


def _drnl_symmetric(
    edge_index: torch.Tensor, pair_index: torch.Tensor, num_nodes: int
) -> torch.Tensor:
    # Unchecked core of drnl_node_labels; edge_index must already hold both directions.
    src_mask = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    dst_mask = torch.zeros_like(src_mask)
    src_mask[pair_index[0]] = True
    dst_mask[pair_index[1]] = True
    dist_src = _bfs(edge_index, src_mask, dst_mask)
    dist_dst = _bfs(edge_index, dst_mask, src_mask)
    z = drnl_hash(dist_src, dist_dst)
    z[src_mask | dst_mask] = 1
    return z


def drnl_one_hot(z: Any, num_classes: int = 16) -> torch.Tensor:
    r"""One-hot DRNL labels, clipped to ``num_classes`` values (MPRD Sec. 3.2).

    .. math::
        \mathbf{e}_v = \operatorname{onehot}\big(\min(z_v, C - 1), C\big)

    MPRD's public code clips labels to :math:`[0, 15]` (:math:`C = 16`) and
    concatenates the one-hot code with the 2048-d CNN feature; all labels
    :math:`\ge C - 1` share the last class.

    Args:
        z (torch.Tensor): Non-negative integer labels :math:`[N]`.
        num_classes (int, optional): :math:`C`. (default: :obj:`16`)

    Returns:
        torch.Tensor: Float :math:`[N, C]`.

    Example:
        >>> drnl_one_hot(torch.tensor([0, 1, 20]), num_classes=3)
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    z = as_tensor(z, "z")
    if z.dim() != 1:
        raise ValueError(f"'z' must be one-dimensional [N], got shape {tuple(z.shape)}")
    if z.is_floating_point() or z.dtype == torch.bool:
        raise TypeError(f"'z' must hold integer DRNL labels, got dtype {z.dtype}")
    if z.numel() > 0 and int(z.min()) < 0:
        raise ValueError(f"'z' must be non-negative, got minimum {int(z.min())}")
    return F.one_hot(z.long().clamp(max=num_classes - 1), num_classes).float()


def _check_edge_index(edge_index: Any, num_nodes: int) -> torch.Tensor:
    edge_index = as_tensor(edge_index, "edge_index")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"'edge_index' must have shape [2, E], got shape {tuple(edge_index.shape)}"
        )
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'edge_index' must hold integers, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel() > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"'edge_index' must hold node ids in [0, {num_nodes - 1}], got values in "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index


def _check_mask(mask: Any, name: str, length: int | None = None) -> torch.Tensor:
    mask = as_tensor(mask, name)
    if mask.dtype != torch.bool or mask.dim() != 1:
        raise TypeError(
            f"'{name}' must be a one-dimensional bool tensor, got dtype {mask.dtype} and shape "
            f"{tuple(mask.shape)}"
        )
    if length is not None and mask.numel() != length:
        raise ValueError(
            f"'{name}' must have length {length} (the number of nodes), got {mask.numel()}"
        )
    return mask


def _check_batch(
    batch: Any, edge_index: torch.Tensor, pair_index: torch.Tensor, num_nodes: int
) -> None:
    batch = as_tensor(batch, "batch", device=edge_index.device).long()
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(
            f"'batch' must have shape [{num_nodes}] (one graph id per node), got shape "
            f"{tuple(batch.shape)}"
        )
    if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
        raise ValueError("'edge_index' has edges between different graphs of 'batch'")
    if bool((batch[pair_index[0]] != batch[pair_index[1]]).any()):
        raise ValueError("'pair_index' has a pair whose two nodes lie in different graphs")
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    per_graph = torch.bincount(batch[pair_index[0]], minlength=num_graphs)
    if bool((per_graph != 1).any()):
        raise ValueError(
            "every graph of 'batch' must hold exactly one target pair, got counts "
            f"{per_graph.tolist()[:10]}"
        )
