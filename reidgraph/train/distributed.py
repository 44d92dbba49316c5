r"""Distributed helpers: one process per device, started by ``torchrun``.

The training loop runs unchanged in one process or under
``torchrun --nproc_per_node=N`` (:doc:`/training`): :func:`init_distributed`
reads the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and starts the process
group (NCCL on CUDA, gloo on CPU). Every other helper degrades to the
single-process answer when no process group is running, so library code
calls them unconditionally.

Two collective patterns carry the loop:

* **gather rows** (:func:`all_gather_rows`, :func:`gather_strided`): each
  rank computes a shard of a matrix (features of a strided subset of the
  images) and every rank receives the whole matrix, in the original order;
* **broadcast an object** (:func:`broadcast_object`): rank 0 computes the
  pseudo-labels once and every rank receives the same labels.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "broadcast_object",
    "all_gather_rows",
    "gather_strided",
    "all_reduce_mean",
    "broadcast_buffers",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    r"""Where this process stands in a (possibly single-process) run.

    Args:
        rank (int): Global rank, ``0`` .. ``world_size - 1``.
        world_size (int): Number of processes.
        local_rank (int): Rank on this node (selects the CUDA device).
        device (torch.device): The device this process trains on.
        backend (str, optional): ``"nccl"``, ``"gloo"``, or :obj:`None`
            when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {name} must be an integer (torchrun sets it), got {raw!r}"
        ) from None


