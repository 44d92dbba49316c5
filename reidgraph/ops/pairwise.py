r"""Chunked pairwise similarity and distance between two sets of feature vectors.

Every routine here visits the score matrix :math:`S \in \mathbb{R}^{N_q \times N_d}`
block by block, so peak memory is one block of at most ``max_block_bytes``
(default :obj:`DEFAULT_BLOCK_BYTES` = 256 MiB, i.e. 64 Mi float32 scores)
instead of :math:`N_q N_d` floats. :func:`~reidgraph.ops.topk`, the
k-reciprocal re-ranking and the graph builders all reuse these iterators.

Scores follow one convention everywhere (:func:`larger_is_better` tells which):

* ``"cosine"``: :math:`s_{ij} = \hat{a}_i^\top \hat{b}_j` with
  :math:`\hat{v} = v / \max(\lVert v \rVert_2, \epsilon)`; larger is closer.
* ``"ip"``: :math:`s_{ij} = a_i^\top b_j`; larger is closer.
* ``"euclidean"``: the *squared* distance
  :math:`s_{ij} = \lVert a_i \rVert^2 + \lVert b_j \rVert^2 - 2 a_i^\top b_j`,
  clamped at 0 (rounding can push it below); smaller is closer.

This is the decomposition that torchreid's ``euclidean_squared_distance`` and
faiss' ``IndexFlatL2`` use: one GEMM per block, :math:`O(N_q N_d d)` time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch

from reidgraph._validation import as_tensor, check_choice, check_int, check_matrix

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "METRICS",
    "l2_normalize",
    "larger_is_better",
    "block_shape",
    "iter_similarity_blocks",
    "iter_similarity_chunks",
    "pairwise_distance",
]

logger = logging.getLogger(__name__)

#: Default memory budget of one score block: 256 MiB (64 Mi float32 scores).
DEFAULT_BLOCK_BYTES: int = 256 * 2**20

#: Metric names accepted by :func:`iter_similarity_blocks` and :func:`~reidgraph.ops.topk`.
METRICS: tuple[str, ...] = ("cosine", "ip", "euclidean")

# Fewest query rows per block before the database side is tiled too: narrower
# GEMMs waste most of the BLAS throughput, and 256 rows x 256 MiB still allows
# 262,144 database columns per block.
_MIN_BLOCK_ROWS = 256


def l2_normalize(x: Any, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    r"""Scales vectors to unit :math:`L_2` norm.

    .. math::
        \hat{x} = \frac{x}{\max(\lVert x \rVert_2, \epsilon)}

    A zero vector stays zero (its cosine similarity to anything is 0), as in
    :func:`torch.nn.functional.normalize`, which this wraps.

    Args:
        x (torch.Tensor or numpy.ndarray): Input of any shape, floating point.
        dim (int, optional): Dimension to normalise. (default: :obj:`-1`)
        eps (float, optional): Lower bound on the norm. (default: :obj:`1e-12`)

    Returns:
        torch.Tensor: Same shape and device as ``x``.

    Example:
        >>> l2_normalize(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """
    x = as_tensor(x, "x")
    if not x.is_floating_point():
        x = x.float()
    return torch.nn.functional.normalize(x, p=2.0, dim=dim, eps=eps)


def larger_is_better(metric: str) -> bool:
    r"""Whether a larger score means closer under ``metric``.

    :obj:`True` for ``"cosine"`` and ``"ip"`` (similarities), :obj:`False` for
    ``"euclidean"`` (squared distance).

    Example:
        >>> larger_is_better("euclidean")
        False
    """
    return check_choice(metric, "metric", METRICS) != "euclidean"


def block_shape(
    n_rows: int,
    n_cols: int,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    element_size: int = 4,
) -> tuple[int, int]:
    r"""Rows and columns of one score block that fits in ``max_block_bytes``.

    Prefers full-width blocks (all ``n_cols`` columns, as many rows as fit),
    since then no running top-k merge is needed; it tiles the columns as well
    only when fewer than 256 rows would fit. The result always satisfies
    ``rows * cols * element_size <= max_block_bytes``, ``1 <= rows <= n_rows``
    and ``1 <= cols <= n_cols``.

    Args:
        n_rows (int): Number of query vectors :math:`N_q`.
        n_cols (int): Number of database vectors :math:`N_d`.
        max_block_bytes (int, optional): Budget of one block in bytes.
            (default: :obj:`DEFAULT_BLOCK_BYTES`, 256 MiB)
        element_size (int, optional): Bytes per score. (default: :obj:`4`)

    Returns:
        (int, int): ``(rows, cols)``.

    Example:
        >>> block_shape(100_000, 100_000)  # 671 rows x 100,000 cols = 256 MiB
        (671, 100000)
        >>> block_shape(1_000, 1_000_000)  # < 256 full rows fit: tile the columns
        (256, 262144)
    """
    n_rows = check_int(n_rows, "n_rows", min_value=0)
    n_cols = check_int(n_cols, "n_cols", min_value=0)
    element_size = check_int(element_size, "element_size", min_value=1)
    max_block_bytes = check_int(max_block_bytes, "max_block_bytes", min_value=element_size)
    n_rows, n_cols = max(n_rows, 1), max(n_cols, 1)
    cap = max_block_bytes // element_size  # scores per block, >= 1
    if n_rows * n_cols <= cap:
        return n_rows, n_cols
    full_width_rows = cap // n_cols
    if full_width_rows >= min(n_rows, _MIN_BLOCK_ROWS):
        return min(n_rows, full_width_rows), n_cols
    rows = min(n_rows, _MIN_BLOCK_ROWS, cap)
    return rows, max(1, min(n_cols, cap // rows))


def _check_inputs(
    x: Any, y: Any, xname: str, yname: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Validates a query/database pair: 2-D, real, finite, same ``d`` and device.

    Integer and bool inputs are converted to float32; half precision is
    promoted to float32 (CPU kernels for it are slow or missing); float64 is
    kept. Both come back in one common dtype.
    """
    for value, name in ((x, xname), (y, yname)):
        if isinstance(value, torch.Tensor) and value.is_complex():
            raise TypeError(f"'{name}' must be real-valued, got complex dtype {value.dtype}")
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "c":
            raise TypeError(f"'{name}' must be real-valued, got complex dtype {value.dtype}")
    x = check_matrix(x, xname, min_rows=0, min_cols=1)
    if y is not None:
        y = check_matrix(y, yname, min_rows=0, min_cols=1)
        if y.size(1) != x.size(1):
            raise ValueError(
                f"'{xname}' and '{yname}' must have the same feature dimension d, got "
                f"{xname}.shape={tuple(x.shape)} and {yname}.shape={tuple(y.shape)}"
            )
        if y.device != x.device:
            raise ValueError(
                f"'{xname}' and '{yname}' must be on the same device, got {x.device} and {y.device}"
            )
    dtype = x.dtype if y is None else torch.promote_types(x.dtype, y.dtype)
    if dtype != torch.float64:
        dtype = torch.float32
    x = x.to(dtype)
    if y is not None:
        y = y.to(dtype)
    return x, y


def _prepare_metric(
    x: torch.Tensor, y: torch.Tensor | None, metric: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    r"""Returns ``(a, b, a_sq, b_sq)``: operands for the block GEMM and, for
    the euclidean metric, the squared row norms."""
    if metric == "cosine":
        a = torch.nn.functional.normalize(x, dim=1)
        b = a if y is None else torch.nn.functional.normalize(y, dim=1)
        return a, b, None, None
    b = x if y is None else y
    if metric == "euclidean":
        a_sq = x.pow(2).sum(dim=1)
        b_sq = a_sq if y is None else y.pow(2).sum(dim=1)
        return x, b, a_sq, b_sq
    return x, b, None, None


def _score_block(
    a: torch.Tensor,
    b: torch.Tensor,
    a_sq: torch.Tensor | None,
    b_sq: torch.Tensor | None,
    metric: str,
    rows: slice,
    cols: slice,
    self_mode: bool,
    out: torch.Tensor | None = None,
    add_row_norms: bool = True,
) -> torch.Tensor:
    r"""Scores of ``a[rows]`` against ``b[cols]`` as one ``[r, c]`` block.

    With ``add_row_norms=False`` the euclidean block holds only
    :math:`\lVert b_j \rVert^2 - 2 a_i^\top b_j`, which ranks the columns of
    each row in the same order as the full distance: the top-k search adds
    :math:`\lVert a_i \rVert^2` to the ``k`` winners only, saving one pass
    over the block.
    """
    qa, db = a[rows], b[cols]
    if metric == "euclidean":
        if qa.dtype == b_sq.dtype:
            block = torch.addmm(b_sq[cols].unsqueeze(0), qa, db.T, alpha=-2.0, out=out)
        else:  # half-precision GEMM: the norms and the sum stay in float32
            block = torch.mm(qa, db.T).to(b_sq.dtype).mul_(-2.0).add_(b_sq[cols].unsqueeze(0))
        if add_row_norms:
            block.add_(a_sq[rows].unsqueeze(1)).clamp_(min=0.0)
        if self_mode:
            # d(i, i) = 0 exactly; the expansion leaves rounding noise there.
            _fill_self(block, rows, cols, None if add_row_norms else -a_sq)
        return block
    return torch.mm(qa, db.T, out=out)


def _fill_self(block: torch.Tensor, rows: slice, cols: slice, values: torch.Tensor | None) -> None:
    r"""Sets the entries ``(i, i)`` of a block to ``values[i]`` (or to 0)."""
    lo, hi = max(rows.start, cols.start), min(rows.stop, cols.stop)
    if lo >= hi:
        return
    ids = torch.arange(lo, hi, device=block.device)
    fill = block.new_zeros(()) if values is None else values[ids]
    block[ids - rows.start, ids - cols.start] = fill


def _check_block_args(
    metric: str, chunk_size: int | None, col_chunk_size: int | None, max_block_bytes: int
) -> str:
    metric = check_choice(metric, "metric", METRICS)
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", min_value=1)
    if col_chunk_size is not None:
        check_int(col_chunk_size, "col_chunk_size", min_value=1)
    check_int(max_block_bytes, "max_block_bytes", min_value=1)
    return metric


def iter_similarity_blocks(
    x: Any,
    y: Any = None,
    metric: str = "cosine",
    *,
    chunk_size: int | None = None,
    col_chunk_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    r"""Yields the score matrix of ``x`` against ``y`` in 2-D tiles.

    Tile shapes come from :func:`block_shape`, further capped by
    ``chunk_size`` (rows) and ``col_chunk_size`` (columns). Row-major order:
    all column tiles of one row band, then the next band. Each block is a new
    tensor (safe to keep).

    Args:
        x (torch.Tensor or numpy.ndarray): Queries ``[N_q, d]``.
        y (torch.Tensor or numpy.ndarray, optional): Database ``[N_d, d]``;
            :obj:`None` scores ``x`` against itself, and with
            ``metric="euclidean"`` sets the diagonal to exactly 0.
            (default: :obj:`None`)
        metric (str, optional): ``"cosine"``, ``"ip"`` or ``"euclidean"``
            (squared; see the module docstring). (default: :obj:`"cosine"`)
        chunk_size (int, optional): Most rows per block. (default: :obj:`None`)
        col_chunk_size (int, optional): Most columns per block.
            (default: :obj:`None`)
        max_block_bytes (int, optional): Budget of one block in bytes.
            (default: :obj:`DEFAULT_BLOCK_BYTES`, 256 MiB)

    Yields:
        (slice, slice, torch.Tensor): ``(row_slice, col_slice, block)`` with
        ``block == S[row_slice, col_slice]``, on the input's device.

    Memory: one block plus the normalised copy of the inputs for ``"cosine"``
    (:math:`O((N_q + N_d) d)`). Time: :math:`O(N_q N_d d)`.

    Example:
        >>> x = torch.eye(3)
        >>> [tuple(b.shape) for _, _, b in iter_similarity_blocks(x, col_chunk_size=2)]
        [(3, 2), (3, 1)]
    """
    metric = _check_block_args(metric, chunk_size, col_chunk_size, max_block_bytes)
    x, y = _check_inputs(x, y, "x", "y")
    yield from _iter_blocks(
        x, y, metric, chunk_size, col_chunk_size, max_block_bytes, full_width=False
    )


def iter_similarity_chunks(
    x: Any,
    y: Any = None,
    metric: str = "cosine",
    *,
    chunk_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[tuple[slice, torch.Tensor]]:
    r"""Yields full rows of the score matrix of ``x`` against ``y``, a band at a time.

    The form that row-wise consumers want (k-reciprocal re-ranking, graph
    builders): each band holds complete rows ``S[row_slice, :]``, with as
    many rows as fit in ``max_block_bytes`` (capped by ``chunk_size``).

    Args:
        x (torch.Tensor or numpy.ndarray): Queries ``[N_q, d]``.
        y (torch.Tensor or numpy.ndarray, optional): Database ``[N_d, d]``;
            :obj:`None` means ``x`` itself. (default: :obj:`None`)
        metric (str, optional): ``"cosine"``, ``"ip"`` or ``"euclidean"``
            (squared). (default: :obj:`"cosine"`)
        chunk_size (int, optional): Most rows per band. (default: :obj:`None`)
        max_block_bytes (int, optional): Budget of one band in bytes; one row
            (:math:`4 N_d` bytes in float32) must fit.
            (default: :obj:`DEFAULT_BLOCK_BYTES`, 256 MiB)

    Yields:
        (slice, torch.Tensor): ``(row_slice, block)`` with
        ``block == S[row_slice, :]`` of shape ``[rows, N_d]``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> [(s, b.tolist()) for s, b in iter_similarity_chunks(x, metric="euclidean",
        ...                                                      chunk_size=1)]
        [(slice(0, 1, None), [[0.0, 5.0]]), (slice(1, 2, None), [[5.0, 0.0]])]
    """
    metric = _check_block_args(metric, chunk_size, None, max_block_bytes)
    x, y = _check_inputs(x, y, "x", "y")
    n_d = x.size(0) if y is None else y.size(0)
    row_bytes = n_d * x.element_size()
    if row_bytes > max_block_bytes:
        raise ValueError(
            f"'max_block_bytes' must hold at least one full row ({n_d} scores = {row_bytes} "
            f"bytes), got {max_block_bytes}; raise it or use iter_similarity_blocks, "
            "which tiles the columns too"
        )
    for rows, _, block in _iter_blocks(
        x, y, metric, chunk_size, None, max_block_bytes, full_width=True
    ):
        yield rows, block


def _iter_blocks(
    x: torch.Tensor,
    y: torch.Tensor | None,
    metric: str,
    chunk_size: int | None,
    col_chunk_size: int | None,
    max_block_bytes: int,
    full_width: bool,
) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    r"""Unvalidated core of the two public iterators."""
    n_q = x.size(0)
    a, b, a_sq, b_sq = _prepare_metric(x, y, metric)
    n_d = b.size(0)
    if n_q == 0 or n_d == 0:
        return
    rows, cols = block_shape(n_q, n_d, max_block_bytes, x.element_size())
    if full_width:
        rows, cols = max(1, max_block_bytes // (n_d * x.element_size())), n_d
        rows = min(rows, n_q)
    rows = min(rows, chunk_size or rows)
    cols = min(cols, col_chunk_size or cols)
    logger.debug("score blocks of %d x %d for %d x %d (%s)", rows, cols, n_q, n_d, metric)
    for r0 in range(0, n_q, rows):
        rs = slice(r0, min(r0 + rows, n_q))
        for c0 in range(0, n_d, cols):
            cs = slice(c0, min(c0 + cols, n_d))
            yield rs, cs, _score_block(a, b, a_sq, b_sq, metric, rs, cs, y is None)


def pairwise_distance(
    x: Any,
    y: Any = None,
    metric: str = "euclidean",
    *,
    chunk_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> torch.Tensor:
    r"""Dense distance matrix between the rows of ``x`` and ``y``.

    .. math::
        D_{ij} = \begin{cases}
            \max(0,\ \lVert x_i \rVert^2 + \lVert y_j \rVert^2 - 2 x_i^\top y_j)
                & \text{metric = "euclidean" (squared distance)} \\
            1 - \hat{x}_i^\top \hat{y}_j & \text{metric = "cosine"}
        \end{cases}

    The squared euclidean distance is what re-ID evaluation code ranks by
    (torchreid ``euclidean_squared_distance``; k-reciprocal re-ranking,
    Zhong et al. CVPR 2017, Sec. 4). For ``y=None`` the euclidean diagonal
    is exactly 0.

    **Memory cost**: the result itself takes :math:`4 N_x N_y` bytes
    (10 GiB for :math:`N = 50{,}000`); only call this where the dense matrix
    is really needed. Intermediates stay within one band of
    ``max_block_bytes``. Prefer :func:`~reidgraph.ops.topk` or
    :func:`iter_similarity_chunks` where possible. Time :math:`O(N_x N_y d)`.

    Args:
        x (torch.Tensor or numpy.ndarray): ``[N_x, d]``.
        y (torch.Tensor or numpy.ndarray, optional): ``[N_y, d]``; :obj:`None`
            means ``x``. (default: :obj:`None`)
        metric (str, optional): ``"euclidean"`` or ``"cosine"``.
            (default: :obj:`"euclidean"`)
        chunk_size (int, optional): Most rows computed at once.
            (default: :obj:`None`, from ``max_block_bytes``)
        max_block_bytes (int, optional): Budget of the intermediates in bytes.
            (default: :obj:`DEFAULT_BLOCK_BYTES`, 256 MiB)

    Returns:
        torch.Tensor: ``[N_x, N_y]`` on ``x``'s device, float32 (float64 for
        float64 input).

    Example:
        >>> pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        tensor([[ 0., 25.],
                [25.,  0.]])
    """
    metric = check_choice(metric, "metric", ("euclidean", "cosine"))
    _check_block_args(metric, chunk_size, None, max_block_bytes)
    x, y = _check_inputs(x, y, "x", "y")
    n_d = x.size(0) if y is None else y.size(0)
    out = x.new_empty((x.size(0), n_d))
    for rows, cols, block in _iter_blocks(
        x, y, metric, chunk_size, None, max_block_bytes, full_width=False
    ):
        if metric == "cosine":
            block = torch.sub(1.0, block, out=block)
        out[rows, cols] = block
    return out
