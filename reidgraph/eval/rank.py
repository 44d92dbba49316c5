r"""Retrieval metrics for re-identification: CMC, mAP and mINP.

One general core, :func:`rank_metrics`, computes the three metrics from a
query x gallery distance matrix under an exclusion rule
(:class:`Exclusion`); :func:`evaluate` is the standard single-query
protocol of Market-1501 / DukeMTMC-reID / MSMT17 built on it, and the
cross-modality protocols in :mod:`reidgraph.eval.protocols` reuse it too.

**How it stays fast.** The core never sorts whole rows. A true match's rank
among the valid gallery entries is one plus the number of valid entries that
come before it, and true matches per query are few. For a chunk of queries it
gathers each query's true-match keys (distance, column), sorted, as a
``[chunk, S]`` table (``S`` = most gallery images of one identity, looked up
through an identity index, not by scanning rows), then assigns every other
entry the number of matches it precedes and turns the per-query histogram of
those numbers into every match's rank with one cumulative sum. Two ways to
bucket the entries, chosen per chunk:

* *candidates* (good features: the hardest match comes early): only entries no
  farther than the query's hardest match are listed and compared with the
  ``S`` match keys;
* *grid* (weak features: most entries come before the hardest match): a
  monotone cell index over ``[first match, last match]`` buckets every entry
  through a small per-query table; only entries sharing a cell with a match
  are compared.

Time: a few passes over the ``N_q x N_g`` matrix plus ``E S`` comparisons, with
``E`` the listed entries (at most about ``N_q N_g / 64`` on the grid path for
``S <= 256``). Memory: at most about ``max_memory`` bytes per chunk of queries
(default 256 MiB), whatever ``N_q``; ``O(N_q)`` for the results.

**Ties.** Each query's gallery is ordered by distance ascending, ties broken by
gallery index (column) ascending: exactly the order of
``numpy.argsort(row, kind="stable")``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from reidgraph._validation import as_tensor, check_finite, check_int, check_matrix, check_vector

__all__ = [
    "Exclusion",
    "SAME_ID_SAME_CAM",
    "evaluate",
    "rank_metrics",
]

logger = logging.getLogger(__name__)

#: Default memory budget for one chunk of queries' intermediates (bytes).
DEFAULT_MAX_MEMORY: int = 256 * 2**20
# Upper bound on a chunk's intermediate bytes per distance-matrix entry, which
# sets the rows per chunk: a float working copy (<= 8), the cell index (8), the
# histogram bins (<= 8), a mask (1), a float32 copy of 16-bit input or the
# masked copy of a general exclusion rule (<= 8), and the listed entries' row,
# column, value and bucket (~40 each, listed for at most ~0.8 of the entries).
_BYTES_PER_ENTRY = 64
# Bytes per (candidate, true match) pair when bucketing candidates: gathered
# match distances (<= 8) and gallery columns (8), two comparison masks (2).
_BYTES_PER_PAIR = 24


@dataclass(frozen=True)
class Exclusion:
    r"""A rule that removes gallery entries from a query's ranked list.

    ``fn(q_pid, g_pid, q_camid, g_camid)`` is applied elementwise with
    broadcasting (query attributes come as ``[c, 1]``, gallery attributes as
    ``[1, N_g]`` or ``[c, S]``) and returns a boolean tensor, :obj:`True` where
    the gallery entry is removed for that query. Removed entries are neither
    matches nor distractors: they vanish from the ranked list.

    Args:
        name (str): A short name, shown in ``repr``.
        fn (callable): The elementwise rule.
        same_pid_only (bool, optional): Promise that ``fn`` only ever removes
            entries of the query's own identity. The core then evaluates it on
            the few same-identity entries instead of the whole chunk.
            (default: :obj:`False`)

    Example:
        >>> # SYSU-MM01: remove cam2 gallery images for cam3 queries (0-based 1, 2)
        >>> rule = Exclusion("sysu", lambda qp, gp, qc, gc: (qc == 2) & (gc == 1))
    """

    name: str
    fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    same_pid_only: bool = False

    def __call__(self, q_pid: Tensor, g_pid: Tensor, q_camid: Tensor, g_camid: Tensor) -> Tensor:
        return self.fn(q_pid, g_pid, q_camid, g_camid)

    def __repr__(self) -> str:
        return f"Exclusion({self.name!r}, same_pid_only={self.same_pid_only})"


def _same_id_same_cam(q_pid: Tensor, g_pid: Tensor, q_camid: Tensor, g_camid: Tensor) -> Tensor:
    return (q_pid == g_pid) & (q_camid == g_camid)


#: The Market-1501 / DukeMTMC-reID / MSMT17 rule (torchreid ``eval_market1501``,
#: open-reid ``market1501`` config): drop gallery images of the query's identity
#: taken by the query's camera.
SAME_ID_SAME_CAM = Exclusion("same_id_same_cam", _same_id_same_cam, same_pid_only=True)


def _check_finite_fast(value: Tensor, name: str) -> None:
    # One min/max pass (NaN propagates through both) instead of isfinite,
    # which is ~10x slower on CPU; the full check only builds the message.
    if value.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(value))).all()):
        check_finite(value, name)


def _check_ids(value: Any, name: str, length: int, length_of: str, device) -> Tensor:
    out = check_vector(value, name, length=length, length_of=length_of)
    if out.is_floating_point() or out.is_complex() or out.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold integer labels, got dtype {out.dtype}")
    return out.to(device=device, dtype=torch.long)


@dataclass
class _Gallery:
    r"""Gallery labels grouped by identity (CSR) for O(1) match look-up."""

    pid: Tensor
    camid: Tensor | None
    order: Tensor  # gallery columns sorted by pid, ascending column within a pid
    uniq: Tensor  # distinct pids, ascending
    starts: Tensor
    counts: Tensor
    code: Tensor  # each column's position of its pid in `uniq`

    @classmethod
    def build(cls, pid: Tensor, camid: Tensor | None) -> _Gallery:
        sorted_pid, order = torch.sort(pid, stable=True)
        uniq, counts = torch.unique_consecutive(sorted_pid, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        code = torch.searchsorted(uniq, pid)
        return cls(pid, camid, order, uniq, starts, counts, code)


class _Workspace:
    r"""Chunk-sized buffers reused across chunks.

    Large fresh allocations are page-faulted in on every chunk (the CPU
    allocator returns them to the system), which costs more than the
    arithmetic; reusing one buffer per role avoids it.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, role: str, shape: tuple[int, int], dtype: torch.dtype, device) -> Tensor:
        n = shape[0] * shape[1]
        buf = self._buffers.get(role)
        if buf is None or buf.numel() < n or buf.dtype != dtype or buf.device != device:
            buf = torch.empty(n, dtype=dtype, device=device)
            self._buffers[role] = buf
        return buf[:n].view(shape)


