r"""Rank-list pictures: a query next to its top-ranked gallery images, true
matches framed green and false ones red (as torchreid's
``visualize_ranked_results``, ``STYLE_NOTES.md`` 2.7).

Pure functions over arrays: :func:`rank_list` picks the gallery images the
evaluation protocol would show, :func:`draw_rank_list` composes the picture
as a ``uint8`` array, :func:`plot_rank_list` wraps it in a matplotlib
:class:`~matplotlib.figure.Figure` (imported lazily, no :mod:`pyplot`, no
display: safe under the ``Agg`` backend and in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from reidgraph._validation import as_tensor, check_int, check_matrix, check_vector

__all__ = ["rank_list", "draw_rank_list", "plot_rank_list", "GREEN", "RED", "QUERY_COLOR"]

#: Frame of a true match (RGB).
GREEN: tuple[int, int, int] = (0, 255, 0)
#: Frame of a false match (RGB).
RED: tuple[int, int, int] = (255, 0, 0)
#: Frame of the query (RGB).
QUERY_COLOR: tuple[int, int, int] = (0, 0, 0)
_BACKGROUND = 255


def rank_list(
    distmat: Any,
    query_index: Any,
    q_pid: Any,
    g_pid: Any,
    q_camid: Any,
    g_camid: Any,
    topk: int = 10,
    *,
    larger_is_better: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""The top-:math:`k` gallery images of some queries, as the single-query
    protocol ranks them.

    Gallery images with the query's identity **and** camera are skipped (the
    protocol of :func:`reidgraph.eval.evaluate`, and torchreid's
    ``visualize_ranked_results`` skips them too); ties in distance keep the
    lower gallery index first (``numpy.argsort(kind="stable")`` order).

    Args:
        distmat (torch.Tensor or numpy.ndarray): ``[N_q, N_g]`` distances (or
            similarities with ``larger_is_better``).
        query_index (array-like): ``[R]`` rows of ``distmat`` to list.
        q_pid, g_pid (array-like): Identities ``[N_q]``, ``[N_g]``.
        q_camid, g_camid (array-like): Cameras ``[N_q]``, ``[N_g]``.
        topk (int, optional): Images per query. (default: :obj:`10`)
        larger_is_better (bool, optional): ``distmat`` is a similarity.
            (default: :obj:`False`)

    Returns:
        (numpy.ndarray, numpy.ndarray): ``index`` ``[R, k]`` gallery indices
        best first and ``match`` ``[R, k]`` bool (same identity), with
        :math:`k` = ``topk``, or fewer when fewer valid gallery images remain
        (then ``index`` is padded with -1 and ``match`` with :obj:`False`).

    Example:
        >>> d = np.array([[0.1, 0.2, 0.3]])
        >>> idx, ok = rank_list(d, [0], [5], [5, 5, 6], [0], [0, 1, 1], topk=2)
        >>> idx.tolist(), ok.tolist()  # gallery 0: same id, same camera -> skipped
        ([[1, 2]], [[True, False]])
    """
    d = check_matrix(distmat, "distmat")
    n_q, n_g = d.shape
    rows = as_tensor(query_index, "query_index").long().reshape(-1)
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= n_q):
        raise ValueError(
            f"'query_index' must hold rows in [0, {n_q}), got range "
            f"[{int(rows.min())}, {int(rows.max())}]"
        )
    topk = check_int(topk, "topk", min_value=1)
    q_pid = check_vector(q_pid, "q_pid", length=n_q, length_of="rows of 'distmat'").long()
    g_pid = check_vector(g_pid, "g_pid", length=n_g, length_of="columns of 'distmat'").long()
    q_cam = check_vector(q_camid, "q_camid", length=n_q, length_of="rows of 'distmat'").long()
    g_cam = check_vector(g_camid, "g_camid", length=n_g, length_of="columns of 'distmat'").long()
    rows = rows.to(d.device)
    block = d.index_select(0, rows)
    qp, qc = q_pid.to(d.device)[rows], q_cam.to(d.device)[rows]
    junk = (g_pid.to(d.device)[None, :] == qp[:, None]) & (
        g_cam.to(d.device)[None, :] == qc[:, None]
    )
    key = -block if larger_is_better else block
    key = key.masked_fill(junk, float("inf"))
    order = torch.sort(key, dim=1, stable=True).indices
    k = min(topk, n_g)
    order = order[:, :k]
    valid = ~torch.gather(junk, 1, order)
    match = (g_pid.to(d.device)[order] == qp[:, None]) & valid
    index = torch.where(valid, order, torch.full_like(order, -1))
    return index.cpu().numpy(), match.cpu().numpy()


