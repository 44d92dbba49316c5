r"""Input checks shared by every public boundary of the library.

Each check raises :class:`ValueError` (or :class:`TypeError`) that names the
argument, what was expected and what came, in the spirit of scikit-learn's
``check_array`` / ``check_scalar`` and PyG's ``Data.validate``. Public
functions call these first, so errors surface before any heavy work starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_matrix",
    "check_vector",
    "check_finite",
    "check_same_length",
    "check_int",
    "check_choice",
]


def as_tensor(
    value: Any,
    name: str,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Converts ``value`` (tensor, numpy array or sequence) to a tensor.

    Numpy arrays share memory where possible (``torch.as_tensor``); tensors
    keep their device unless ``device`` is given.

    Args:
        value (Any): The input.
        name (str): The argument's name, used in error messages.
        dtype (torch.dtype, optional): Target dtype. (default: :obj:`None`)
        device (torch.device or str, optional): Target device.
            (default: :obj:`None`, keep)
    """
    if value is None:
        raise ValueError(f"'{name}' is required, got None")
    if isinstance(value, torch.Tensor):
        out = value
    elif isinstance(value, np.ndarray | Sequence) and not isinstance(value, str):
        try:
            out = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"'{name}' must be a tensor, numpy array or sequence of numbers, "
                f"got {type(value).__name__} that cannot be converted ({exc})"
            ) from exc
    else:
        raise TypeError(
            f"'{name}' must be a torch.Tensor or numpy array, got {type(value).__name__}"
        )
    if dtype is not None or device is not None:
        out = out.to(dtype=dtype if dtype is not None else out.dtype, device=device)
    return out


def check_matrix(
    value: Any,
    name: str,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    min_rows: int = 1,
    min_cols: int = 1,
    finite: bool = True,
) -> torch.Tensor:
    r"""Returns ``value`` as a 2-D floating tensor ``[n, m]``, validated.

    Raises if it is not two-dimensional, has fewer than ``min_rows`` rows or
    ``min_cols`` columns, is not floating point, or (with ``finite=True``)
    holds NaN or infinity.
    """
    out = as_tensor(value, name, dtype=dtype, device=device)
    if out.dim() != 2:
        raise ValueError(
            f"'{name}' must be two-dimensional [n, m], got {out.dim()} dimensions "
            f"(shape {tuple(out.shape)})"
        )
    if not out.is_floating_point():
        if dtype is None:
            out = out.float()
    if out.size(0) < min_rows or out.size(1) < min_cols:
        raise ValueError(
            f"'{name}' must have at least {min_rows} row(s) and {min_cols} column(s), "
            f"got shape {tuple(out.shape)}"
        )
    if finite:
        check_finite(out, name)
    return out


def check_vector(
    value: Any,
    name: str,
    *,
    length: int | None = None,
    length_of: str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    finite: bool = False,
) -> torch.Tensor:
    r"""Returns ``value`` as a 1-D tensor, optionally of a required length.

    Args:
        length (int, optional): Required length. (default: :obj:`None`)
        length_of (str, optional): What ``length`` refers to, for the message,
            e.g. ``"rows of 'distmat'"``. (default: :obj:`None`)
    """
    out = as_tensor(value, name, dtype=dtype, device=device)
    if out.dim() != 1:
        raise ValueError(f"'{name}' must be one-dimensional, got shape {tuple(out.shape)}")
    if length is not None and out.numel() != length:
        what = f" (the number of {length_of})" if length_of else ""
        raise ValueError(f"'{name}' must have length {length}{what}, got length {out.numel()}")
    if finite and out.is_floating_point():
        check_finite(out, name)
    return out


def check_finite(value: torch.Tensor, name: str) -> torch.Tensor:
    r"""Raises if a floating tensor contains NaN or +/-inf."""
    if value.is_floating_point() and value.numel() > 0:
        # Fast path: NaN or +/-inf always shows up in the min or the max, and one
        # aminmax pass is ~10x cheaper than building the isfinite mask.
        lo, hi = torch.aminmax(value)
        if bool(torch.isfinite(lo) & torch.isfinite(hi)):
            return value
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            n_nan = int(torch.isnan(value).sum())
            n_inf = int(bad.sum()) - n_nan
            raise ValueError(
                f"'{name}' must contain only finite values, found {n_nan} NaN and "
                f"{n_inf} infinite entr{'y' if n_nan + n_inf == 1 else 'ies'}"
            )
    return value


def check_same_length(**named: torch.Tensor | np.ndarray | Sequence) -> int:
    r"""Raises unless all given arrays have the same first dimension.

    Returns that common length.
    """
    lengths = {k: len(v) for k, v in named.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"'{k}' has {n}" for k, n in lengths.items())
        raise ValueError(f"{', '.join(repr(k) for k in named)} must have equal lengths: {desc}")
    return next(iter(lengths.values()))


def check_int(
    value: Any,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    max_reason: str = "",
) -> int:
    r"""Returns ``value`` as ``int`` after checking type and bounds (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__} ({value!r})")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"'{name}' must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        why = f" ({max_reason})" if max_reason else ""
        raise ValueError(f"'{name}' must be <= {max_value}{why}, got {value}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    r"""Resolves a string option against ``choices`` (case-insensitive)."""
    if isinstance(value, str) and value.lower() in {c.lower() for c in choices}:
        return value.lower()
    raise ValueError(f"Could not resolve {name}={value!r} among choices {sorted(choices)}")
