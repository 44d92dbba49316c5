r"""One training loop for every method, from one CPU process to ``torchrun``.

* :class:`Trainer` / :func:`fit` — the loop: per epoch, feature extraction
  and pseudo-labelling (graph work, rank 0, broadcast), training steps on
  the recipe's loss, schedule, evaluation, checkpoint, CSV/TensorBoard log.
* :class:`Recipe` — what a method states (labeler, memory, loss, parameter
  groups, schedule defaults); :mod:`reidgraph.train.recipes` holds them
  (:class:`~reidgraph.train.recipes.ClusterContrast`, the ``baseline``).
* :class:`TrainConfig` — run settings (one dataclass, no globals).
* :func:`extract_features` / :func:`extract_data` — batched, flip-averaged,
  L2-normalised features of an image dataset (sharded over ranks).
* :mod:`reidgraph.train.distributed`, :mod:`reidgraph.train.schedule`,
  :mod:`reidgraph.train.logger` — the pieces, usable on their own.

See ``docs/training.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from reidgraph.train.config import TrainConfig
    from reidgraph.train.distributed import DistInfo, init_distributed
    from reidgraph.train.extract import extract_data, extract_features
    from reidgraph.train.logger import MetricLogger
    from reidgraph.train.loop import (
        BEST_NAME,
        CHECKPOINT_NAME,
        NonFiniteLossError,
        Trainer,
        TrainResult,
        TrainState,
        build_image_sets,
        fit,
    )
    from reidgraph.train.recipe import PermutationSampler, Recipe, RecipeError
    from reidgraph.train.schedule import WarmupMultiStepLR, lr_factor, step_milestones

# Names are imported on first use (PEP 562), so that ``reidgraph --help`` and
# ``import reidgraph.train.cli`` do not pay for PyG, torchvision and the data
# stack; ``from reidgraph.train import fit`` works as usual.
_SOURCES: dict[str, str] = {
    "TrainConfig": "config",
    "DistInfo": "distributed",
    "init_distributed": "distributed",
    "extract_data": "extract",
    "extract_features": "extract",
    "MetricLogger": "logger",
    "BEST_NAME": "loop",
    "CHECKPOINT_NAME": "loop",
    "NonFiniteLossError": "loop",
    "Trainer": "loop",
    "TrainResult": "loop",
    "TrainState": "loop",
    "build_image_sets": "loop",
    "fit": "loop",
    "PermutationSampler": "recipe",
    "Recipe": "recipe",
    "RecipeError": "recipe",
    "WarmupMultiStepLR": "schedule",
    "lr_factor": "schedule",
    "step_milestones": "schedule",
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'reidgraph.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reidgraph.train.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))


__all__ = [
    "Trainer",
    "TrainState",
    "TrainResult",
    "TrainConfig",
    "fit",
    "Recipe",
    "RecipeError",
    "NonFiniteLossError",
    "PermutationSampler",
    "build_image_sets",
    "extract_features",
    "extract_data",
    "MetricLogger",
    "WarmupMultiStepLR",
    "lr_factor",
    "step_milestones",
    "DistInfo",
    "init_distributed",
    "CHECKPOINT_NAME",
    "BEST_NAME",
]
