r"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), vectorised, sparse and chunked.

A drop-in for the widely used reference ``re_ranking(q_g_dist, q_q_dist,
g_g_dist, k1=20, k2=6, lambda_value=0.3)`` (person-re-ranking; the copies in
torchreid, QAConv and IICS), built on the kernels of
:mod:`reidgraph.ops.k_reciprocal`: ranked lists by top-k, k-reciprocal sets
and their expansion by batched set operations, encodings and query expansion
as sparse CSR rows, and the Jaccard sums over pairs that share a member only.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from reidgraph._validation import check_choice, check_int, check_matrix
from reidgraph.ops.k_reciprocal import (
    _check_k,
    _check_precision,
    _Columns,
    _encode,
    _feature_pair_fn,
    _jaccard_,
    _overlap_blocks,
    _rank_features,
    _RankState,
)
from reidgraph.ops.pairwise import DEFAULT_BLOCK_BYTES, _check_inputs

__all__ = ["k_reciprocal", "k_reciprocal_features"]

logger = logging.getLogger(__name__)


def _check_lambda(lambda_value: Any) -> float:
    if isinstance(lambda_value, bool) or not isinstance(lambda_value, numbers.Real):
        raise TypeError(
            f"'lambda_value' must be a float in [0, 1], got {type(lambda_value).__name__}"
        )
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"'lambda_value' must be in [0, 1], got {lambda_value}")
    return float(lambda_value)


