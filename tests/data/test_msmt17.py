"""MSMT17 (V1 and V2) parser on hand-made copies of the released layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidgraph.data.datasets import (
    DatasetLayoutError,
    DatasetNotFoundError,
    load_msmt17,
    msmt17_recordings,
    msmt17_to_frame,
)
from reidgraph.data.images import ImageReadError

TRAIN = [
    ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
    ("0000/0000_001_15_0113noon_0100_1.jpg", 0),
    ("0001/0001_000_03_0302afternoon_0042_0_ex.jpg", 1),  # suffixed name, as in the release
]
VAL = [("0001/0001_001_03_0302afternoon_0050_2.jpg", 1)]
QUERY = [("0000/0000_000_02_0114morning_0025_0.jpg", 0)]
GALLERY = [
    ("0000/0000_001_05_0114morning_0075_0.jpg", 0),
    ("0001/0001_000_02_0303noon_0005_0.jpg", 1),
]


@pytest.mark.parametrize(
    "version,folders", [("v1", ("train", "test")), ("v2", ("mask_train_v2", "mask_test_v2"))]
)
def test_msmt17_records(build_msmt17, version, folders):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY, version=version)
    ds = load_msmt17(root, verbose=False)
    assert ds.name == "msmt17" and ds.has_time is False
    assert ds.extra["version"] == version and ds.extra["time_scope"] == "recording"
    base = os.path.abspath(root)
    # List order is kept; paths are joined to the train or test folder.
    assert ds.train.paths == [os.path.join(base, folders[0], p) for p, _ in TRAIN]
    assert ds.train.pids.tolist() == [0, 0, 1]
    assert ds.train.camids.tolist() == [0, 14, 2]  # cameras 01, 15, 03
    assert ds.train.column("frame").tolist() == [15, 100, 42]
    np.testing.assert_allclose(ds.train.times, [15 / 25, 100 / 25, 42 / 25])  # 0.6, 4.0, 1.68
    assert ds.query.paths == [os.path.join(base, folders[1], QUERY[0][0])]
    assert ds.query.camids.tolist() == [1] and ds.query.pids.tolist() == [0]
    assert ds.gallery.camids.tolist() == [4, 1]
    np.testing.assert_allclose(ds.gallery.times, [3.0, 0.2])  # 75 / 25, 5 / 25


def test_msmt17_use_val_and_fps(build_msmt17):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY)
    ds = load_msmt17(root, use_val=True, fps=10.0, verify_images=False)
    assert len(ds.train) == 4 and ds.train.pids.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(ds.train.times, [1.5, 10.0, 4.2, 5.0])  # frame / 10


def test_msmt17_recording_helpers(build_msmt17):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY)
    ds = load_msmt17(root, verify_images=False)
    assert msmt17_recordings(ds.train).tolist() == ["0303morning", "0113noon", "0302afternoon"]
    frame = msmt17_to_frame(ds.gallery)
    assert frame["recording"].tolist() == ["0114morning", "0303noon"]
    assert frame["date"].tolist() == ["0114", "0303"]
    assert frame["time_of_day"].tolist() == ["morning", "noon"]
    assert frame["pid"].tolist() == [0, 1]
    empty = msmt17_to_frame(ds.gallery[:0])
    assert len(empty) == 0 and "recording" in empty.columns
    assert msmt17_recordings(ds.gallery[:0]).size == 0


@pytest.mark.parametrize("sub", ["MSMT17_V1", "msmt17/MSMT17_V1"])
def test_msmt17_nested_v1(build_msmt17, tmp_path, sub):
    build_msmt17(TRAIN, VAL, QUERY, GALLERY, sub=sub)
    ds = load_msmt17(tmp_path, verify_images=False)
    assert ds.root == os.path.join(os.path.abspath(tmp_path), *sub.split("/"))


def test_msmt17_nested_v2_and_version(build_msmt17, tmp_path):
    build_msmt17(TRAIN, VAL, QUERY, GALLERY, version="v2", sub="msmt17/MSMT17_V2")
    ds = load_msmt17(tmp_path, version="V2", verify_images=False)
    assert ds.extra["version"] == "v2"
    with pytest.raises(DatasetNotFoundError, match=r"as v1  \(missing: train/, test/"):
        load_msmt17(tmp_path, version="v1")


def test_msmt17_bad_options(build_msmt17):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY)
    with pytest.raises(ValueError, match="version"):
        load_msmt17(root, version="v3")
    with pytest.raises(TypeError, match="'use_val' must be a bool"):
        load_msmt17(root, use_val="yes")
    with pytest.raises(ValueError, match="'fps' must be a positive finite number"):
        load_msmt17(root, fps=0)
    with pytest.raises(ValueError, match="'fps' must be a positive finite number"):
        load_msmt17(root, fps=float("inf"))
    with pytest.raises(TypeError, match="'fps' must be a real number, got str"):
        load_msmt17(root, fps="25")
    assert load_msmt17(root, fps=np.float32(5.0), verify_images=False).train.times[0] == 3.0


def test_msmt17_bad_lists(build_msmt17, tmp_path):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY)
    (root / "list_query.txt").write_text("0000/0000_000_02_0114morning_0025_0.jpg\n")
    with pytest.raises(DatasetLayoutError, match=r"line 1 of .*list_query\.txt"):
        load_msmt17(root)
    (root / "list_query.txt").write_text("0000/missing_000_02_0114morning_0025_0.jpg 0\n")
    with pytest.raises(DatasetNotFoundError, match="missing_000_02"):
        load_msmt17(root)
    (root / "list_query.txt").write_text("\n")
    with pytest.raises(DatasetLayoutError, match="query split is empty"):
        load_msmt17(root)


@pytest.mark.parametrize(
    "name,match",
    [
        ("0000_000_16_0303morning_0015_0.jpg", "outside 01..15"),
        ("0000_000_01_morning_0015_0.jpg", "do not match"),
    ],
)
def test_msmt17_bad_names(build_msmt17, tmp_path, name, match):
    root = build_msmt17(TRAIN + [("0000/" + name, 0)], VAL, QUERY, GALLERY)
    with pytest.raises(DatasetLayoutError, match=match):
        load_msmt17(root, verify_images=False)


def test_msmt17_corrupt_image(build_msmt17):
    root = build_msmt17(TRAIN, VAL, QUERY, GALLERY)
    (root / "test" / GALLERY[1][0]).write_bytes(b"")
    with pytest.raises(ImageReadError, match="gallery(.|\n)*0001_000_02_0303noon_0005_0.jpg"):
        load_msmt17(root, verbose=False)