def _check_images(value: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        raise TypeError(f"'{name}' must be uint8 RGB images, got dtype {arr.dtype}")
    if arr.ndim != ndim or arr.shape[-1] != 3:
        want = "[R, H, W, 3]" if ndim == 4 else "[R, K, H, W, 3]"
        raise ValueError(f"'{name}' must have shape {want}, got shape {arr.shape}")
    return arr


def draw_rank_list(
    query_images: Any,
    gallery_images: Any,
    matches: Any,
    *,
    border: int = 5,
    gap: int = 10,
) -> np.ndarray:
    r"""Composes rank lists into one ``uint8`` RGB picture.

    Row :math:`r` shows ``query_images[r]`` framed in :data:`QUERY_COLOR`,
    a gap, then ``gallery_images[r, 0..K-1]`` framed :data:`GREEN` where
    ``matches[r, k]`` and :data:`RED` elsewhere (torchreid's ``BW = 5``
    pixel frames). Every slot is drawn: to show a list shorter than ``K``
    (``index == -1`` from :func:`rank_list`), pass blank images there; they
    are framed red like any non-match.

    Args:
        query_images (numpy.ndarray): ``[R, H, W, 3]`` uint8.
        gallery_images (numpy.ndarray): ``[R, K, H, W, 3]`` uint8.
        matches (numpy.ndarray): ``[R, K]`` bool.
        border (int, optional): Frame width in pixels. (default: :obj:`5`)
        gap (int, optional): White space between cells. (default: :obj:`10`)

    Returns:
        numpy.ndarray: ``[R (H + 2b) + (R - 1) g, (K + 1)(W + 2b) + (K + 1) g, 3]``
        uint8 (one extra gap after the query).

    Example:
        >>> q = np.zeros((1, 4, 2, 3), np.uint8)
        >>> g = np.zeros((1, 2, 4, 2, 3), np.uint8)
        >>> canvas = draw_rank_list(q, g, np.array([[True, False]]), border=1, gap=2)
        >>> canvas.shape, canvas[0, 8].tolist()  # first gallery frame (x = 4 + 2 + 2): green
        ((6, 18, 3), [0, 255, 0])
    """
    q = _check_images(query_images, "query_images", 4)
    g = _check_images(gallery_images, "gallery_images", 5)
    border = check_int(border, "border", min_value=0)
    gap = check_int(gap, "gap", min_value=0)
    r, h, w = q.shape[:3]
    if g.shape[0] != r or g.shape[2:4] != (h, w):
        raise ValueError(
            f"'gallery_images' must have shape [R={r}, K, H={h}, W={w}, 3] to match "
            f"'query_images', got shape {g.shape}"
        )
    k = g.shape[1]
    m = np.asarray(matches)
    if m.shape != (r, k):
        raise ValueError(f"'matches' must have shape [R, K] = [{r}, {k}], got shape {m.shape}")
    if m.dtype != np.bool_:
        raise TypeError(f"'matches' must be bool, got dtype {m.dtype}")
    ch, cw = h + 2 * border, w + 2 * border
    canvas = np.full(
        (r * ch + (r - 1) * gap, (k + 1) * cw + (k + 1) * gap, 3), _BACKGROUND, np.uint8
    )

    def put(row: int, col: int, image: np.ndarray, color: tuple[int, int, int]) -> None:
        y = row * (ch + gap)
        x = col * (cw + gap) + (gap if col > 0 else 0)  # one extra gap after the query
        canvas[y : y + ch, x : x + cw] = color
        canvas[y + border : y + border + h, x + border : x + border + w] = image

    for i in range(r):  # loops over the few pictured cells, not over data
        put(i, 0, q[i], QUERY_COLOR)
        for j in range(k):
            put(i, j + 1, g[i, j], GREEN if m[i, j] else RED)
    return canvas


def plot_rank_list(
    query_images: Any,
    gallery_images: Any,
    matches: Any,
    *,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    border: int = 5,
    gap: int = 10,
    scale: float = 2.0,
    dpi: int = 100,
) -> Any:
    r"""A rank-list figure (:func:`draw_rank_list`) with row labels and ranks.

    Args:
        query_images (numpy.ndarray): ``[R, H, W, 3]`` uint8.
        gallery_images (numpy.ndarray): ``[R, K, H, W, 3]`` uint8.
        matches (numpy.ndarray): ``[R, K]`` bool.
        row_labels (list[str], optional): One label per row, e.g. the
            ranking that produced it. (default: :obj:`None`)
        title (str, optional): Figure title. (default: :obj:`None`)
        border (int, optional): Frame width. (default: :obj:`5`)
        gap (int, optional): Space between cells. (default: :obj:`10`)
        scale (float, optional): Screen pixels per image pixel.
            (default: :obj:`2.0`)
        dpi (int, optional): Figure resolution. (default: :obj:`100`)

    Returns:
        matplotlib.figure.Figure: Save it with ``fig.savefig(path)``.

    Example:
        >>> q = np.zeros((2, 8, 4, 3), np.uint8)
        >>> g = np.zeros((2, 3, 8, 4, 3), np.uint8)
        >>> fig = plot_rank_list(q, g, np.ones((2, 3), bool), row_labels=["a", "b"])
        >>> len(fig.axes)
        1
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plot_rank_list needs matplotlib: pip install matplotlib") from exc
    canvas = draw_rank_list(query_images, gallery_images, matches, border=border, gap=gap)
    r, k = np.asarray(matches).shape
    if row_labels is not None and len(row_labels) != r:
        raise ValueError(f"'row_labels' must have {r} entries (one per row), got {len(row_labels)}")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"'scale' must be a number > 0, got {scale!r}")
    dpi = check_int(dpi, "dpi", min_value=1)
    h_px, w_px = canvas.shape[:2]
    label_in = 1.6 if row_labels is not None else 0.0
    top_in = 0.5 + (0.3 if title else 0.0)
    fig = Figure(figsize=(w_px * scale / dpi + label_in, h_px * scale / dpi + top_in), dpi=dpi)
    width, height = fig.get_size_inches()
    ax = fig.add_axes(
        (
            label_in / width,
            0.05 / height,
            (w_px * scale / dpi) / width,
            (h_px * scale / dpi) / height,
        )
    )
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    h = np.asarray(query_images).shape[1] + 2 * border
    w = np.asarray(query_images).shape[2] + 2 * border
    for j in range(k + 1):
        x = j * (w + gap) + (gap if j > 0 else 0) + w / 2
        ax.text(x, -gap / 2, "query" if j == 0 else str(j), ha="center", va="bottom", fontsize=8)
    if row_labels is not None:
        for i, label in enumerate(row_labels):
            ax.text(-gap, i * (h + gap) + h / 2, label, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