def k_reciprocal(
    q_g: Any,
    q_q: Any,
    g_g: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    verbose: bool = False,
) -> Tensor:
    r"""k-reciprocal re-ranking of a query x gallery distance matrix.

    Same inputs, semantics and output as the reference ``re_ranking``: with
    :math:`D` the :math:`(N_q + N_g)^2` matrix
    :math:`\begin{bmatrix} D_{qq} & D_{qg} \\ D_{qg}^\top & D_{gg}\end{bmatrix}`,

    .. math::
        d(p, g) = \frac{D_{gp}^2}{\max_{j} D_{jp}^2}

    (the reference squares the given distances, divides each column by its
    maximum and transposes), ranked lists :math:`\mathcal{N}(p, k)` from
    :math:`d` (Sec. 3.1, Eq. 1), k-reciprocal sets :math:`\mathcal{R}(p,
    k_1)` on lists of :math:`k_1 + 1` (Eq. 2), their expansion with the
    :math:`\tfrac12 k_1` sets (Eq. 3), Gaussian encodings
    :math:`\mathcal{V}_{p,g} \propto e^{-d(p,g)}` summing to 1 (Eq. 6), local
    query expansion over :math:`\mathcal{N}(p, k_2)` (Eq. 9), the Jaccard
    distance (Eq. 7-8) and the final distance (Eq. 10):

    .. math::
        d^*(p, g) = (1 - \lambda)\, d_J(p, g) + \lambda\, d(p, g)

    for queries :math:`p` and gallery items :math:`g`. See
    :mod:`reidgraph.ops.k_reciprocal` for the kernels. Defaults are the
    paper's (Sec. 4.2: :math:`k_1 = 20`, :math:`k_2 = 6`, :math:`\lambda = 0.3`).
    Distances enter squared, as in the reference: pass euclidean (not
    squared) distances to rank on squared euclidean ones, or use
    :func:`k_reciprocal_features`.

    Results equal the reference to float32 rounding (about 1e-6) unless
    distances tie: tied neighbours may be ordered differently (the reference
    uses ``numpy.argsort``), which can change the sets.

    **Cost**: memory is dominated by the inputs (:math:`O((N_q + N_g)^2)`,
    given dense by this signature) and the :math:`N_q \times N_g` float32
    output; everything else is :math:`O(N k)` plus one band of
    ``max_block_bytes`` — no :math:`(N_q + N_g)^2` matrix is built. Time:
    :math:`O(N^2)` for the ranked lists (one pass over the inputs),
    :math:`O(N k^2)` for the sets and :math:`O(\sum_c n_c^2)` for the Jaccard
    sums (:math:`n_c` = encodings storing column :math:`c`).

    Args:
        q_g (torch.Tensor or numpy.ndarray): Query-gallery distances
            ``[N_q, N_g]``.
        q_q (torch.Tensor or numpy.ndarray): Query-query distances
            ``[N_q, N_q]``.
        g_g (torch.Tensor or numpy.ndarray): Gallery-gallery distances
            ``[N_g, N_g]``.
        k1 (int, optional): :math:`k_1`, ``1 <= k1 < N_q + N_g``.
            (default: :obj:`20`)
        k2 (int, optional): :math:`k_2`, ``1 <= k2 <= k1``. (default: :obj:`6`)
        lambda_value (float, optional): :math:`\lambda \in [0, 1]`.
            (default: :obj:`0.3`)
        max_block_bytes (int, optional): Budget of one band of distances and
            of one Jaccard block. (default: 256 MiB)
        verbose (bool, optional): Progress bars. (default: :obj:`False`)

    Returns:
        torch.Tensor: Re-ranked distances ``[N_q, N_g]``, float32, on the
        inputs' device.

    Example:
        >>> x = torch.tensor([[0.0], [10.0], [1.0], [3.0], [11.0], [14.0]])
        >>> d = torch.cdist(x, x)  # queries 0, 10; gallery 1, 3, 11, 14
        >>> k_reciprocal(d[:2, 2:], d[:2, :2], d[2:, 2:], k1=2, k2=1).round(decimals=4)
        tensor([[0.0085, 0.0433, 0.8852, 1.0000],
                [0.9430, 0.8470, 0.0279, 0.1119]])
    """
    lambda_value = _check_lambda(lambda_value)
    check_int(max_block_bytes, "max_block_bytes", min_value=1)
    q_g = check_matrix(q_g, "q_g")
    n_q, n_g = q_g.shape
    q_q = check_matrix(q_q, "q_q")
    g_g = check_matrix(g_g, "g_g")
    if not q_q.device == g_g.device == q_g.device:
        raise ValueError(
            "'q_g', 'q_q' and 'g_g' must be on one device, got "
            f"{q_g.device}, {q_q.device} and {g_g.device}"
        )
    if tuple(q_q.shape) != (n_q, n_q):
        raise ValueError(
            f"'q_q' must be [N_q, N_q] = [{n_q}, {n_q}] (N_q = rows of 'q_g'), got shape "
            f"{tuple(q_q.shape)}"
        )
    if tuple(g_g.shape) != (n_g, n_g):
        raise ValueError(
            f"'g_g' must be [N_g, N_g] = [{n_g}, {n_g}] (N_g = columns of 'q_g'), got shape "
            f"{tuple(g_g.shape)}"
        )
    n = n_q + n_g
    k1, k2, n_fwd = _check_k(k1, k2, n, "re_ranking", "queries + gallery")

    def squared(block: Tensor) -> Tensor:
        # The reference squares in the input dtype, then casts to float32.
        # `block` is always a fresh copy (cat, advanced indexing): square in place.
        return block.square_().to(torch.float32)

    out = torch.empty((n_q, n_g), dtype=torch.float32, device=q_g.device)
    state = _RankState(n, n_fwd, torch.float32, q_g.device, normalise=True)
    rows = max(1, max_block_bytes // (q_g.element_size() * n))
    # Row p of d is column p of D: [q_q[:, p], q_g[p]] for a query,
    # [q_g[:, p], g_g[:, p]] for a gallery item.
    for r0 in tqdm(range(0, n, rows), desc="k-reciprocal ranks", disable=not verbose):
        rs = slice(r0, min(r0 + rows, n))
        if rs.start < n_q:
            qs = slice(rs.start, min(rs.stop, n_q))
            band = squared(torch.cat([q_q[:, qs].T, q_g[qs]], dim=1))
            state.add(qs, band, normalise_first=True)
            out[qs] = band[:, n_q:]
        if rs.stop > n_q:
            gs = slice(max(rs.start, n_q) - n_q, rs.stop - n_q)
            band = squared(torch.cat([q_g[:, gs].T, g_g[:, gs].T], dim=1))
            state.add(slice(gs.start + n_q, gs.stop + n_q), band, normalise_first=True)

    def pair_fn(p: Tensor, g: Tensor) -> Tensor:
        val = torch.empty(p.numel(), dtype=torch.float32, device=p.device)
        pq, gq = p < n_q, g < n_q
        for mask, mat, r, c in (
            (pq & gq, q_q, g, p),
            (pq & ~gq, q_g, p, g - n_q),
            (~pq & gq, q_g, g, p - n_q),
            (~pq & ~gq, g_g, g - n_q, p - n_q),
        ):
            val[mask] = squared(mat[r[mask], c[mask]])
        return val / state.row_max.index_select(0, p)

    return _finish(state, out, n_q, k1, k2, lambda_value, pair_fn, max_block_bytes, verbose)


def _finish(
    state: _RankState,
    out: Tensor,
    n_q: int,
    k1: int,
    k2: int,
    lambda_value: float,
    pair_fn,
    max_block_bytes: int,
    verbose: bool,
) -> Tensor:
    r"""Encodings, Jaccard distance of queries to gallery, and the Eq. 10 mix into ``out``
    (which holds the normalised original distances on entry)."""
    if lambda_value == 1.0:
        return out  # d* = d; the Jaccard term has weight 0
    n = state.rank.size(0)
    crow, col, val = _encode(state, k1, k2, "re_ranking", pair_fn)
    val = val.float()
    logger.debug(
        "k-reciprocal: %d queries x %d gallery, k1=%d, k2=%d: %.1f encoding entries per item",
        n_q,
        n - n_q,
        k1,
        k2,
        col.numel() / n,
    )
    gallery = _Columns(crow, col, val, n_q, n, n)
    blocks = _overlap_blocks(crow, col, val, (0, n_q), gallery, max_block_bytes, verbose)
    for a0, a1, t in blocks:
        jac = _jaccard_(t).mul_(1.0 - lambda_value)
        out[a0:a1].mul_(lambda_value).add_(jac)
    return out


def k_reciprocal_features(
    q_x: Any,
    g_x: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    metric: str = "euclidean",
    precision: str = "fp32",
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    verbose: bool = False,
) -> Tensor:
    r"""k-reciprocal re-ranking from features, without any
    :math:`(N_q + N_g)^2` matrix.

    Equals :func:`k_reciprocal` on the euclidean distances of the features
    (``q_g = ‖q_i − g_j‖`` etc., which the re-ranking squares), i.e. the
    original distance is the squared euclidean distance divided by each
    row's maximum; ``metric="cosine"`` L2-normalises the features first
    (squared distance :math:`2 - 2\cos`). The ranked lists come from one GEMM
    per band of rows over the concatenated set (its row maxima and the
    query-gallery block are kept on the way), the rest as in
    :func:`k_reciprocal` (Zhong et al., CVPR 2017, Eq. 1-10).

    **Cost**: time :math:`O((N_q + N_g)^2 d)` (the all-vs-all GEMM, the
    floor of any exact method) plus :math:`O(N k^2 + \sum_c n_c^2)`; memory
    :math:`O(N k)` for lists and encodings, the features, one band of
    ``max_block_bytes`` and the :math:`N_q \times N_g` float32 output.

    Args:
        q_x (torch.Tensor or numpy.ndarray): Query features ``[N_q, d]``.
        g_x (torch.Tensor or numpy.ndarray): Gallery features ``[N_g, d]``,
            same device.
        k1 (int, optional): :math:`k_1`. (default: :obj:`20`)
        k2 (int, optional): :math:`k_2 \le k_1`. (default: :obj:`6`)
        lambda_value (float, optional): :math:`\lambda`. (default: :obj:`0.3`)
        metric (str, optional): ``"euclidean"`` or ``"cosine"``.
            (default: :obj:`"euclidean"`)
        precision (str, optional): GEMM precision on CUDA: ``"fp32"``,
            ``"tf32"`` or ``"fp16"`` (faster; near-ties may reorder).
            (default: :obj:`"fp32"`)
        max_block_bytes (int, optional): Budget of one band of distances and
            of one Jaccard block. (default: 256 MiB)
        verbose (bool, optional): Progress bars. (default: :obj:`False`)

    Returns:
        torch.Tensor: Re-ranked distances ``[N_q, N_g]``, float32, on the
        features' device.

    Example:
        >>> x = torch.tensor([[0.0], [10.0], [1.0], [3.0], [11.0], [14.0]])
        >>> k_reciprocal_features(x[:2], x[2:], k1=2, k2=1).round(decimals=4)
        tensor([[0.0085, 0.0433, 0.8852, 1.0000],
                [0.9430, 0.8470, 0.0279, 0.1119]])
    """
    lambda_value = _check_lambda(lambda_value)
    metric = check_choice(metric, "metric", ("euclidean", "cosine"))
    check_int(max_block_bytes, "max_block_bytes", min_value=1)
    q_x, g_x = _check_inputs(q_x, g_x, "q_x", "g_x")
    n_q, n_g = q_x.size(0), g_x.size(0)
    if n_q == 0 or n_g == 0:
        raise ValueError(f"'q_x' and 'g_x' must have at least one row each, got {n_q} and {n_g}")
    n = n_q + n_g
    k1, k2, n_fwd = _check_k(k1, k2, n, "re_ranking", "queries + gallery")
    precision = _check_precision(precision, q_x.device)
    x = torch.cat([q_x, g_x])
    if metric == "cosine":
        x = torch.nn.functional.normalize(x, dim=1)
    out = torch.empty((n_q, n_g), dtype=torch.float32, device=x.device)

    state = _rank_features(
        x, n_fwd, True, max_block_bytes, verbose, keep=(n_q, out), precision=precision
    )
    pair_fn = _feature_pair_fn(x, state)
    return _finish(state, out, n_q, k1, k2, lambda_value, pair_fn, max_block_bytes, verbose)
