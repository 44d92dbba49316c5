r"""Enclosing subgraphs of many node pairs at once, with DRNL labels.

MPRD (ICCV 2021, Sec. 3.2) judges a pair of images :math:`(x_i, x_j)` from
its *pairwise neighbourhood structure* :math:`\mathbf{G}_{ij}` (Eq. 4); SEAL
(Zhang & Chen 2018) judges a link from its :math:`h`-hop enclosing subgraph.
:func:`pair_subgraphs` builds either kind for all requested pairs with tensor
operations only (no loop over pairs) and returns one PyG
:class:`~torch_geometric.data.Batch`, ready for :class:`~reidgraph.nn.PairGCN`.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import remove_self_loops, to_undirected

from reidgraph._validation import as_tensor, check_choice, check_int, check_vector
from reidgraph.graph.drnl import _drnl_symmetric, drnl_one_hot

__all__ = ["pair_subgraphs"]

logger = logging.getLogger(__name__)

_MODES = ("khop", "mprd")
# Neighbour entries gathered per vectorised chunk: bounds peak memory (about
# 50 MiB of index arrays) whatever the number of pairs; larger chunks were no
# faster on CPU (cache misses grow with the chunk).
_CHUNK_BUDGET = 1 << 20
# Entries of the dense (pair, node) -> local id table of one k-hop chunk
# (int64, 64 MiB): a chunk holds at most this many / num_nodes pairs.
_TABLE_BUDGET = 1 << 23
# Below this many pairs per table (graphs over ~130k nodes) a chunk switches to
# sorted keys and binary search, whose memory does not grow with the graph.
_MIN_TABLE_PAIRS = 64


def pair_subgraphs(
    data: Data,
    pairs: Any,
    num_hops: int = 1,
    *,
    mode: str = "khop",
    k: int | None = 8,
    labels: Any | None = None,
    concat_drnl: int | None = None,
    chunk_size: int | None = None,
) -> Batch:
    r"""Builds the enclosing subgraph of every pair, DRNL-labelled, as one batch.

    **mode="khop"** (SEAL, Zhang & Chen 2018; PyG's ``seal_link_pred.py``):
    the nodes within ``num_hops`` hops of :math:`i` or :math:`j` in the graph
    ``data.edge_index`` (taken as undirected, self-loops and duplicate edges
    dropped) and *all* edges among them (induced subgraph).

    **mode="mprd"** (MPRD Eq. 4): the nodes :math:`\{i, j\} \cup
    \mathrm{NN}_k(x_i) \cup \mathrm{NN}_k(x_j)` and only the star edges from
    each target to its own neighbours,

    .. math::
        \mathbf{A}_{ij}(b, a) = \mathbf{A}_{ij}(a, b) =
        \begin{cases} 1, & x_a \in \mathrm{NN}_k(x_b) \\
        0, & \text{otherwise} \end{cases}, \qquad b \in \{i, j\}.

    With ``k`` an int (default 8, MPRD's ``K``), :math:`\mathrm{NN}_k(x_b)`
    is the top-:math:`k` cosine neighbours of ``data.x[b]`` among all nodes,
    itself excluded, computed with :func:`reidgraph.ops.topk` (as MPRD does on
    its L2-normalised feature memory); ``data.edge_index`` is not needed.
    With ``k=None`` the neighbours are read from ``data.edge_index``: an edge
    :math:`a \to b` means :math:`x_a \in \mathrm{NN}(x_b)` (PyG's kNN
    convention, neighbour :math:`\to` centre); for an undirected graph these
    are simply all neighbours of :math:`b`.

    In both modes the target link :math:`(i, j)` is removed from the
    subgraph when present (as SEAL does, so the model cannot read the answer
    off the input), every node gets its DRNL label (see
    :func:`~reidgraph.graph.drnl_node_labels`: distance to :math:`i` with
    :math:`j` removed and vice versa,
    :math:`z = 1 + \min(d_i, d_j) + \lfloor d/2\rfloor(\lfloor d/2\rfloor +
    d \bmod 2 - 1)`, targets 1, unreachable 0), and the targets sit at the
    fixed local indices 0 (:math:`i`) and 1 (:math:`j`); the other nodes
    follow in increasing global id. (MPRD's public code renumbers through a
    sorted ``torch.unique`` and so takes the two smallest ids for the pair;
    this function cannot.) In mode ``"mprd"`` the star shape leaves only
    three labels: 1 for the targets, 2 for common neighbours, 0 for the rest.

    Cost: with :math:`P` pairs, mean degree :math:`\bar d` and subgraph size
    :math:`n`, time and memory :math:`O(P\, n\, \bar d)` (about
    :math:`n \approx 2\bar d^{\,h}`), processed in chunks of about
    :math:`10^6` gathered neighbour entries, plus a dense (pair, node) lookup
    table of at most :math:`2^{23}` entries (64 MiB) per chunk (graphs of
    more than :math:`2^{17}` nodes use binary search in sorted keys instead);
    node features add :math:`P\, n\, F` floats. ``mode="mprd"`` with an int
    ``k`` adds the top-:math:`k` search of the :math:`U \le 2P` distinct
    pair nodes against all :math:`N` (:math:`O(U N F)` time, bounded memory).

    Args:
        data (torch_geometric.data.Data): The graph: ``edge_index``
            :math:`[2, E]` (needed unless ``mode="mprd"`` with an int ``k``),
            optionally ``x`` :math:`[N, F]` (needed for ``mode="mprd"`` with
            an int ``k``).
        pairs (torch.Tensor): Target pairs :math:`[2, P]` of node ids, row 0
            holding :math:`i` and row 1 :math:`j`; :math:`i \ne j`.
        num_hops (int, optional): :math:`h` of the enclosing subgraph
            (``mode="khop"``; must be 1 for ``"mprd"``). (default: :obj:`1`)
        mode (str, optional): ``"khop"`` or ``"mprd"``. (default:
            :obj:`"khop"`)
        k (int, optional): Neighbours per target for ``mode="mprd"``;
            :obj:`None` reads them from ``data.edge_index``. Unused for
            ``"khop"``. (default: :obj:`8`)
        labels (torch.Tensor, optional): One label per pair :math:`[P]`,
            stored as ``y``. (default: :obj:`None`)
        concat_drnl (int, optional): If set to :math:`C`, ``x`` becomes
            :math:`[\operatorname{onehot}(\min(z, C-1), C) \,\|\, x]`, MPRD's
            node embedding :math:`\mathbf{V}_{ij}` (MPRD's code: :math:`C =
            16`); without ``data.x`` just the one-hot code. (default:
            :obj:`None`, ``x`` is ``data.x`` gathered)
        chunk_size (int, optional): Pairs per vectorised chunk; :obj:`None`
            sizes chunks automatically. (default: :obj:`None`)

    Returns:
        torch_geometric.data.Batch: One graph per pair, in the order of
        ``pairs``, with ``edge_index`` (local ids, both directions, grouped
        by source node),
        ``z`` :math:`[n]` DRNL labels, ``n_id`` :math:`[n]` global node ids,
        ``pair_index`` :math:`[2, 1]` per graph (always ``[[0], [1]]``
        locally; global positions once batched), ``x`` (when ``data.x`` or
        ``concat_drnl``), ``y`` (when ``labels``), ``batch`` and ``ptr``.
        Supports ``to_data_list()`` and indexing like any collated batch.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> out = pair_subgraphs(Data(edge_index=edge_index, num_nodes=4),
        ...                      torch.tensor([[2], [0]]))
        >>> out.n_id, out.z
        (tensor([2, 0, 1, 3]), tensor([1, 1, 2, 0]))
    """
    if not isinstance(data, Data):
        raise TypeError(f"'data' must be a torch_geometric.data.Data, got {type(data).__name__}")
    mode = check_choice(mode, "mode", _MODES)
    num_hops = check_int(num_hops, "num_hops", min_value=1)
    if mode == "mprd" and num_hops != 1:
        raise ValueError(
            f"'num_hops' must be 1 for mode='mprd' (Eq. 4 links each target to its own "
            f"neighbours only), got {num_hops}"
        )
    use_features = mode == "mprd" and k is not None
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None and not use_features:
        raise ValueError(
            f"pair_subgraphs(mode={mode!r}"
            + (", k=None" if mode == "mprd" else "")
            + ") needs 'data.edge_index', which is missing"
        )
    x = getattr(data, "x", None)
    num_nodes = data.num_nodes
    if num_nodes is None or num_nodes < 2:
        raise ValueError(f"'data' must have at least 2 nodes, got {num_nodes}")
    device = edge_index.device if edge_index is not None else x.device
    pairs = _check_pairs(pairs, num_nodes, device)
    num_pairs = pairs.size(1)
    if labels is not None:
        labels = check_vector(labels, "labels", length=num_pairs, length_of="pairs", device=device)
        if labels.dtype == torch.bool:
            labels = labels.float()
    if concat_drnl is not None:
        concat_drnl = check_int(concat_drnl, "concat_drnl", min_value=1)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    if edge_index is not None:
        edge_index = _check_graph(edge_index, num_nodes, device)

    src, dst = pairs[0], pairs[1]
    if mode == "khop":
        rowptr, col = _csr(_simple_undirected(edge_index, num_nodes), num_nodes)
        deg = rowptr[1:] - rowptr[:-1]
        mean_deg = float(deg.float().mean())
        cost = (deg[src] + deg[dst] + 2).double() * (mean_deg + 1.0) ** num_hops
        max_pairs = _TABLE_BUDGET // num_nodes
        if max_pairs >= _MIN_TABLE_PAIRS:
            # Each pair costs at least budget / max_pairs: no chunk outgrows the table.
            cost = cost.clamp(min=_CHUNK_BUDGET / max_pairs)
            if chunk_size is not None:
                chunk_size = min(chunk_size, max_pairs)
            slices = _chunks(cost, chunk_size)
            table_pairs = max(sl.stop - sl.start for sl in slices)
            table = torch.full((table_pairs * num_nodes,), -1, dtype=torch.long, device=device)
            parts = [
                _khop_chunk(rowptr, col, src[sl], dst[sl], num_hops, num_nodes, table)
                for sl in slices
            ]
        else:  # graphs too large for the dense table: binary search instead
            parts = [
                _khop_chunk_sorted(rowptr, col, src[sl], dst[sl], num_hops, num_nodes)
                for sl in _chunks(cost, chunk_size)
            ]
    else:
        if use_features:
            if x is None:
                raise ValueError(
                    f"pair_subgraphs(mode='mprd', k={k}) computes NN_k from 'data.x', which "
                    "is missing; pass k=None to read the neighbours from 'data.edge_index'"
                )
            k = check_int(
                k,
                "k",
                min_value=1,
                max_value=num_nodes - 1,
                max_reason="k neighbours besides the node itself",
            )
            table, rows = _feature_neighbours(x, pairs, k)
            lookup = ("table", table, rows)
        else:
            # In-neighbour CSR: row b lists every a with an edge a -> b.
            ei = remove_self_loops(edge_index)[0].flip(0)
            lookup = ("csr", *_csr(ei, num_nodes, coalesce=True))
        # Star subgraphs are tiny: 2k + 2 nodes at most; 64 entries per pair is ample.
        cost = torch.full((num_pairs,), 64.0, dtype=torch.double, device=device)
        parts = [
            _mprd_chunk(lookup, src[s], dst[s], num_nodes, s) for s in _chunks(cost, chunk_size)
        ]
    logger.debug("pair_subgraphs: %d pairs in %d chunk(s), mode=%s", num_pairs, len(parts), mode)
    return _to_batch(parts, x, labels, concat_drnl)


class _Part(NamedTuple):
    n_id: torch.Tensor  # [T] global ids in batched order
    z: torch.Tensor  # [T]
    edge_index: torch.Tensor  # [2, E] chunk-local batched ids
    sizes: torch.Tensor  # [P_c] nodes per subgraph
    edge_counts: torch.Tensor  # [P_c] edges per subgraph


class _Layout(NamedTuple):
    p: torch.Tensor  # owning pair of each sorted key
    v: torch.Tensor  # global node id of each sorted key
    local: torch.Tensor  # local id inside its subgraph
    batched: torch.Tensor  # id in the chunk's disjoint union
    sizes: torch.Tensor
    start: torch.Tensor


def _check_pairs(pairs: Any, num_nodes: int, device: torch.device) -> torch.Tensor:
    pairs = as_tensor(pairs, "pairs", device=device)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(
            f"'pairs' must have shape [2, P] (row 0 = i, row 1 = j), got shape {tuple(pairs.shape)}"
        )
    if pairs.is_floating_point() or pairs.dtype == torch.bool or pairs.is_complex():
        raise TypeError(f"'pairs' must hold integer node ids, got dtype {pairs.dtype}")
    if pairs.size(1) == 0:
        raise ValueError("'pairs' must hold at least one pair, got shape (2, 0)")
    pairs = pairs.long()
    lo, hi = int(pairs.min()), int(pairs.max())
    if lo < 0 or hi >= num_nodes:
        raise ValueError(
            f"'pairs' must hold node ids in [0, {num_nodes - 1}] (the graph has {num_nodes} "
            f"nodes), got values in [{lo}, {hi}]"
        )
    same = pairs[0] == pairs[1]
    if bool(same.any()):
        col = int(same.nonzero()[0, 0])
        raise ValueError(
            f"'pairs' column {col} pairs node {int(pairs[0, col])} with itself; i and j must differ"
        )
    return pairs


def _check_graph(edge_index: Any, num_nodes: int, device: torch.device) -> torch.Tensor:
    edge_index = as_tensor(edge_index, "data.edge_index", device=device)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"'data.edge_index' must have shape [2, E], got shape {tuple(edge_index.shape)}"
        )
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'data.edge_index' must hold integers, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"'data.edge_index' must hold node ids in [0, {num_nodes - 1}], got values in "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index


def _simple_undirected(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    edge_index = remove_self_loops(edge_index)[0]
    return to_undirected(edge_index, num_nodes=num_nodes)


def _csr(
    edge_index: torch.Tensor, num_nodes: int, coalesce: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    row, col = edge_index[0], edge_index[1]
    if coalesce:
        key = torch.unique(row * num_nodes + col)
        row = torch.div(key, num_nodes, rounding_mode="floor")
        col = key - row * num_nodes
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    return rowptr, col


def _gather(
    rowptr: torch.Tensor, col: torch.Tensor, nodes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # Every (owner position, neighbour) pair of the CSR rows `nodes`, flattened.
    # (index_select / index_fill_ / masked_select below: about twice as fast
    # as advanced indexing on CPU.)
    start = rowptr.index_select(0, nodes)
    deg = rowptr.index_select(0, nodes + 1) - start
    total = int(deg.sum())
    owner = torch.repeat_interleave(
        torch.arange(nodes.numel(), device=nodes.device), deg, output_size=total
    )
    shift = torch.repeat_interleave(start - (torch.cumsum(deg, 0) - deg), deg, output_size=total)
    return owner, col.index_select(0, shift.add_(torch.arange(total, device=nodes.device)))


def _chunks(cost: torch.Tensor, chunk_size: int | None) -> list[slice]:
    n = cost.numel()
    if chunk_size is not None:
        return [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    group = torch.div(torch.cumsum(cost, 0), _CHUNK_BUDGET, rounding_mode="floor").long()
    bounds = torch.cumsum(torch.bincount(group), 0).tolist()
    out, prev = [], 0
    for b in bounds:
        if b > prev:
            out.append(slice(prev, b))
            prev = b
    return out


def _layout(keys: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, n: int) -> _Layout:
    # keys = pair * n + node, sorted and unique: each pair's nodes are one
    # contiguous run in increasing node id. Targets move to local 0 and 1, the
    # rest keep their order after them.
    p = torch.div(keys, n, rounding_mode="floor")
    v = keys - p * n
    sizes = torch.bincount(p, minlength=src.numel())
    start = torch.cumsum(sizes, 0) - sizes
    first = start.index_select(0, p)
    rank = torch.arange(keys.numel(), device=keys.device) - first
    sp, dp = src.index_select(0, p), dst.index_select(0, p)
    rest = 2 + rank - (sp < v).long() - (dp < v).long()
    local = torch.where(v == sp, 0, torch.where(v == dp, 1, rest))
    return _Layout(p, v, local, first + local, sizes, start)


def _finish(
    layout: _Layout,
    a: torch.Tensor,
    b: torch.Tensor,
    local_a: torch.Tensor,
    local_b: torch.Tensor,
    dedupe: bool = False,
    n_id: torch.Tensor | None = None,
) -> _Part:
    # a, b: batched ids of the edge endpoints, both directions present; without
    # `dedupe` they must be unique and grouped by source already.
    keep = (local_a >= 2) | (local_b >= 2)  # drop the target link i-j
    total = layout.v.numel()
    a, b = a.masked_select(keep), b.masked_select(keep)
    if dedupe:
        key = torch.unique(a * total + b)
        a = torch.div(key, total, rounding_mode="floor")
        b = key - a * total
    edge_index = torch.stack([a, b])
    if n_id is None:
        n_id = torch.empty_like(layout.v).index_copy_(0, layout.batched, layout.v)
    num_pairs = layout.sizes.numel()
    pair_index = torch.stack([layout.start, layout.start + 1])
    z = _drnl_symmetric(edge_index, pair_index, total)
    ptr = torch.zeros(num_pairs + 1, dtype=torch.long, device=a.device)
    ptr[1:] = torch.cumsum(layout.sizes, 0)
    edge_counts = torch.diff(torch.searchsorted(edge_index[0], ptr))
    return _Part(n_id, z, edge_index, layout.sizes, edge_counts)


def _khop_chunk(
    rowptr: torch.Tensor,
    col: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    num_hops: int,
    n: int,
    table: torch.Tensor,
) -> _Part:
    # `table` is a flat dense map (pair, node) -> state over pair * n + node,
    # all -1 on entry and on exit: -2 marks "in the subgraph" during the
    # search, then it holds batched ids. O(1) membership, no search or sort
    # besides the single sort of the found keys.
    device = src.device
    pid = torch.arange(src.numel(), device=device)
    frontier = torch.cat([pid * n + src, pid * n + dst])
    table.index_fill_(0, frontier, -2)
    found = [frontier]
    # Multi-source BFS in (pair, node) key space: one frontier for all pairs.
    for _ in range(num_hops):
        base = torch.div(frontier, n, rounding_mode="floor") * n
        owner, nbr = _gather(rowptr, col, frontier - base)
        cand = nbr.add_(base.index_select(0, owner))
        cand = cand.masked_select(table.index_select(0, cand) == -1)
        # Deduplicate without sorting: of equal keys exactly one write survives.
        slot = torch.arange(cand.numel(), device=device)
        table.index_copy_(0, cand, slot)
        frontier = cand.masked_select(table.index_select(0, cand) == slot)
        if frontier.numel() == 0:
            break
        table.index_fill_(0, frontier, -2)
        found.append(frontier)
    keys = torch.cat(found).sort().values
    layout = _layout(keys, src, dst, n)
    table.index_copy_(0, keys, layout.batched)
    # Induced edges: every CSR neighbour of a subgraph node that the table
    # places in the same subgraph. Sources are walked in batched order, so the
    # edge list comes out grouped by source (what the DRNL search needs).
    n_id = torch.empty_like(layout.v).index_copy_(0, layout.batched, layout.v)
    graph_base = torch.repeat_interleave(pid * n, layout.sizes, output_size=keys.numel())
    a, nbr = _gather(rowptr, col, n_id)
    b = table.index_select(0, nbr.add_(graph_base.index_select(0, a)))
    table.index_fill_(0, keys, -1)
    hit = b >= 0
    a, b = a.masked_select(hit), b.masked_select(hit)
    first = torch.repeat_interleave(layout.start, layout.sizes, output_size=keys.numel())
    first = first.index_select(0, a)
    return _finish(layout, a, b, a - first, b - first, n_id=n_id)


def _khop_chunk_sorted(
    rowptr: torch.Tensor,
    col: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    num_hops: int,
    n: int,
) -> _Part:
    # Same result as _khop_chunk with O(subgraph) memory: membership by binary
    # search in the sorted (pair, node) keys instead of the dense table.
    pid = torch.arange(src.numel(), device=src.device)
    visited = torch.cat([pid * n + src, pid * n + dst]).sort().values
    frontier = visited
    for _ in range(num_hops):
        base = torch.div(frontier, n, rounding_mode="floor") * n
        owner, nbr = _gather(rowptr, col, frontier - base)
        cand = torch.unique(nbr.add_(base.index_select(0, owner)))
        pos = torch.searchsorted(visited, cand).clamp_(max=visited.numel() - 1)
        frontier = cand.masked_select(visited.index_select(0, pos) != cand)
        if frontier.numel() == 0:
            break
        visited = torch.cat([visited, frontier]).sort().values
    layout = _layout(visited, src, dst, n)
    n_id = torch.empty_like(layout.v).index_copy_(0, layout.batched, layout.v)
    graph_base = torch.repeat_interleave(pid * n, layout.sizes, output_size=visited.numel())
    a, nbr = _gather(rowptr, col, n_id)
    query = nbr.add_(graph_base.index_select(0, a))
    pos = torch.searchsorted(visited, query).clamp_(max=visited.numel() - 1)
    hit = visited.index_select(0, pos) == query
    a = a.masked_select(hit)
    b = layout.batched.index_select(0, pos.masked_select(hit))
    first = torch.repeat_interleave(layout.start, layout.sizes, output_size=visited.numel())
    first = first.index_select(0, a)
    return _finish(layout, a, b, a - first, b - first, n_id=n_id)


def _feature_neighbours(x: Any, pairs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    from reidgraph.ops import topk

    x = as_tensor(x, "data.x", device=pairs.device)
    if x.dim() != 2:
        raise ValueError(f"'data.x' must be two-dimensional [N, F], got shape {tuple(x.shape)}")
    nodes, rows = torch.unique(pairs.reshape(-1), return_inverse=True)
    _, idx = topk(x[nodes], k + 1, database=x, metric="cosine")
    idx = idx.to(pairs.device)
    # Drop the node itself (normally rank 0); if a tie pushed it out of the
    # k + 1 results, drop the last instead.
    keep = idx != nodes[:, None]
    keep &= torch.cumsum(keep.long(), 1) <= k
    return idx[keep].view(-1, k), rows.view(2, -1)


def _mprd_chunk(lookup: tuple, src: torch.Tensor, dst: torch.Tensor, n: int, sl: slice) -> _Part:
    num_pairs = src.numel()
    pid = torch.arange(num_pairs, device=src.device)
    if lookup[0] == "table":
        table, rows = lookup[1], lookup[2][:, sl]
        k = table.size(1)
        owner_i = owner_j = pid.repeat_interleave(k)
        nbr_i, nbr_j = table[rows[0]].reshape(-1), table[rows[1]].reshape(-1)
    else:
        rowptr, col = lookup[1], lookup[2]
        owner_i, nbr_i = _gather(rowptr, col, src)
        owner_j, nbr_j = _gather(rowptr, col, dst)
    keys = torch.unique(
        torch.cat([pid * n + src, pid * n + dst, owner_i * n + nbr_i, owner_j * n + nbr_j])
    )
    layout = _layout(keys, src, dst, n)
    ep = torch.cat([owner_i, owner_j])
    centre = torch.searchsorted(keys, ep * n + torch.cat([src[owner_i], dst[owner_j]]))
    leaf = torch.searchsorted(keys, ep * n + torch.cat([nbr_i, nbr_j]))
    a, b = torch.cat([centre, leaf]), torch.cat([leaf, centre])
    return _finish(
        layout, layout.batched[a], layout.batched[b], layout.local[a], layout.local[b], dedupe=True
    )


def _to_batch(
    parts: list[_Part], x: Any, labels: torch.Tensor | None, concat_drnl: int | None
) -> Batch:
    offsets, total = [], 0
    for part in parts:
        offsets.append(total)
        total += part.n_id.numel()
    n_id = torch.cat([p.n_id for p in parts])
    z = torch.cat([p.z for p in parts])
    edge_index = torch.cat([p.edge_index + off for p, off in zip(parts, offsets, strict=True)], 1)
    sizes = torch.cat([p.sizes for p in parts])
    edge_counts = torch.cat([p.edge_counts for p in parts])
    num_graphs = sizes.numel()
    device = n_id.device
    ptr = torch.zeros(num_graphs + 1, dtype=torch.long, device=device)
    ptr[1:] = torch.cumsum(sizes, 0)
    eptr = torch.zeros_like(ptr)
    eptr[1:] = torch.cumsum(edge_counts, 0)
    graph_ptr = torch.arange(num_graphs + 1, device=device)
    zeros = torch.zeros(num_graphs, dtype=torch.long, device=device)

    attrs: dict[str, torch.Tensor] = {}
    slices: dict[str, torch.Tensor] = {}
    incs: dict[str, torch.Tensor] = {}
    feats = []
    if x is not None:
        x = as_tensor(x, "data.x", device=device)
    if concat_drnl is not None:
        dtype = x.dtype if x is not None and x.is_floating_point() else torch.float
        feats.append(drnl_one_hot(z, concat_drnl).to(dtype))
    if x is not None:
        feats.append(x[n_id])
    if feats:
        attrs["x"] = feats[0] if len(feats) == 1 else torch.cat(feats, dim=1)
        slices["x"], incs["x"] = ptr, zeros
    attrs["edge_index"] = edge_index
    slices["edge_index"], incs["edge_index"] = eptr, ptr[:-1]
    if labels is not None:
        attrs["y"] = labels
        slices["y"], incs["y"] = graph_ptr, zeros
    attrs["z"], attrs["n_id"] = z, n_id
    slices["z"] = slices["n_id"] = ptr
    incs["z"] = incs["n_id"] = zeros
    attrs["pair_index"] = torch.stack([ptr[:-1], ptr[:-1] + 1])
    slices["pair_index"], incs["pair_index"] = graph_ptr, ptr[:-1]
    attrs["batch"] = torch.repeat_interleave(
        torch.arange(num_graphs, device=device), sizes, output_size=total
    )
    attrs["ptr"] = ptr
    out = Batch(**attrs)
    out._num_graphs = num_graphs
    out._slice_dict = slices
    out._inc_dict = incs
    # Lets batch[p].num_nodes count trailing isolated nodes, as from_data_list does.
    out._store._num_nodes = sizes.tolist()
    return out