def init_distributed(
    device: str | torch.device | None = None,
    *,
    backend: str | None = None,
    timeout_s: float = 1800.0,
) -> DistInfo:
    r"""Starts the process group from ``torchrun``'s environment, if any.

    Without ``WORLD_SIZE`` > 1 in the environment this starts nothing and
    returns a single-process :class:`DistInfo` on ``device``. Under
    ``torchrun`` it calls :func:`torch.distributed.init_process_group` with
    ``init_method="env://"`` (once; a running group is reused) and, on CUDA,
    pins this process to ``cuda:LOCAL_RANK``.

    Args:
        device (str or torch.device, optional): ``"cpu"``, ``"cuda"`` or
            ``"cuda:i"``; under ``torchrun`` a bare ``"cuda"`` becomes
            ``cuda:LOCAL_RANK``. (default: :obj:`None`, CUDA when available)
        backend (str, optional): ``"nccl"`` or ``"gloo"``. (default:
            :obj:`None`, NCCL on CUDA, gloo on CPU)
        timeout_s (float, optional): Collective timeout in seconds; graph
            work on rank 0 must finish within it. (default: :obj:`1800`)

    Returns:
        DistInfo: rank, world size, local rank, device and backend.

    Raises:
        ValueError: A malformed ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, a
            CUDA device requested without CUDA, or an unknown backend.

    Example:
        >>> info = init_distributed("cpu")   # no torchrun: single process
        >>> info.world_size, info.rank
        (1, 0)
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"'device' is {str(device)!r} but CUDA is not available; pass device='cpu'"
        )
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistInfo(0, 1, 0, device, None)
    if dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
        backend = dist.get_backend()
    else:
        if backend is None:
            backend = "nccl" if device.type == "cuda" else "gloo"
        if backend not in ("nccl", "gloo"):
            raise ValueError(
                f"Could not resolve backend={backend!r} among choices ['gloo', 'nccl']"
            )
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            world_size=world_size,
            rank=rank,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        logger.info(
            "process group started: rank %d of %d (local rank %d), backend %s, device %s",
            rank,
            world_size,
            local_rank,
            backend,
            device,
        )
    return DistInfo(rank, world_size, local_rank, device, backend)


def cleanup_distributed() -> None:
    r"""Destroys the process group if one is running (no-op otherwise)."""
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    r"""Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    r"""This process's global rank (``0`` when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    r"""Number of processes (``1`` when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    r"""Whether this is rank 0 (always :obj:`True` when not distributed)."""
    return get_rank() == 0


def barrier() -> None:
    r"""Waits for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    # NCCL moves only CUDA tensors; gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_object(obj: Any, src: int = 0) -> Any:
    r"""Sends a picklable object from rank ``src`` to every rank.

    Used to compute pseudo-labels once (rank 0) and train every rank on the
    same labels. Tensors inside ``obj`` arrive on the CPU. Without a process
    group, returns ``obj`` unchanged.

    Args:
        obj (Any): The object on rank ``src`` (ignored on other ranks).
        src (int, optional): Sending rank. (default: :obj:`0`)

    Returns:
        The object of rank ``src``, on every rank.

    Example:
        >>> broadcast_object({"labels": [0, 1, -1]})   # single process
        {'labels': [0, 1, -1]}
    """
    if not is_distributed():
        return obj
    box = [_to_cpu(obj) if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) and not hasattr(obj, "_fields"):
        return type(obj)(_to_cpu(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        moved = {f.name: _to_cpu(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **moved)
    return obj


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    r"""Concatenates every rank's rows, in rank order, on every rank.

    Shards may differ in their first dimension (the other dimensions and the
    dtype must agree); they are padded to the longest shard for the
    collective and cut back afterwards. Not differentiable. Without a
    process group, returns ``tensor``.

    Args:
        tensor (torch.Tensor): This rank's shard ``[n_r, *]``.

    Returns:
        torch.Tensor: ``[sum_r n_r, *]`` on ``tensor``'s device.

    Example:
        >>> all_gather_rows(torch.ones(2, 3)).shape   # single process
        torch.Size([2, 3])
    """
    if not is_distributed():
        return tensor
    from reidgraph.nn.memory import all_gather_varlen

    local = tensor.detach().to(_collective_device()).contiguous()
    return all_gather_varlen(local)[0].to(tensor.device)


def gather_strided(shard: torch.Tensor, total: int) -> torch.Tensor:
    r"""Reassembles a matrix whose rows were dealt out round-robin.

    Rank :math:`r` of :math:`W` holds rows :math:`r, r+W, r+2W, \dots` of a
    ``[total, *]`` matrix (``range(rank, total, world_size)``: every rank's
    shard differs by at most one row, so the work is balanced). Every rank
    receives the whole matrix with rows in their original order.

    Args:
        shard (torch.Tensor): This rank's rows ``[ceil((total - r) / W), *]``.
        total (int): Rows of the full matrix.

    Returns:
        torch.Tensor: ``[total, *]`` on ``shard``'s device.

    Raises:
        ValueError: If a shard does not have the size of its strided slice.

    Example:
        >>> gather_strided(torch.arange(3.0).view(3, 1), 3).view(-1).tolist()
        [0.0, 1.0, 2.0]
    """
    world, rank = get_world_size(), get_rank()
    expected = len(range(rank, total, world))
    if shard.size(0) != expected:
        raise ValueError(
            f"'shard' of rank {rank} must hold rows range({rank}, {total}, {world}), i.e. "
            f"{expected} rows, got {shard.size(0)}"
        )
    rows = all_gather_rows(shard)
    if world == 1:
        return rows
    # Rows arrive grouped by rank; put row i of rank r back at r + i * W.
    order = torch.cat([torch.arange(r, total, world) for r in range(world)]).to(rows.device)
    out = torch.empty_like(rows)
    out[order] = rows
    return out


def all_reduce_mean(value: torch.Tensor | float) -> torch.Tensor:
    r"""The element-wise mean of ``value`` (a number or a tensor) over
    ranks, as float64 on the CPU (a copy of ``value`` when not distributed).

    Example:
        >>> float(all_reduce_mean(2.5))
        2.5
    """
    t = torch.as_tensor(value, dtype=torch.float64).clone()
    if not is_distributed():
        return t
    dev = _collective_device()
    t = t.to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / get_world_size()).cpu()


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    r"""Copies every buffer of ``module`` (batch-norm running statistics)
    from rank ``src`` to all ranks (no-op when not distributed).

    :class:`~torch.nn.parallel.DistributedDataParallel` broadcasts buffers at
    the start of each training forward, so after the last step of an epoch
    every rank holds the statistics of its own last batch. Feature
    extraction, evaluation and checkpoints need one model: call this first.

    Example:
        >>> broadcast_buffers(torch.nn.BatchNorm1d(2))   # single process: nothing to do
    """
    if not is_distributed():
        return
    dev = _collective_device()
    for buf in module.buffers():
        if buf.device == dev:
            dist.broadcast(buf, src=src)
        else:
            tmp = buf.detach().to(dev)
            dist.broadcast(tmp, src=src)
            buf.copy_(tmp)
