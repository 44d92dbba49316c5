r"""Exact and approximate top-k neighbour search, memory-bounded, torch or faiss."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from tqdm.auto import tqdm

from reidgraph._validation import check_choice, check_int
from reidgraph.ops import _faiss
from reidgraph.ops.pairwise import (
    DEFAULT_BLOCK_BYTES,
    METRICS,
    _check_inputs,
    _prepare_metric,
    _score_block,
    block_shape,
)

__all__ = ["topk", "BACKENDS", "PRECISIONS"]

logger = logging.getLogger(__name__)

#: Backend names accepted by :func:`topk`.
BACKENDS: tuple[str, ...] = ("auto", "torch", "faiss")
#: GEMM precisions accepted by :func:`topk` (anything but ``"fp32"`` needs CUDA).
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16")


def topk(
    query: Any,
    k: int,
    database: Any = None,
    metric: str = "cosine",
    backend: str = "auto",
    *,
    approximate: bool = False,
    nlist: int | None = None,
    nprobe: int = 8,
    seed: int = 0,
    precision: str = "fp32",
    chunk_size: int | None = None,
    col_chunk_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    verbose: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ``k`` nearest database vectors of every query vector.

    .. math::
        \mathcal{N}_k(q_i) = \operatorname*{arg\,top\text{-}k}_{j}\; s(q_i, b_j)

    with :math:`s` the cosine similarity :math:`\hat{q}_i^\top \hat{b}_j`
    (``"cosine"``, descending), the inner product (``"ip"``, descending) or
    the squared euclidean distance
    :math:`\lVert q_i \rVert^2 + \lVert b_j \rVert^2 - 2 q_i^\top b_j`
    clamped at 0 (``"euclidean"``, ascending). This is the visual kNN of
    MPRD (Sec. 3.2, :math:`\mathrm{NN}_k(x_i) = \mathrm{top}(\langle
    \tilde{M}[i], \tilde{M}[j] \rangle, k)` on L2-normalised memory
    features, i.e. ``metric="cosine"``), of the G-Fusion graphs (Sec. 3.1
    Eq. 3-4 and Sec. 3.4, the top :math:`k_s = 3` and :math:`k_l = 60` of
    Sec. 4.2) and of k-reciprocal re-ranking (Zhong et al., CVPR 2017, Eq. 1).

    With ``database=None`` every query is searched among all queries,
    **itself included**: G-Fusion counts a node as its own first neighbour
    (Sec. 4.5: with :math:`k_s = 1` "each node's neighborhood only includes
    itself").
    For ``"cosine"`` and ``"euclidean"`` self comes first unless another
    vector ties with it (an exact duplicate, or a zero vector under cosine);
    for ``"ip"`` self need not be first at all. The torch backend sets the
    euclidean self-distance to exactly 0; faiss leaves its rounding noise.

    Backends:

    * ``"torch"``: one GEMM per block plus :func:`torch.topk`, with a running
      top-k merged across database blocks; CPU or CUDA.
    * ``"faiss"``: ``IndexFlatIP`` / ``IndexFlatL2`` (exact), or with
      ``approximate=True`` an ``IndexIVFFlat`` with ``nlist`` lists trained by
      k-means seeded with ``seed`` and ``nprobe`` lists visited per query;
      GPU faiss for CUDA input when the build supports it. faiss computes in
      float32.
    * ``"auto"``: faiss for CPU input when it is installed (and always for
      ``approximate=True``), torch for CUDA input or when faiss is missing.

    Exact backends return the same neighbours except among tied scores, and
    scores equal up to float32 rounding.

    **Cost**: time :math:`O(N_q N_d d)`. Memory, torch backend: one score
    block of at most ``max_block_bytes`` (tiles from
    :func:`~reidgraph.ops.block_shape`; never :math:`N_q \times N_d` when that
    is larger), plus :math:`O(r k)` for the running top-k of an ``r``-row band,
    the :math:`O(N_q k)` result and, for ``"cosine"``, normalised copies of the
    inputs (:math:`O((N_q + N_d) d)`); ``precision="fp16"`` adds half-precision
    operand copies and up to 0.5x the block budget. faiss bounds its own
    blocks (4,096 queries x 1,024 database vectors) and keeps a float32 copy of
    the database (:math:`4 N_d d` bytes).

    Args:
        query (torch.Tensor or numpy.ndarray): Queries ``[N_q, d]``. Integer
            input is converted to float32, half precision promoted to float32.
        k (int): Neighbours per query, ``1 <= k <= N_d``.
        database (torch.Tensor or numpy.ndarray, optional): ``[N_d, d]``, on
            the query's device; :obj:`None` searches ``query`` among itself.
            (default: :obj:`None`)
        metric (str, optional): ``"cosine"``, ``"ip"`` or ``"euclidean"``.
            (default: :obj:`"cosine"`)
        backend (str, optional): ``"auto"``, ``"torch"`` or ``"faiss"``.
            (default: :obj:`"auto"`)
        approximate (bool, optional): IVF search (faiss only).
            (default: :obj:`False`)
        nlist (int, optional): IVF lists, :math:`1 \le` ``nlist`` :math:`\le N_d`.
            (default: :obj:`None`, :math:`\lceil 4\sqrt{N_d}\rceil` capped at
            :math:`N_d / 39`)
        nprobe (int, optional): IVF lists visited per query, capped at
            ``nlist`` (``nprobe == nlist`` is exact). (default: :obj:`8`)
        seed (int, optional): Seed of the IVF k-means. (default: :obj:`0`)
        precision (str, optional): GEMM precision of the torch backend on
            CUDA: ``"fp32"`` (exact; TF32 switched off for the call),
            ``"tf32"`` or ``"fp16"`` (scores returned in float32).
            (default: :obj:`"fp32"`)
        chunk_size (int, optional): Most query rows per block (torch).
            (default: :obj:`None`, from ``max_block_bytes``)
        col_chunk_size (int, optional): Most database rows per block (torch).
            (default: :obj:`None`, from ``max_block_bytes``)
        max_block_bytes (int, optional): Memory budget of one score block
            (torch). (default: :obj:`DEFAULT_BLOCK_BYTES`, 256 MiB)
        verbose (bool, optional): tqdm progress bar over query bands (torch).
            (default: :obj:`False`)

    Returns:
        (torch.Tensor, torch.Tensor): ``scores`` ``[N_q, k]`` (float32, or
        float64 for float64 input on the torch backend) and ``indices``
        ``[N_q, k]`` (int64) into ``database``, best first, on the query's
        device. IVF slots left empty have index ``-1`` and score ``-inf``
        (``+inf`` for ``"euclidean"``), with a logged warning.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> scores, index = topk(x, 2, metric="euclidean", backend="torch")
        >>> index
        tensor([[0, 1],
                [1, 0],
                [2, 1]])
        >>> scores
        tensor([[0., 1.],
                [0., 1.],
                [0., 4.]])
    """
    metric = check_choice(metric, "metric", METRICS)
    backend = check_choice(backend, "backend", BACKENDS)
    precision = check_choice(precision, "precision", PRECISIONS)
    if not isinstance(approximate, bool):
        raise TypeError(f"'approximate' must be a bool, got {type(approximate).__name__}")
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", min_value=1)
    if col_chunk_size is not None:
        check_int(col_chunk_size, "col_chunk_size", min_value=1)
    x, y = _check_inputs(query, database, "query", "database")
    check_int(max_block_bytes, "max_block_bytes", min_value=x.element_size())
    n_d = x.size(0) if y is None else y.size(0)
    k = check_int(
        k,
        "k",
        min_value=1,
        max_value=n_d,
        max_reason=f"k cannot exceed the number of database vectors, {n_d}",
    )
    backend = _resolve_backend(backend, x.device, approximate, precision)
    if approximate:
        nlist, nprobe = _check_ivf(nlist, nprobe, n_d)
        seed = check_int(seed, "seed", min_value=0)
    elif nlist is not None:
        raise ValueError(f"'nlist' is used only with approximate=True, got nlist={nlist}")

    if x.size(0) == 0:
        return x.new_empty((0, k)), torch.empty((0, k), dtype=torch.long, device=x.device)
    if backend == "faiss":
        a, b, _, _ = _prepare_metric(x, y, metric if metric == "cosine" else "ip")
        scores, index = _faiss.faiss_search(
            a, b, k, metric, approximate=approximate, nlist=nlist, nprobe=nprobe, seed=seed
        )
        return scores.to(x.dtype), index
    return _topk_torch(
        x, y, k, metric, chunk_size, col_chunk_size, max_block_bytes, precision, verbose
    )


