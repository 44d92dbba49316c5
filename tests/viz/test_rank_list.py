"""Rank-list selection against a brute-force loop, the picture's pixels, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reidgraph.viz import GREEN, QUERY_COLOR, RED, draw_rank_list, plot_rank_list, rank_list


def _brute_rank_list(d, rows, q_pid, g_pid, q_cam, g_cam, topk, larger):
    out_idx, out_ok = [], []
    for r in rows:
        cols = [j for j in range(d.shape[1]) if not (g_pid[j] == q_pid[r] and g_cam[j] == q_cam[r])]
        # Sort by value, ties by column index.
        cols.sort(key=lambda j: (-d[r, j] if larger else d[r, j], j))
        cols = cols[:topk]
        idx = cols + [-1] * (min(topk, d.shape[1]) - len(cols))
        out_idx.append(idx)
        out_ok.append([j >= 0 and g_pid[j] == q_pid[r] for j in idx])
    return np.array(out_idx), np.array(out_ok)


@pytest.mark.parametrize("larger", [False, True])
def test_rank_list_matches_brute_force(larger):
    rng = np.random.default_rng(0)
    d = rng.integers(0, 5, size=(6, 12)).astype(np.float64)  # many ties
    q_pid, g_pid = rng.integers(0, 3, 6), rng.integers(0, 3, 12)
    q_cam, g_cam = rng.integers(0, 2, 6), rng.integers(0, 2, 12)
    rows = [4, 0, 5]
    idx, ok = rank_list(d, rows, q_pid, g_pid, q_cam, g_cam, topk=7, larger_is_better=larger)
    e_idx, e_ok = _brute_rank_list(d, rows, q_pid, g_pid, q_cam, g_cam, 7, larger)
    np.testing.assert_array_equal(idx, e_idx)
    np.testing.assert_array_equal(ok, e_ok)


def test_rank_list_pads_when_gallery_runs_out():
    # Gallery: 0 (id 1, cam 0) is junk for query (id 1, cam 0); 1 (id 1, cam 1) a match.
    idx, ok = rank_list(torch.tensor([[0.5, 0.2]]), [0], [1], [1, 1], [0], [0, 1], topk=5)
    assert idx.tolist() == [[1, -1]] and ok.tolist() == [[True, False]]


def test_rank_list_errors():
    d = np.zeros((2, 3))
    args = ([1, 2], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match=r"'query_index' must hold rows in \[0, 2\)"):
        rank_list(d, [2], *args)
    with pytest.raises(ValueError, match="'g_pid' must have length 3"):
        rank_list(d, [0], [1, 2], [1], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="'topk' must be >= 1"):
        rank_list(d, [0], *args, topk=0)
    with pytest.raises(ValueError, match="'distmat' must be two-dimensional"):
        rank_list(np.zeros(3), [0], *args)


def test_draw_rank_list_pixels():
    # Two rows, K = 2, images 3x2 filled with distinct grey levels; border 1, gap 2.
    q = np.stack([np.full((3, 2, 3), 10, np.uint8), np.full((3, 2, 3), 20, np.uint8)])
    g = np.stack(
        [
            np.stack([np.full((3, 2, 3), 30, np.uint8), np.full((3, 2, 3), 40, np.uint8)]),
            np.stack([np.full((3, 2, 3), 50, np.uint8), np.full((3, 2, 3), 60, np.uint8)]),
        ]
    )
    m = np.array([[True, False], [False, True]])
    c = draw_rank_list(q, g, m, border=1, gap=2)
    # Cells are 5 high, 4 wide. Height 2*5 + 1*2 = 12; width 3 cells * 4 + 3 gaps * 2 = 18.
    assert c.shape == (12, 18, 3) and c.dtype == np.uint8
    # Row 0 at y = 0; query at x = 0; gallery k at x = (k+1)*(4+2) + 2 = 8, 14.
    assert c[0, 0].tolist() == list(QUERY_COLOR) and c[1, 1].tolist() == [10] * 3
    assert c[0, 8].tolist() == list(GREEN) and c[2, 9].tolist() == [30] * 3
    assert c[4, 14].tolist() == list(RED) and c[3, 15].tolist() == [40] * 3
    # Row 1 at y = 5 + 2 = 7.
    assert c[7, 8].tolist() == list(RED) and c[8, 9].tolist() == [50] * 3
    assert c[11, 17].tolist() == list(GREEN) and c[9, 16].tolist() == [60] * 3
    # Gaps are white: between query and first gallery cell, and between rows.
    assert c[2, 5].tolist() == [255] * 3 and c[5, 2].tolist() == [255] * 3


def test_draw_rank_list_errors():
    q = np.zeros((1, 3, 2, 3), np.uint8)
    g = np.zeros((1, 2, 3, 2, 3), np.uint8)
    m = np.array([[True, False]])
    with pytest.raises(TypeError, match="'query_images' must be uint8"):
        draw_rank_list(q.astype(float), g, m)
    with pytest.raises(ValueError, match=r"'gallery_images' must have shape \[R, K, H, W, 3\]"):
        draw_rank_list(q, g[0], m)
    with pytest.raises(ValueError, match=r"\[R=1, K, H=3, W=2, 3\]"):
        draw_rank_list(q, np.zeros((1, 2, 4, 2, 3), np.uint8), m)
    with pytest.raises(ValueError, match=r"'matches' must have shape \[R, K\] = \[1, 2\]"):
        draw_rank_list(q, g, np.array([True, False]))
    with pytest.raises(TypeError, match="'matches' must be bool"):
        draw_rank_list(q, g, np.array([[1, 0]]))
    with pytest.raises(ValueError, match="'border' must be >= 0"):
        draw_rank_list(q, g, m, border=-1)


def test_plot_rank_list_saves_png(tmp_path):
    q = np.zeros((2, 8, 4, 3), np.uint8)
    g = np.full((2, 3, 8, 4, 3), 128, np.uint8)
    m = np.array([[True, False, True], [False, False, True]])
    fig = plot_rank_list(q, g, m, row_labels=["baseline", "G-Fusion"], title="t")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:4] == ["query", "1", "2", "3"] and "baseline" in texts and "G-Fusion" in texts
    path = tmp_path / "r.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="'row_labels' must have 2 entries"):
        plot_rank_list(q, g, m, row_labels=["x"])
    with pytest.raises(ValueError, match="'scale' must be a number > 0"):
        plot_rank_list(q, g, m, scale=0)
