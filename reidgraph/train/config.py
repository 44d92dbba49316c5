r"""The training configuration: one dataclass, no globals.

A :class:`TrainConfig` holds everything the loop needs that is not the
method itself (optimiser, schedule, backbone, input size, run settings).
Recipes state the paper's values as overrides (``Recipe.defaults``), so
``recipe.config(epochs=2)`` is "the paper's schedule, but two epochs". The
command line maps flags to these fields one to one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from reidgraph._validation import check_choice, check_int

__all__ = ["TrainConfig", "OPTIMIZERS", "AMP_DTYPES"]

#: Allowed ``optimizer`` values.
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: Allowed ``amp_dtype`` values.
AMP_DTYPES: tuple[str, ...] = ("float16", "bfloat16")


def _check_float(value: Any, name: str, *, low: float = 0.0, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{name}' must be a float, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value) or value < low or (low_open and value == low):
        op = ">" if low_open else ">="
        raise ValueError(f"'{name}' must be a finite number {op} {low}, got {value}")
    return value


def _check_bool(value: Any, name: str, *, optional: bool = False) -> None:
    if not (isinstance(value, bool) or (optional and value is None)):
        kind = "a bool or None" if optional else "a bool"
        raise TypeError(f"'{name}' must be {kind}, got {type(value).__name__} ({value!r})")


@dataclass
class TrainConfig:
    r"""Settings of one training run.

    The defaults are cluster contrast's (the baseline of GUR Sec. 4.1 and
    MPRD; Adam, learning rate :math:`3.5\times10^{-4}`, weight decay
    :math:`5\times10^{-4}`, 50 epochs, decay by 0.1 every 20 epochs,
    ResNet-50 with last stride 1, 256x128 inputs); recipes override what
    their paper changes.

    Args:
        epochs (int): Training epochs. (default: :obj:`50`)
        iters (int, optional): Optimiser steps per epoch; the sampler is
            restarted as often as needed (cluster contrast uses 400).
            :obj:`None` makes one pass over the sampler. (default: :obj:`None`)
        batch_size (int): Images per step over **all** processes; each of
            :math:`W` ranks takes ``batch_size / W``. (default: :obj:`64`)
        num_instances (int): Images per pseudo-identity in a batch
            (P x K sampling). (default: :obj:`4`)
        optimizer (str): ``"adam"`` or ``"sgd"``. (default: :obj:`"adam"`)
        lr (float): Learning rate of the new layers. (default: :obj:`3.5e-4`)
        backbone_lr_mult (float): Backbone learning rate as a fraction of
            ``lr`` (QAConv and IICS use 0.1). (default: :obj:`1.0`)
        weight_decay (float): L2 weight decay. (default: :obj:`5e-4`)
        momentum (float): SGD momentum. (default: :obj:`0.9`)
        nesterov (bool): Nesterov momentum for SGD. (default: :obj:`False`)
        milestones (tuple[int, ...], optional): Epochs where the learning
            rate is multiplied by ``gamma``; overrides ``step_size``.
            (default: :obj:`None`)
        step_size (int, optional): ``StepLR`` period, turned into milestones
            below ``epochs``. (default: :obj:`20`)
        gamma (float): Decay factor. (default: :obj:`0.1`)
        warmup_epochs (int): Warm-up epochs. (default: :obj:`0`)
        warmup_factor (float): Warm-up start factor. (default: :obj:`0.01`)
        warmup_method (str): ``"linear"`` or ``"constant"``.
            (default: :obj:`"linear"`)
        grad_clip (float, optional): Largest gradient norm; :obj:`None` does
            not clip. (default: :obj:`None`)
        amp (bool, optional): Mixed precision; :obj:`None` turns it on with
            CUDA and off on the CPU. (default: :obj:`None`)
        amp_dtype (str): ``"float16"`` (with a gradient scaler) or
            ``"bfloat16"``. (default: :obj:`"float16"`)
        depth (int): ResNet depth, 18/34/50/101/152. (default: :obj:`50`)
        pretrained (str, optional): Local torchvision state-dict file of
            ImageNet weights; :obj:`None` starts from random weights.
            (default: :obj:`None`)
        last_stride (int): Stride of the last ResNet stage. (default: :obj:`1`)
        pooling (str): ``"avg"`` or ``"gem"``. (default: :obj:`"avg"`)
        sync_bn (bool): Synchronise batch-norm statistics across processes.
            (default: :obj:`False`)
        height (int): Input height. (default: :obj:`256`)
        width (int): Input width. (default: :obj:`128`)
        pad (int, optional): Padding before the random crop of the training
            augmentation; :obj:`None` scales the usual 10 pixels at width
            128 to ``width`` (2 at width 32), so small inputs are not
            shifted by a third of their width. (default: :obj:`None`)
        erasing_prob (float): Random-erasing probability of the training
            augmentation. (default: :obj:`0.5`)
        num_workers (int): Data-loading worker processes per rank.
            (default: :obj:`2`)
        extract_batch_size (int): Images per forward pass when extracting
            features. (default: :obj:`128`)
        flip (bool): Average the features of the image and its mirror when
            extracting. (default: :obj:`True`)
        seed (int): Seed of everything random (:func:`~reidgraph.seed_everything`).
            (default: :obj:`0`)
        deterministic (bool): Ask PyTorch for deterministic kernels.
            (default: :obj:`False`)
        device (str, optional): ``"cpu"``, ``"cuda"``; :obj:`None` picks CUDA
            when available. (default: :obj:`None`)
        output_dir (str, optional): Where checkpoints and logs go.
            (default: :obj:`None`, ``runs/<recipe>``)
        eval_every (int): Evaluate every this many epochs (and after the
            last); ``0`` only after the last. (default: :obj:`1`)
        eval_before (bool): Also evaluate the initial weights before
            training. (default: :obj:`False`)
        checkpoint_every (int): Save a checkpoint every this many epochs
            (and after the last); ``0`` never. (default: :obj:`1`)
        log_every (int): Write a ``steps.csv`` row every this many steps.
            (default: :obj:`20`)
        tensorboard (bool, optional): TensorBoard logging; :obj:`None` uses
            it when installed. (default: :obj:`None`)
        verbose (bool): Progress bars. (default: :obj:`True`)

    Example:
        >>> cfg = TrainConfig(epochs=2, depth=18)
        >>> cfg.schedule_milestones()   # step_size 20 does not fall within 2 epochs
        ()
    """

    epochs: int = 50
    iters: int | None = None
    batch_size: int = 64
    num_instances: int = 4
    optimizer: str = "adam"
    lr: float = 3.5e-4
    backbone_lr_mult: float = 1.0
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = False
    milestones: tuple[int, ...] | None = None
    step_size: int | None = 20
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_factor: float = 0.01
    warmup_method: str = "linear"
    grad_clip: float | None = None
    amp: bool | None = None
    amp_dtype: str = "float16"
    depth: int = 50
    pretrained: str | None = None
    last_stride: int = 1
    pooling: str = "avg"
    sync_bn: bool = False
    height: int = 256
    width: int = 128
    pad: int | None = None
    erasing_prob: float = 0.5
    num_workers: int = 2
    extract_batch_size: int = 128
    flip: bool = True
    seed: int = 0
    deterministic: bool = False
    device: str | None = None
    output_dir: str | None = None
    eval_every: int = 1
    eval_before: bool = False
    checkpoint_every: int = 1
    log_every: int = 20
    tensorboard: bool | None = None
    verbose: bool = True

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", min_value=1)
        if self.iters is not None:
            check_int(self.iters, "iters", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=2)
        check_int(self.num_instances, "num_instances", min_value=1)
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"'batch_size' ({self.batch_size}) must be a multiple of 'num_instances' "
                f"({self.num_instances}): a batch holds batch_size / num_instances identities"
            )
        self.optimizer = check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        _check_float(self.lr, "lr", low_open=True)
        _check_float(self.backbone_lr_mult, "backbone_lr_mult")
        _check_float(self.weight_decay, "weight_decay")
        _check_float(self.momentum, "momentum")
        _check_bool(self.nesterov, "nesterov")
        if self.milestones is not None:
            if isinstance(self.milestones, int | str):
                raise TypeError(
                    f"'milestones' must be a sequence of ints, got {type(self.milestones).__name__}"
                )
            self.milestones = tuple(
                check_int(m, "milestones[i]", min_value=1) for m in self.milestones
            )
        if self.step_size is not None:
            check_int(self.step_size, "step_size", min_value=1)
        _check_float(self.gamma, "gamma", low_open=True)
        check_int(self.warmup_epochs, "warmup_epochs", min_value=0)
        _check_float(self.warmup_factor, "warmup_factor")
        if self.grad_clip is not None:
            _check_float(self.grad_clip, "grad_clip", low_open=True)
        _check_bool(self.amp, "amp", optional=True)
        self.amp_dtype = check_choice(self.amp_dtype, "amp_dtype", AMP_DTYPES)
        if check_int(self.depth, "depth") not in (18, 34, 50, 101, 152):
            raise ValueError(f"'depth' must be one of [18, 34, 50, 101, 152], got {self.depth}")
        if check_int(self.last_stride, "last_stride") not in (1, 2):
            raise ValueError(f"'last_stride' must be 1 or 2, got {self.last_stride}")
        self.pooling = check_choice(self.pooling, "pooling", ("avg", "gem"))
        _check_bool(self.sync_bn, "sync_bn")
        check_int(self.height, "height", min_value=16)
        check_int(self.width, "width", min_value=8)
        if self.pad is not None:
            check_int(self.pad, "pad", min_value=0)
        if not 0.0 <= _check_float(self.erasing_prob, "erasing_prob") <= 1.0:
            raise ValueError(f"'erasing_prob' must be in [0, 1], got {self.erasing_prob}")
        check_int(self.num_workers, "num_workers", min_value=0)
        check_int(self.extract_batch_size, "extract_batch_size", min_value=1)
        _check_bool(self.flip, "flip")
        check_int(self.seed, "seed", min_value=0)
        _check_bool(self.deterministic, "deterministic")
        check_int(self.eval_every, "eval_every", min_value=0)
        _check_bool(self.eval_before, "eval_before")
        check_int(self.checkpoint_every, "checkpoint_every", min_value=0)
        check_int(self.log_every, "log_every", min_value=1)
        _check_bool(self.tensorboard, "tensorboard", optional=True)
        _check_bool(self.verbose, "verbose")

    def augmentation_pad(self) -> int:
        r"""The random-crop padding: ``pad``, or 10 pixels per 128 of width."""
        return self.pad if self.pad is not None else max(1, round(10 * self.width / 128))

    def schedule_milestones(self) -> tuple[int, ...]:
        r"""The decay epochs: ``milestones`` if given, else those of
        ``StepLR(step_size)`` below ``epochs``, else none."""
        if self.milestones is not None:
            return tuple(self.milestones)
        if self.step_size is None:
            return ()
        return tuple(range(self.step_size, self.epochs, self.step_size))

    def replace(self, **changes: Any) -> TrainConfig:
        r"""A copy with ``changes`` applied (validated again).

        Raises:
            TypeError: If a change names no field.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"TrainConfig has no field(s) {unknown}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        r"""Plain-Python dict (stored in checkpoints; loads with
        ``weights_only=True``)."""
        out = dataclasses.asdict(self)
        if out["milestones"] is not None:
            out["milestones"] = list(out["milestones"])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        r"""Inverse of :meth:`to_dict`; unknown keys raise :class:`TypeError`."""
        values = dict(values)
        if values.get("milestones") is not None:
            values["milestones"] = tuple(values["milestones"])
        return cls().replace(**values)
