"""SYSU-MM01 parser and the single-shot gallery protocol on a hand-made layout."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from reidgraph.data.datasets import (
    DatasetLayoutError,
    DatasetNotFoundError,
    load_sysu_mm01,
    sysu_gallery_indices,
)
from reidgraph.data.images import ImageReadError

# (camera, pid, number of images 0001.jpg ...)
IMAGES = [
    (1, 1, 2),
    (3, 1, 1),  # train id 1
    (2, 2, 1),  # train id 2
    (4, 3, 1),
    (6, 3, 1),  # val id 3 (training uses train + val)
    (1, 4, 3),
    (2, 4, 2),
    (4, 4, 2),  # test id 4, visible
    (3, 4, 2),
    (6, 4, 1),  # test id 4, infrared
    (1, 5, 2),
    (5, 5, 3),  # test id 5, visible
    (3, 5, 1),  # test id 5, infrared
    (1, 9, 1),  # id 9 is in no list: never loaded
]
TRAIN_IDS, VAL_IDS, TEST_IDS = [2, 1], [3], [5, 4]  # unsorted on purpose


def _names(split):
    # cam<k>/<pid>/<img> -> "k/pid/img"
    return ["/".join(p.split(os.sep)[-3:]).replace("cam", "") for p in split.paths]


def test_sysu_train_and_query(build_sysu):
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    ds = load_sysu_mm01(root, verbose=False)
    assert ds.name == "sysu_mm01" and ds.has_time is False
    # train: ids 1, 2, 3 in (pid, camera, file) order; 2 + 1 + 1 + 1 + 1 = 6 images
    assert _names(ds.train) == [
        "1/0001/0001.jpg",
        "1/0001/0002.jpg",
        "3/0001/0001.jpg",
        "2/0002/0001.jpg",
        "4/0003/0001.jpg",
        "6/0003/0001.jpg",
    ]
    assert ds.train.pids.tolist() == [1, 1, 1, 2, 3, 3]
    assert ds.train.camids.tolist() == [0, 0, 2, 1, 3, 5]  # cam k -> k - 1
    assert ds.train.modalities.tolist() == [0, 0, 1, 0, 0, 1]  # cam3, cam6 infrared
    assert np.isnan(ds.train.times).all() and set(ds.train.column("frame")) == {-1}
    # query: every infrared image of test ids 4, 5: 2 + 1 + 1 = 4
    assert _names(ds.query) == [
        "3/0004/0001.jpg",
        "3/0004/0002.jpg",
        "6/0004/0001.jpg",
        "3/0005/0001.jpg",
    ]
    assert ds.query.pids.tolist() == [4, 4, 4, 5]
    assert ds.query.camids.tolist() == [2, 2, 5, 2]
    assert ds.query.modalities.tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("mode,pool_size,groups", [("all", 12, 5), ("indoor", 7, 3)])
def test_sysu_gallery_pool_and_sizes(build_sysu, mode, pool_size, groups):
    # all: id 4 cams 1, 2, 4 (3 + 2 + 2) + id 5 cams 1, 5 (2 + 3) = 12 images, 5 groups
    # indoor: id 4 cams 1, 2 (3 + 2) + id 5 cam 1 (2) = 7 images, 3 groups
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    ds = load_sysu_mm01(root, mode=mode, verify_images=False)
    pool = ds.extra["gallery_pool"]
    assert len(pool) == pool_size and len(ds.gallery) == groups
    assert set(pool.modalities.tolist()) == {0}
    keys = list(zip(ds.gallery.pids.tolist(), ds.gallery.camids.tolist(), strict=True))
    assert len(set(keys)) == groups  # one image per (id, camera)
    assert keys == sorted(keys)


def _reference_gallery(root, mode, trial):
    """The released protocol (GUR sysu_test.py process_gallery_sysu), rewritten:
    seed Python's random with the trial, visit sorted ids then cameras, and
    random.choice one file of each existing folder's sorted listing."""
    random.seed(trial)
    cams = ["cam1", "cam2", "cam4", "cam5"] if mode == "all" else ["cam1", "cam2"]
    out = []
    for pid in sorted(f"{x:04d}" for x in TEST_IDS):
        for cam in cams:
            folder = os.path.join(root, cam, pid)
            if os.path.isdir(folder):
                out.append(
                    random.choice(sorted(os.path.join(folder, f) for f in os.listdir(folder)))
                )
    return out


