import random

import numpy as np
import torch

from reidgraph import seed_everything


def _draw():
    return random.random(), np.random.rand(), torch.rand(3)  # noqa: NPY002 (global RNG on purpose)


def test_same_seed_same_draws():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    seed_everything(124)
    assert not torch.equal(_draw()[2], a[2])


def test_deterministic_mode_switches_algorithms():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.use_deterministic_algorithms(False)
