r"""Training checkpoints: model, optimiser, scheduler, epoch, config, RNG states.

A checkpoint is a plain dictionary of state dicts, tensors and Python
values, so it loads with ``torch.load(weights_only=True)`` (the default since
PyTorch 2.6; no code in the file runs). It is written atomically (a
temporary file in the same folder, then :func:`os.replace`), so a run killed
while saving leaves the previous checkpoint intact. The random-number states
of :mod:`random`, :mod:`numpy`, :mod:`torch` and CUDA are stored, so a
resumed run takes exactly the step the uninterrupted run would have taken.

Layout (``format = "reidgraph-checkpoint"``, ``version = 1``): ``arch``
(``name`` and ``config`` of the model), ``model``, ``optimizer``,
``scheduler``, ``epoch``, ``config``, ``extra``, ``rng``, ``torch_version``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from reidgraph._validation import check_int
from reidgraph.models.weights import describe_mismatch, state_dict_mismatch

__all__ = ["save_checkpoint", "load_checkpoint", "unwrap_model", "CHECKPOINT_FORMAT"]

logger = logging.getLogger(__name__)

#: Value of the ``format`` entry that marks a reidgraph checkpoint.
CHECKPOINT_FORMAT = "reidgraph-checkpoint"
_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap_model(model: nn.Module) -> nn.Module:
    r"""The module inside :class:`~torch.nn.parallel.DistributedDataParallel`,
    :class:`~torch.nn.DataParallel` and :func:`torch.compile` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _strip_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def _arch(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "arch_config", None)
    return {"name": type(model).__name__, "config": _plain(config, "arch_config")}


def _describe_arch(arch: Mapping[str, Any]) -> str:
    cfg = arch.get("config") or {}
    return f"{arch.get('name')}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


def _plain(obj: Any, where: str) -> Any:
    # Everything must survive torch.load(weights_only=True): convert the few
    # common non-plain types and reject the rest now, not at load time.
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    for base in (bool, int, float, str):
        # Subclasses (enums, torch.__version__) pickle as their own class.
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _plain(getattr(obj, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, Mapping):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"'{where}' holds a {type(obj).__name__}, which a checkpoint cannot store (it must load "
        f"with torch.load(weights_only=True)); use numbers, strings, lists, dicts, tensors"
    )