@pytest.mark.parametrize("mode", ["all", "indoor"])
def test_sysu_gallery_matches_released_protocol(build_sysu, mode):
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    galleries = set()
    for trial in range(10):
        ds = load_sysu_mm01(root, mode=mode, trial=trial, verify_images=False)
        assert ds.gallery.paths == _reference_gallery(os.path.abspath(root), mode, trial)
        pool = ds.extra["gallery_pool"]
        assert [pool.paths[i] for i in ds.extra["gallery_pool_index"]] == ds.gallery.paths
        galleries.add(tuple(ds.gallery.paths))
    assert len(galleries) > 1  # the trial seed changes the draw


def test_sysu_gallery_indices_small_case():
    # groups in (pid, cam) order: (1, cam 0) -> pool rows [0, 1]; (2, cam 0) -> [3];
    # cam 3 is not an indoor camera. random.Random(0).choice(range(2)) == 1, then
    # the one-row group gives 0: picks rows 1 and 3.
    assert random.Random(0).choice(range(2)) == 1
    got = sysu_gallery_indices(np.array([1, 1, 1, 2]), np.array([0, 0, 3, 0]), "indoor", 0)
    assert got.tolist() == [1, 3]
    # Groups are visited in (pid, cam) order, rows inside a group in pool order:
    # group (1, cam 0) = rows [0, 2], choice(range(2)) == 1 -> row 2; then (2, cam 0)
    # = row [1].
    got = sysu_gallery_indices(np.array([1, 2, 1]), np.array([0, 0, 0]), "all", 0)
    assert got.tolist() == [2, 1]
    assert sysu_gallery_indices(np.array([1]), np.array([2]), "all", 0).size == 0
    with pytest.raises(ValueError, match="same length"):
        sysu_gallery_indices(np.array([1, 2]), np.array([0]), "all", 0)
    with pytest.raises(ValueError, match="mode"):
        sysu_gallery_indices(np.array([1]), np.array([0]), "outdoor", 0)
    with pytest.raises(ValueError, match="'seed' must be >= 0"):
        sysu_gallery_indices(np.array([1]), np.array([0]), "all", -1)


def test_sysu_nested_root(build_sysu, tmp_path):
    build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS, sub="SYSU-MM01")
    ds = load_sysu_mm01(tmp_path, verify_images=False)
    assert ds.root == os.path.join(os.path.abspath(tmp_path), "SYSU-MM01")


def test_sysu_bad_options(build_sysu):
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    with pytest.raises(ValueError, match="'trial' must be <= 9"):
        load_sysu_mm01(root, trial=10)
    with pytest.raises(TypeError, match="'trial' must be an int"):
        load_sysu_mm01(root, trial=1.0)
    with pytest.raises(ValueError, match="mode"):
        load_sysu_mm01(root, mode="outdoor")


def test_sysu_layout_errors(build_sysu, tmp_path):
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    (root / "exp" / "test_id.txt").write_text("4,five\n")
    with pytest.raises(DatasetLayoutError, match=r"test_id\.txt.*'five'"):
        load_sysu_mm01(root)
    (root / "exp" / "test_id.txt").write_text("\n")
    with pytest.raises(DatasetLayoutError, match="test_id.txt' is empty"):
        load_sysu_mm01(root)
    (root / "exp" / "test_id.txt").write_text("2\n")  # id 2 has no infrared image
    with pytest.raises(DatasetLayoutError, match="query split is empty"):
        load_sysu_mm01(root)
    (root / "exp" / "test_id.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing: exp/test_id\.txt"):
        load_sysu_mm01(root)
    with pytest.raises(DatasetNotFoundError, match="missing: cam1/"):
        load_sysu_mm01(tmp_path / "cam1")


def test_sysu_corrupt_gallery_image(build_sysu):
    root = build_sysu(IMAGES, TRAIN_IDS, VAL_IDS, TEST_IDS)
    (root / "cam5" / "0005" / "0003.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(ImageReadError, match=r"gallery(.|\n)*cam5.0005.0003\.jpg"):
        load_sysu_mm01(root, verbose=False)


def test_sysu_training_id_without_images_is_reported(build_sysu, caplog):
    root = build_sysu(IMAGES, TRAIN_IDS + [7], VAL_IDS, TEST_IDS)
    with caplog.at_level("WARNING", logger="reidgraph.data.datasets.sysu_mm01"):
        ds = load_sysu_mm01(root, verify_images=False)
    assert "1 training id(s) have no images: [7]" in caplog.text
    assert len(ds.train) == 6