def _resolve_backend(backend: str, device: torch.device, approximate: bool, precision: str) -> str:
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(
            f"precision={precision!r} needs CUDA tensors (TF32/fp16 GEMMs), got input on "
            f"{device}; use precision='fp32'"
        )
    if backend == "auto":
        if approximate or (device.type != "cuda" and _faiss.load_faiss() is not None):
            backend = "faiss"
        else:
            backend = "torch"
    if backend == "faiss":
        _faiss.require_faiss()
        if precision != "fp32":
            raise ValueError(
                f"precision={precision!r} applies to the torch backend only; faiss computes "
                "in float32"
            )
    elif approximate:
        raise ValueError(
            "approximate=True needs backend='faiss' (IVF index); the torch backend is exact only"
        )
    return backend


def _check_ivf(nlist: int | None, nprobe: int, n_d: int) -> tuple[int, int]:
    if nlist is None:
        nlist = _faiss.default_nlist(n_d)
    else:
        nlist = check_int(
            nlist,
            "nlist",
            min_value=1,
            max_value=n_d,
            max_reason=f"each IVF list needs a training vector; the database has {n_d}",
        )
    nprobe = check_int(nprobe, "nprobe", min_value=1)
    return nlist, min(nprobe, nlist)


@contextlib.contextmanager
def _matmul_precision(device: torch.device, precision: str) -> Iterator[None]:
    r"""Allows or forbids TF32 in CUDA float32 GEMMs for the duration of a call."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _topk_torch(
    x: torch.Tensor,
    y: torch.Tensor | None,
    k: int,
    metric: str,
    chunk_size: int | None,
    col_chunk_size: int | None,
    max_block_bytes: int,
    precision: str,
    verbose: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Blocked GEMM + :func:`torch.topk` with a running top-k across database blocks."""
    largest = metric != "euclidean"
    self_mode = y is None
    a, b, a_sq, b_sq = _prepare_metric(x, y, metric)
    if precision == "fp16":
        a, b = a.half(), (a.half() if b is a else b.half())
    n_q, n_d = a.size(0), b.size(0)
    rows, cols = block_shape(n_q, n_d, max_block_bytes, x.element_size())
    rows, cols = min(rows, chunk_size or rows), min(cols, col_chunk_size or cols)
    logger.debug("topk(torch): %d x %d blocks for %d x %d, k=%d", rows, cols, n_q, n_d, k)

    scores = x.new_empty((n_q, k))
    index = torch.empty((n_q, k), dtype=torch.long, device=x.device)
    # One block's storage, reused: re-allocating a large block per step costs
    # page faults comparable to a small GEMM.
    buffer = a.new_empty(rows * cols) if precision != "fp16" else None
    with _matmul_precision(x.device, precision):
        for r0 in tqdm(range(0, n_q, rows), desc="topk", disable=not verbose):
            rs = slice(r0, min(r0 + rows, n_q))
            best_v = best_i = None
            for c0 in range(0, n_d, cols):
                cs = slice(c0, min(c0 + cols, n_d))
                n_r, n_c = rs.stop - rs.start, cs.stop - cs.start
                out = None if buffer is None else buffer[: n_r * n_c].view(n_r, n_c)
                block = _score_block(
                    a, b, a_sq, b_sq, metric, rs, cs, self_mode, out=out, add_row_norms=False
                )
                v, i = torch.topk(block, min(k, n_c), dim=1, largest=largest)
                i += c0
                if best_v is None:
                    best_v, best_i = v, i
                else:
                    v, i = torch.cat([best_v, v], dim=1), torch.cat([best_i, i], dim=1)
                    best_v, pos = torch.topk(v, min(k, v.size(1)), dim=1, largest=largest)
                    best_i = i.gather(1, pos)
            if metric == "euclidean":
                # The blocks left out ||q_i||^2, which does not change a row's order.
                best_v = best_v.to(x.dtype).add_(a_sq[rs].unsqueeze(1)).clamp_(min=0.0)
            scores[rs] = best_v
            index[rs] = best_i
    return scores, index
