"""The .npz schema of `reidgraph rerank`: round trips, every validation branch, rankings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from reidgraph.rerank.npz import (
    SCHEMA,
    check_requirements,
    load_features,
    load_ranking,
    save_features,
    save_ranking,
)


def _arrays(**extra):
    rng = np.random.default_rng(0)
    base = {
        "query_features": rng.normal(size=(3, 4)).astype(np.float32),
        "gallery_features": rng.normal(size=(5, 4)),
        "query_camids": np.array([0, 1, 2]),
        "gallery_camids": np.array([0, 0, 1, 2, 2]),
        "query_times": np.array([1.0, 2.0, 3.5]),
        "gallery_times": np.array([0, 1, 2, 3, 4]),  # integer seconds are fine
        "query_pids": np.array([7, 8, 9]),
        "gallery_pids": np.array([7, 7, 8, 9, -1]),
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _write(tmp_path, **arrays):
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    return path


def test_schema_lists_every_key():
    assert sorted(SCHEMA) == sorted(
        [f"{s}_{f}" for s in ("query", "gallery") for f in ("features", "camids", "times", "pids")]
        + ["train_features", "train_camids", "train_times", "train_pids"]
    )


def test_load_builds_spine_data(tmp_path):
    arrays = _arrays()
    data = load_features(_write(tmp_path, **arrays))
    assert set(data) == {"query", "gallery"}
    q, g = data["query"], data["gallery"]
    assert q.x.dtype == torch.float32 and q.x.shape == (3, 4)
    torch.testing.assert_close(g.x, torch.from_numpy(arrays["gallery_features"]).float())
    assert q.camid.dtype == torch.long and q.camid.tolist() == [0, 1, 2]
    assert g.time.dtype == torch.float64 and g.time.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert g.pid.tolist() == [7, 7, 8, 9, -1]


def test_round_trip_with_train(tmp_path):
    q = Data(x=torch.randn(2, 3), camid=torch.tensor([0, 1]), time=torch.tensor([0.5, 1.5]))
    g = Data(x=torch.randn(4, 3), camid=torch.tensor([1, 1, 0, 0]), time=torch.arange(4.0))
    t = Data(
        x=torch.randn(6, 3),
        camid=torch.tensor([0, 1] * 3),
        time=torch.arange(6.0) * 2,
        pid=torch.tensor([1, 1, 2, 2, 3, 3]),
    )
    path = tmp_path / "rt.npz"
    save_features(path, q, g, t)
    assert sorted(np.load(path).files) == sorted(
        [f"{s}_{f}" for s in ("query", "gallery", "train") for f in ("features", "camids", "times")]
        + ["train_pids"]
    )
    back = load_features(path)
    for name, orig in (("query", q), ("gallery", g), ("train", t)):
        torch.testing.assert_close(back[name].x, orig.x)
        assert back[name].camid.tolist() == orig.camid.tolist()
        assert back[name].time.tolist() == orig.time.double().tolist()
    assert back["train"].pid.tolist() == [1, 1, 2, 2, 3, 3]


def test_integral_float_camids_accepted(tmp_path):
    data = load_features(_write(tmp_path, **_arrays(query_camids=np.array([0.0, 1.0, 2.0]))))
    assert data["query"].camid.dtype == torch.long


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(query_camid=np.zeros(3)), ValueError, r"unknown key\(s\) \['query_camid'\]"),
        (dict(gallery_features=None), ValueError, r"missing required key.*'gallery_features'"),
        (
            dict(train_features=np.ones((2, 4)), train_camids=np.zeros(2, dtype=int)),
            ValueError,
            r"but not \['train_times'\]",
        ),
        (dict(train_pids=np.zeros(2, dtype=int)), ValueError, "'train_pids' but no"),
        (dict(gallery_features=np.ones((5, 3))), ValueError, "dimension d = 4, got shape"),
        (dict(gallery_features=np.array(["a"] * 5)), TypeError, "must hold numbers"),
        (dict(query_features=np.ones(3)), ValueError, "'query_features' must be two-dim"),
        (
            dict(query_features=np.array([[np.nan, 1, 1, 1]] * 3)),
            ValueError,
            "'query_features' must contain only finite",
        ),
        (dict(query_camids=np.array([0, 1])), ValueError, r"'query_camids' must have shape"),
        (dict(query_camids=np.array([0.5, 1, 2])), TypeError, "'query_camids' must hold int"),
        (dict(query_camids=np.array([0, -1, 2])), ValueError, "0-based camera ids >= 0"),
        (
            dict(gallery_times=np.array([0, 1, np.inf, 3, 4.0])),
            ValueError,
            r"'gallery_times' must hold finite seconds.*first at row 2",
        ),
        (dict(query_times=np.array([True, False, True])), TypeError, "'query_times' must hold"),
        (dict(query_pids=np.array([1.5, 2, 3])), TypeError, "'query_pids' must hold integers"),
    ],
)
def test_validation_errors(tmp_path, change, error, match):
    with pytest.raises(error, match=match):
        load_features(_write(tmp_path, **_arrays(**change)))


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_features(tmp_path / "nope.npz")
    text = tmp_path / "t.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_features(text)
    single = tmp_path / "a.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match="single array, not an .npz"):
        load_features(single)
    obj = tmp_path / "o.npz"
    np.savez(obj, query_features=np.ones((1, 2)), gallery_features=np.array([{}], dtype=object))
    with pytest.raises(TypeError, match="object array"):
        load_features(obj)


def test_requirements():
    full = {
        "query": Data(x=torch.ones(1, 2), camid=torch.tensor([0]), time=torch.tensor([0.0])),
        "gallery": Data(x=torch.ones(2, 2), camid=torch.tensor([0, 1]), time=torch.zeros(2)),
    }
    for method in ("k_reciprocal", "tlift", "gfusion"):
        check_requirements(full, method)
    bare = {"query": Data(x=torch.ones(1, 2)), "gallery": Data(x=torch.ones(2, 2))}
    check_requirements(bare, "k_reciprocal")
    check_requirements(bare, "gfusion")  # no train split: visual-only, needs nothing more
    with pytest.raises(ValueError, match=r"TLift .*'query_camids'.*'gallery_times'"):
        check_requirements(bare, "tlift")
    with pytest.raises(ValueError, match="spatio-temporal G-Fusion needs"):
        check_requirements({**bare, "train": Data(x=torch.ones(2, 2))}, "gfusion")
    one_pid = {"query": Data(x=torch.ones(1, 2), pid=torch.tensor([1])), "gallery": bare["gallery"]}
    with pytest.raises(ValueError, match="'query_pids' is given but 'gallery_pids' is not"):
        check_requirements(one_pid, "k_reciprocal")
    pids = {
        "query": Data(x=torch.ones(1, 2), pid=torch.tensor([1])),
        "gallery": Data(x=torch.ones(2, 2), pid=torch.tensor([1, 2])),
    }
    with pytest.raises(ValueError, match=r"metrics .*'query_camids'.*'gallery_camids'"):
        check_requirements(pids, "k_reciprocal")


def test_save_features_type_error(tmp_path):
    with pytest.raises(TypeError, match="'gallery' must be a Data with features 'x'"):
        save_features(tmp_path / "x.npz", Data(x=torch.ones(1, 2)), torch.ones(2, 2))


def test_save_ranking_against_argsort(tmp_path):
    rng = np.random.default_rng(1)
    d = rng.integers(0, 4, size=(7, 9)).astype(np.float32)  # many ties
    out = save_ranking(
        tmp_path / "r.npz", d, method="m", larger_is_better=False, top_k=5, chunk_size=3
    )
    expected = np.argsort(d, axis=1, kind="stable")[:, :5]  # ties: lower index first
    np.testing.assert_array_equal(out["ranked_index"], expected)
    np.testing.assert_array_equal(out["ranked_distance"], np.take_along_axis(d, expected, 1))
    back = load_ranking(tmp_path / "r.npz")
    assert set(back) == {"method", "ranked_index", "ranked_distance", "distance"}
    np.testing.assert_array_equal(back["distance"], d)
    assert str(back["method"]) == "m"

    sim = save_ranking(
        tmp_path / "s.npz", d, method="t", larger_is_better=True, top_k=50, save_matrix=False
    )
    expected = np.argsort(-d, axis=1, kind="stable")  # top_k clipped to N_g = 9
    np.testing.assert_array_equal(sim["ranked_index"], expected)
    assert set(sim) == {"method", "ranked_index", "ranked_similarity"}

    only = save_ranking(tmp_path / "o.npz", d, method="t", larger_is_better=True, top_k=0)
    assert set(only) == {"method", "similarity"}
    with pytest.raises(ValueError, match="nothing to save"):
        save_ranking(
            tmp_path / "n.npz", d, method="t", larger_is_better=True, top_k=0, save_matrix=False
        )
    with pytest.raises(ValueError, match="'top_k' must be >= 0"):
        save_ranking(tmp_path / "n.npz", d, method="t", larger_is_better=True, top_k=-1)
