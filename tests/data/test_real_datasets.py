"""Published statistics of the real datasets, checked when a copy is on disk.

Marked ``dataset``: runs only when ``REIDGRAPH_DATA`` names a folder holding
the datasets (each found through its usual nesting, e.g.
``$REIDGRAPH_DATA/Market-1501-v15.09.15``); a dataset that is absent skips.
The expected numbers are the ones the dataset papers and torchreid publish.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from reidgraph.data.datasets import DatasetNotFoundError
from reidgraph.data.load import load_dataset

pytestmark = pytest.mark.dataset


def _load(name, **options):
    try:
        return load_dataset(name, os.environ["REIDGRAPH_DATA"], **options)
    except DatasetNotFoundError as exc:
        pytest.skip(f"{name} not under REIDGRAPH_DATA: {exc}")


def _count(split):
    return len(split), len(np.unique(split.pids))


def test_real_market1501():
    ds = _load("market1501")
    assert _count(ds.train) == (12936, 751)
    assert _count(ds.query) == (3368, 750)
    assert _count(ds.gallery) == (15913, 751)  # 750 ids + distractor pid 0
    assert ds.num_cameras == 6 and np.isfinite(ds.gallery.times).all()


def test_real_dukemtmc():
    ds = _load("dukemtmc")
    assert _count(ds.train) == (16522, 702)
    assert _count(ds.query) == (2228, 702)
    assert _count(ds.gallery) == (17661, 1110)
    assert ds.num_cameras == 8


def test_real_msmt17():
    ds = _load("msmt17")
    assert _count(ds.train) == (30248, 1041)  # list_train.txt only
    assert _count(ds.query) == (11659, 3060)
    assert _count(ds.gallery) == (82161, 3060)
    assert ds.num_cameras == 15
    assert len(_load("msmt17", use_val=True, verify_images=False).train) == 32621


@pytest.mark.parametrize("mode,gallery", [("all", 301), ("indoor", 112)])
def test_real_sysu_mm01(mode, gallery):
    ds = _load("sysu_mm01", mode=mode)
    assert _count(ds.train)[1] == 395
    assert int((ds.train.modalities == 0).sum()) == 22258
    assert int((ds.train.modalities == 1).sum()) == 11909
    assert _count(ds.query) == (3803, 96)
    assert len(ds.gallery) == gallery


def test_real_regdb():
    ds = _load("regdb", trial=1)
    assert _count(ds.train) == (4120, 206)
    assert len(ds.query) == 2060 and len(ds.gallery) == 2060
