r"""Learning-rate schedules: step decay with an optional warm-up.

The papers' schedules are all of one family, stepped once per epoch:

* cluster contrast, GUR (Sec. 4.1), MPRD: Adam, ``StepLR(step_size=20,
  gamma=0.1)`` over 50 epochs, i.e. milestones ``(20, 40)``, no warm-up;
* QAConv (ECCV code): ``StepLR(40)`` over 60 epochs;
* G-Fusion (public code): ``WarmupMultiStepLR([6], warmup_factor=0.01)``.

:func:`lr_factor` is the closed form; :class:`WarmupMultiStepLR` applies it
to every parameter group's initial learning rate, so groups with different
base rates (backbone vs new layers) keep their ratio.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from reidgraph._validation import check_choice, check_int

__all__ = ["WARMUP_METHODS", "lr_factor", "step_milestones", "WarmupMultiStepLR"]

#: Allowed ``warmup_method`` values.
WARMUP_METHODS: tuple[str, ...] = ("linear", "constant")


def _check_milestones(milestones: Sequence[int]) -> tuple[int, ...]:
    if isinstance(milestones, int | str) or not isinstance(milestones, Sequence):
        raise TypeError(f"'milestones' must be a sequence of ints, got {type(milestones).__name__}")
    out = tuple(check_int(m, "milestones[i]", min_value=1) for m in milestones)
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"'milestones' must be strictly increasing, got {list(out)}")
    return out


def _check_factor(value: float, name: str, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{name}' must be a float, got {type(value).__name__}")
    value = float(value)
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"'{name}' must be in {interval}, got {value}")
    return value


def lr_factor(
    epoch: int,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    warmup_epochs: int = 0,
    warmup_factor: float = 0.01,
    warmup_method: str = "linear",
) -> float:
    r"""Multiplier of the base learning rate at ``epoch`` (0-based).

    .. math::
        \eta_e = \eta_0 \cdot w_e \cdot \gamma^{\,|\{m \in M : m \le e\}|},
        \qquad
        w_e = \begin{cases}
            \beta + (1 - \beta)\, e / E_w & e < E_w,\ \text{linear} \\
            \beta & e < E_w,\ \text{constant} \\
            1 & e \ge E_w
        \end{cases}

    with milestones :math:`M`, warm-up length :math:`E_w` and start factor
    :math:`\beta` (the warm-up multi-step rule of the strong re-ID baseline
    that G-Fusion's public code uses; ``StepLR(s)`` over :math:`E` epochs is
    :math:`M = \{s, 2s, \dots\} < E`, :func:`step_milestones`).

    Args:
        epoch (int): The epoch, :math:`\geq 0`.
        milestones (sequence of int, optional): Epochs at which the rate is
            multiplied by ``gamma``, strictly increasing. (default: none)
        gamma (float, optional): Decay factor, in :math:`(0, 1]`.
            (default: :obj:`0.1`)
        warmup_epochs (int, optional): :math:`E_w`. (default: :obj:`0`)
        warmup_factor (float, optional): :math:`\beta`, in :math:`[0, 1]`.
            (default: :obj:`0.01`)
        warmup_method (str, optional): ``"linear"`` or ``"constant"``.
            (default: :obj:`"linear"`)

    Returns:
        float: The multiplier.

    Example:
        >>> [lr_factor(e, milestones=(2, 4)) for e in range(5)]
        [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
    """
    epoch = check_int(epoch, "epoch", min_value=0)
    milestones = _check_milestones(milestones)
    gamma = _check_factor(gamma, "gamma", low_open=True)
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", min_value=0)
    warmup_factor = _check_factor(warmup_factor, "warmup_factor", low_open=False)
    warmup_method = check_choice(warmup_method, "warmup_method", WARMUP_METHODS)
    warm = 1.0
    if epoch < warmup_epochs:
        if warmup_method == "constant":
            warm = warmup_factor
        else:
            alpha = epoch / warmup_epochs
            warm = warmup_factor * (1.0 - alpha) + alpha
    return warm * gamma ** bisect_right(milestones, epoch)


def step_milestones(step_size: int, epochs: int) -> tuple[int, ...]:
    r"""Milestones of ``StepLR(step_size)`` within ``epochs`` epochs.

    Example:
        >>> step_milestones(20, 50)   # cluster contrast / GUR: 50 epochs, step 20
        (20, 40)
    """
    step_size = check_int(step_size, "step_size", min_value=1)
    epochs = check_int(epochs, "epochs", min_value=1)
    return tuple(range(step_size, epochs, step_size))


class WarmupMultiStepLR(LRScheduler):
    r"""Per-epoch scheduler applying :func:`lr_factor` to every parameter
    group's initial learning rate.

    Call :meth:`step` once at the end of each epoch. The state (epoch,
    milestones, warm-up) is saved by :meth:`state_dict`, so a resumed run
    continues on the same curve.

    Args:
        optimizer (torch.optim.Optimizer): The optimiser.
        milestones (sequence of int, optional): Decay epochs. (default: none)
        gamma (float, optional): Decay factor. (default: :obj:`0.1`)
        warmup_epochs (int, optional): Warm-up length. (default: :obj:`0`)
        warmup_factor (float, optional): Warm-up start factor.
            (default: :obj:`0.01`)
        warmup_method (str, optional): ``"linear"`` or ``"constant"``.
            (default: :obj:`"linear"`)
        last_epoch (int, optional): The index of the last epoch, for
            resuming. (default: :obj:`-1`)

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> sched = WarmupMultiStepLR(opt, milestones=(1,), gamma=0.5)
        >>> lrs = []
        >>> for _ in range(3):
        ...     lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
        >>> lrs
        [1.0, 0.5, 0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        warmup_epochs: int = 0,
        warmup_factor: float = 0.01,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ) -> None:
        self.milestones = _check_milestones(milestones)
        self.gamma = _check_factor(gamma, "gamma", low_open=True)
        self.warmup_epochs = check_int(warmup_epochs, "warmup_epochs", min_value=0)
        self.warmup_factor = _check_factor(warmup_factor, "warmup_factor", low_open=False)
        self.warmup_method = check_choice(warmup_method, "warmup_method", WARMUP_METHODS)
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        r"""The multiplier at ``epoch`` (:func:`lr_factor` with this
        scheduler's settings)."""
        return lr_factor(
            max(epoch, 0),
            self.milestones,
            self.gamma,
            self.warmup_epochs,
            self.warmup_factor,
            self.warmup_method,
        )

    def get_lr(self) -> list[float]:
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]
