"""DukeMTMC-reID parser on a hand-made copy of the released layout."""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidgraph.data.datasets import DatasetLayoutError, DatasetNotFoundError, load_dukemtmc

TRAIN = ["0001_c2_f0046182.jpg", "0001_c5_f0000010.jpg", "0003_c8_f0000000.jpg"]
QUERY = ["0005_c2_f0046985.jpg"]
GALLERY = ["0005_c1_f0044158.jpg", "0005_c7_f0000100.jpg", "0004_c3_f0001000.jpg"]

# Published synchronisation offsets (frames), cameras 1..8, and 59.94 fps:
#   c1 5542, c2 3606, c3 27243, c4 31181, c5 0, c6 22401, c7 18967, c8 46765
# time = (frame + offset[camera]) / 59.94


def test_dukemtmc_records(build_market_style):
    root = build_market_style(TRAIN, QUERY, GALLERY)
    ds = load_dukemtmc(root, verbose=False)
    assert ds.name == "dukemtmc" and ds.has_time
    # train, sorted names: 0001_c2, 0001_c5, 0003_c8
    assert ds.train.pids.tolist() == [1, 1, 3]
    assert ds.train.camids.tolist() == [1, 4, 7]
    assert ds.train.column("frame").tolist() == [46182, 10, 0]
    np.testing.assert_allclose(
        ds.train.times, [(46182 + 3606) / 59.94, (10 + 0) / 59.94, (0 + 46765) / 59.94]
    )
    assert ds.query.pids.tolist() == [5] and ds.query.camids.tolist() == [1]
    np.testing.assert_allclose(ds.query.times, [(46985 + 3606) / 59.94])
    # gallery, sorted names: 0004_c3, 0005_c1, 0005_c7
    assert [os.path.basename(p) for p in ds.gallery.paths] == [
        "0004_c3_f0001000.jpg",
        "0005_c1_f0044158.jpg",
        "0005_c7_f0000100.jpg",
    ]
    assert ds.gallery.pids.tolist() == [4, 5, 5]
    assert ds.gallery.camids.tolist() == [2, 0, 6]
    np.testing.assert_allclose(
        ds.gallery.times,
        [(1000 + 27243) / 59.94, (44158 + 5542) / 59.94, (100 + 18967) / 59.94],
    )
    # 830.63... s for the first train image, written out: 49788 / 59.94
    assert ds.train.times[0] == pytest.approx(830.6306306, abs=1e-6)
    assert ds.num_cameras == 8


def test_dukemtmc_torchreid_nesting(build_market_style, tmp_path):
    build_market_style(TRAIN, QUERY, GALLERY, sub="dukemtmc-reid/DukeMTMC-reID")
    ds = load_dukemtmc(tmp_path, verify_images=False)
    assert ds.root.endswith(os.path.join("dukemtmc-reid", "DukeMTMC-reID"))


def test_dukemtmc_junk_dropped(build_market_style):
    root = build_market_style(TRAIN, QUERY, GALLERY + ["-1_c1_f0000001.jpg"])
    ds = load_dukemtmc(root, verify_images=False)
    assert -1 not in ds.gallery.pids.tolist() and len(ds.gallery) == 3


@pytest.mark.parametrize("bad", ["0001_c9_f0000001.jpg", "0001_c2_0000001.jpg", "x_c1_f1.jpg"])
def test_dukemtmc_bad_names(build_market_style, bad):
    root = build_market_style(TRAIN + [bad], QUERY, GALLERY)
    with pytest.raises(DatasetLayoutError, match=bad.replace(".", r"\.")):
        load_dukemtmc(root, verify_images=False)


def test_dukemtmc_missing_and_empty(build_market_style, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="DukeMTMC-reID(.|\n)*f0046182"):
        load_dukemtmc(tmp_path)
    root = build_market_style(TRAIN, QUERY, [], sub="x")
    with pytest.raises(DatasetLayoutError, match="gallery split is empty"):
        load_dukemtmc(root)
