"""Tests for reidgraph.ops.pairwise: chunked scores, dense distances, block sizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from reidgraph.ops import (
    DEFAULT_BLOCK_BYTES,
    block_shape,
    iter_similarity_blocks,
    iter_similarity_chunks,
    l2_normalize,
    larger_is_better,
    pairwise_distance,
)


def _reference_scores(x: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    """Score matrix straight from the definitions, in float64, no expansion trick."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    if metric == "euclidean":
        return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        yn = y / np.linalg.norm(y, axis=1, keepdims=True)
        return xn @ yn.T
    return x @ y.T


@pytest.fixture
def xy():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(37, 6, generator=gen), torch.randn(23, 6, generator=gen)


def test_l2_normalize_hand_case():
    # (3, 4) has norm 5 -> (0.6, 0.8); the zero vector stays zero (no division by 0).
    out = l2_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    # integer numpy input is converted to float
    out = l2_normalize(np.array([[0, 2]]))
    assert out.dtype == torch.float32 and out.tolist() == [[0.0, 1.0]]


def test_larger_is_better():
    assert larger_is_better("cosine") and larger_is_better("IP")
    assert not larger_is_better("euclidean")
    with pytest.raises(ValueError, match="Could not resolve metric='l1'"):
        larger_is_better("l1")


@pytest.mark.parametrize("metric", ["cosine", "ip", "euclidean"])
@pytest.mark.parametrize("self_mode", [True, False])
def test_chunks_cover_matrix_and_match_reference(xy, metric, self_mode):
    x, y = xy
    yy = None if self_mode else y
    ref = _reference_scores(x.numpy(), (x if self_mode else y).numpy(), metric)
    got = np.full_like(ref, np.nan)
    seen = []
    for rows, block in iter_similarity_chunks(x, yy, metric, chunk_size=5):
        assert block.shape == (rows.stop - rows.start, ref.shape[1])
        got[rows] = block.numpy()
        seen.append((rows.start, rows.stop))
    assert seen == [(i, min(i + 5, 37)) for i in range(0, 37, 5)]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "ip", "euclidean"])
def test_blocks_tile_matrix_exactly_once(xy, metric):
    x, y = xy
    ref = _reference_scores(x.numpy(), y.numpy(), metric)
    count = np.zeros(ref.shape, dtype=int)
    got = np.zeros_like(ref)
    # 10 rows x 7 cols = 70 floats = 280 bytes per block at most
    for rows, cols, block in iter_similarity_blocks(
        x, y, metric, chunk_size=10, col_chunk_size=7, max_block_bytes=280
    ):
        assert block.numel() <= 70
        got[rows, cols] = block.numpy()
        count[rows, cols] += 1
    assert (count == 1).all()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_tiny_budget_tiles_columns(xy):
    x, y = xy
    # 12 bytes = 3 float32 scores per block: at most 3 entries, so columns are tiled
    shapes = {tuple(b.shape) for _, _, b in iter_similarity_blocks(x, y, max_block_bytes=12)}
    assert all(r * c <= 3 for r, c in shapes)


def test_euclidean_self_diagonal_is_exact_zero():
    # Large norms make ||a||^2 + ||a||^2 - 2 a.a lose all precision in float32.
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(1)) * 1000 + 5000
    d = pairwise_distance(x)
    assert torch.all(d.diagonal() == 0)
    for rows, block in iter_similarity_chunks(x, metric="euclidean", chunk_size=3):
        idx = torch.arange(rows.start, rows.stop)
        assert torch.all(block[idx - rows.start, idx] == 0)


def test_pairwise_distance_hand_case():
    # points (0,0), (3,4), (0,1): squared distances 25, 1 and 9 + 9 = 18
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    expected = torch.tensor([[0.0, 25.0, 1.0], [25.0, 0.0, 18.0], [1.0, 18.0, 0.0]])
    assert torch.equal(pairwise_distance(x), expected)
    # cosine distance 1 - cos: (3,4).(0,1) / 5 = 0.8 -> 0.2
    y = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(pairwise_distance(x[1:2], y, "cosine"), torch.tensor([[0.2]]))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pairwise_distance_matches_scipy(xy, metric):
    x, y = xy
    scipy_metric = "sqeuclidean" if metric == "euclidean" else "cosine"
    for yy, other in ((y, y), (None, x)):
        got = pairwise_distance(x.numpy(), yy, metric, chunk_size=4, max_block_bytes=64)
        ref = cdist(x.double().numpy(), other.double().numpy(), scipy_metric)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-4)


