import numpy as np
import pytest
import torch

from reidgraph._validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_int,
    check_matrix,
    check_same_length,
    check_vector,
)


def test_as_tensor_accepts_numpy_and_lists():
    assert torch.equal(as_tensor(np.array([1, 2]), "a"), torch.tensor([1, 2]))
    assert torch.equal(as_tensor([1.5, 2.5], "a"), torch.tensor([1.5, 2.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="'a' is required"):
        as_tensor(None, "a")
    with pytest.raises(TypeError, match="'a' must be a torch.Tensor or numpy array, got str"):
        as_tensor("abc", "a")


def test_check_matrix():
    assert check_matrix(np.ones((2, 3)), "x").shape == (2, 3)
    assert check_matrix(torch.ones(2, 3, dtype=torch.long), "x").dtype == torch.float32
    with pytest.raises(ValueError, match=r"'x' must be two-dimensional \[n, m\], got 1 dim"):
        check_matrix(torch.ones(3), "x")
    with pytest.raises(ValueError, match=r"1 column\(s\), got shape \(0, 3\)"):
        check_matrix(torch.ones(0, 3), "x")
    with pytest.raises(ValueError, match="'x' must contain only finite values, found 1 NaN and 1"):
        check_matrix(torch.tensor([[float("nan"), float("inf")]]), "x")


def test_check_vector_length_message():
    with pytest.raises(
        ValueError, match=r"'q_pid' must have length 3 \(the number of rows\), got length 2"
    ):
        check_vector([1, 2], "q_pid", length=3, length_of="rows")
    with pytest.raises(ValueError, match="one-dimensional"):
        check_vector(torch.ones(2, 2), "v")


def test_check_finite_counts():
    with pytest.raises(ValueError, match="found 2 NaN and 0 infinite entries"):
        check_finite(torch.tensor([float("nan"), float("nan"), 1.0]), "t")
    assert check_finite(torch.tensor([1, 2]), "t") is not None  # integers are always finite


def test_check_same_length():
    assert check_same_length(a=[1, 2], b=np.zeros(2)) == 2
    with pytest.raises(ValueError, match="'a' has 2, 'b' has 3"):
        check_same_length(a=[1, 2], b=[1, 2, 3])


def test_check_int_and_choice():
    assert check_int(np.int64(3), "k", min_value=1) == 3
    with pytest.raises(TypeError, match="'k' must be an int, got float"):
        check_int(2.0, "k")
    with pytest.raises(TypeError, match="got bool"):
        check_int(True, "k")
    with pytest.raises(ValueError, match="'k' must be >= 1, got 0"):
        check_int(0, "k", min_value=1)
    with pytest.raises(ValueError, match=r"'k' must be <= 4 \(the number of nodes\), got 5"):
        check_int(5, "k", max_value=4, max_reason="the number of nodes")
    assert check_choice("Cosine", "metric", ["cosine", "ip"]) == "cosine"
    with pytest.raises(ValueError, match=r"Could not resolve metric='l1' among choices \['cosine'"):
        check_choice("l1", "metric", ["cosine", "ip"])
