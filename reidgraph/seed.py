r"""Seeding for reproducible runs."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    r"""Seeds :mod:`random`, :mod:`numpy` and :mod:`torch` (all devices).

    With ``deterministic=True`` it also asks PyTorch for deterministic
    kernels (``torch.use_deterministic_algorithms``), switches cuDNN
    benchmarking off and sets ``CUBLAS_WORKSPACE_CONFIG``, which CUDA matmuls
    need to be bitwise reproducible. Scatter-based message passing on the GPU
    is otherwise not bitwise reproducible.

    Args:
        seed (int): The seed.
        deterministic (bool, optional): Request deterministic algorithms.
            (default: :obj:`False`)

    Example:
        >>> seed_everything(0)
        >>> a = torch.rand(2); seed_everything(0); bool((a == torch.rand(2)).all())
        True
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 (seeding the legacy global RNG is the point)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
