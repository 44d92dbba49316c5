"""The labeler protocol: supervision forms, validation, sklearn compatibility."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch_geometric.data import Data

from reidgraph.labelers import (
    ClusterLabels,
    EmptySupervisionError,
    FixedClusters,
    JaccardDBSCAN,
    KNNPairs,
    LabelledPairs,
    PseudoLabeler,
    SoftAffinity,
    ThresholdPairs,
    check_spine,
    compact_labels,
    label_groups,
)


class Sign(PseudoLabeler):
    """Toy labeler: cluster by the sign of the first feature, or emit another form."""

    def __init__(self, form="clusters", cut=0.0):
        self.form = form
        self.cut = cut

    def label(self, data):
        x = data.x
        if self.form == "clusters":
            return ClusterLabels(torch.where(x[:, 0] > self.cut, 1, -1))
        if self.form == "pairs":
            return LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([int(self.cut == 0)]))
        if self.form == "affinity":
            return SoftAffinity(torch.tensor([[0], [1]]), torch.tensor([self.cut]), x.size(0))
        if self.form == "short":
            return ClusterLabels(torch.zeros(1, dtype=torch.long))
        if self.form == "wide_pairs":
            return LabelledPairs(torch.tensor([[0], [9]]), torch.tensor([1]))
        if self.form == "wide_affinity":
            return SoftAffinity(torch.tensor([[0], [1]]), torch.tensor([1.0]), 99)
        return "not a form"


# ------------------------------------------------------------------ forms
def test_cluster_labels_compacts_and_counts():
    s = ClusterLabels(torch.tensor([7, -1, 3, 7, 3, 3]))
    # sorted clusters {3, 7} -> {0, 1}
    assert s.labels.tolist() == [1, -1, 0, 1, 0, 0]
    assert (s.num_nodes, s.num_clusters, s.num_outliers) == (6, 2, 1)
    assert s.cluster_sizes().tolist() == [3, 2]
    assert s.to("cpu").labels.tolist() == s.labels.tolist()
    assert ClusterLabels(torch.tensor([-1, -1])).num_clusters == 0
    assert compact_labels(np.array([4, 4, -1])).tolist() == [0, 0, -1]


def test_cluster_labels_errors():
    with pytest.raises(TypeError, match="integer cluster labels"):
        ClusterLabels(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r">= -1 \(-1 = outlier\), found -2"):
        ClusterLabels(torch.tensor([0, -2]))
    with pytest.raises(ValueError, match="one-dimensional"):
        ClusterLabels(torch.zeros(2, 2, dtype=torch.long))


def test_labelled_pairs_defaults_and_checks():
    s = LabelledPairs(torch.tensor([[0, 0, 2], [1, 2, 1]]), torch.tensor([1, 0, 1]))
    assert s.weight.tolist() == [1.0, 1.0, 1.0]
    assert (s.num_pairs, s.num_positive) == (3, 2)
    assert s.target.dtype == torch.long
    s2 = LabelledPairs(np.array([[0], [1]]), [1.0], weight=[0.25], num_nodes=2)
    assert s2.weight.tolist() == [0.25] and s2.to("cpu").num_nodes == 2
    with pytest.raises(ValueError, match=r"shape \[2, P\]"):
        LabelledPairs(torch.tensor([0, 1]), torch.tensor([1, 1]))
    with pytest.raises(TypeError, match="integer node indices"):
        LabelledPairs(torch.tensor([[0.0], [1.0]]), torch.tensor([1]))
    with pytest.raises(ValueError, match="length 1"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"1 \(same identity\) or 0 \(different\), found 2"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"found 0.5"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"confidences in \[0, 1\]"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([1]), weight=torch.tensor([1.5]))
    with pytest.raises(ValueError, match="finite"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([1]), weight=torch.tensor([np.nan]))
    with pytest.raises(ValueError, match=">= 0, found -1"):
        LabelledPairs(torch.tensor([[0], [-1]]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\[0, 1\] \(num_nodes=2\), found 4"):
        LabelledPairs(torch.tensor([[0], [4]]), torch.tensor([1]), num_nodes=2)
    with pytest.raises(TypeError, match="'num_nodes' must be an int"):
        LabelledPairs(torch.tensor([[0], [1]]), torch.tensor([1]), num_nodes=2.0)


def test_soft_affinity_checks():
    s = SoftAffinity(torch.tensor([[0, 1], [1, 2]]), torch.tensor([1, 2]), 3)
    assert s.weight.dtype == torch.float32 and s.num_edges == 2
    assert s.to("cpu").num_nodes == 3
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        SoftAffinity(torch.tensor([[0, 1, 2]]), torch.tensor([1.0]), 3)
    with pytest.raises(TypeError, match="'num_nodes' must be an int"):
        SoftAffinity(torch.tensor([[0], [1]]), torch.tensor([1.0]), "3")
    with pytest.raises(ValueError, match=r"\[0, 2\], found \[0, 3\]"):
        SoftAffinity(torch.tensor([[0], [3]]), torch.tensor([1.0]), 3)
    with pytest.raises(ValueError, match="non-negative"):
        SoftAffinity(torch.tensor([[0], [1]]), torch.tensor([-0.1]), 3)
    with pytest.raises(ValueError, match="finite"):
        SoftAffinity(torch.tensor([[0], [1]]), torch.tensor([np.inf]), 3)


# ------------------------------------------------------------- check_spine
def test_check_spine_accepts_data_and_matrices():
    x = torch.tensor([[1, 0], [0, 1]])  # integer: converted to float, caller's Data untouched
    data = Data(x=x, camid=torch.tensor([0, 1]))
    out = check_spine(data, "demo")
    assert out.x.dtype == torch.float32 and data.x.dtype == torch.int64
    assert out.camid.tolist() == [0, 1]
    assert check_spine(np.eye(3, dtype=np.float32), "demo").num_nodes == 3
    same = Data(x=torch.eye(2))
    assert check_spine(same, "demo") is same


def test_check_spine_errors():
    with pytest.raises(ValueError, match="demo needs node features 'x'"):
        check_spine(Data(camid=torch.tensor([0])), "demo")
    with pytest.raises(TypeError, match="demo.fit expects a torch_geometric.data.Data"):
        check_spine("features.npy", "demo")
    x = torch.zeros(5, 2)
    x[3, 1] = float("nan")
    x[4, 0] = float("inf")
    with pytest.raises(ValueError, match=r"in 2 of 5 rows \(first at row 3\)"):
        check_spine(x, "demo")
    with pytest.raises(ValueError, match="demo needs at least 4 samples, got 3"):
        check_spine(torch.zeros(3, 2), "demo", min_samples=4)
    with pytest.raises(ValueError, match="two-dimensional"):
        check_spine(torch.zeros(3), "demo")


# ------------------------------------------------------------ the protocol
def test_fit_sets_attributes_and_returns_self():
    x = torch.tensor([[-1.0], [2.0], [3.0], [-4.0]])
    labeler = Sign()
    assert labeler.fit(x) is labeler
    assert labeler.labels_.tolist() == [-1, 0, 0, -1]
    assert (labeler.n_clusters_, labeler.n_outliers_) == (1, 2)
    assert isinstance(labeler.supervision_, ClusterLabels)
    assert labeler.fit_predict(Data(x=x)).tolist() == [-1, 0, 0, -1]


def test_fit_other_forms_and_stale_attributes():
    x = torch.tensor([[1.0], [2.0]])
    labeler = Sign().fit(x)
    labeler.set_params(form="pairs")
    labeler.fit(x)
    assert labeler.n_pairs_ == 1 and labeler.supervision_.num_nodes == 2
    assert not hasattr(labeler, "labels_")  # the previous fit's clusters are gone
    with pytest.raises(TypeError, match="produces LabelledPairs, not cluster labels"):
        labeler.fit_predict(x)
    labeler = Sign(form="affinity", cut=0.5).fit(x)
    assert labeler.n_edges_ == 1 and isinstance(labeler.supervision_, SoftAffinity)


def test_fit_rejects_bad_label_output():
    x = torch.tensor([[1.0], [2.0]])
    with pytest.raises(TypeError, match="must return exactly one of ClusterLabels"):
        Sign(form="junk").fit(x)
    with pytest.raises(ValueError, match="returned 1 labels for 2 nodes"):
        Sign(form="short").fit(x)
    with pytest.raises(ValueError, match="pairs over other nodes than the 2 given"):
        Sign(form="wide_pairs").fit(x)
    with pytest.raises(ValueError, match="affinity over 99 nodes, not 2"):
        Sign(form="wide_affinity").fit(x)
    with pytest.raises(NotImplementedError, match="must implement label"):
        PseudoLabeler().fit(x)


def test_empty_supervision_raises_with_hint():
    x = torch.tensor([[-1.0], [-2.0]])
    labeler = Sign().fit(-x)
    with pytest.raises(EmptySupervisionError):
        labeler.fit(x)
    assert not hasattr(labeler, "supervision_") and not hasattr(labeler, "labels_")
    with pytest.raises(EmptySupervisionError, match="no clusters found: all 2 samples"):
        Sign().fit(x)
    with pytest.raises(EmptySupervisionError, match="no positive pairs found among 2"):
        Sign(form="pairs", cut=1).fit(x)
    with pytest.raises(EmptySupervisionError, match="soft affinity among 2 samples is empty"):
        Sign(form="affinity", cut=0.0).fit(x)


def test_single_cluster_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="reidgraph.labelers.base"):
        Sign().fit(torch.tensor([[1.0], [2.0]]))
    assert "ONE cluster" in caplog.text and "lower eps" in caplog.text


@pytest.mark.parametrize(
    "labeler",
    [
        JaccardDBSCAN(eps=0.4, min_samples=3, k1=20, k2=5, group_by="camid"),
        FixedClusters(600, "complete", group_by="camid", small_group="halve"),
        KNNPairs(k=5, backend="torch"),
        ThresholdPairs(0.7, min_k=2, max_neighbors=50),
        Sign(form="pairs", cut=2),
    ],
)
def test_sklearn_clone_and_get_params(labeler):
    params = labeler.get_params()
    twin = clone(labeler)
    assert type(twin) is type(labeler) and twin is not labeler
    assert twin.get_params() == params
    # get_params reports exactly what __init__ was given (sklearn's contract)
    assert all(getattr(labeler, k) == v for k, v in params.items())
    assert type(labeler).__name__ in repr(labeler)


def test_clone_drops_fitted_state():
    fitted = Sign().fit(torch.tensor([[1.0], [2.0], [-1.0]]))
    twin = clone(fitted)
    assert not hasattr(twin, "labels_") and not hasattr(twin, "supervision_")


# ------------------------------------------------------------ label_groups
def test_label_groups_offsets_clusters_per_group():
    data = Data(x=torch.zeros(6, 1), camid=torch.tensor([2, 0, 2, 0, 2, 0]))

    def cluster(index):  # within a camera: first node alone, the rest together, last outlier
        out = torch.ones(index.numel(), dtype=torch.long)
        out[0] = 0
        out[-1] = -1
        return out

    labels = label_groups(data, "camid", cluster, "demo")
    # camera 0 = nodes [1, 3, 5] -> [0, 1, -1]; camera 2 = nodes [0, 2, 4] -> [2, 3, -1]
    assert labels.tolist() == [2, 0, 3, 1, -1, -1]
    assert label_groups(data, None, cluster, "demo").tolist() == [0, 1, 1, 1, 1, -1]


def test_label_groups_errors():
    data = Data(x=torch.zeros(2, 1), camid=torch.tensor([0.0, 1.0]))
    ident = lambda i: torch.zeros_like(i)  # noqa: E731
    with pytest.raises(ValueError, match=r"Could not resolve group_by='pid'"):
        label_groups(data, "pid", ident, "demo")
    with pytest.raises(ValueError, match=r"demo\(group_by='modality'\) needs 'data.modality'"):
        label_groups(data, "modality", ident, "demo")
    with pytest.raises(TypeError, match="'data.camid' must hold integer ids"):
        label_groups(data, "camid", ident, "demo")
    data.camid = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="group camid=0 has 1 nodes but got 2 labels"):
        label_groups(data, "camid", lambda i: torch.zeros(2, dtype=torch.long), "demo")


@pytest.mark.gpu
def test_cuda_features_give_the_cpu_result_on_cuda():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 16, generator=g)
    x = torch.nn.functional.normalize(
        centres.repeat_interleave(10, 0) + 0.3 * torch.randn(60, 16, generator=g), dim=1
    )
    camid = torch.arange(60) % 2
    for labeler in (
        JaccardDBSCAN(k1=8, k2=3, group_by="camid"),
        FixedClusters(6, group_by="camid"),
        KNNPairs(k=4, backend="torch"),
        ThresholdPairs(0.5, backend="torch"),
    ):
        cpu = clone(labeler).fit(Data(x=x, camid=camid)).supervision_
        gpu = clone(labeler).fit(Data(x=x.cuda(), camid=camid.cuda())).supervision_
        if isinstance(cpu, ClusterLabels):
            assert gpu.labels.is_cuda and torch.equal(gpu.labels.cpu(), cpu.labels)
        else:
            assert gpu.pair_index.is_cuda
            assert set(map(tuple, gpu.pair_index.cpu().t().tolist())) == set(
                map(tuple, cpu.pair_index.t().tolist())
            )
