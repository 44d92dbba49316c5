"""JaccardDBSCAN: hand-worked cases and the dense cluster-contrast reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN
from torch_geometric.data import Data

from reidgraph.data.synthetic import make_world
from reidgraph.labelers import EPS, EmptySupervisionError, JaccardDBSCAN, dbscan_precomputed


def _unit(deg):
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    return torch.tensor(np.c_[np.cos(a), np.sin(a)], dtype=torch.float32)


def _two_groups_and_outlier(offset=0.0):
    # Two groups of 5 near-identical directions (spread 0.004 deg) and one far outlier.
    jitter = np.arange(5) * 0.001
    return _unit(np.r_[offset + jitter, offset + 90 + jitter, offset + 225])


def _canonical(labels):
    """Relabels clusters by first appearance (outliers stay -1), to compare partitions."""
    labels = np.asarray(labels)
    out = np.full_like(labels, -1)
    seen = {}
    for i, v in enumerate(labels):
        if v >= 0:
            out[i] = seen.setdefault(v, len(seen))
    return out


def _dense_reference(x, k1, k2):
    """cluster-contrast's compute_jaccard_distance, written plainly: dense V, per-row Jaccard."""
    x = torch.nn.functional.normalize(x.double(), dim=1).numpy()
    n = len(x)
    d = 2.0 - 2.0 * x @ x.T
    rank = np.argsort(d, axis=1, kind="stable")[:, :k1]  # k1 columns, self first
    half = int(np.around(k1 / 2))

    def recip(i, k):
        fwd = rank[i, : k + 1]
        back = rank[fwd, : k + 1]
        return fwd[(back == i).any(1)]

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        members = r
        for c in r:
            rc = recip(c, half)
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                members = np.append(members, rc)
        members = np.unique(members)
        w = np.exp(-d[i, members])
        v[i, members] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jd = np.zeros((n, n))
    for i in range(n):
        t = np.minimum(v[i], v).sum(1)
        jd[i] = 1.0 - t / (2.0 - t)
    return np.clip(jd, 0.0, None)


def test_dbscan_precomputed_by_hand():
    # 0-1-2 chain within 0.3; 3 alone; 4 close to 3 only.
    d = np.zeros((5, 5))
    for i, j, v in [(0, 1, 0.2), (1, 2, 0.3), (0, 2, 0.5), (3, 4, 0.25)]:
        d[i, j] = d[j, i] = v
    dist = sp.csr_matrix(d)
    # min_samples=3 (self included): 0 has {0,1}, 1 has {0,1,2} -> core, 2 has {1,2};
    # 3 and 4 have 2 each -> noise. Cluster {0, 1, 2} (0 and 2 are border points of core 1).
    assert dbscan_precomputed(dist, eps=0.3, min_samples=3).tolist() == [0, 0, 0, -1, -1]
    assert dbscan_precomputed(dist, eps=0.3, min_samples=2).tolist() == [0, 0, 0, 1, 1]
    assert dbscan_precomputed(dist, eps=0.1, min_samples=2).tolist() == [-1] * 5


def test_two_groups_and_an_outlier():
    # k1 = 5 = group size, far-apart groups: each member's 5 nearest are its own group,
    # so its k-reciprocal set is the whole group with ~uniform weights 1/5 and the Jaccard
    # distance is ~0 inside a group and exactly 1 across. The outlier is in nobody's
    # top-5: its encoding is itself alone (k2 = 1) -> distance 1 to all -> noise.
    x = _two_groups_and_outlier()
    labeler = JaccardDBSCAN(eps=0.6, min_samples=4, k1=5, k2=1).fit(x)
    assert labeler.labels_.tolist() == [0] * 5 + [1] * 5 + [-1]
    assert (labeler.n_clusters_, labeler.n_outliers_) == (2, 1)
    # 5 members < min_samples=6: every point is noise -> a clear stop
    with pytest.raises(EmptySupervisionError, match=r"raise eps \(now 0.6\) or lower min_samples"):
        JaccardDBSCAN(eps=0.6, min_samples=6, k1=5, k2=1).fit(x)


def test_group_by_camera_clusters_each_camera_alone():
    x = torch.cat([_two_groups_and_outlier(), _two_groups_and_outlier(offset=1.0)])
    camid = torch.tensor([1] * 11 + [0] * 11)
    data = Data(x=x, camid=camid)
    labels = JaccardDBSCAN(k1=5, k2=1, group_by="camid").fit(data).labels_
    # camera 0 (the second block) is clustered first: its groups get 0 and 1
    assert labels.tolist() == [2] * 5 + [3] * 5 + [-1] + [0] * 5 + [1] * 5 + [-1]
    with pytest.raises(
        ValueError, match=r"more than k1=12 samples per clustering \(group camid=0\)"
    ):
        JaccardDBSCAN(k1=12, k2=1, group_by="camid").fit(data)


@pytest.mark.parametrize("eps,k1,k2", [(0.6, 10, 3), (0.5, 20, 6), (0.45, 8, 1)])
def test_matches_dense_cluster_contrast_reference(eps, k1, k2):
    data = make_world("tiny", seed=3, verbose=False).to_data("train")
    ref_dist = _dense_reference(data.x, k1, k2)
    # keep the comparison away from float32-vs-float64 rounding at the radius
    assert np.abs(ref_dist - eps).min() > 1e-4
    ref = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(ref_dist)
    ours = JaccardDBSCAN(eps=eps, min_samples=4, k1=k1, k2=k2).fit(data)
    assert len(set(ref.tolist()) - {-1}) >= 3  # a non-trivial clustering
    np.testing.assert_array_equal(_canonical(ours.labels_.numpy()), _canonical(ref))


def test_published_eps_values():
    # REFERENCE_NOTES A.4 (MPRD README) and A.2 (GUR's hard-coded values)
    assert EPS["market1501"] == 0.4 and EPS["dukemtmc"] == 0.6 and EPS["msmt17"] == 0.7
    assert EPS["sysu_mm01"] == 0.6 and EPS["sysu_mm01_camera"] == 0.55 and EPS["regdb"] == 0.3


def test_defaults_are_cluster_contrast_practice():
    p = JaccardDBSCAN().get_params()
    assert p == {"eps": 0.6, "min_samples": 4, "k1": 30, "k2": 6, "group_by": None}


def test_bad_input():
    x = _two_groups_and_outlier()
    with pytest.raises(ValueError, match=r"'eps' must be in \(0, 1\)"):
        JaccardDBSCAN(eps=1.0, k1=5, k2=1).fit(x)
    with pytest.raises(TypeError, match="'eps' must be a float"):
        JaccardDBSCAN(eps="0.6", k1=5, k2=1).fit(x)
    with pytest.raises(ValueError, match="'min_samples' must be >= 1"):
        JaccardDBSCAN(min_samples=0, k1=5, k2=1).fit(x)
    with pytest.raises(ValueError, match="needs at least 31 samples, got 11"):
        JaccardDBSCAN().fit(x)
    with pytest.raises(ValueError, match="'k1' must be >= 1"):
        JaccardDBSCAN(k1=0).fit(x)
    with pytest.raises(ValueError, match="k2"):
        JaccardDBSCAN(k1=5, k2=7).fit(x)
    bad = x.clone()
    bad[2, 0] = float("nan")
    with pytest.raises(
        ValueError, match=r"NaN or infinite values in 1 of 11 rows \(first at row 2\)"
    ):
        JaccardDBSCAN(k1=5, k2=1).fit(bad)