def test_float64_is_kept_and_ints_converted():
    x64 = torch.randn(4, 3, dtype=torch.float64)
    assert pairwise_distance(x64).dtype == torch.float64
    xi = torch.tensor([[0, 0], [1, 2]])
    assert pairwise_distance(xi).tolist() == [[0.0, 5.0], [5.0, 0.0]]
    assert pairwise_distance(x64.half()).dtype == torch.float32


def test_empty_inputs_yield_nothing():
    x = torch.zeros(0, 4)
    assert list(iter_similarity_chunks(x)) == []
    assert pairwise_distance(x, torch.ones(3, 4)).shape == (0, 3)
    assert pairwise_distance(torch.ones(3, 4), x).shape == (3, 0)


def test_errors(xy):
    x, y = xy
    with pytest.raises(ValueError, match="'x' must be two-dimensional"):
        pairwise_distance(torch.ones(3))
    with pytest.raises(ValueError, match="same feature dimension d"):
        pairwise_distance(x, torch.ones(2, 5))
    with pytest.raises(ValueError, match="'y' must contain only finite values, found 1 NaN"):
        pairwise_distance(x, torch.tensor([[float("nan")] + [0.0] * 5]))
    with pytest.raises(ValueError, match="Could not resolve metric='ip'"):
        pairwise_distance(x, metric="ip")  # a distance, not a similarity
    with pytest.raises(ValueError, match="'chunk_size' must be >= 1, got 0"):
        pairwise_distance(x, chunk_size=0)
    with pytest.raises(ValueError, match="'col_chunk_size' must be >= 1, got 0"):
        list(iter_similarity_blocks(x, col_chunk_size=0))
    with pytest.raises(ValueError, match="'max_block_bytes' must be >= 1, got 0"):
        list(iter_similarity_blocks(x, max_block_bytes=0))
    with pytest.raises(ValueError, match="must hold at least one full row"):
        list(iter_similarity_chunks(x, y, max_block_bytes=23 * 4 - 1))
    with pytest.raises(TypeError, match="'x' must be real-valued"):
        pairwise_distance(torch.ones(2, 2, dtype=torch.complex64))
    with pytest.raises(TypeError, match="'y' must be real-valued"):
        pairwise_distance(x, np.ones((2, 6), dtype=np.complex128))


def test_block_shape_hand_cases():
    # 256 MiB / 4 bytes = 67,108,864 scores: 671 full rows of 100,000
    assert block_shape(100_000, 100_000) == (671, 100_000)
    assert 671 * 100_000 * 4 <= DEFAULT_BLOCK_BYTES < 672 * 100_000 * 4
    # everything fits in one block
    assert block_shape(3, 4, max_block_bytes=48) == (3, 4)
    # fewer than 256 full rows fit: 256 rows and 67,108,864 // 256 columns
    assert block_shape(1_000, 1_000_000) == (256, 262_144)
    # empty sides still give a valid 1 x 1 minimum
    assert block_shape(0, 5) == (1, 5)
    with pytest.raises(ValueError, match="'max_block_bytes' must be >= 4, got 3"):
        block_shape(2, 2, max_block_bytes=3)
    with pytest.raises(ValueError, match="'n_rows' must be >= 0, got -1"):
        block_shape(-1, 2)
    with pytest.raises(TypeError, match="'n_cols' must be an int"):
        block_shape(2, 2.0)


@settings(max_examples=300, deadline=None)
@given(
    n_rows=st.integers(1, 10**6),
    n_cols=st.integers(1, 10**6),
    budget=st.integers(8, 2**31),
    element_size=st.sampled_from([2, 4, 8]),
)
def test_block_shape_respects_budget(n_rows, n_cols, budget, element_size):
    rows, cols = block_shape(n_rows, n_cols, budget, element_size)
    assert 1 <= rows <= n_rows and 1 <= cols <= n_cols
    assert rows * cols * element_size <= budget
    if n_rows * n_cols * element_size <= budget:
        assert (rows, cols) == (n_rows, n_cols)