def _rng_state() -> dict[str, Any]:
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            logger.warning(
                "Checkpoint holds RNG states of %d CUDA device(s) but %d are visible: CUDA "
                "random streams are not restored",
                len(cuda),
                torch.cuda.device_count() if torch.cuda.is_available() else 0,
            )


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    epoch: int,
    config: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    r"""Writes a training checkpoint atomically.

    The model's state dict is stored without the ``module.`` prefix of
    DDP / DataParallel (and ``_orig_mod.`` of :func:`torch.compile`), so it
    loads into the bare model. Under :mod:`torch.distributed`, call it on
    rank 0 only; the RNG states stored are that process's.

    Cost: one serialisation of all states; disk space about the model size
    plus the optimiser's (Adam: 3x the parameters).

    Args:
        path (str or os.PathLike): Destination file; parent folders are made.
        model (torch.nn.Module): The model (wrappers are unwrapped).
        optimizer (torch.optim.Optimizer, optional): Its state is stored.
            (default: :obj:`None`)
        scheduler (optional): A learning-rate scheduler (anything with
            ``state_dict()``). (default: :obj:`None`)
        epoch (int): Epochs completed, :math:`\geq 0`.
        config (optional): The run's configuration: a dict or dataclass of
            plain values (numbers, strings, lists, dicts, tensors; numpy
            values and paths are converted). (default: :obj:`None`)
        extra (Mapping, optional): More plain values, e.g. memory tensors or
            the best mAP. (default: :obj:`None`)

    Returns:
        str: ``path``.

    Raises:
        TypeError: ``config`` or ``extra`` holds a value that
            ``weights_only`` loading would reject (the message names it).

    Example:
        >>> import tempfile, os
        >>> net = torch.nn.Linear(2, 1)
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> save_checkpoint(path, model=net, epoch=3, config={"lr": 0.1}) == path
        True
        >>> load_checkpoint(path, model=net)["epoch"]
        3
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module, got {type(model).__name__}")
    epoch = check_int(epoch, "epoch", min_value=0)
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"'extra' must be a mapping, got {type(extra).__name__}")
    net = unwrap_model(model)
    content = {
        "format": CHECKPOINT_FORMAT,
        "version": _VERSION,
        "arch": _arch(net),
        "model": _strip_prefixes(net.state_dict()),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "config": _plain(config, "config"),
        "extra": _plain(dict(extra or {}), "extra"),
        "rng": _rng_state(),
        "torch_version": str(torch.__version__),
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            torch.save(content, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    logger.info("Saved checkpoint of epoch %d to %s", epoch, path)
    return path


def _load_model(ckpt: Mapping[str, Any], path: str, model: nn.Module, with_optimizer: bool) -> None:
    net = unwrap_model(model)
    saved, ours = ckpt["arch"], _arch(net)
    if saved["name"] != ours["name"] or saved["config"] != ours["config"]:
        s_cfg, o_cfg = saved.get("config") or {}, ours.get("config") or {}
        diffs = [
            f"{k}: checkpoint {s_cfg.get(k)!r} vs model {o_cfg.get(k)!r}"
            for k in sorted(set(s_cfg) | set(o_cfg))
            if s_cfg.get(k) != o_cfg.get(k)
        ]
        detail = f" ({'; '.join(diffs)})" if diffs else ""
        raise ValueError(
            f"Checkpoint '{path}' was saved from another architecture, "
            f"{_describe_arch(saved)}, but the model is {_describe_arch(ours)}{detail}; build "
            f"the model with the checkpoint's settings (ckpt['arch']['config'])"
        )
    state = ckpt["model"]
    if hasattr(net, "reset_classifier") and hasattr(net, "num_classes"):
        # Pseudo-label recipes resize the classifier every epoch: take the
        # checkpoint's size.
        weight = state.get("classifier.weight")
        saved_classes = int(weight.shape[0]) if weight is not None else 0
        if saved_classes != net.num_classes:
            if with_optimizer:
                raise ValueError(
                    f"Checkpoint '{path}' has a classifier of {saved_classes} classes, the model "
                    f"{net.num_classes}: load the model first (load_checkpoint(path, model=model) "
                    f"resizes it), then build the optimizer and load it "
                    f"(load_checkpoint(path, optimizer=..., scheduler=...))"
                )
            logger.info("Resizing the classifier to the checkpoint's %d classes", saved_classes)
            net.reset_classifier(saved_classes)
    missing, unexpected, shapes = state_dict_mismatch(net.state_dict(), state)
    if missing or unexpected or shapes:
        raise ValueError(
            f"Checkpoint '{path}' does not fit the model {_describe_arch(ours)}: "
            f"{describe_mismatch(missing, unexpected, shapes)}"
        )
    net.load_state_dict(state)


def _check_optimizer_shapes(optimizer: torch.optim.Optimizer, path: str) -> None:
    # Optimizer.load_state_dict checks only the number of parameters, not
    # their shapes; a mismatch would surface steps later as a broadcast error.
    for gi, group in enumerate(optimizer.param_groups):
        for pi, p in enumerate(group["params"]):
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(
                        f"Optimizer state in checkpoint '{path}' does not fit: group {gi}, "
                        f"parameter {pi}, '{name}' has shape {tuple(value.shape)} but the "
                        f"parameter has {tuple(p.shape)}; build the optimizer over the same "
                        f"parameters, in the same order, as when saving"
                    )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    map_location: Any = "cpu",
    restore_rng: bool = True,
) -> dict[str, Any]:
    r"""Reads a checkpoint written by :func:`save_checkpoint` and restores
    what is passed.

    The file is read with ``weights_only=True``. The model must have the
    checkpoint's architecture (class and ``arch_config``; otherwise the
    error names the differing settings); a :class:`~reidgraph.models.ReIDNet`
    whose classifier size differs is resized to the checkpoint's first (then
    build the optimiser and load it in a second call). With
    ``restore_rng=True`` the :mod:`random`, :mod:`numpy`, :mod:`torch` and
    CUDA generators continue where the saved run was, so the next step is
    the same.

    Args:
        path (str or os.PathLike): The checkpoint.
        model (torch.nn.Module, optional): Receives the weights (wrappers are
            unwrapped). (default: :obj:`None`)
        optimizer (torch.optim.Optimizer, optional): Receives the optimiser
            state; built over the same parameters in the same order.
            (default: :obj:`None`)
        scheduler (optional): Receives the scheduler state. (default: :obj:`None`)
        map_location (optional): Passed to :func:`torch.load`.
            (default: :obj:`"cpu"`)
        restore_rng (bool, optional): Restore the random-number states.
            (default: :obj:`True`)

    Returns:
        dict: The checkpoint (``epoch``, ``config``, ``extra``, ``arch``, ...).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a reidgraph checkpoint, comes from
            another architecture, does not fit the model or optimiser, or
            lacks the optimiser / scheduler state asked for.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise ValueError(
            f"Could not read checkpoint '{path}' with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"'{path}' is not a reidgraph checkpoint (no format={CHECKPOINT_FORMAT!r} entry); "
            f"backbone weights in torchvision's format go to ReIDNet(pretrained=path)"
        )
    if model is not None:
        _load_model(ckpt, path, model, with_optimizer=optimizer is not None)
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        if ckpt.get(name) is None:
            raise ValueError(f"Checkpoint '{path}' holds no {name} state (saved without one)")
        try:
            obj.load_state_dict(ckpt[name])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(
                f"The {name} state in checkpoint '{path}' does not fit the given {name} "
                f"({type(obj).__name__}): {exc}"
            ) from exc
    if optimizer is not None:
        _check_optimizer_shapes(optimizer, path)
    if restore_rng:
        _set_rng_state(ckpt["rng"])
    return ckpt
