"""RegDB parser on a hand-made copy of the released index files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidgraph.data.datasets import DatasetLayoutError, DatasetNotFoundError, load_regdb
from reidgraph.data.images import ImageReadError

LISTS = {
    ("train", "visible", 1): [
        ("Visible/1/female_front_v_00001_1.bmp", 0),
        ("Visible/2/male_back_v_00011_2.bmp", 1),
    ],
    ("train", "thermal", 1): [
        ("Thermal/1/female_front_t_00001_1.bmp", 0),
        ("Thermal/2/male_back_t_00011_2.bmp", 1),
    ],
    ("test", "visible", 1): [
        ("Visible/3/male_front_v_00021_3.bmp", 0),
        ("Visible/4/female_back_v_00031_4.bmp", 1),
    ],
    ("test", "thermal", 1): [
        ("Thermal/3/male_front_t_00021_3.bmp", 0),
        ("Thermal/4/female_back_t_00031_4.bmp", 1),
        ("Thermal/4/female_back_t_00032_4.bmp", 1),
    ],
    # trial 2 swaps the roles of the two id groups
    ("train", "visible", 2): [("Visible/3/male_front_v_00021_3.bmp", 0)],
    ("train", "thermal", 2): [("Thermal/3/male_front_t_00021_3.bmp", 0)],
    ("test", "visible", 2): [("Visible/1/female_front_v_00001_1.bmp", 0)],
    ("test", "thermal", 2): [("Thermal/1/female_front_t_00001_1.bmp", 0)],
}


def _rel(split, root):
    return [os.path.relpath(p, os.path.abspath(root)).replace(os.sep, "/") for p in split.paths]


def test_regdb_v2t(build_regdb):
    root = build_regdb(LISTS)
    ds = load_regdb(root, verbose=False)
    assert ds.name == "regdb" and ds.has_time is False
    assert ds.extra == {"trial": 1, "direction": "v2t"}
    # train = train_visible (2, camera 0) then train_thermal (2, camera 1)
    assert _rel(ds.train, root) == [p for p, _ in LISTS[("train", "visible", 1)]] + [
        p for p, _ in LISTS[("train", "thermal", 1)]
    ]
    assert ds.train.pids.tolist() == [0, 1, 0, 1]
    assert ds.train.camids.tolist() == [0, 0, 1, 1]
    assert ds.train.modalities.tolist() == [0, 0, 1, 1]
    assert np.isnan(ds.train.times).all()
    # visible -> thermal: query is test_visible, gallery test_thermal
    assert _rel(ds.query, root) == [p for p, _ in LISTS[("test", "visible", 1)]]
    assert ds.query.camids.tolist() == [0, 0] and ds.query.modalities.tolist() == [0, 0]
    assert ds.gallery.pids.tolist() == [0, 1, 1]
    assert ds.gallery.camids.tolist() == [1, 1, 1] and ds.gallery.modalities.tolist() == [1, 1, 1]


def test_regdb_t2v_and_trial(build_regdb, tmp_path):
    root = build_regdb(LISTS, sub="RegDB")
    ds = load_regdb(tmp_path, trial=1, direction="T2V", verify_images=False)
    assert ds.root == os.path.join(os.path.abspath(tmp_path), "RegDB")
    assert len(ds.query) == 3 and ds.query.modalities.tolist() == [1, 1, 1]
    assert len(ds.gallery) == 2 and ds.gallery.camids.tolist() == [0, 0]
    ds2 = load_regdb(root, trial=2, verify_images=False)
    assert _rel(ds2.query, root) == ["Visible/1/female_front_v_00001_1.bmp"]
    assert _rel(ds2.train, root) == [
        "Visible/3/male_front_v_00021_3.bmp",
        "Thermal/3/male_front_t_00021_3.bmp",
    ]


def test_regdb_bad_options(build_regdb):
    root = build_regdb(LISTS)
    with pytest.raises(ValueError, match="'trial' must be >= 1"):
        load_regdb(root, trial=0)
    with pytest.raises(ValueError, match=r"'trial' must be <= 10 \(RegDB has trials 1..10\)"):
        load_regdb(root, trial=11)
    with pytest.raises(ValueError, match="direction"):
        load_regdb(root, direction="ir2rgb")
    with pytest.raises(DatasetNotFoundError, match=r"missing: idx/train_visible_3\.txt"):
        load_regdb(root, trial=3)


def test_regdb_bad_content(build_regdb):
    root = build_regdb(LISTS)
    idx = root / "idx" / "test_thermal_1.txt"
    idx.write_text("Thermal/3/male_front_t_00021_3.bmp zero\n")
    with pytest.raises(DatasetLayoutError, match=r"line 1 of .*test_thermal_1\.txt"):
        load_regdb(root)
    idx.write_text("Thermal/3/nope.bmp 0\n")
    with pytest.raises(DatasetNotFoundError, match="nope.bmp"):
        load_regdb(root)
    idx.write_text("")
    with pytest.raises(DatasetLayoutError, match="test_thermal split is empty"):
        load_regdb(root)


def test_regdb_corrupt_image(build_regdb):
    root = build_regdb(LISTS)
    (root / "Visible/4/female_back_v_00031_4.bmp").write_bytes(b"BM not really")
    with pytest.raises(ImageReadError, match="female_back_v_00031_4.bmp"):
        load_regdb(root, verbose=False)
