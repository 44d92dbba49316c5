r"""TLift: temporal lifting of re-ID scores (QAConv-TLift, ECCV 2020, Sec. 4, Eq. 3).

People walking together in one camera are likely still together in the next.
For a query :math:`A` in camera :math:`Q`, TLift takes the probes that
co-occur with it in :math:`Q` (:math:`R = \{B \in Q : |\Delta T_{AB}| <
\tau\}`, :math:`A` itself included), their top cross-camera retrievals in a
gallery camera :math:`G` as pivots :math:`P`, and lifts the scores of gallery
images of :math:`G` that lie near the pivots in time (Eq. 3):

.. math::
    p_t(A, X) = \frac{1}{|P|} \sum_{B \in P} e^{-\Delta T_{BX}^2 / \sigma^2},
    \qquad p(A, X) = \big(p_t(A, X) + \alpha\big)\, p_a(A, X).

The pivot rule follows the authors' public code (``reid/tlift.py``, see
``REFERENCE_NOTES.md`` A.1): the threshold is the :math:`K`-th largest score
of the whole block ``score[R, G]`` and every entry at or above it is a pivot
(a gallery image chosen by several co-occurring probes counts once per
probe), so :math:`|P| \ge K`, more only on ties.

**How it stays fast.** The public code loops over probes and sorts the whole
``|R| x |G|`` block each time (about 1,000 s on Market-1501 in the paper,
Sec. 5.5). Here everything is batched:

1. Probes are sorted by (camera, time); every co-occurrence set :math:`R` is a
   contiguous range ``[lo, hi)`` of that order, found for all probes at once
   by a vectorised bisection on exactly the reference test
   :math:`|t_i - t_j| < \tau` (float64).
2. Per gallery camera, each probe row keeps its top-:math:`K` scores (one
   pass over the score matrix, by cache-sized row bands). The block's
   :math:`K`-th largest score is the :math:`K`-th largest of the union of its
   rows' top-:math:`K` lists (the block's top :math:`K` lie in them), so a
   probe needs ``|R| K`` gathered values, not ``|R| |G|``. Ties at a row's
   :math:`K`-th value that spill beyond its list are detected from a
   :math:`(K+1)`-th score and added exactly.
3. Gallery columns are taken in (camera, time) order. The pivots' kernel
   rows :math:`e^{-(t_b - t_x)^2/\sigma^2}` are computed once per distinct
   pivot, a block of columns at a time (pivots farther than
   :math:`\sigma\sqrt{80}` from the block add less than :math:`e^{-80}` and
   are skipped), summed per probe with
   :func:`torch.nn.functional.embedding_bag` (duplicates kept) and divided by
   :math:`|P|` into the output buffer; a last banded pass puts the columns
   back in the caller's order and multiplies by the scores.

**Cost.** Time :math:`O(N_q N_g \bar P + \sum_i |R_i| K + \sum_G U_G N_G)`
with :math:`\bar P \approx K` the mean pivot count per (probe, camera) and
:math:`U_G` the distinct pivots in camera :math:`G` (besides a top-k and three
passes over the :math:`N_q \times N_g` matrix); no per-probe Python loop.
Memory: the output (:math:`N_q N_g` floats) plus :math:`O(N_q K)` per camera
and blocks of at most ``max_memory`` bytes (16 MiB on CPU).
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from reidgraph._validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_int,
    check_matrix,
    check_same_length,
    check_vector,
)

__all__ = [
    "TLiftParams",
    "TLIFT_PRESETS",
    "SCORE_KINDS",
    "tlift",
    "scores_from_distance",
    "fit_sigmoid",
]

logger = logging.getLogger(__name__)

#: Default memory budget for one chunk's intermediates (bytes).
DEFAULT_MAX_MEMORY: int = 256 * 2**20
# Size of one temporary block on CPU. Blocks of a few MiB are recycled by the
# allocator from call to call; fresh large buffers cost a page fault per 4 KiB,
# which on virtual machines is slower than the arithmetic itself. GPUs (caching
# allocator, launch overhead) use `max_memory` instead.
_BLOCK_BYTES = 16 * 2**20
# Largest exponent evaluated: kernel terms below exp(-zmax) (float32: 1.8e-35,
# float64: 9.9e-305, both normal numbers) are floored to it or dropped, an
# absolute error far below rounding.
_EXP_FLOOR = {torch.float32: 80.0, torch.float64: 700.0}
# Rows of the score matrix handled together on CPU so that they stay in cache.
_CACHE_BYTES = 2 * 2**20


@dataclass(frozen=True)
class TLiftParams:
    r"""TLift hyper-parameters (QAConv-TLift Sec. 4, Eq. 3).

    Args:
        tau (float): Co-occurrence window :math:`\tau` in seconds: probes
            :math:`i, j` of one camera co-occur when :math:`|t_i - t_j| < \tau`.
        sigma (float): Kernel width :math:`\sigma` in seconds (Eq. 3).
        k (int): Pivots per block :math:`K` (the threshold is the block's
            :math:`K`-th largest score).
        alpha (float): Regulariser :math:`\alpha` of the fusion
            :math:`(p_t + \alpha) p_a`.
    """

    tau: float
    sigma: float
    k: int
    alpha: float


#: Named parameter sets. ``"code"`` (the default) is the authors' public
#: implementation (``reid/tlift.py`` signature: ``tau=100, sigma=200, K=10,
#: alpha=0.2``); ``"paper"`` is QAConv-TLift Sec. 5.1 (:math:`K = \tau =
#: \sigma = 100`, :math:`\alpha = 0.1`).
TLIFT_PRESETS: dict[str, TLiftParams] = {
    "code": TLiftParams(tau=100.0, sigma=200.0, k=10, alpha=0.2),
    "paper": TLiftParams(tau=100.0, sigma=100.0, k=100, alpha=0.1),
}

#: Distance conventions :func:`scores_from_distance` converts.
SCORE_KINDS: tuple[str, ...] = ("rerank", "cosine", "sigmoid")

_SCORE_HINT = (
    "TLift expects a similarity in [0, 1] (the authors apply it to sigmoid scores or to "
    "1 - k-reciprocal distance): apply a sigmoid to logits, or use 1 - a distance "
    "normalised to [0, 1]; reidgraph.rerank.scores_from_distance(dist, kind='rerank' | "
    "'cosine' | 'sigmoid') converts, and fit_sigmoid calibrates a sigmoid on training pairs"
)


def _check_real(value: Any, name: str, *, positive: bool | None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if not (isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex):
            raise TypeError(f"'{name}' must be a real number, got {type(value).__name__}")
        value = value.item()
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"'{name}' must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"'{name}' must be > 0, got {value}")
    if positive is False and value < 0:
        raise ValueError(f"'{name}' must be >= 0, got {value}")
    return value


def _resolve_params(preset: Any, tau: Any, sigma: Any, k: Any, alpha: Any) -> TLiftParams:
    base = TLIFT_PRESETS[check_choice(preset, "preset", tuple(TLIFT_PRESETS))]
    return TLiftParams(
        tau=base.tau if tau is None else _check_real(tau, "tau", positive=True),
        sigma=base.sigma if sigma is None else _check_real(sigma, "sigma", positive=True),
        k=base.k if k is None else check_int(k, "k", min_value=1),
        alpha=base.alpha if alpha is None else _check_real(alpha, "alpha", positive=False),
    )


def _check_cams(value: Any, name: str, length: int, what: str, device) -> Tensor:
    out = check_vector(value, name, length=length, length_of=what)
    if out.is_floating_point() or out.is_complex() or out.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold integer camera ids, got dtype {out.dtype}")
    out = out.to(device=device, dtype=torch.long)
    if out.numel() and int(out.min()) < 0:
        raise ValueError(f"'{name}' must hold 0-based camera ids (>= 0), got {int(out.min())}")
    return out


def _check_times(value: Any, name: str, length: int, what: str, device) -> Tensor:
    out = check_vector(value, name, length=length, length_of=what)
    if out.is_complex() or out.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold timestamps (real numbers), got dtype {out.dtype}")
    # float64: the co-occurrence test and the time differences must not lose the
    # sub-second resolution of clocks that run for hours.
    out = out.to(device=device, dtype=torch.float64)
    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        raise ValueError(
            f"'{name}' must hold a finite timestamp (seconds) for every image: TLift needs "
            f"them, found {int(bad.sum())} NaN/inf of {out.numel()}"
        )
    return out


def _check_score(score: Any) -> Tensor:
    s = check_matrix(score, "score")
    lo, hi = torch.aminmax(s)
    if float(lo) < 0.0 or float(hi) > 1.0:
        raise ValueError(
            f"'score' must lie in [0, 1], got values in [{float(lo):.9g}, {float(hi):.9g}]. "
            + _SCORE_HINT
        )
    return s


def _windows(cam: Tensor, t: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    r"""Co-occurrence ranges ``[lo, hi)`` of every probe in (camera, time) order.

    ``j`` is in probe ``i``'s range iff both are in one camera and
    ``|t_i - t_j| < tau``; the predicate is monotone in ``j`` within a camera
    (rounding of a difference is monotone), so a bisection finds the exact
    bounds of the reference test.
    """
    n = t.numel()
    pos = torch.arange(n, device=t.device)
    seg_lo = torch.searchsorted(cam, cam, right=False)
    seg_hi = torch.searchsorted(cam, cam, right=True)
    # Both bounds at once, each the smallest x in [a, b] whose test holds (monotone):
    # row 0, lo: x in [seg_lo, pos] with t[pos] - t[x] < tau (x = pos always holds);
    # row 1, hi: x in [pos + 1, seg_hi] with x == seg_hi or t[x] - t[pos] >= tau.
    a = torch.stack([seg_lo, pos + 1])
    b = torch.stack([pos, seg_hi])
    upper = torch.tensor([[False], [True]], device=t.device)
    sign = torch.tensor([[1.0], [-1.0]], dtype=t.dtype, device=t.device)
    for _ in range(int((seg_hi - seg_lo).max()).bit_length() + 1):
        active = a < b
        mid = (a + b) // 2
        near = sign * (t - t[mid.clamp(max=n - 1)]) < tau  # |t_i - t_x| < tau, exactly
        hold = torch.where(upper, ~near | (mid >= seg_hi), near)
        b = torch.where(active & hold, mid, b)
        a = torch.where(active & ~hold, mid + 1, a)
    return a[0], a[1]


def _band_rows(n_rows: int, row_bytes: int, block_bytes: int, device: torch.device) -> int:
    # CPU: bands that stay in cache while one band is gathered, ranked and
    # multiplied camera by camera; GPU: as few launches as the budget allows.
    budget = _CACHE_BYTES if device.type == "cpu" else block_bytes
    return max(1, min(n_rows, budget // max(1, row_bytes)))


def _camera_topk(
    work: Tensor, cols: list[Tensor], k: int, block_bytes: int
) -> list[tuple[Tensor, Tensor]]:
    r"""Each gallery camera's top ``min(K + 1, N_c)`` scores per row (descending) and
    their columns local to the camera, in one pass over ``work`` by row bands.
    """
    nq, ng = work.shape
    dev = work.device
    tops = [
        (
            torch.empty(nq, min(k + 1, c.numel()), dtype=work.dtype, device=dev),
            torch.empty(nq, min(k + 1, c.numel()), dtype=torch.long, device=dev),
        )
        for c in cols
    ]
    band = _band_rows(nq, ng * work.element_size(), block_bytes, dev)
    for r0 in range(0, nq, band):
        blk = work[r0 : r0 + band]
        for c, (vals, idx) in zip(cols, tops, strict=True):
            r1 = r0 + blk.size(0)
            torch.topk(blk.index_select(1, c), vals.size(1), dim=1, out=(vals[r0:r1], idx[r0:r1]))
    return tops


def _pivots(
    vals: Tensor,
    idx: Tensor,
    work: Tensor,
    cols: Tensor,
    order: Tensor,
    inv_order: Tensor,
    lo: Tensor,
    wl: Tensor,
    wmax: int,
    k: int,
    block_bytes: int,
) -> tuple[Tensor, Tensor]:
    r"""All pivot entries of one gallery camera as (probe row, local column) pairs.

    The camera's score block is ``work[:, cols]``; ``vals``/``idx`` are its
    rows' top ``min(K + 1, N_c)`` scores and columns; ``lo``/``wl`` are the
    co-occurrence ranges in (camera, time) order of the probes. Returns the
    probe row (original numbering) and block column of every pivot: one per
    block entry at or above the probe's threshold, duplicates kept.
    """
    nq, ng = work.size(0), cols.numel()
    dev = work.device
    tie = None
    if ng > k:
        # A row whose (K+1)-th score equals its K-th may hold more entries at that
        # value than its top-K list shows; they are pivots when the K-th is the threshold.
        tie = vals[:, k] == vals[:, k - 1]
        vals, idx = vals[:, :k], idx[:, :k]
    kl = vals.size(1)
    vals_s, idx_s = vals[order], idx[order]

    thr = torch.empty(nq, dtype=vals.dtype, device=dev)
    rows, pcols = [], []
    width = wmax * kl
    per_row = width * (2 * vals.element_size() + 2) + 64
    chunk = max(1, min(nq, block_bytes // per_row))
    ar = torch.arange(wmax, device=dev)
    for start in range(0, nq, chunk):
        stop = min(nq, start + chunk)
        c_lo, c_wl = lo[start:stop], wl[start:stop]
        span = (c_lo[:, None] + ar).clamp_(max=nq - 1)  # [c, wmax] sorted positions
        valid = ar < c_wl[:, None]
        u = vals_s[span]  # [c, wmax, kl]
        u.masked_fill_(~valid[:, :, None], -math.inf)
        u = u.view(stop - start, width)
        t = u.topk(min(k, width), dim=1).values[:, -1]
        # A block of at most K entries: the reference takes its minimum, so all count.
        t = torch.where(c_wl * kl < k, torch.full_like(t, -math.inf), t)
        thr[start:stop] = t
        m = u >= t[:, None]
        m &= valid.repeat_interleave(kl, dim=1)
        r, e = m.nonzero(as_tuple=True)
        src = span[r, torch.div(e, kl, rounding_mode="floor")]
        rows.append(order[start + r])
        pcols.append(idx_s[src, e % kl])

    if tie is not None and bool(tie.any()):
        trow = tie.nonzero().view(-1)  # original rows with a spilling tie
        vk = vals[trow, k - 1]
        tr, tc = [], []
        step = max(1, block_bytes // (ng * (work.element_size() + 1)))
        for r0 in range(0, trow.numel(), step):
            rs = trow[r0 : r0 + step]
            eq = work.index_select(0, rs).index_select(1, cols) == vk[r0 : r0 + step, None]
            eq.scatter_(1, idx[rs], False)  # entries already in the top-K list
            r, c = eq.nonzero(as_tuple=True)
            tr.append(r + r0)
            tc.append(c)
        tr, tc = torch.cat(tr), torch.cat(tc)
        n_tail = torch.bincount(tr, minlength=trow.numel())
        tail_ptr = torch.cumsum(n_tail, 0) - n_tail
        # Row j lies in probe i's range iff i lies in j's (the test is symmetric).
        pos_j = inv_order[trow]
        n_pair = wl[pos_j]
        pj = torch.repeat_interleave(torch.arange(trow.numel(), device=dev), n_pair)
        first = torch.cumsum(n_pair, 0) - n_pair
        pi = lo[pos_j][pj] + torch.arange(pj.numel(), device=dev) - first[pj]
        keep = vk[pj] >= thr[pi]
        pj, pi = pj[keep], pi[keep]
        cnt = n_tail[pj]
        rep = torch.repeat_interleave(torch.arange(pj.numel(), device=dev), cnt)
        off = torch.arange(rep.numel(), device=dev) - (torch.cumsum(cnt, 0) - cnt)[rep]
        rows.append(order[pi[rep]])
        pcols.append(tc[tail_ptr[pj[rep]] + off])
    return torch.cat(rows), torch.cat(pcols)


def _temporal_weights(
    out: Tensor,
    rows: Tensor,
    piv: Tensor,
    t_block: Tensor,
    sigma: float,
    alpha: float,
    block_bytes: int,
) -> None:
    r"""Writes :math:`p_t + \alpha` (Eq. 3) of one gallery camera into ``out``.

    ``out`` is ``[N_q, N_c]`` (a column block); ``rows``/``piv`` list the
    pivots (probe row, block column) and ``t_block`` holds the block columns'
    timestamps in ascending order. Columns are processed in blocks; a pivot
    farther than :math:`\sigma \sqrt{z_{max}}` in time from every column of
    a block adds less than :math:`e^{-z_{max}}` there and is skipped.
    """
    nq, n_cols = out.shape
    rows, perm = torch.sort(rows, stable=True)
    piv = piv[perm]
    n_piv = torch.bincount(rows, minlength=nq)
    uniq, inv = torch.unique(piv, return_inverse=True)
    t_u = t_block[uniq]  # ascending, as block columns are in time order
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "tlift: camera of %d gallery images: %d pivots (%d distinct) for %d probes",
            n_cols,
            piv.numel(),
            uniq.numel(),
            nq,
        )
    per_col = uniq.numel() * 16 + nq * 8  # float64 exponents/kernel, float64 sums
    step = max(1, min(n_cols, block_bytes // per_col))
    zmax = _EXP_FLOOR[out.dtype]
    reach = sigma * math.sqrt(zmax)
    starts = torch.arange(0, n_cols, step, device=out.device)
    ends = (starts + step).clamp_(max=n_cols)
    first = torch.searchsorted(t_u, t_block[starts] - reach).tolist()
    last = torch.searchsorted(t_u, t_block[ends - 1] + reach, right=True).tolist()
    inv_sigma = 1.0 / sigma
    scale = 1.0 / n_piv.to(torch.float64)[:, None]
    for c0, c1, u0, u1 in zip(starts.tolist(), ends.tolist(), first, last, strict=True):
        if u0 == 0 and u1 == uniq.numel():
            idx, offsets = inv, torch.cumsum(n_piv, 0) - n_piv
        else:
            keep = (inv >= u0) & (inv < u1)
            idx = inv[keep] - u0
            n_keep = torch.bincount(rows[keep], minlength=nq)
            offsets = torch.cumsum(n_keep, 0) - n_keep
        z = (t_u[u0:u1, None] - t_block[None, c0:c1]).mul_(inv_sigma).square_()
        # Flooring the exponent keeps exp() out of the (very slow) subnormal range;
        # exp in float64, as rounding z to float32 would cost ~6e-8 * z relative.
        kern = z.clamp_(max=zmax).neg_().exp_()  # [U', c] kernel rows of Eq. 3, float64
        if kern.size(0) == 0:  # no pivot near these columns: p_t rounds to 0
            out[:, c0:c1] = alpha
            continue
        # Summed in float64: |P| is K = 100 in the paper, and float32 sums drift by ~sqrt(|P|) ulp.
        w = F.embedding_bag(idx, kern, offsets, mode="sum")  # [N_q, c], sum over near pivots
        out[:, c0:c1] = w.mul_(scale).add_(alpha)  # mean + alpha


def tlift(
    score: Any,
    q_camid: Any,
    g_camid: Any,
    q_time: Any,
    g_time: Any,
    *,
    tau: float | None = None,
    sigma: float | None = None,
    k: int | None = None,
    alpha: float | None = None,
    preset: str = "code",
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Tensor:
    r"""Temporal lifting of a query x gallery similarity (QAConv-TLift Sec. 4, Eq. 3).

    For query :math:`A` in camera :math:`Q` and every gallery camera
    :math:`G` (the query's own camera included: the public code keeps
    same-camera pairs because "in some public datasets they still evaluate
    negative pairs in the same camera"):

    .. math::
        R &= \{B \in Q : |t_A - t_B| < \tau\} \quad (A \in R), \\
        \theta &= K\text{-th largest of } \{s_{BX} : B \in R, X \in G\}
            \quad (\text{the minimum if there are} \le K), \\
        P &= \{(B, Y) : B \in R,\ Y \in G,\ s_{BY} \ge \theta\}, \\
        p_t(A, X) &= \frac{1}{|P|} \sum_{(B, Y) \in P} e^{-(t_Y - t_X)^2 / \sigma^2},
            \qquad X \in G, \\
        \mathrm{out}_{AX} &= \big(p_t(A, X) + \alpha\big)\, s_{AX}.

    The threshold is taken over the whole co-occurrence block, as in the
    authors' code, so :math:`|P| = K` without ties however many probes
    co-occur (more on ties at the threshold); a gallery image chosen by
    several co-occurring probes counts once per probe. Taking each probe's own
    top :math:`K` instead would give :math:`|R| K` pivots, most of them weak
    retrievals of the neighbours, and flattens :math:`p_t` (about 6 mAP
    points lower on the synthetic world; ``docs/rerank_tlift.md``).
    Ties at the threshold all count, as in the reference, so heavily
    quantised scores can give far more than :math:`K` pivots (and cost).
    Timestamps are seconds on one clock per camera (only within-camera
    differences are used); the datasets in :mod:`reidgraph.data` provide
    them.

    Parameters default to the authors' public implementation (``preset=
    "code"``: :math:`\tau = 100`, :math:`\sigma = 200`, :math:`K = 10`,
    :math:`\alpha = 0.2`); ``preset="paper"`` gives Sec. 5.1's :math:`K =
    \tau = \sigma = 100`, :math:`\alpha = 0.1`. Explicit arguments override
    the preset.

    The input must be a similarity in [0, 1], and TLift works as intended
    only on peaked, calibrated scores: the authors apply it to sigmoid scores
    or to ``1 - dist`` after k-reciprocal re-ranking (their docstring: "an
    average score around 0.01-0.1"). Use :func:`scores_from_distance`, with
    :func:`fit_sigmoid` for plain feature distances; ``(1 + cos) / 2`` is in
    range but lets time outweigh appearance.

    Numerics: times, kernel values and their sums are handled in float64,
    the score's float32/float64 precision otherwise (half precision is
    computed in float32), so float32 results are exact to about one rounding
    of the output; kernel terms below :math:`e^{-80}` (float32) or
    :math:`e^{-700}` (float64) are floored to that value or dropped, which
    keeps ``exp`` out of the slow subnormal range and skips far pivots.

    Cost: time :math:`O(N_q N_g \bar P + \sum_i |R_i| K)` with :math:`\bar P
    \approx K` pivots per (probe, gallery camera), plus one kernel value per
    (distinct pivot, gallery image of its camera), a top-k and three passes
    over the score matrix; memory: the :math:`N_q \times N_g` output plus
    :math:`O(N_q K)` per camera and blocks of at most ``max_memory`` bytes
    (16 MiB on CPU). Runs on ``score``'s device.

    Args:
        score (Tensor or ndarray): Similarity ``[N_q, N_g]`` in [0, 1].
        q_camid (Tensor or ndarray): Query cameras ``[N_q]``, integer, 0-based.
        g_camid (Tensor or ndarray): Gallery cameras ``[N_g]``.
        q_time (Tensor or ndarray): Query timestamps ``[N_q]`` in seconds.
        g_time (Tensor or ndarray): Gallery timestamps ``[N_g]`` in seconds.
        tau (float, optional): Co-occurrence window :math:`\tau > 0` (s).
            (default: :obj:`None`, the preset's: 100)
        sigma (float, optional): Kernel width :math:`\sigma > 0` (s).
            (default: :obj:`None`, the preset's: 200)
        k (int, optional): Pivots per block :math:`K \ge 1`.
            (default: :obj:`None`, the preset's: 10)
        alpha (float, optional): Regulariser :math:`\alpha \ge 0`.
            (default: :obj:`None`, the preset's: 0.2)
        preset (str, optional): ``"code"`` or ``"paper"``
            (:data:`TLIFT_PRESETS`). (default: :obj:`"code"`)
        max_memory (int, optional): Bytes of one block of intermediates
            (on CPU at most 16 MiB are used anyway). (default: 256 MiB)

    Returns:
        Tensor: The lifted similarity ``[N_q, N_g]`` (larger is better), in
        ``score``'s dtype and device.

    Raises:
        ValueError: ``score`` outside [0, 1] or not finite, lengths that do
            not match ``score``, negative camera ids, missing (NaN/inf)
            timestamps, :math:`\tau, \sigma \le 0`, :math:`K < 1`,
            :math:`\alpha < 0`, an unknown preset.
        TypeError: Non-integer camera ids, non-numeric parameters.

    Example:
        >>> s = torch.tensor([[0.9, 0.2], [0.1, 0.8]])
        >>> out = tlift(s, [0, 0], [1, 1], [0.0, 10.0], [500.0, 0.0], k=1, sigma=100.0)
        >>> # both probes co-occur; the block's top score 0.9 makes gallery 0 the pivot
        >>> torch.allclose(out, (torch.exp(-torch.tensor([[0.0, 25.0]])) + 0.2) * s)
        True
    """
    p = _resolve_params(preset, tau, sigma, k, alpha)
    max_memory = check_int(max_memory, "max_memory", min_value=1)
    s = _check_score(score)
    nq, ng = s.shape
    dev = s.device
    q_cam = _check_cams(q_camid, "q_camid", nq, "rows of 'score'", dev)
    g_cam = _check_cams(g_camid, "g_camid", ng, "columns of 'score'", dev)
    q_t = _check_times(q_time, "q_time", nq, "rows of 'score'", dev)
    g_t = _check_times(g_time, "g_time", ng, "columns of 'score'", dev)

    work = s if s.dtype in (torch.float32, torch.float64) else s.float()
    # Probes in (camera, time) order: co-occurrence sets are contiguous ranges.
    by_time = torch.argsort(q_t, stable=True)
    order = by_time[torch.argsort(q_cam[by_time], stable=True)]
    inv_order = torch.empty_like(order)
    inv_order[order] = torch.arange(nq, device=dev)
    lo, hi = _windows(q_cam[order], q_t[order], p.tau)
    wl = hi - lo
    wmax = int(wl.max())
    # Gallery in (camera, time) order: each camera is a contiguous column block.
    by_time = torch.argsort(g_t, stable=True)
    perm = by_time[torch.argsort(g_cam[by_time], stable=True)]
    counts = torch.unique_consecutive(g_cam[perm], return_counts=True)[1].tolist()
    ends = torch.tensor(counts).cumsum(0).tolist()
    bounds = [(e - c, e) for c, e in zip(counts, ends, strict=True)]
    t_perm = g_t[perm]

    cols = [perm[a:b] for a, b in bounds]
    block = min(max_memory, _BLOCK_BYTES) if dev.type == "cpu" else max_memory
    # Column block c of `lifted` holds p_t + alpha of gallery camera c, in (camera, time) order.
    lifted = torch.empty_like(work)
    tops = _camera_topk(work, cols, p.k, block)
    for (a, b), c, (vals, idx) in zip(bounds, cols, tops, strict=True):
        rows, piv = _pivots(vals, idx, work, c, order, inv_order, lo, wl, wmax, p.k, block)
        _temporal_weights(lifted[:, a:b], rows, piv, t_perm[a:b], p.sigma, p.alpha, block)

    # (p_t + alpha) * score in the caller's column order, band by band in place.
    inv_perm = torch.empty_like(perm)
    inv_perm[perm] = torch.arange(ng, device=dev)
    band = _band_rows(nq, ng * work.element_size(), block, dev)
    for r0 in range(0, nq, band):
        rs = slice(r0, r0 + band)
        lifted[rs] = lifted[rs].index_select(1, inv_perm).mul_(work[rs])
    out = lifted
    return out if out.dtype == s.dtype else out.to(s.dtype)


def scores_from_distance(
    dist: Any, kind: str = "rerank", *, shift: float = 0.0, temperature: float = 1.0
) -> Tensor:
    r"""Converts a distance into the [0, 1] similarity that :func:`tlift` expects.

    .. math::
        s = \begin{cases}
            1 - d & \texttt{"rerank"}:\ d \in [0, 1]
                \text{ (k-reciprocal re-ranked distance, as QAConv's evaluator)} \\
            1 - d / 2 & \texttt{"cosine"}:\ d = 1 - \cos \in [0, 2] \\
            \operatorname{sigmoid}\big(-(d - d_0) / T\big) & \texttt{"sigmoid"}
        \end{cases}

    The authors run TLift on ``1 - dist`` after k-reciprocal re-ranking
    (``reid/evaluators.py``) or on sigmoid scores (``reid/tlift.py``
    docstring: scores in [0, 1] "with an average score around 0.01-0.1").
    With the defaults, ``"sigmoid"`` reads ``d`` as a negated logit (QAConv's
    ``dist = -score``); for other distances take :math:`d_0, T` from
    :func:`fit_sigmoid` (Platt scaling on labelled training pairs), which
    gives calibrated match probabilities. ``"cosine"`` is in range but far
    from that regime (its mean is about 0.5): TLift's multiplicative fusion
    then lets time outweigh appearance, so prefer a fitted sigmoid.
    Out-of-range distances are refused, never clipped, except for rounding
    up to 1e-6 which is clamped.

    Args:
        dist (Tensor or ndarray): Distances ``[N_q, N_g]``, finite.
        kind (str, optional): ``"rerank"``, ``"cosine"`` or ``"sigmoid"``
            (:data:`SCORE_KINDS`). (default: :obj:`"rerank"`)
        shift (float, optional): :math:`d_0` of ``"sigmoid"``, the distance
            that maps to 0.5. (default: :obj:`0.0`)
        temperature (float, optional): :math:`T > 0` of ``"sigmoid"``
            (QAConv's ECCV code used ``sigmoid(logit / 10)``, i.e. 10).
            (default: :obj:`1.0`)

    Returns:
        Tensor: Similarities in [0, 1], same shape, dtype and device.

    Example:
        >>> scores_from_distance(torch.tensor([[0.0, 0.25, 1.0]]))
        tensor([[1.0000, 0.7500, 0.0000]])
        >>> scores_from_distance(torch.tensor([[0.0, 2.0]]), kind="sigmoid")
        tensor([[0.5000, 0.1192]])
    """
    d = check_matrix(dist, "dist")
    kind = check_choice(kind, "kind", SCORE_KINDS)
    shift = _check_real(shift, "shift", positive=None)
    temperature = _check_real(temperature, "temperature", positive=True)
    if kind == "sigmoid":
        return torch.sigmoid((d - shift) / -temperature)
    top = 1.0 if kind == "rerank" else 2.0
    lo, hi = torch.aminmax(d)
    if float(lo) < -1e-6 or float(hi) > top + 1e-6:
        raise ValueError(
            f"'dist' of kind {kind!r} must lie in [0, {top:g}], got values in "
            f"[{float(lo):.9g}, {float(hi):.9g}]; normalise it (e.g. divide by its maximum) "
            f"or pick another kind among {list(SCORE_KINDS)}"
        )
    return (1.0 - d / top).clamp_(0.0, 1.0)


def fit_sigmoid(
    dist: Any, positive: Any, *, l2: float = 1.0, max_iter: int = 100
) -> tuple[float, float]:
    r"""Platt scaling: the sigmoid of a distance that best predicts "same identity".

    Fits :math:`P(\text{match} \mid d) = \operatorname{sigmoid}(-(d - d_0) / T)`
    to labelled pairs by penalised maximum likelihood (logistic regression of
    the label on :math:`-d` with slope :math:`w = 1/T` and intercept
    :math:`d_0 / T`, loss :math:`\sum \text{BCE} + \tfrac{l_2}{2} w^2`,
    i.e. scikit-learn's ``LogisticRegression(C=1 / l2)``), by Newton's method
    in float64. The result turns any distance into calibrated scores for
    :func:`tlift` through ``scores_from_distance(dist, "sigmoid", shift=d0,
    temperature=T)``, the analogue of QAConv's sigmoid matching scores
    (trained with binary cross-entropy on pairs, Sec. 3). Fit on training
    pairs, e.g. all cross-camera pairs of the training split.

    Args:
        dist (Tensor or ndarray): Pair distances, any shape, finite.
        positive (Tensor or ndarray): Pair labels (bool or 0/1), same number
            of elements: :obj:`True` for pairs of one identity.
        l2 (float, optional): Penalty on the slope, :math:`\ge 0`.
            (default: :obj:`1.0`)
        max_iter (int, optional): Newton iterations at most. (default: :obj:`100`)

    Returns:
        tuple[float, float]: ``(shift, temperature)`` = :math:`(d_0, T)`.

    Raises:
        ValueError: Lengths differ, a class is missing, or matches are not
            closer than non-matches (the fitted slope is not positive).

    Example:
        >>> d = torch.tensor([0.1, 0.2, 0.3, 0.5, 0.6, 0.9, 0.3, 0.55])
        >>> y = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1])
        >>> shift, temperature = fit_sigmoid(d, y, l2=0.0)
        >>> round(shift, 3), temperature > 0
        (0.416, True)
    """
    d = as_tensor(dist, "dist").reshape(-1)
    y = as_tensor(positive, "positive").reshape(-1)
    check_same_length(dist=d, positive=y)
    if not d.is_floating_point():
        d = d.double()
    check_finite(d, "dist")
    if y.dtype != torch.bool and not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("'positive' must hold labels 0/1 or booleans")
    l2 = _check_real(l2, "l2", positive=False)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    x, y = -d.double(), y.to(device=d.device, dtype=torch.float64)
    n_pos = float(y.sum())
    if n_pos == 0 or n_pos == y.numel():
        raise ValueError(
            f"'positive' must hold both matches and non-matches, got {int(n_pos)} of {y.numel()}"
        )

    def loss(w: float, c: float) -> float:
        bce = F.binary_cross_entropy_with_logits(w * x + c, y, reduction="sum")
        return float(bce) + 0.5 * l2 * w * w

    # beta = (w, c): logit = w * (-d) + c; start from the prior log-odds.
    w, c = 0.0, math.log(n_pos / (y.numel() - n_pos))
    current = loss(w, c)
    for _ in range(max_iter):
        p = torch.sigmoid(w * x + c)
        r, h = p - y, p * (1.0 - p)
        hx = h * x
        grad = torch.tensor([float((r * x).sum()) + l2 * w, float(r.sum())], dtype=torch.float64)
        sxx, sx, s1 = float((hx * x).sum()) + l2 + 1e-12, float(hx.sum()), float(h.sum()) + 1e-12
        hess = torch.tensor([[sxx, sx], [sx, s1]], dtype=torch.float64)
        dw, dc = torch.linalg.solve(hess, grad).tolist()  # Newton step
        scale = 1.0
        while scale > 1e-10:  # backtracking keeps every step a descent step
            value = loss(w - scale * dw, c - scale * dc)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        w_new, c_new = w - scale * dw, c - scale * dc
        done = max(abs(w_new - w), abs(c_new - c)) <= 1e-10 * (1.0 + max(abs(w), abs(c)))
        w, c, current = w_new, c_new, value
        if done:
            break
    if not w > 0:
        raise ValueError(
            f"matches are not closer than non-matches in 'dist' (fitted slope {w:.4g} <= 0); "
            "is it a similarity rather than a distance?"
        )
    return c / w, 1.0 / w
