"""KNNPairs and ThresholdPairs (MPRD Table 1 baselines): hand cases and brute force."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from reidgraph.labelers import EmptySupervisionError, KNNPairs, LabelledPairs, ThresholdPairs

# Directions at 0, 10, 30, 90, 95 and 180 degrees: the cosine order is the angle order.
ANGLES = [0, 10, 30, 90, 95, 180]


def _unit(deg):
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    return torch.tensor(np.c_[np.cos(a), np.sin(a)], dtype=torch.float32)


def _brute_pairs(x, keep_fn):
    """All (i, j != i) pairs chosen by keep_fn(i, sims_sorted_desc, order), by a plain loop."""
    x = torch.nn.functional.normalize(x.double(), dim=1).numpy()
    s = x @ x.T
    pairs = set()
    for i in range(len(x)):
        others = [j for j in np.argsort(-s[i], kind="stable") if j != i]
        for j in keep_fn(i, [s[i, j] for j in others], others):
            pairs.add((i, int(j)))
    return pairs


def _as_set(sup):
    return set(map(tuple, sup.pair_index.t().tolist()))


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_knn_pairs_by_hand(backend):
    labeler = KNNPairs(k=2, backend=backend).fit(_unit(ANGLES))
    sup = labeler.supervision_
    assert isinstance(sup, LabelledPairs)
    # nearest two by angle: 0->{10,30}, 10->{0,30}, 30->{10,0}, 90->{95,30}, 95->{90,30},
    # 180->{95,90}
    assert sup.pair_index.tolist() == [
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
        [1, 2, 0, 2, 1, 0, 4, 2, 3, 2, 4, 3],
    ]
    assert sup.target.tolist() == [1] * 12 and sup.weight.tolist() == [1.0] * 12
    assert labeler.n_pairs_ == 12 and sup.num_nodes == 6


def test_knn_pairs_match_brute_force():
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    ours = KNNPairs(k=8, backend="torch").fit(x).supervision_
    assert _as_set(ours) == _brute_pairs(x, lambda i, sims, others: others[:8])
    assert ours.num_pairs == 40 * 8


def test_knn_pairs_never_pair_a_node_with_itself_even_with_duplicates():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    pairs = KNNPairs(k=2, backend="torch").fit(x).supervision_.pair_index
    assert bool((pairs[0] != pairs[1]).all())
    # nodes 0-2 are identical: each one's two nearest others are the other two copies
    assert set(map(tuple, pairs[:, :6].t().tolist())) == {
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 2),
        (2, 0),
        (2, 1),
    }


def test_threshold_pairs_by_hand():
    x = _unit(ANGLES)
    sup = ThresholdPairs(0.6, backend="torch").fit(x).supervision_
    # cos > 0.6 <=> angle < 53.1 deg: 0->{10, 30}, 10->{0, 30}, 30->{10, 0}, 90->{95}, 95->{90}
    assert sup.pair_index.tolist() == [[0, 0, 1, 1, 2, 2, 3, 4], [1, 2, 0, 2, 1, 0, 4, 3]]
    # min_k=1 adds each node's nearest neighbour: 180 -> 95 (85 deg, cos 0.087)
    sup = ThresholdPairs(0.6, min_k=1, backend="torch").fit(x).supervision_
    assert sup.pair_index.tolist() == [[0, 0, 1, 1, 2, 2, 3, 4, 5], [1, 2, 0, 2, 1, 0, 4, 3, 4]]
    # strictly greater: orthogonal vectors (cosine exactly 0) are no pair at threshold 0
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pairs = _as_set(ThresholdPairs(0.0, backend="torch").fit(y).supervision_)
    assert pairs == {(0, 2), (2, 0), (1, 2), (2, 1)}


def test_threshold_pairs_cap_is_reported(caplog):
    x = _unit(ANGLES)
    with caplog.at_level(logging.WARNING, logger="reidgraph.labelers.pairs"):
        labeler = ThresholdPairs(0.6, max_neighbors=1, backend="torch").fit(x)
    # anchors 0, 10 and 30 each have two images above 0.6 but keep one
    assert labeler.n_truncated_ == 3
    assert "3 of 6 anchors have more than max_neighbors=1" in caplog.text
    assert labeler.supervision_.pair_index.tolist() == [[0, 1, 2, 3, 4], [1, 0, 1, 4, 3]]
    # a cap at N - 1 sees every other node: nothing can be truncated
    assert ThresholdPairs(0.6, max_neighbors=100, backend="torch").fit(x).n_truncated_ == 0


def test_threshold_pairs_match_brute_force():
    # clustered data so that many pairs pass 0.6
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(5, 16, generator=g)
    x = centres.repeat_interleave(12, 0) + 0.6 * torch.randn(60, 16, generator=g)
    ours = ThresholdPairs(0.6, max_neighbors=59, backend="torch").fit(x).supervision_
    ref = _brute_pairs(
        x, lambda i, sims, others: [j for s, j in zip(sims, others, strict=True) if s > 0.6]
    )
    assert len(ref) > 100
    assert _as_set(ours) == ref
    ours = ThresholdPairs(0.6, min_k=8, max_neighbors=59, backend="torch").fit(x).supervision_
    ref_mprd = _brute_pairs(
        x,
        lambda i, sims, others: [
            j for n, (s, j) in enumerate(zip(sims, others, strict=True)) if s > 0.6 or n < 8
        ],
    )
    assert _as_set(ours) == ref_mprd


def test_defaults_are_mprd_table_1():
    assert KNNPairs().k == 8
    assert ThresholdPairs().threshold == 0.6


def test_bad_input():
    x = _unit(ANGLES)
    with pytest.raises(ValueError, match="needs at least 7 samples, got 6"):
        KNNPairs(k=6).fit(x)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        KNNPairs(k=0).fit(x)
    with pytest.raises(ValueError, match="Could not resolve backend='gpu'"):
        KNNPairs(k=2, backend="gpu").fit(x)
    with pytest.raises(ValueError, match=r"cosine similarity in \[-1, 1\], got 1.5"):
        ThresholdPairs(1.5).fit(x)
    with pytest.raises(TypeError, match="'threshold' must be a float"):
        ThresholdPairs("high").fit(x)
    with pytest.raises(ValueError, match="min_k neighbours must fit in max_neighbors=2"):
        ThresholdPairs(min_k=3, max_neighbors=2).fit(x)
    with pytest.raises(ValueError, match="'max_neighbors' must be >= 1"):
        ThresholdPairs(max_neighbors=0).fit(x)
    with pytest.raises(EmptySupervisionError, match="no cosine similarity exceeds threshold=0.999"):
        ThresholdPairs(0.999, backend="torch").fit(x)
