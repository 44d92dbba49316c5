"""Tests of RandomIdentitySampler: P x K structure, outliers, determinism, rank shares, errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reidgraph.data.samplers import RandomIdentitySampler

# ids: 0 x4 images, 1 x8, 2 x2, outliers -1 x2, 3 x1, 4 x5
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, -1, -1, 3, 4, 4, 4, 4, 4]


def _batches(sampler):
    flat = list(sampler)
    assert len(flat) == len(sampler) and len(flat) % sampler.batch_size == 0
    return [flat[i : i + sampler.batch_size] for i in range(0, len(flat), sampler.batch_size)]


def test_every_chunk_used_when_p_is_one():
    # K = 2, P = 1: every chunk becomes a batch. Chunks per id: floor(count / K), at least 1:
    #   id0: 4 -> 2, id1: 8 -> 4, id2: 2 -> 1, id3: 1 -> 1 (drawn with replacement: [16, 16]),
    #   id4: 5 -> 2 (one image left out)                                  => 10 batches.
    sampler = RandomIdentitySampler(LABELS, batch_size=2, num_instances=2, seed=0)
    batches = _batches(sampler)
    assert len(batches) == 10 and sampler.num_batches == 10
    labels = np.asarray(LABELS)
    per_id = Counter(int(labels[b[0]]) for b in batches)
    assert per_id == {0: 2, 1: 4, 2: 1, 3: 1, 4: 2}
    for b in batches:
        assert labels[b[0]] == labels[b[1]]
    used = Counter(i for b in batches for i in b)
    assert used[16] == 2  # the single image of id 3, twice
    assert all(used[i] == 1 for i in range(14))  # ids 0, 1, 2: each image exactly once
    assert 14 not in used and 15 not in used  # outliers never sampled
    assert sum(used[i] for i in range(17, 22)) == 4 and max(used[i] for i in range(17, 22)) == 1


@pytest.mark.parametrize("seed", range(5))
def test_p_by_k_structure(seed):
    sampler = RandomIdentitySampler(LABELS, batch_size=6, num_instances=2, seed=seed)
    labels = np.asarray(LABELS)
    batches = _batches(sampler)
    assert batches  # 5 ids with 10 chunks: at least 2 batches of 3 ids
    for b in batches:
        counts = Counter(labels[b].tolist())
        assert len(counts) == 3 and set(counts.values()) == {2} and -1 not in counts
    # No image of an id with >= K images is used twice in an epoch.
    used = Counter(i for b in batches for i in b if i != 16)
    assert max(used.values()) == 1


def test_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        s = RandomIdentitySampler(LABELS, 4, 2, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert order(0, 0) == order(0, 0)
    assert order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    with pytest.raises(ValueError, match="'epoch' must be >= 0"):
        RandomIdentitySampler(LABELS, 4, 2).set_epoch(-1)


def test_rank_shares_of_the_global_order():
    labels = np.repeat(np.arange(12), 4)  # 12 ids x 4 images, K = 2 -> 24 chunks
    glob = _batches(RandomIdentitySampler(labels, 4, 2, seed=3, rank=0, world_size=1))
    ranks = [
        _batches(RandomIdentitySampler(labels, 4, 2, seed=3, rank=r, world_size=3))
        for r in range(3)
    ]
    per_rank = len(glob) // 3
    assert [len(r) for r in ranks] == [per_rank] * 3
    for r in range(3):
        # rank r keeps global batches r, r + 3, r + 6, ... (the remainder is dropped)
        assert ranks[r] == [glob[j] for j in range(r, per_rank * 3, 3)]


def test_defaults_without_process_group():
    s = RandomIdentitySampler(LABELS, 4)
    assert (s.rank, s.world_size, s.num_instances, s.seed) == (0, 1, 4, 0)
    assert repr(s) == (
        "RandomIdentitySampler(identities=5, batch_size=4, num_instances=4, seed=0, rank=0, "
        "world_size=1)"
    )


def test_with_data_loader():
    labels = torch.tensor(LABELS)
    ds = torch.utils.data.TensorDataset(torch.arange(len(LABELS)), labels)
    sampler = RandomIdentitySampler(labels, 4, 2, seed=1)
    for _, lab in DataLoader(ds, batch_size=4, sampler=sampler):
        assert sorted(Counter(lab.tolist()).values()) == [2, 2]


@pytest.mark.parametrize(
    "args, kwargs, err, match",
    [
        (
            (LABELS, 5, 2),
            {},
            ValueError,
            r"'batch_size' \(5\) must be a multiple of 'num_instances'",
        ),
        ((LABELS, 4, 0), {}, ValueError, "'num_instances' must be >= 1"),
        (
            (LABELS, 12, 2),
            {},
            ValueError,
            "needs P = batch_size / num_instances = 6 identities but "
            "only 5 identities have labels >= 0",
        ),
        (([-1, -1, -1], 2, 2), {}, ValueError, r"all labels are -1 \(outliers\) \(of 3 items\)"),
        (([0, 0, 1], 6, 2), {}, ValueError, "only 2 identities"),
        (([0.0, 1.0], 2, 1), {}, TypeError, "'labels' must hold integers"),
        (([0, -2], 2, 1), {}, ValueError, "'labels' must be >= -1"),
        (([[0, 1]], 2, 1), {}, ValueError, "'labels' must be one-dimensional"),
        ((LABELS, 4, 2), {"rank": 2, "world_size": 2}, ValueError, r"'rank' must be <= 1 \(world"),
        (
            ([0, 0, 1, 1], 4, 2),
            {"world_size": 2},
            ValueError,
            r"Too few batches per epoch \(1\) "
            "for world_size=2",
        ),
        ((LABELS, 4, 2), {"seed": -1}, ValueError, "'seed' must be >= 0"),
    ],
)
def test_errors(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        RandomIdentitySampler(*args, **kwargs)