# Path choice. The candidate path costs about (candidates x S) comparisons
# after one compaction; the grid path a fixed handful of passes per entry.
# Crossover measured on the 2-core CPU (docs/eval.md): grid once the sampled
# fraction of entries before the hardest match, times S, exceeds this value.
_GRID_ABOVE = 0.8
_SAMPLE_COLUMNS = 1024
# Grid path: cells per match key, and at most this many cells per row (also at
# most one per gallery entry, which keeps the per-query tables within budget).
_CELLS_PER_MATCH = 64
_MAX_CELLS = 16384


def _flat_nonzero(mask: Tensor) -> Tensor:
    r"""Row-major flat indices of the :obj:`True` entries of a contiguous mask."""
    if mask.device.type == "cpu":
        # numpy's flatnonzero is several times faster than torch.nonzero on CPU
        # (docs/eval.md); the mask is shared, not copied.
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.view(-1).nonzero().squeeze(1)


def _take(values: Tensor, index: Tensor) -> Tensor:
    return values.index_select(0, index)  # the fastest 1-D gather on CPU


def _candidate_load(d: Tensor, t_max: Tensor, smax: int) -> float:
    r"""Estimated fraction of entries before the hardest match, times S (column sample)."""
    stride = max(1, d.size(1) // _SAMPLE_COLUMNS)
    return float((d[:, ::stride] <= t_max).float().mean()) * smax


def _keys_before(
    t: Tensor, m: Tensor, rows: Tensor, vals: Tensor, cols: Tensor, max_memory: int
) -> Tensor:
    r"""For each listed entry (row, value, column): how many of its row's match
    keys ``(t, m)`` are lexicographically smaller than ``(value, column)``."""
    smax = t.size(1)
    out = torch.empty_like(rows)
    step = max(1, max_memory // (4 * _BYTES_PER_PAIR * smax))
    for s in range(0, rows.numel(), step):
        r, v, j = rows[s : s + step], vals[s : s + step, None], cols[s : s + step, None]
        tt = t.index_select(0, r)
        out[s : s + step] = ((tt < v) | ((tt == v) & (m.index_select(0, r) < j))).sum(1)
    return out


def _bucket_listed(
    d: Tensor, qp: Tensor, gal: _Gallery, t: Tensor, m: Tensor, flat: Tensor, max_memory: int
) -> Tensor:
    r"""Histogram ``[c, S + 1]`` of the listed entries (flat indices into ``d``)
    by the number of match keys before them; own-identity entries are skipped."""
    c, ng = d.shape
    smax = t.size(1)
    rows = flat // ng
    cols = flat - rows * ng
    # Matches are ranked by their order among themselves; own-identity entries
    # removed by the rule must not count at all.
    keep = _take(gal.pid, cols) != _take(qp, rows)
    rows, cols, flat = rows[keep], cols[keep], flat[keep]
    b = _keys_before(t, m, rows, _take(d.view(-1), flat), cols, max_memory)
    return torch.bincount(rows * (smax + 1) + b, minlength=c * (smax + 1)).view(c, smax + 1)


def _histogram_candidates(
    d: Tensor,
    qp: Tensor,
    gal: _Gallery,
    t: Tensor,
    m: Tensor,
    t_max: Tensor,
    max_memory: int,
    ws: _Workspace,
) -> Tensor:
    r"""``hist[i, b]``: entries of row ``i`` that precede exactly the matches
    ``b, b + 1, ...``, found among the entries no farther than the hardest match."""
    mask = torch.le(d, t_max, out=ws.get("mask", d.shape, torch.bool, d.device))
    return _bucket_listed(d, qp, gal, t, m, _flat_nonzero(mask), max_memory)


def _histogram_grid(
    d: Tensor,
    qp: Tensor,
    gal: _Gallery,
    t: Tensor,
    m: Tensor,
    sidx: Tensor,
    same: Tensor,
    n_pos: Tensor,
    max_memory: int,
    ws: _Workspace,
) -> Tensor:
    r"""Same histogram as :func:`_histogram_candidates`, for chunks where most
    entries come before the hardest match.

    Each row's range ``[first match, last match]`` is cut into ``G`` cells by
    ``cell(v) = trunc(clamp((v - lo) * scale, -1, G + 1) + 1)``. Every step
    rounds monotonically, so ``cell`` is monotone in ``v`` even in floating
    point: an entry whose cell holds no match precedes exactly the matches of
    higher cells, and is counted through a per-cell table with no comparison.
    Only entries sharing a cell with a match (few when ``G >> S``) are
    compared exactly.
    """
    c, smax = t.shape
    dev = d.device
    has = n_pos > 0
    real = torch.arange(smax, device=dev) < n_pos[:, None]
    lo = torch.where(has, t[:, 0], 0)
    hi = torch.where(has, t.gather(1, (n_pos - 1).clamp(min=0)[:, None]).squeeze(1), 0)
    g = max(16, min(_CELLS_PER_MATCH * smax, _MAX_CELLS, d.size(1)))
    # Exactness needs only a positive finite scale; a good one keeps the
    # compared part small.
    scale = (g / (hi - lo).double()).to(d.dtype)
    scale = torch.where(torch.isfinite(scale) & (scale > 0), scale, 1.0)
    lo, scale = lo[:, None], scale[:, None]

    def cell(v: Tensor, x: Tensor | None = None, index: Tensor | None = None) -> Tensor:
        # One formula for match keys and entries: exactness rests on it.
        x = torch.sub(v, lo, out=x).mul_(scale).clamp_(-1, g + 1).add_(1)  # 0 .. g + 2
        return x.long() if index is None else index.copy_(x)  # truncation = floor, x >= 0

    width = g + 3
    tcell = cell(t.masked_fill(~real, 0))
    occupied = torch.zeros(c, width, dtype=torch.long, device=dev)
    occupied.scatter_add_(1, tcell, real.long())
    below = occupied.cumsum(1) - occupied  # matches in lower cells
    # Per (row, cell): the row's histogram bin, or a spare bin for cells that
    # hold a match (their entries are compared exactly below).
    spare = c * (smax + 1)
    table = below + torch.arange(c, device=dev)[:, None] * (smax + 1)
    table.masked_fill_(occupied > 0, spare)
    # int32 bins halve the traffic of the two passes below.
    kind = torch.int32 if spare < 2**31 - 1 else torch.long
    table = table.to(kind)

    index = cell(
        d, ws.get("float", d.shape, d.dtype, dev), ws.get("index", d.shape, torch.long, dev)
    )
    bins = torch.gather(table, 1, index, out=ws.get("bins", d.shape, kind, dev))
    hist = torch.bincount(bins.view(-1), minlength=spare + 1)
    # Own-identity entries never precede a match: take them out again.
    hist -= torch.bincount(bins.gather(1, sidx)[same], minlength=spare + 1)
    hist = hist[:spare].view(c, smax + 1)
    hot = _flat_nonzero(torch.eq(bins, spare, out=ws.get("mask", d.shape, torch.bool, dev)))
    return hist + _bucket_listed(d, qp, gal, t, m, hot, max_memory)


def _rank_chunk(
    d: Tensor,
    qp: Tensor,
    qc: Tensor | None,
    gal: _Gallery,
    exclude: Exclusion | None,
    dedup: bool,
    max_memory: int,
    ws: _Workspace,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""Ranks of each query's true matches within one chunk of rows.

    Returns ``ranks [c, S]`` (1-based rank of the k-th true match among the
    valid entries, valid for ``k < n_pos``), ``n_pos [c]`` and, with
    ``dedup``, the 1-based rank of the first true match in the
    identity-deduplicated list ``[c]``.
    """
    c, ng = d.shape
    dev = d.device
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=dev)

    # The query identity's gallery columns, from the CSR, padded to S.
    pos = torch.searchsorted(gal.uniq, qp).clamp_(max=gal.uniq.numel() - 1)
    cnt = torch.where(gal.uniq[pos] == qp, gal.counts[pos], 0)
    smax = int(cnt.max())
    if smax == 0:
        empty = torch.zeros(c, dtype=torch.long, device=dev)
        return torch.ones(c, 1, dtype=torch.long, device=dev), empty, empty if dedup else None
    ar = torch.arange(smax, device=dev)
    real = ar < cnt[:, None]
    slot = (gal.starts[pos][:, None] + ar).clamp_(max=ng - 1)
    sidx = gal.order[slot]
    # Padding repeats the row's first column; it is masked out below.
    sidx = torch.where(real, sidx, sidx[:, :1])
    valid = real
    if exclude is not None:
        valid = valid & ~exclude(qp[:, None], gal.pid[sidx], qc[:, None], gal.camid[sidx])
    n_pos = valid.sum(1)

    # Sorted match keys (distance, column): `sidx` is ascending within a row,
    # so a stable sort on distance gives the lexicographic order.
    t, perm = torch.sort(d.gather(1, sidx).masked_fill(~valid, inf), dim=1, stable=True)
    m = sidx.gather(1, perm)
    has = n_pos > 0
    t_max = t.gather(1, (n_pos - 1).clamp(min=0)[:, None]).masked_fill(~has[:, None], -inf)

    if exclude is not None and not exclude.same_pid_only:
        removed = exclude(qp[:, None], gal.pid[None], qc[:, None], gal.camid[None])
        d = d.masked_fill(removed, inf)  # removed entries never precede a match
        del removed

    if _candidate_load(d, t_max, smax) > _GRID_ABOVE:
        hist = _histogram_grid(d, qp, gal, t, m, sidx, real, n_pos, max_memory, ws)
    else:
        hist = _histogram_candidates(d, qp, gal, t, m, t_max, max_memory, ws)
    ranks = hist.cumsum(1)[:, :smax] + ar + 1

    dedup_first = None
    if dedup:
        # Identity-deduplicated rank of the first match: one plus the number
        # of distinct other identities among valid entries before it.
        t_first = t[:, :1].masked_fill(~has[:, None], -inf)
        mask = torch.le(d, t_first, out=ws.get("mask", d.shape, torch.bool, dev))
        flat = _flat_nonzero(mask)
        rows = flat // ng
        cols = flat - rows * ng
        vals, t0, m0 = _take(d.view(-1), flat), t[rows, 0], m[rows, 0]
        first = (vals < t0) | ((vals == t0) & (cols < m0))
        first &= _take(gal.pid, cols) != _take(qp, rows)
        u = gal.uniq.numel()
        code = torch.unique(rows[first] * u + gal.code[cols[first]])
        dedup_first = torch.bincount(code // u, minlength=c) + 1
    return ranks, n_pos, dedup_first


def rank_metrics(
    distmat: Any,
    q_pid: Any,
    g_pid: Any,
    q_camid: Any = None,
    g_camid: Any = None,
    *,
    max_rank: int = 50,
    exclude: Exclusion | None = SAME_ID_SAME_CAM,
    dedup_cmc: bool = False,
    chunk_size: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    per_query: bool = False,
) -> dict[str, Any]:
    r"""CMC, mAP and mINP under a given exclusion rule (the general core).

    For query :math:`i` let :math:`V_i` be the gallery entries kept by the
    exclusion rule, ordered by distance ascending with ties broken by gallery
    index, and let :math:`r_{i,1} < \dots < r_{i,P_i}` be the 1-based ranks in
    that list of the :math:`P_i` entries sharing the query's identity. Queries
    with :math:`P_i = 0` are skipped (counted in ``num_valid_queries``). Over
    the :math:`Q` valid queries:

    .. math::
        \mathrm{AP}_i = \frac{1}{P_i}\sum_{k=1}^{P_i} \frac{k}{r_{i,k}}, \qquad
        \mathrm{INP}_i = \frac{P_i}{r_{i,P_i}}, \qquad
        \mathrm{CMC}(r) = \frac{1}{Q}\sum_i [\,r_{i,1} \le r\,],

    with mAP and mINP the means of :math:`\mathrm{AP}_i` and
    :math:`\mathrm{INP}_i` (mINP: Ye et al., *Deep Learning for Person
    Re-identification: A Survey and Outlook*, TPAMI 2021, cited as [51] in
    GUR Sec. 4.1). AP is the interpolation-free average precision, equal to
    ``sklearn.metrics.average_precision_score`` when there are no ties. With
    ``dedup_cmc=True`` the CMC uses the rank of the first match in the list
    that keeps only the first entry of each gallery identity (SYSU-MM01's
    single-shot CMC); mAP and mINP always use the full list.

    Args:
        distmat (Tensor or ndarray): Distances ``[N_q, N_g]``, finite; smaller
            is closer.
        q_pid (Tensor or ndarray): Query identities ``[N_q]`` (integers).
        g_pid (Tensor or ndarray): Gallery identities ``[N_g]`` (integers).
        q_camid (Tensor or ndarray, optional): Query cameras ``[N_q]``,
            needed by camera-based rules. (default: :obj:`None`)
        g_camid (Tensor or ndarray, optional): Gallery cameras ``[N_g]``.
            (default: :obj:`None`)
        max_rank (int, optional): Length of the returned CMC. If it exceeds
            the gallery size the CMC is still this long; entries past the
            gallery size equal the last reachable value (1.0). (default:
            :obj:`50`)
        exclude (Exclusion, optional): Which gallery entries to remove per
            query; :obj:`None` removes nothing. (default:
            :obj:`SAME_ID_SAME_CAM`)
        dedup_cmc (bool, optional): Identity-deduplicated CMC. (default:
            :obj:`False`)
        chunk_size (int, optional): Queries per chunk; overrides the size
            derived from ``max_memory``. (default: :obj:`None`)
        max_memory (int, optional): Budget in bytes for one chunk's
            intermediates. (default: 256 MiB)
        per_query (bool, optional): Also return per-query ``AP``, ``INP``
            (float64, NaN for skipped queries), ``first_match_rank`` (long,
            0 for skipped queries) and ``valid`` (bool). (default:
            :obj:`False`)

    Returns:
        dict: ``cmc`` (float32 tensor ``[max_rank]`` on the input's device),
        ``mAP`` and ``mINP`` (float), ``num_valid_queries`` and
        ``num_queries`` (int), plus the per-query tensors if requested.

    Cost: time :math:`O(N_q N_g + E S)`, with :math:`S` the most gallery
    images of one identity and :math:`E` the entries compared exactly: those
    ranked before their query's hardest match when they are few, otherwise
    those sharing a grid cell with a match (about :math:`N_q N_g / 64` for
    :math:`S \le 256`). Memory: about ``max_memory`` bytes per chunk of
    queries plus :math:`O(N_q + N_g)`; never :math:`O(N_q N_g)` beyond the
    input.

    Example:
        >>> d = torch.tensor([[0.1, 0.5, 0.3]])
        >>> out = rank_metrics(d, [1], [1, 2, 1], exclude=None, max_rank=3)
        >>> out["mAP"], out["cmc"].tolist()
        (1.0, [1.0, 1.0, 1.0])
    """
    distmat = as_tensor(distmat, "distmat")
    if not distmat.is_floating_point():
        distmat = distmat.double()  # exact for integer distances (float32 is not above 2**24)
    # Metrics need no gradient; the buffered (out=) kernels refuse autograd inputs.
    distmat = check_matrix(distmat.detach(), "distmat", finite=False)
    _check_finite_fast(distmat, "distmat")
    nq, ng = distmat.shape
    dev = distmat.device
    q_pid = _check_ids(q_pid, "q_pid", nq, "rows of 'distmat'", dev)
    g_pid = _check_ids(g_pid, "g_pid", ng, "columns of 'distmat'", dev)
    if exclude is not None and not isinstance(exclude, Exclusion):
        raise TypeError(f"'exclude' must be an Exclusion or None, got {type(exclude).__name__}")
    if exclude is not None and (q_camid is None or g_camid is None):
        raise ValueError(f"'q_camid' and 'g_camid' are required by exclude={exclude!r}")
    if q_camid is not None:
        q_camid = _check_ids(q_camid, "q_camid", nq, "rows of 'distmat'", dev)
    if g_camid is not None:
        g_camid = _check_ids(g_camid, "g_camid", ng, "columns of 'distmat'", dev)
    max_rank = check_int(max_rank, "max_rank", min_value=1)
    max_memory = check_int(max_memory, "max_memory", min_value=1)
    if chunk_size is None:
        chunk_size = max(1, max_memory // (_BYTES_PER_ENTRY * ng))
    else:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    if max_rank > ng:
        logger.warning(
            "max_rank=%d exceeds the gallery size %d; CMC entries past rank %d "
            "repeat the last reachable value",
            max_rank,
            ng,
            ng,
        )

    gal = _Gallery.build(g_pid, g_camid)
    ws = _Workspace()
    acc = torch.float32 if dev.type == "mps" else torch.float64
    ap = torch.zeros(nq, dtype=acc, device=dev)
    inp = torch.zeros(nq, dtype=acc, device=dev)
    first = torch.zeros(nq, dtype=torch.long, device=dev)
    n_pos = torch.zeros(nq, dtype=torch.long, device=dev)
    for s in range(0, nq, chunk_size):
        e = min(s + chunk_size, nq)
        d = distmat[s:e]
        if d.dtype in (torch.float16, torch.bfloat16):
            d = d.float()  # exact; half-precision kernels are patchy on CPU
        d = d.contiguous()
        qc = q_camid[s:e] if q_camid is not None else None
        ranks, npos, dfirst = _rank_chunk(
            d, q_pid[s:e], qc, gal, exclude, dedup_cmc, max_memory, ws
        )
        k = torch.arange(ranks.size(1), device=dev)
        real = k < npos[:, None]
        prec = torch.where(real, (k + 1).to(acc) / ranks.to(acc), 0)
        denom = npos.clamp(min=1).to(acc)
        ap[s:e] = prec.sum(1) / denom
        last = ranks.gather(1, (npos - 1).clamp(min=0)[:, None]).squeeze(1)
        inp[s:e] = npos.to(acc) / last.to(acc)
        first[s:e] = dfirst if dedup_cmc else ranks[:, 0]
        n_pos[s:e] = npos

    valid = n_pos > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        rule = "nothing removed" if exclude is None else f"after removal by {exclude!r}"
        raise ValueError(
            f"No valid query: none of the {nq} queries has a true match in the gallery "
            f"({rule}); check that 'q_pid' and 'g_pid' use the same identity labels"
        )
    firsts = first[valid].clamp(max=max_rank + 1)
    hits = torch.bincount(firsts, minlength=max_rank + 2)[1 : max_rank + 1]
    cmc = (hits.cumsum(0).to(acc) / num_valid).float()
    out: dict[str, Any] = {
        "cmc": cmc,
        "mAP": float(ap[valid].mean()),
        "mINP": float(inp[valid].mean()),
        "num_valid_queries": num_valid,
        "num_queries": nq,
    }
    if per_query:
        nan = torch.tensor(float("nan"), dtype=acc, device=dev)
        out["AP"] = torch.where(valid, ap, nan)
        out["INP"] = torch.where(valid, inp, nan)
        out["first_match_rank"] = torch.where(valid, first, 0)
        out["valid"] = valid
    return out


def evaluate(
    distmat: Any,
    q_pid: Any,
    g_pid: Any,
    q_camid: Any,
    g_camid: Any,
    max_rank: int = 50,
    *,
    chunk_size: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    per_query: bool = False,
) -> dict[str, Any]:
    r"""Standard single-query re-ID evaluation (Market-1501, DukeMTMC-reID, MSMT17).

    For each query, gallery images with the query's identity **and** camera
    are removed (torchreid ``eval_market1501``; open-reid ``market1501``
    config, ``first_match_break=True``); queries left without a true match are
    skipped and not counted in ``num_valid_queries``. Distractor identities
    (e.g. Market's ``0``) simply never match; dropping junk images (``-1``) is
    the dataset's job, not this function's. Metrics as in :func:`rank_metrics`:

    .. math::
        \mathrm{AP}_i = \frac{1}{P_i}\sum_{k=1}^{P_i} \frac{k}{r_{i,k}}, \qquad
        \mathrm{INP}_i = \frac{P_i}{r_{i,P_i}}, \qquad
        \mathrm{CMC}(r) = \frac{1}{Q}\sum_i [\,r_{i,1} \le r\,].

    Ties in distance are broken by gallery index (``numpy.argsort(...,
    kind="stable")`` order). Runs on ``distmat``'s device, chunked over queries.

    Args:
        distmat (Tensor or ndarray): Distances ``[N_q, N_g]``, finite.
        q_pid (Tensor or ndarray): Query identities ``[N_q]``.
        g_pid (Tensor or ndarray): Gallery identities ``[N_g]``.
        q_camid (Tensor or ndarray): Query cameras ``[N_q]`` (0-based).
        g_camid (Tensor or ndarray): Gallery cameras ``[N_g]``.
        max_rank (int, optional): CMC length; see :func:`rank_metrics` when it
            exceeds ``N_g``. (default: :obj:`50`)
        chunk_size (int, optional): Queries per chunk. (default: from
            ``max_memory``)
        max_memory (int, optional): Bytes for one chunk's intermediates.
            (default: 256 MiB)
        per_query (bool, optional): Add per-query results. (default:
            :obj:`False`)

    Returns:
        dict: ``cmc`` (float tensor ``[max_rank]``), ``mAP``, ``mINP``
        (floats in [0, 1]), ``num_valid_queries``, ``num_queries``.

    Raises:
        ValueError: If no query has a true match left after removal.

    Example:
        >>> d = torch.tensor([[0.2, 0.1, 0.4, 0.3]])
        >>> out = evaluate(d, [7], [7, 3, 7, 7], [0], [0, 1, 1, 2], max_rank=4)
        >>> # column 0 (same id, same cam) is removed; list: 3, 7(c2), 7(c1)
        >>> out["cmc"].tolist(), round(out["mAP"], 4)
        ([0.0, 1.0, 1.0, 1.0], 0.5833)
    """
    return rank_metrics(
        distmat,
        q_pid,
        g_pid,
        q_camid,
        g_camid,
        max_rank=max_rank,
        exclude=SAME_ID_SAME_CAM,
        chunk_size=chunk_size,
        max_memory=max_memory,
        per_query=per_query,
    )
