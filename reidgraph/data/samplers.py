r"""P x K identity sampling for metric learning, distributed-aware."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from reidgraph._validation import check_int, check_vector

__all__ = ["RandomIdentitySampler"]


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RandomIdentitySampler(Sampler[int]):
    r"""Batches of :math:`P` identities with :math:`K` images each (Hermans et
    al., "In Defense of the Triplet Loss", 2017, Sec. 3), over pseudo-labels.

    Per epoch, each identity's images are shuffled and cut into chunks of
    :math:`K` (an identity with fewer than :math:`K` images is sampled with
    replacement up to :math:`K`; a last incomplete chunk is dropped). Then,
    while at least :math:`P = \text{batch\_size} / K` identities have chunks
    left, :math:`P` of them are drawn uniformly without replacement and one
    chunk of each forms a batch (the torchreid practice). Labels ``-1``
    (outliers of a clustering) are never sampled. Defaults follow the
    papers: :math:`K = 4` with batch 64 (IICS, REFERENCE_NOTES A.3); the
    cluster-contrast practice (GUR, MPRD) uses :math:`K = 16`.

    The order depends only on ``seed`` and the epoch (:meth:`set_epoch`),
    so under :mod:`torch.distributed` every rank draws the same global list
    of batches and keeps every ``world_size``-th one, starting at its
    ``rank``; all ranks get the same number of batches (the remainder is
    dropped). ``batch_size`` is the per-process batch: pass it to the
    :class:`~torch.utils.data.DataLoader` too (``drop_last`` is not needed).

    Cost per epoch: :math:`O(N \log N)` to group and shuffle, plus
    :math:`O(B \cdot I)` for :math:`B` batches over :math:`I` identities.

    Args:
        labels (array-like): Label of each dataset item ``[N]`` (int,
            ``-1`` outlier).
        batch_size (int): Images per batch, a multiple of ``num_instances``.
        num_instances (int, optional): :math:`K`. (default: :obj:`4`)
        seed (int, optional): Seed of the shuffles. (default: :obj:`0`)
        rank (int, optional): This process's rank. (default: :obj:`None`,
            from :mod:`torch.distributed` when initialised, else 0)
        world_size (int, optional): Number of processes. (default:
            :obj:`None`, from :mod:`torch.distributed`, else 1)

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``num_instances``,
            fewer than :math:`P` identities have labels :math:`\geq 0` (for
            instance a clustering that returned only outliers), or there are
            too few batches for ``world_size`` processes.

    Example:
        >>> sampler = RandomIdentitySampler([0, 0, 1, 1, 2, 2, -1], batch_size=4, num_instances=2)
        >>> batch = list(sampler)
        >>> len(batch), -1 in [sampler.labels[i] for i in batch]
        (4, False)
    """

    def __init__(
        self,
        labels: Any,
        batch_size: int,
        num_instances: int = 4,
        seed: int = 0,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        labels = check_vector(labels, "labels")
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"'labels' must hold integers, got dtype {labels.dtype}")
        self.labels = labels.cpu().numpy().astype(np.int64)
        if self.labels.size and self.labels.min() < -1:
            raise ValueError(
                f"'labels' must be >= -1 (-1 marks outliers), got {int(self.labels.min())}"
            )
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        self.num_instances = check_int(num_instances, "num_instances", min_value=1)
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"'batch_size' ({self.batch_size}) must be a multiple of 'num_instances' "
                f"({self.num_instances})"
            )
        self.num_identities = self.batch_size // self.num_instances
        self.seed = check_int(seed, "seed", min_value=0)
        d_rank, d_world = _dist_rank_world()
        self.world_size = check_int(
            d_world if world_size is None else world_size, "world_size", min_value=1
        )
        self.rank = check_int(
            d_rank if rank is None else rank,
            "rank",
            min_value=0,
            max_value=self.world_size - 1,
            max_reason="world_size - 1",
        )
        self.epoch = 0
        valid = self.labels >= 0
        n_ids = np.unique(self.labels[valid]).size
        if n_ids < self.num_identities:
            what = (
                "all labels are -1 (outliers)"
                if not valid.any()
                else f"only {n_ids} identit{'y' if n_ids == 1 else 'ies'} have labels >= 0"
            )
            raise ValueError(
                f"A batch needs P = batch_size / num_instances = {self.num_identities} "
                f"identities but {what} (of {self.labels.size} items); lower batch_size or "
                f"num_instances, or loosen the pseudo-labeler (e.g. a larger DBSCAN eps)"
            )
        self._cache: tuple[int, np.ndarray] | None = None
        if len(self._batches()) == 0:
            raise ValueError(
                f"Too few batches per epoch ({len(self._global_batches())}) for "
                f"world_size={self.world_size} processes; lower batch_size or use fewer processes"
            )

    def set_epoch(self, epoch: int) -> None:
        r"""Sets the epoch, which (with ``seed``) fixes the order."""
        self.epoch = check_int(epoch, "epoch", min_value=0)

    def _global_batches(self) -> np.ndarray:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        k = self.num_instances
        idx = np.flatnonzero(self.labels >= 0)
        lab = self.labels[idx]
        # Group by label, random order inside each group.
        order = np.lexsort((rng.random(idx.size), lab))
        idx, lab = idx[order], lab[order]
        ids, start, count = np.unique(lab, return_index=True, return_counts=True)
        # Identities with >= K images: floor(count / K) chunks of distinct images.
        n_chunks = np.where(count >= k, count // k, 1)
        pos = np.arange(idx.size) - np.repeat(start, count)
        keep = pos < np.repeat(np.where(count >= k, n_chunks * k, 0), count)
        big = idx[keep].reshape(-1, k)
        big_owner = np.repeat(np.arange(ids.size), np.where(count >= k, n_chunks, 0))
        # Identities with < K images: one chunk of K drawn with replacement.
        small = np.flatnonzero(count < k)
        draws = np.floor(rng.random((small.size, k)) * count[small, None]).astype(np.int64)
        small_chunks = idx[start[small, None] + draws]
        chunks = np.concatenate([big, small_chunks])
        owner = np.concatenate([big_owner, small])
        # Chunks of one identity, in random order: a queue per identity.
        chunk_order = np.lexsort((rng.random(owner.size), owner))
        chunks, owner = chunks[chunk_order], owner[chunk_order]
        head = np.searchsorted(owner, np.arange(ids.size))
        left = n_chunks.copy()
        batches = []
        p = self.num_identities
        while True:
            avail = np.flatnonzero(left > 0)
            if avail.size < p:
                break
            pick = rng.choice(avail, size=p, replace=False)
            batches.append(chunks[head[pick] + n_chunks[pick] - left[pick]].reshape(-1))
            left[pick] -= 1
        out = np.stack(batches) if batches else np.empty((0, self.batch_size), dtype=np.int64)
        self._cache = (self.epoch, out)
        return out

    def _batches(self) -> np.ndarray:
        glob = self._global_batches()
        per_rank = glob.shape[0] // self.world_size
        return glob[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._batches().reshape(-1).tolist())

    def __len__(self) -> int:
        return int(self._batches().size)

    @property
    def num_batches(self) -> int:
        r"""Batches this rank yields in the current epoch."""
        return len(self) // self.batch_size

    def __repr__(self) -> str:
        n_ids = np.unique(self.labels[self.labels >= 0]).size
        return (
            f"{type(self).__name__}(identities={n_ids}, batch_size={self.batch_size}, "
            f"num_instances={self.num_instances}, seed={self.seed}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )
