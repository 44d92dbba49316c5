"""FixedClusters (IICS agglomerative clustering): hand cases and a naive reference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from reidgraph.labelers import FixedClusters


def _canonical(labels):
    labels = np.asarray(labels)
    out = np.full_like(labels, -1)
    seen = {}
    for i, v in enumerate(labels):
        if v >= 0:
            out[i] = seen.setdefault(v, len(seen))
    return out


def _naive_linkage(d, n_clusters, reduce):
    """Merges the closest pair of clusters until n_clusters remain (a plain O(n^4) loop)."""
    clusters = [[i] for i in range(len(d))]
    while len(clusters) > n_clusters:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                v = reduce(d[np.ix_(clusters[a], clusters[b])])
                if best is None or v < best[0]:
                    best = (v, a, b)
        _, a, b = best
        clusters[a] = clusters[a] + clusters.pop(b)
    labels = np.empty(len(d), dtype=np.int64)
    for c, members in enumerate(clusters):
        labels[members] = c
    return labels


def test_two_groups_and_an_outlier_by_hand():
    # 1-D points: {0, .1, .2}, {5, 5.1, 5.2} and 20. Average linkage merges within the
    # groups first (distances <= .2), then the groups' mutual average is 5 while 20 is
    # >= 14.8 from everything, so 3 clusters = the two groups and the outlier alone.
    x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2], [20.0]])
    labeler = FixedClusters(3, metric="euclidean").fit(x)
    assert _canonical(labeler.labels_).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert (labeler.n_clusters_, labeler.n_outliers_) == (3, 0)
    # 2 clusters: the groups merge (average 5.0) before anything joins 20
    assert _canonical(FixedClusters(2, metric="euclidean").fit_predict(x)).tolist() == [
        0,
        0,
        0,
        0,
        0,
        0,
        1,
    ]


def test_cosine_distance_by_hand():
    # directions 0, 10, 20 deg and 90, 100 deg: 1 - cos is < 0.07 inside, > 0.65 across
    a = np.deg2rad([0, 10, 20, 90, 100])
    x = torch.tensor(np.c_[np.cos(a), np.sin(a)], dtype=torch.float32) * torch.tensor(
        [[1.0], [3.0], [0.5], [2.0], [1.0]]
    )  # norms do not matter for the cosine
    assert _canonical(FixedClusters(2).fit_predict(x)).tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize(
    "linkage,reduce", [("average", np.mean), ("complete", np.max), ("single", np.min)]
)
def test_matches_naive_linkage(linkage, reduce):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(14, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    ref = _naive_linkage(d, 4, reduce)
    ours = FixedClusters(4, linkage, metric="euclidean").fit_predict(torch.tensor(x))
    np.testing.assert_array_equal(_canonical(ours.numpy()), _canonical(ref))


def test_per_camera_offsets_and_small_group():
    x = torch.tensor([[0.0], [0.1], [9.0], [0.0], [0.1], [5.0], [5.1], [9.0], [9.1], [20.0]])
    camid = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    data = Data(x=x, camid=camid)
    labels = FixedClusters(2, metric="euclidean", group_by="camid").fit_predict(data)
    # camera 0: {0, .1} | {9}; camera 1 (offset by 2): {0, .1, 5, 5.1, 9, 9.1} | {20}
    assert labels.tolist() == [0, 0, 1, 2, 2, 2, 2, 2, 2, 3]
    with pytest.raises(ValueError, match=r"n_clusters=4 exceeds the 3 samples \(group camid=0\)"):
        FixedClusters(4, metric="euclidean", group_by="camid").fit(data)


def test_halve_applies_to_the_small_group_only(caplog):
    # IICS's code overwrites the cluster count for all later cameras after a small one;
    # here camera 0 (3 samples < 4) gets 3 // 2 = 1 cluster and camera 1 keeps 4.
    x = torch.tensor([[0.0], [0.1], [9.0], [0.0], [1.0], [5.0], [6.0], [12.0], [13.0], [20.0]])
    camid = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    labeler = FixedClusters(4, metric="euclidean", group_by="camid", small_group="halve")
    with caplog.at_level(logging.WARNING, logger="reidgraph.labelers.agglomerative"):
        labels = labeler.fit_predict(Data(x=x, camid=camid))
    assert "3 samples (group camid=0) < n_clusters=4; using 1 clusters" in caplog.text
    # camera 1: {0, 1} {5, 6} {12, 13} {20}
    assert _canonical(labels).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert labeler.n_clusters_ == 5


def test_single_sample_group():
    data = Data(x=torch.tensor([[0.0], [1.0], [2.0]]), camid=torch.tensor([0, 1, 1]))
    labels = FixedClusters(1, metric="euclidean", group_by="camid").fit_predict(data)
    assert labels.tolist() == [0, 1, 1]


def test_bad_input():
    x = torch.rand(6, 2)
    with pytest.raises(ValueError, match="Could not resolve linkage='ward'"):
        FixedClusters(2, "ward").fit(x)
    with pytest.raises(ValueError, match="Could not resolve metric='jaccard'"):
        FixedClusters(2, metric="jaccard").fit(x)
    with pytest.raises(ValueError, match="Could not resolve small_group='skip'"):
        FixedClusters(2, small_group="skip").fit(x)
    with pytest.raises(ValueError, match="'n_clusters' must be >= 1"):
        FixedClusters(0).fit(x)
    with pytest.raises(TypeError, match="'n_clusters' must be an int"):
        FixedClusters(2.0).fit(x)
    with pytest.raises(ValueError, match=r"6 samples exceed max_samples=5.*group_by='camid'"):
        FixedClusters(2, max_samples=5).fit(x)
    with pytest.raises(ValueError, match="n_clusters=7 exceeds the 6 samples; lower"):
        FixedClusters(7).fit(x)
    with pytest.raises(ValueError, match="needs at least 2 samples, got 1"):
        FixedClusters(1).fit(torch.rand(1, 2))
