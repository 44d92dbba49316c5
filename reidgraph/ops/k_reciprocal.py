r"""k-reciprocal encodings and the sparse Jaccard distance (Zhong et al., CVPR 2017).

The building blocks of k-reciprocal re-ranking, shared by the re-ranker
(:func:`reidgraph.rerank.k_reciprocal`) and by the clustering pseudo-labelers
(DBSCAN on the Jaccard distance, as in cluster-contrast, GUR and MPRD):

1. ranked lists :math:`\mathcal{N}(p, k)` (Sec. 3, Eq. 1): the ``rank``
   argument, ``[N, K]`` indices in ascending distance, **self first**;
2. k-reciprocal sets :math:`\mathcal{R}(p, k)` (Eq. 2):
   :func:`k_reciprocal_neighbors`;
3. their expansion :math:`\mathcal{R}^*(p, k)` with the
   :math:`\tfrac{1}{2}k` rule (Eq. 3): :func:`k_reciprocal_expansion`;
4. Gaussian-weighted encodings :math:`\mathcal{V}_p` (Eq. 6, normalised to
   sum 1 as the authors' code does): :func:`gaussian_encoding`;
5. local query expansion with :math:`k_2` (Eq. 9):
   :func:`local_query_expansion`;
6. the Jaccard distance (Eq. 7-8) of the encodings, sparse, on one set of
   features: :func:`jaccard_distance`.

Equation numbers follow the CVPR 2017 paper (arXiv:1701.08398): Eq. 1
:math:`\mathcal{N}(p,k)`, Eq. 2 :math:`\mathcal{R}(p,k)`, Eq. 3
:math:`\mathcal{R}^*(p,k)`, Eq. 4-5 the set and binary-vector forms of the
Jaccard distance, Eq. 6 the Gaussian weights, Eq. 7-8 the min/max form, Eq. 9
local query expansion, Eq. 10 the final distance.

Encodings are torch sparse CSR tensors (``[N, N]``, one row per item), so
memory is :math:`O(N \cdot |\mathcal{R}^*|)` instead of the
:math:`N \times N` float arrays of the reference code, and every step is a
handful of vectorised tensor operations (CPU or CUDA) over chunks of rows.

Two **conventions** of the widely used code are supported (``convention=``):

* ``"re_ranking"`` — the reference ``re_ranking(q_g_dist, q_q_dist, g_g_dist,
  k1, k2, lambda_value)`` (person-re-ranking; torchreid, QAConv, IICS copies):
  forward lists of :math:`k_1 + 1` entries (self and :math:`k_1` others),
  distances are **squared** and divided by each row's maximum before the
  Gaussian weights :math:`e^{-d}`.
* ``"cluster_contrast"`` — ``compute_jaccard_distance`` of cluster-contrast
  (also GUR and MPRD, with ``k1=30, k2=6``): the faiss search returns
  :math:`k_1` entries (self included), so :math:`\mathcal{R}(p, k_1)` is
  checked on lists of :math:`k_1` entries; the weights are
  :math:`\mathrm{softmax}(-\lVert x_p - x_g \rVert^2)` without normalisation.

Both use lists of :math:`\mathrm{round}(k_1/2) + 1` entries for the
:math:`\tfrac{1}{2}k_1` sets (``numpy.around``: halves to even) and accept a
candidate's set when :math:`|\mathcal{R}(q, \tfrac12 k_1) \cap
\mathcal{R}(p, k_1)| > \tfrac23 |\mathcal{R}(q, \tfrac12 k_1)|` (strictly, as
the code; the paper writes :math:`\ge`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from reidgraph._validation import as_tensor, check_choice, check_int
from reidgraph.ops.pairwise import (
    DEFAULT_BLOCK_BYTES,
    _check_inputs,
    _prepare_metric,
    _score_block,
)
from reidgraph.ops.topk import PRECISIONS, _matmul_precision

__all__ = [
    "CONVENTIONS",
    "list_lengths",
    "k_reciprocal_neighbors",
    "k_reciprocal_expansion",
    "gaussian_encoding",
    "local_query_expansion",
    "jaccard_distance",
]

logger = logging.getLogger(__name__)

#: Conventions of the reference code accepted by the functions here.
CONVENTIONS: tuple[str, ...] = ("re_ranking", "cluster_contrast")

# The reference tests `len(intersection) > 2. / 3 * len(candidate_set)` in
# float64; computing the same product keeps boundary cases identical.
_TWO_THIRDS = 2.0 / 3.0
# Budgets for the sparse steps (entries of the expanded pair lists per chunk,
# rows per chunk of the small [rows, K, K] comparisons).
_PAIR_BUDGET = 1 << 22
_ROW_CHUNK = 4096
# On CUDA, fewer and larger chunks: launches and host syncs dominate there.
_CUDA_SCALE = 8
# Tile side of the symmetric all-vs-all search on CPU: 2,048^2 float32 tiles
# keep GEMMs efficient while the redundant diagonal tiles stay a small share.
_CPU_TILE = 2048


# ----------------------------------------------------------------------------- sets (Eq. 1-3)
def list_lengths(k1: int, convention: str = "re_ranking") -> tuple[int, int]:
    r"""Lengths of the ranked lists behind :math:`\mathcal{R}(p, k_1)` and
    :math:`\mathcal{R}(p, \tfrac12 k_1)`, self included.

    ``"re_ranking"``: :math:`(k_1 + 1, \mathrm{round}(k_1/2) + 1)`;
    ``"cluster_contrast"``: :math:`(k_1, \mathrm{round}(k_1/2) + 1)` (its
    search returns :math:`k_1` entries). Rounding is half-to-even, as
    ``numpy.around`` in the reference code.

    Args:
        k1 (int): :math:`k_1 \ge 1`.
        convention (str, optional): ``"re_ranking"`` or ``"cluster_contrast"``.
            (default: :obj:`"re_ranking"`)

    Returns:
        (int, int): ``(n_forward, n_half)``.

    Example:
        >>> list_lengths(20), list_lengths(30, "cluster_contrast"), list_lengths(5)
        ((21, 11), (30, 16), (6, 3))
    """
    k1 = check_int(k1, "k1", min_value=1)
    convention = check_choice(convention, "convention", CONVENTIONS)
    half = round(k1 / 2) + 1  # Python's round is half-to-even, like numpy.around
    return (k1 + 1 if convention == "re_ranking" else k1), half


def _budget(value: int, device: torch.device) -> int:
    return value * _CUDA_SCALE if device.type == "cuda" else value


def _check_rank(rank: Any, min_cols: int, name: str = "rank") -> Tensor:
    r"""``rank`` as an int64 ``[N, K]`` tensor of indices into its own rows."""
    rank = as_tensor(rank, name)
    if rank.dim() != 2:
        raise ValueError(f"'{name}' must be two-dimensional [N, K], got shape {tuple(rank.shape)}")
    if rank.is_floating_point() or rank.is_complex() or rank.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold integer indices, got dtype {rank.dtype}")
    n = rank.size(0)
    if rank.size(1) < min_cols:
        raise ValueError(
            f"'{name}' must have at least {min_cols} columns (ranked neighbours, self "
            f"included), got shape {tuple(rank.shape)}"
        )
    rank = rank.long()
    if rank.numel() > 0:
        lo, hi = int(rank.min()), int(rank.max())
        if lo < 0 or hi >= n:
            raise ValueError(
                f"'{name}' must hold indices in [0, {n}) (its own rows), found values in "
                f"[{lo}, {hi}]; empty IVF slots (-1) are not allowed"
            )
    return rank


def _reciprocal(rank: Tensor, n: int) -> Tensor:
    r"""``mask[i, p]``: is ``i`` among the first ``n`` entries of ``rank[rank[i, p]]``?"""
    fwd = rank[:, :n].contiguous()
    out = torch.empty(fwd.shape, dtype=torch.bool, device=rank.device)
    step = _budget(_ROW_CHUNK, rank.device)
    for r0 in range(0, fwd.size(0), step):
        rs = slice(r0, min(r0 + step, fwd.size(0)))
        back = fwd[fwd[rs]]  # [r, n, n]: the lists of each forward neighbour
        me = torch.arange(rs.start, rs.stop, device=rank.device).view(-1, 1, 1)
        out[rs] = (back == me).any(dim=2)
    return out


def k_reciprocal_neighbors(rank: Any, k1: int, *, convention: str = "re_ranking") -> Tensor:
    r"""Membership mask of the k-reciprocal sets :math:`\mathcal{R}(p, k_1)` (Eq. 2).

    .. math::
        \mathcal{R}(p, k) = \{ g_i \mid g_i \in \mathcal{N}(p, k)
            \wedge p \in \mathcal{N}(g_i, k) \}

    with :math:`\mathcal{N}(p, k)` the first ``n_forward`` entries of
    ``rank[p]`` (:func:`list_lengths`; self included, as in the code).

    Cost: :math:`O(N n^2)` time, :math:`O(4096\, n^2)` scratch.

    Args:
        rank (torch.Tensor): Ranked lists ``[N, K]`` (int, indices into the
            same ``N`` items, nearest first, self first), ``K >= n_forward``.
        k1 (int): :math:`k_1`.
        convention (str, optional): ``"re_ranking"`` or ``"cluster_contrast"``.
            (default: :obj:`"re_ranking"`)

    Returns:
        torch.Tensor: ``[N, n_forward]`` bool, ``True`` where ``rank[p, j]``
        is in :math:`\mathcal{R}(p, k_1)`.

    Example:
        >>> rank = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
        >>> k_reciprocal_neighbors(rank, 1)  # lists of 2: 0<->1 mutual, 2->1 not
        tensor([[ True,  True],
                [ True,  True],
                [ True, False]])
    """
    n_fwd, _ = list_lengths(k1, convention)
    rank = _check_rank(rank, n_fwd)
    return _reciprocal(rank, n_fwd)


def k_reciprocal_expansion(rank: Any, k1: int, *, convention: str = "re_ranking") -> Tensor:
    r"""The expanded k-reciprocal sets :math:`\mathcal{R}^*(p, k_1)` (Eq. 3).

    .. math::
        \mathcal{R}^*(p, k) \leftarrow \mathcal{R}(p, k) \cup
            \mathcal{R}(q, \tfrac{1}{2}k)
        \quad \text{s.t.} \quad
        \bigl|\mathcal{R}(p, k) \cap \mathcal{R}(q, \tfrac{1}{2}k)\bigr|
            > \tfrac{2}{3} \bigl|\mathcal{R}(q, \tfrac{1}{2}k)\bigr|,
        \quad \forall q \in \mathcal{R}(p, k)

    (strict :math:`>` and :math:`\tfrac12 k = \mathrm{round}(k_1/2)`, as in
    the reference code). All rows at once: membership by batched
    ``searchsorted``, union by one sort per chunk of rows.

    Cost: :math:`O(N n_f n_h \log n_f)` time; result :math:`O(N |\mathcal{R}^*|)`.

    Args:
        rank (torch.Tensor): Ranked lists ``[N, K]``, self first (see
            :func:`k_reciprocal_neighbors`).
        k1 (int): :math:`k_1`.
        convention (str, optional): ``"re_ranking"`` or ``"cluster_contrast"``.
            (default: :obj:`"re_ranking"`)

    Returns:
        torch.Tensor: Sparse CSR ``[N, N]`` float32 with value 1 at every
        member of :math:`\mathcal{R}^*(p, k_1)`, columns ascending per row.

    Example:
        >>> rank = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
        >>> k_reciprocal_expansion(rank, 1).to_dense()
        tensor([[1., 1., 0.],
                [1., 1., 0.],
                [0., 0., 1.]])
    """
    n_fwd, n_half = list_lengths(k1, convention)
    rank = _check_rank(rank, n_fwd)
    crow, col = _expand(rank, n_fwd, n_half)
    n = rank.size(0)
    ones = torch.ones(col.numel(), dtype=torch.float32, device=rank.device)
    return torch.sparse_csr_tensor(crow, col, ones, (n, n), check_invariants=False)


def _expand(rank: Tensor, n_fwd: int, n_half: int) -> tuple[Tensor, Tensor]:
    r"""CSR pattern ``(crow, col)`` of :math:`\mathcal{R}^*` (validated input)."""
    n, device = rank.size(0), rank.device
    fwd = rank[:, :n_fwd].contiguous()
    recip = _reciprocal(rank, n_fwd)
    half_recip = _reciprocal(rank, n_half)
    half = torch.where(half_recip, rank[:, :n_half], -1)  # R(q, k/2); -1 = not a member
    half_size = half_recip.sum(dim=1).double()
    counts, cols = [], []
    step = _budget(_ROW_CHUNK, device)
    for r0 in range(0, n, step):
        rs = slice(r0, min(r0 + step, n))
        r = rs.stop - rs.start
        mine = torch.where(recip[rs], fwd[rs], n)  # R(p, k); n = not a member
        mine_sorted = mine.sort(dim=1).values
        cand = half[fwd[rs]].view(r, -1)  # [r, n_fwd * n_half], each candidate's R(q, k/2)
        pos = torch.searchsorted(mine_sorted, cand).clamp_(max=n_fwd - 1)
        hit = mine_sorted.gather(1, pos) == cand  # -1 (no member) never hits
        inter = hit.view(r, n_fwd, n_half).sum(dim=2).double()
        accept = recip[rs] & (inter > _TWO_THIRDS * half_size[fwd[rs]])
        added = torch.where(accept.unsqueeze(2), cand.view(r, n_fwd, n_half), -1).view(r, -1)
        union = torch.cat([mine, torch.where(added < 0, n, added)], dim=1)
        union = union.sort(dim=1).values
        keep = union < n
        keep[:, 1:] &= union[:, 1:] != union[:, :-1]
        counts.append(keep.sum(dim=1))
        cols.append(union[keep])
    crow = torch.zeros(n + 1, dtype=torch.long, device=device)
    if n:
        torch.cumsum(torch.cat(counts), dim=0, out=crow[1:])
    col = torch.cat(cols) if cols else torch.empty(0, dtype=torch.long, device=device)
    return crow, col


# ------------------------------------------------------------------------ encodings (Eq. 6, 9)
def _row_of_entry(crow: Tensor) -> Tensor:
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=crow.device), counts)


def _softmax_rows(crow: Tensor, dist: Tensor) -> Tensor:
    r"""Per-row :math:`e^{-d} / \sum e^{-d}` over the stored entries (shifted by the row min)."""
    n = crow.numel() - 1
    if dist.numel() == 0:
        return dist.clone()
    row = _row_of_entry(crow)
    low = torch.full((n,), float("inf"), dtype=dist.dtype, device=dist.device)
    low = low.scatter_reduce(0, row, dist, reduce="amin")
    w = torch.exp(low.index_select(0, row) - dist)
    total = torch.zeros(n, dtype=dist.dtype, device=dist.device).index_add_(0, row, w)
    return w / total.index_select(0, row)


def gaussian_encoding(distance: Tensor) -> Tensor:
    r"""Gaussian-weighted k-reciprocal feature :math:`\mathcal{V}_p` (Eq. 6), normalised.

    .. math::
        \mathcal{V}_{p, g_i} = \frac{e^{-d(p, g_i)}}
            {\sum_{g_j \in \mathcal{R}^*(p, k)} e^{-d(p, g_j)}}
        \quad \text{if } g_i \in \mathcal{R}^*(p, k), \quad 0 \text{ otherwise}

    The paper's Eq. 6 stops at :math:`e^{-d}`; both reference codes divide by
    the row sum, so that :math:`\lVert \mathcal{V}_p \rVert_1 = 1` and the
    union of Eq. 7 is :math:`2 - \sum \min`.

    Args:
        distance (torch.Tensor): Sparse CSR ``[N, N]`` whose stored values
            are :math:`d(p, g_i)` for the members of :math:`\mathcal{R}^*(p)`
            (e.g. the pattern of :func:`k_reciprocal_expansion` with the
            distances filled in).

    Returns:
        torch.Tensor: Sparse CSR, same pattern, the weights (sum 1 per
        non-empty row).

    Example:
        >>> # row 0 stores d = 0 and 1, row 1 a single d = 0 (explicit zeros count)
        >>> d = torch.sparse_csr_tensor([0, 2, 3], [0, 1, 0], [0.0, 1.0, 0.0], (2, 2))
        >>> gaussian_encoding(d).to_dense()  # row 0: [1, e^-1] / (1 + e^-1)
        tensor([[0.7311, 0.2689],
                [1.0000, 0.0000]])
    """
    if not isinstance(distance, Tensor) or distance.layout != torch.sparse_csr:
        raise TypeError(
            "'distance' must be a torch sparse CSR tensor (e.g. x.to_sparse_csr()), got "
            f"{type(distance).__name__}"
            + (f" with layout {distance.layout}" if isinstance(distance, Tensor) else "")
        )
    crow, col, values = distance.crow_indices(), distance.col_indices(), distance.values()
    if not values.is_floating_point():
        values = values.float()
    _check_finite_values(values, "distance")
    return torch.sparse_csr_tensor(
        crow, col, _softmax_rows(crow, values), distance.shape, check_invariants=False
    )


def _check_finite_values(values: Tensor, name: str) -> None:
    if values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(f"'{name}' must contain only finite values, found NaN or infinity")


def _segments(ptr: Tensor, seg: Tensor) -> tuple[Tensor, Tensor]:
    r"""Entries of the CSR segments ``seg`` (ids into ``ptr``), concatenated.

    Returns ``(owner, entry)``: for every listed entry, the position in ``seg``
    it came from and its index into the CSR arrays.
    """
    start = ptr.index_select(0, seg)
    count = ptr.index_select(0, seg + 1) - start
    owner = torch.repeat_interleave(torch.arange(seg.numel(), device=ptr.device), count)
    shift = start - (torch.cumsum(count, 0) - count)  # entry = global position + shift
    entry = torch.arange(owner.numel(), device=ptr.device) + shift.index_select(0, owner)
    return owner, entry


def local_query_expansion(v: Tensor, rank: Any, k2: int) -> Tensor:
    r"""Local query expansion of the encodings (Eq. 9).

    .. math::
        \mathcal{V}_p \leftarrow \frac{1}{k_2}
            \sum_{g_i \in \mathcal{N}(p, k_2)} \mathcal{V}_{g_i}

    with :math:`\mathcal{N}(p, k_2)` the first ``k2`` entries of ``rank[p]``
    (self included). As in the reference code, ``k2 == 1`` returns ``v``
    unchanged. Sparse throughout: the rows to average are gathered and equal
    columns summed after one sort per chunk.

    Cost: :math:`O(N k_2 |\mathcal{V}| \log)` time, :math:`O(N k_2 |\mathcal{V}|)` result.

    Args:
        v (torch.Tensor): Encodings, sparse CSR ``[N, M]`` (``M = N`` for
            the k-reciprocal features).
        rank (torch.Tensor): Ranked lists ``[N, K]``, ``K >= k2``, self first.
        k2 (int): :math:`k_2 \ge 1`.

    Returns:
        torch.Tensor: Sparse CSR ``[N, M]``, columns ascending per row.

    Example:
        >>> v = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> rank = torch.tensor([[0, 1], [1, 0], [2, 1]])
        >>> local_query_expansion(v.to_sparse_csr(), rank, 2).to_dense()
        tensor([[0.2500, 0.7500, 0.0000],
                [0.2500, 0.7500, 0.0000],
                [0.0000, 0.5000, 0.5000]])
    """
    if not isinstance(v, Tensor) or v.layout != torch.sparse_csr:
        raise TypeError(f"'v' must be a torch sparse CSR tensor, got {type(v).__name__}")
    k2 = check_int(k2, "k2", min_value=1)
    rank = _check_rank(rank, k2)
    if rank.size(0) != v.size(0):
        raise ValueError(
            f"'rank' must have one row per row of 'v', got {rank.size(0)} rows and "
            f"v.shape={tuple(v.shape)}"
        )
    if k2 == 1:
        return v
    values = v.values() if v.values().is_floating_point() else v.values().float()
    crow, col, val = _expansion_arrays(
        v.crow_indices(), v.col_indices(), values, rank, k2, v.size(1)
    )
    return torch.sparse_csr_tensor(crow, col, val, v.shape, check_invariants=False)


def _expansion_arrays(
    crow: Tensor, col: Tensor, val: Tensor, rank: Tensor, k2: int, n_cols: int
) -> tuple[Tensor, Tensor, Tensor]:
    r"""CSR arrays of the query-expanded encodings (unvalidated core of Eq. 9)."""
    n, device = crow.numel() - 1, crow.device
    n_cols = max(n_cols, 1)
    src = rank[:, :k2].contiguous()
    length = crow[1:] - crow[:-1]
    per_row = length[src].sum(dim=1)  # entries gathered for each output row
    bounds = _chunk_bounds(per_row, _budget(_PAIR_BUDGET, device))
    counts, cols, vals = [], [], []
    for r0, r1 in bounds:
        owner, entry = _segments(crow, src[r0:r1].reshape(-1))
        out_row = torch.div(owner, k2, rounding_mode="floor")
        key = out_row * n_cols + col.index_select(0, entry)
        key, order = torch.sort(key)
        uniq, inverse = torch.unique_consecutive(key, return_inverse=True)
        summed = torch.zeros(uniq.numel(), dtype=val.dtype, device=device)
        summed.index_add_(0, inverse, val.index_select(0, entry).index_select(0, order))
        local = torch.div(uniq, n_cols, rounding_mode="floor")
        counts.append(torch.bincount(local, minlength=r1 - r0))
        cols.append(uniq - local * n_cols)
        vals.append(summed / k2)
    out_crow = torch.zeros(n + 1, dtype=torch.long, device=device)
    if n:
        torch.cumsum(torch.cat(counts), dim=0, out=out_crow[1:])
    return out_crow, _cat(cols, torch.long, device), _cat(vals, val.dtype, device)


def _cat(parts: list[Tensor], dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.cat(parts) if parts else torch.empty(0, dtype=dtype, device=device)


def _chunk_bounds(cost: Tensor, budget: int, max_rows: int | None = None) -> list[tuple[int, int]]:
    r"""Consecutive row ranges whose summed ``cost`` stays within ``budget``
    (a single row may exceed it), each at most ``max_rows`` long."""
    n = cost.numel()
    if n == 0:
        return []
    cum = torch.cumsum(cost.to("cpu", torch.long), 0).numpy()
    bounds, r0, done = [], 0, 0
    while r0 < n:
        r1 = int(np.searchsorted(cum, done + budget, side="right"))
        r1 = max(r1, r0 + 1)
        if max_rows is not None:
            r1 = min(r1, r0 + max_rows)
        bounds.append((r0, r1))
        done = int(cum[r1 - 1])
        r0 = r1
    return bounds


# ------------------------------------------------------------------------- Jaccard (Eq. 7-8)
class _Columns:
    r"""The rows ``lo:hi`` of an encoding, transposed (CSC): for each column,
    which of those rows store it and with what value (the inverted index of the
    reference code, as three flat arrays)."""

    def __init__(self, crow: Tensor, col: Tensor, val: Tensor, lo: int, hi: int, n_cols: int):
        e0, e1 = int(crow[lo]), int(crow[hi])
        row = _row_of_entry(crow[lo : hi + 1] - e0)
        c = col[e0:e1]
        order = torch.argsort(c, stable=True)
        self.ptr = torch.zeros(n_cols + 1, dtype=torch.long, device=col.device)
        torch.cumsum(torch.bincount(c, minlength=n_cols), 0, out=self.ptr[1:])
        self.row = row.index_select(0, order)
        self.val = val[e0:e1].index_select(0, order)
        self.count = self.ptr[1:] - self.ptr[:-1]
        self.n_rows = hi - lo


def _overlap_blocks(
    crow: Tensor,
    col: Tensor,
    val: Tensor,
    rows: tuple[int, int],
    cols: _Columns,
    max_block_bytes: int,
    verbose: bool = False,
) -> Iterator[tuple[int, int, Tensor]]:
    r"""Yields ``(r0, r1, T)`` with :math:`T_{ab} = \sum_c \min(\mathcal{V}_{ac},
    \mathcal{V}_{bc})` for rows ``a`` in ``r0:r1`` and the rows ``b`` of ``cols``.

    Only pairs sharing a column are visited: for each stored entry
    :math:`(a, c)` the rows of column :math:`c` are listed (via ``cols``) and
    the minima scatter-added into a dense ``[r1 - r0, n_b]`` block, chunked so
    that a chunk lists at most ``_PAIR_BUDGET`` pairs.
    """
    lo, hi = rows
    n_b = cols.n_rows
    per_entry = cols.count.index_select(0, col[int(crow[lo]) : int(crow[hi])])
    cum = torch.zeros(per_entry.numel() + 1, dtype=torch.long, device=col.device)
    torch.cumsum(per_entry, 0, out=cum[1:])
    per_row = cum.index_select(0, crow[lo + 1 : hi + 1] - crow[lo]) - cum.index_select(
        0, crow[lo:hi] - crow[lo]
    )
    max_rows = max(1, max_block_bytes // (max(n_b, 1) * val.element_size()))
    bounds = _chunk_bounds(per_row, _budget(_PAIR_BUDGET, col.device), max_rows)
    block_buf = val.new_empty(min(hi - lo, max_rows) * n_b)
    for c0, c1 in tqdm(bounds, desc="jaccard", disable=not verbose):
        a0, a1 = lo + c0, lo + c1
        e0, e1 = int(crow[a0]), int(crow[a1])
        a_row = _row_of_entry(crow[a0 : a1 + 1] - e0)
        owner, entry = _segments(cols.ptr, col[e0:e1])
        a_val = val[e0:e1].index_select(0, owner)
        b_val = cols.val.index_select(0, entry)
        flat = a_row.index_select(0, owner) * n_b + cols.row.index_select(0, entry)
        block = block_buf[: (a1 - a0) * n_b].zero_()
        block.index_add_(0, flat, torch.minimum(a_val, b_val))
        yield a0, a1, block.view(a1 - a0, n_b)


def _jaccard_(t: Tensor) -> Tensor:
    r"""In place: :math:`1 - t / (2 - t)`, Eq. 8 with rows of sum 1."""
    return torch.div(t, t.neg().add_(2.0), out=t).neg_().add_(1.0)


# ----------------------------------------------------------------- ranked lists from features
class _RankState:
    r"""Ranked lists and row maxima collected band by band."""

    def __init__(self, n: int, k: int, dtype: torch.dtype, device: torch.device, normalise: bool):
        self.rank = torch.empty((n, k), dtype=torch.long, device=device)
        self.dist = torch.empty((n, k), dtype=dtype, device=device)
        self.row_max = torch.empty(n, dtype=dtype, device=device) if normalise else None
        self.k = k

    def add(self, rows: slice, sq: Tensor, normalise_first: bool = False) -> Tensor | None:
        r"""Consumes the squared distances ``sq = D[rows, :]``; returns the row
        maxima of the band (``None`` without normalisation).

        With ``normalise_first`` the band is divided by its row maxima in
        place before ranking, so that ties created by the division rank as
        in the reference (one more pass over the band)."""
        m = None
        if self.row_max is not None:
            m = sq.amax(dim=1)
            _check_row_max(m, rows.start)
            self.row_max[rows] = m
            if normalise_first:
                sq.div_(m.unsqueeze(1))
        v, i = torch.topk(sq, self.k, dim=1, largest=False, sorted=True)
        if m is not None and not normalise_first:
            v = v / m.unsqueeze(1)
        self.rank[rows] = i
        self.dist[rows] = v
        return m


def _rank_features(
    x: Tensor,
    k: int,
    normalise: bool,
    max_block_bytes: int,
    verbose: bool,
    keep: tuple[int, Tensor] | None = None,
    precision: str = "fp32",
) -> _RankState:
    r"""Exact ranked lists of the rows of ``x`` under the squared euclidean distance.

    The distance matrix is symmetric, so only the tiles on and above the
    diagonal are computed (about half the GEMM work of an all-vs-all
    product): each tile feeds a running top-k of its rows and, transposed,
    of its columns, and the row maxima. ``keep = (n_q, out)`` also stores the
    distances of rows ``< n_q`` to columns ``>= n_q`` in ``out``
    (divided by the row maxima when normalising). ``precision`` as in
    :func:`reidgraph.ops.topk`.
    """
    n, dtype, device = x.size(0), x.dtype, x.device
    a, b, a_sq, b_sq = _prepare_metric(x, None, "euclidean")
    if precision == "fp16":
        a = b = a.half()
    side = max(1, math.isqrt(max(1, max_block_bytes // x.element_size())))
    if device.type == "cpu":
        side = min(side, _CPU_TILE)
    tiles = [(t0, min(t0 + side, n)) for t0 in range(0, n, min(side, n))]
    best_v = torch.full((n, k), float("inf"), dtype=dtype, device=device)
    best_i = torch.full((n, k), -1, dtype=torch.long, device=device)
    row_max = torch.zeros(n, dtype=dtype, device=device)
    side = tiles[0][1] - tiles[0][0]
    buffer, t_buffer = x.new_empty(side * side), x.new_empty(side * side)
    pairs = [(ti, tj) for ti in range(len(tiles)) for tj in range(ti, len(tiles))]
    with _matmul_precision(device, precision):
        for ti, tj in tqdm(pairs, desc="k-reciprocal ranks", disable=not verbose):
            (i0, i1), (j0, j1) = tiles[ti], tiles[tj]
            out = buffer[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
            rs, cs = slice(i0, i1), slice(j0, j1)
            block = _score_block(a, b, a_sq, b_sq, "euclidean", rs, cs, True, out=out)
            _merge_topk(best_v, best_i, rs, block, j0)
            torch.maximum(row_max[rs], block.amax(dim=1), out=row_max[rs])
            if tj != ti:
                flipped = t_buffer[: block.numel()].view(j1 - j0, i1 - i0).copy_(block.T)
                _merge_topk(best_v, best_i, cs, flipped, i0)
                torch.maximum(row_max[cs], flipped.amax(dim=1), out=row_max[cs])
            if keep is not None and i0 < keep[0] and j1 > keep[0]:
                n_q = keep[0]
                c0 = max(j0, n_q)
                keep[1][i0 : min(i1, n_q), c0 - n_q : j1 - n_q] = block[: n_q - i0, c0 - j0 :]
    state = _RankState(n, k, dtype, device, normalise)
    state.rank = best_i
    if normalise:
        _check_row_max(row_max)
        state.row_max = row_max
        best_v = best_v / row_max.unsqueeze(1)
        if keep is not None:
            keep[1].div_(row_max[: keep[0]].unsqueeze(1).to(keep[1].dtype))
    state.dist = best_v
    return state


def _merge_topk(best_v: Tensor, best_i: Tensor, rows: slice, block: Tensor, offset: int) -> None:
    r"""Merges the ``k`` smallest entries of each row of ``block`` (columns
    shifted by ``offset``) into the running lists ``best_*[rows]``."""
    k = best_v.size(1)
    v, i = torch.topk(block, min(k, block.size(1)), dim=1, largest=False, sorted=False)
    v = torch.cat([best_v[rows], v], dim=1)
    i = torch.cat([best_i[rows], i.add_(offset)], dim=1)
    v, pos = torch.topk(v, k, dim=1, largest=False, sorted=True)
    best_v[rows] = v
    best_i[rows] = i.gather(1, pos)


def _check_row_max(row_max: Tensor, start: int = 0) -> None:
    if bool((row_max <= 0).any()):
        bad = int(torch.nonzero(row_max <= 0)[0, 0]) + start
        raise ValueError(
            f"all distances of row {bad} are 0 (identical items), so the row "
            "cannot be normalised by its maximum"
        )


def _check_precision(precision: str, device: torch.device) -> str:
    r"""Resolves ``precision`` (``"fp32"``, ``"tf32"``, ``"fp16"``); the last
    two need CUDA tensors."""
    precision = check_choice(precision, "precision", PRECISIONS)
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(
            f"precision={precision!r} needs CUDA tensors (TF32/fp16 GEMMs), got input on "
            f"{device}; use precision='fp32'"
        )
    return precision


def _member_distances(
    crow: Tensor,
    col: Tensor,
    state: _RankState,
    pair_fn: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    r"""Distance of every stored member ``(p, g)`` of :math:`\mathcal{R}^*`:
    looked up in ``p``'s ranked list, computed by ``pair_fn`` for the few
    members outside it (added by the :math:`\tfrac12 k_1` expansion)."""
    row = _row_of_entry(crow)
    out = torch.empty(col.numel(), dtype=state.dist.dtype, device=col.device)
    step = max(1, _budget(_PAIR_BUDGET, col.device) // state.k)
    missing = []
    for e0 in range(0, col.numel(), step):
        es = slice(e0, min(e0 + step, col.numel()))
        hit = state.rank.index_select(0, row[es]) == col[es].unsqueeze(1)
        found, pos = hit.to(torch.uint8).max(dim=1)
        found = found.bool()
        out[es] = state.dist.index_select(0, row[es]).gather(1, pos.unsqueeze(1)).squeeze(1)
        missing.append(torch.nonzero(~found).squeeze(1) + e0)
    missing = _cat(missing, torch.long, col.device)
    if missing.numel():
        logger.debug("%d of %d R* members outside the ranked lists", missing.numel(), col.numel())
        for m0 in range(0, missing.numel(), step):
            ms = missing[m0 : m0 + step]
            out[ms] = pair_fn(row.index_select(0, ms), col.index_select(0, ms)).to(out.dtype)
    return out


def _feature_pair_fn(x: Tensor, state: _RankState, step: int = 1 << 14) -> Callable:
    r"""Squared euclidean distance of given pairs (divided by the row maxima
    when the state normalises), in slices of ``step`` pairs."""
    sq = x.pow(2).sum(dim=1)

    def pair_fn(p: Tensor, g: Tensor) -> Tensor:
        out = torch.empty(p.numel(), dtype=x.dtype, device=x.device)
        for s0 in range(0, p.numel(), step):
            ps, gs = p[s0 : s0 + step], g[s0 : s0 + step]
            dot = (x.index_select(0, ps) * x.index_select(0, gs)).sum(dim=1)
            d = (sq.index_select(0, ps) + sq.index_select(0, gs) - 2.0 * dot).clamp_(min=0.0)
            d[ps == gs] = 0.0
            if state.row_max is not None:
                d = d / state.row_max.index_select(0, ps)
            out[s0 : s0 + step] = d
        return out

    return pair_fn


def _encode(
    state: _RankState,
    k1: int,
    k2: int,
    convention: str,
    pair_fn: Callable[[Tensor, Tensor], Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    r"""CSR arrays of the (query-expanded) encodings from ranked lists: Eq. 2, 3, 6, 9."""
    n_fwd, n_half = list_lengths(k1, convention)
    crow, col = _expand(state.rank, n_fwd, n_half)
    dist = _member_distances(crow, col, state, pair_fn)
    val = _softmax_rows(crow, dist)
    logger.debug("R*: %.1f members per row", col.numel() / max(1, crow.numel() - 1))
    if k2 != 1:
        crow, col, val = _expansion_arrays(crow, col, val, state.rank, k2, crow.numel() - 1)
    return crow, col, val


def _check_k(k1: int, k2: int, n: int, convention: str, what: str) -> tuple[int, int, int]:
    k1 = check_int(k1, "k1", min_value=1)
    n_fwd, _ = list_lengths(k1, convention)
    if n_fwd > n:
        need = "k1 < N" if convention == "re_ranking" else "k1 <= N"
        raise ValueError(
            f"'k1' must leave room for the ranked lists of {n_fwd} entries ({need}, "
            f"N = {n} {what}), got k1={k1}"
        )
    k2 = check_int(k2, "k2", min_value=1, max_value=k1, max_reason="k2 <= k1")
    return k1, k2, n_fwd


def jaccard_distance(
    x: Any,
    k1: int = 30,
    k2: int = 6,
    *,
    convention: str = "cluster_contrast",
    metric: str = "euclidean",
    rank: Any = None,
    output: str = "scipy",
    precision: str = "fp32",
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    verbose: bool = False,
) -> Any:
    r"""Sparse k-reciprocal Jaccard distance between all pairs of one feature set (Eq. 7-8).

    .. math::
        d_J(p, g) = 1 - \frac{\sum_j \min(\mathcal{V}_{p,j}, \mathcal{V}_{g,j})}
                             {\sum_j \max(\mathcal{V}_{p,j}, \mathcal{V}_{g,j})}
                  = 1 - \frac{t}{2 - t}, \qquad
        t = \sum_j \min(\mathcal{V}_{p,j}, \mathcal{V}_{g,j})

    with :math:`\mathcal{V}` the query-expanded, normalised encodings (Eq. 3,
    6, 9; rows sum to 1). Only pairs that share a member have :math:`t > 0`;
    all others are at distance exactly 1 and **not stored**. This is the input
    of DBSCAN in cluster-contrast / GUR / MPRD practice (``k1=30, k2=6``,
    ``min_samples=4``)::

        dist = jaccard_distance(x, k1=30, k2=6)             # scipy CSR
        labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(dist)

    scikit-learn treats a sparse precomputed matrix's missing entries as "not
    a neighbour" — exactly right for distance 1 with ``eps < 1`` — and its
    explicitly stored zeros as distance 0; stored zeros (identical
    encodings) are kept. Values are clamped at 0 (rounding can make
    :math:`t` exceed 1 by ~1e-7, and scikit-learn rejects negative
    distances), as cluster-contrast does.

    ``convention="cluster_contrast"`` (default) reproduces
    ``compute_jaccard_distance`` of cluster-contrast (lists of :math:`k_1`
    entries, weights :math:`\mathrm{softmax}(-\lVert x_p - x_g\rVert^2)`);
    it L2-normalises features upstream, so pass ``metric="cosine"`` (or
    normalised ``x``) for its distance :math:`2 - 2 x_p^\top x_g`.
    ``convention="re_ranking"`` is the Jaccard part of
    :func:`reidgraph.rerank.k_reciprocal` on one set (lists of
    :math:`k_1 + 1`, squared distances divided by the row maximum).

    **Cost**: time :math:`O(N^2 d)` for the exact ranked lists (one GEMM per
    band of rows; skipped when ``rank`` is given) plus
    :math:`O(\sum_c n_c^2)` for the Jaccard sums (:math:`n_c` = encodings
    storing column :math:`c`, about :math:`k_2 |\mathcal{R}^*|`). Memory
    :math:`O(N k)` for lists and encodings, one band of ``max_block_bytes``,
    and the result (:math:`O(N \cdot` pairs sharing a member :math:`)`);
    never :math:`N \times N`.

    Args:
        x (torch.Tensor or numpy.ndarray): Features ``[N, d]``, finite.
        k1 (int, optional): :math:`k_1`. (default: :obj:`30`, cluster-contrast)
        k2 (int, optional): :math:`k_2` of the local query expansion,
            ``1 <= k2 <= k1``. (default: :obj:`6`)
        convention (str, optional): ``"cluster_contrast"`` or
            ``"re_ranking"``. (default: :obj:`"cluster_contrast"`)
        metric (str, optional): ``"euclidean"`` (squared euclidean distance
            of ``x``) or ``"cosine"`` (the same after L2 normalisation,
            :math:`2 - 2\cos`). (default: :obj:`"euclidean"`)
        rank (torch.Tensor, optional): Precomputed ranked lists ``[N, K]``
            (self first, nearest first, ``K >= k1``), e.g. from
            :func:`reidgraph.ops.topk` with ``approximate=True`` for very
            large ``N``; the exact search is then skipped and ``x`` only gives
            the weights. Only with ``convention="cluster_contrast"`` (the
            ``"re_ranking"`` normalisation needs every row's farthest
            distance). (default: :obj:`None`)
        output (str, optional): ``"scipy"`` (``scipy.sparse.csr_matrix``,
            CPU) or ``"torch"`` (torch sparse CSR on ``x``'s device).
            (default: :obj:`"scipy"`)
        precision (str, optional): GEMM precision of the search on CUDA,
            ``"fp32"``, ``"tf32"`` or ``"fp16"`` (see
            :func:`reidgraph.ops.topk`); near-ties may then reorder.
            (default: :obj:`"fp32"`)
        max_block_bytes (int, optional): Budget of one band of distances
            and of one Jaccard block. (default: 256 MiB)
        verbose (bool, optional): Progress bars. (default: :obj:`False`)

    Returns:
        scipy.sparse.csr_matrix or torch.Tensor: ``[N, N]`` float32 Jaccard
        distances in ``[0, 1)``, stored where the encodings overlap (the
        diagonal too, at about 0, unless more than ``k1`` exact duplicates
        push an item out of its own list), sorted column indices.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [0.3], [5.0], [5.2], [5.5]])
        >>> d = jaccard_distance(x, k1=2, k2=1)  # lists of 2: self + nearest
        >>> d.nnz  # R* = {0,1}, {0,1}, {2}, {3,4}, {3,4}, {5}: overlaps 4 + 1 + 4 + 1
        10
        >>> sorted(d[0].indices.tolist()), sorted(d[2].indices.tolist())
        ([0, 1], [2])
    """
    convention = check_choice(convention, "convention", CONVENTIONS)
    metric = check_choice(metric, "metric", ("euclidean", "cosine"))
    output = check_choice(output, "output", ("scipy", "torch"))
    check_int(max_block_bytes, "max_block_bytes", min_value=1)
    x, _ = _check_inputs(x, None, "x", "x")
    n = x.size(0)
    if n == 0:
        raise ValueError("'x' must have at least one row, got shape (0, d)")
    k1, k2, n_fwd = _check_k(k1, k2, n, convention, "rows of 'x'")
    precision = _check_precision(precision, x.device)
    if metric == "cosine":
        x = torch.nn.functional.normalize(x, dim=1)
    normalise = convention == "re_ranking"
    if rank is None:
        state = _rank_features(x, n_fwd, normalise, max_block_bytes, verbose, precision=precision)
    else:
        if normalise:
            raise ValueError(
                "'rank' can be given only with convention='cluster_contrast'; "
                "convention='re_ranking' divides by every row's largest distance, which "
                "needs the full search"
            )
        rank = _check_rank(rank, n_fwd)
        if rank.size(0) != n:
            raise ValueError(
                f"'rank' must have one row per row of 'x' ({n}), got shape {tuple(rank.shape)}"
            )
        rank = rank[:, :n_fwd].to(x.device)
        state = _RankState(n, n_fwd, x.dtype, x.device, False)
        state.rank = rank
        state.dist = _feature_pair_fn(x, state)(
            torch.arange(n, device=x.device).repeat_interleave(n_fwd), rank.reshape(-1)
        ).view(n, n_fwd)
    crow, col, val = _encode(state, k1, k2, convention, _feature_pair_fn(x, state))
    val = val.float()
    cols = _Columns(crow, col, val, 0, n, n)
    counts, out_cols, out_vals = [], [], []
    for _, _, t in _overlap_blocks(crow, col, val, (0, n), cols, max_block_bytes, verbose):
        where = t > 0
        counts.append(where.sum(dim=1))
        out_cols.append(torch.nonzero(where)[:, 1])
        out_vals.append(_jaccard_(t[where]).clamp_(min=0.0))
    out_crow = torch.zeros(n + 1, dtype=torch.long, device=x.device)
    torch.cumsum(torch.cat(counts), 0, out=out_crow[1:])
    out_col, out_val = torch.cat(out_cols), torch.cat(out_vals)
    if output == "torch":
        return torch.sparse_csr_tensor(out_crow, out_col, out_val, (n, n), check_invariants=False)
    import scipy.sparse

    return scipy.sparse.csr_matrix(
        (out_val.cpu().numpy(), out_col.cpu().numpy(), out_crow.cpu().numpy()), shape=(n, n)
    )
