"""Tests of the rendered images of the synthetic world."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from reidgraph.data.synthetic import make_world
from reidgraph.data.synthetic.render import write_images

NAME = re.compile(r"^(\d{4,})_c(\d+)s1_(\d{6,})_(\d{2,})\.(png|jpg)$")


@pytest.fixture(scope="module")
def tiny_vi():
    return make_world("tiny", seed=0, modalities="visible-infrared")


def test_render_shape_determinism_and_subsets(tiny_vi):
    imgs = tiny_vi.render("train")
    assert imgs.dtype == np.uint8 and imgs.shape == (len(tiny_vi.train), 64, 32, 3)
    again = make_world("tiny", seed=0, modalities="visible-infrared").render("train")
    assert np.array_equal(imgs, again)
    rows = [5, 0, 17]
    assert np.array_equal(tiny_vi.render("train", rows), imgs[rows])
    assert not np.array_equal(make_world("tiny", seed=1).render("train", [0]), imgs[:1])


def test_infrared_cameras_render_grey(tiny_vi):
    imgs = tiny_vi.render("gallery").astype(np.int16)
    ir = tiny_vi.gallery.modalities == 1
    assert ir.any() and (~ir).any()
    assert (imgs[ir, ..., 0] == imgs[ir, ..., 1]).all()
    assert (imgs[ir, ..., 1] == imgs[ir, ..., 2]).all()
    # visible images have colour: channels differ on average by several levels
    chroma = np.abs(imgs[~ir, ..., 0] - imgs[~ir, ..., 2]).mean(axis=(1, 2))
    assert chroma.mean() > 10


def test_images_differ_by_identity():
    world = make_world("small", seed=0)
    sel = np.arange(0, len(world.train), 3)
    imgs = world.render("train", sel).astype(np.float32)
    pid, cam = world.train.pids[sel], world.train.camids[sel]
    # centre crop (the person), compared within one camera (same background)
    crop = imgs[:, 12:60, 8:24].reshape(len(sel), 12, 4, 4, 4, 3).mean((2, 4))
    crop = crop.reshape(len(sel), -1)  # 4x4-pooled person crop
    same, diff = [], []
    for c in np.unique(cam):
        m = np.flatnonzero(cam == c)[:150]
        d = np.abs(crop[m, None] - crop[None, m]).mean(-1)
        eq = pid[m, None] == pid[None, m]
        off = ~np.eye(len(m), dtype=bool)
        same.append(d[eq & off])
        diff.append(d[~eq])
    same, diff = np.concatenate(same).mean(), np.concatenate(diff).mean()
    assert same < 0.6 * diff, (same, diff)


def test_camera_colour_cast():
    world = make_world("small", seed=0)
    imgs = world.render("train", np.arange(0, len(world.train), 2))
    cam = world.train.camids[::2]
    means = np.stack([imgs[cam == c].reshape(-1, 3).mean(0) for c in range(6)])
    # every pair of cameras differs in mean colour by > 5 grey levels somewhere
    gaps = np.abs(means[:, None] - means[None]).max(-1)
    assert (gaps[~np.eye(6, dtype=bool)] > 5).all()


def test_occlusion_paints_a_band():
    free = make_world("tiny", seed=0, occlusion_prob=0.0).render("query")
    full = make_world("tiny", seed=0, occlusion_prob=1.0).render("query")
    diff = (free != full).any(-1)  # [n, H, W]
    assert diff.any(axis=(1, 2)).mean() > 0.9
    for d in diff:
        rows, cols = np.flatnonzero(d.any(1)), np.flatnonzero(d.any(0))
        if rows.size:  # changed pixels lie in a bottom band or a side band
            assert rows.max() == 63 or cols.min() == 0 or cols.max() == 31


def test_write_png_in_market_layout(tmp_path, tiny_vi):
    world = make_world("tiny", seed=0, modalities="visible-infrared", images=True, root=tmp_path)
    assert world.root == str(tmp_path.resolve())
    folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    for name, folder in folders.items():
        split = world.split(name)
        assert len(os.listdir(tmp_path / folder)) == len(split)  # names are unique
        imgs = tiny_vi.render(name)
        for i, r in enumerate(split):
            assert os.path.isabs(r.path) and os.path.dirname(r.path) == str(tmp_path / folder)
            m = NAME.match(os.path.basename(r.path))
            assert m is not None, r.path
            assert (int(m[1]), int(m[2]) - 1, int(m[3])) == (r.pid, r.camid, r.frame)
            with Image.open(r.path) as im:
                assert im.mode == "RGB" and im.size == (32, 64)
                assert np.array_equal(np.asarray(im), imgs[i])  # PNG is lossless
    # asking for images does not change the features
    for name in folders:
        assert torch.equal(world.features(name), tiny_vi.features(name))


def test_temporary_folder_and_cleanup():
    world = make_world("tiny", seed=0, images=True)
    path = world.train[0].path
    assert os.path.isfile(path) and path.startswith(world.root)
    world.cleanup()
    assert not os.path.exists(world.root)
    world.cleanup()  # idempotent


def test_jpg_is_readable_by_the_market_parser(tmp_path):
    market = pytest.importorskip("reidgraph.data.datasets.market1501")
    world = make_world("tiny", seed=4, images=True, root=tmp_path, image_format="jpg")
    ds = market.load_market1501(tmp_path, verbose=False)
    for name in ("train", "query", "gallery"):
        ours = sorted((r.path, r.pid, r.camid, r.frame, r.time) for r in world.split(name))
        theirs = sorted((r.path, r.pid, r.camid, r.frame, r.time) for r in getattr(ds, name))
        assert ours == theirs


def test_larger_image_size():
    world = make_world("tiny", seed=0, image_size=(128, 64))
    imgs = world.render("query", [0, 1])
    assert imgs.shape == (2, 128, 64, 3)


def test_write_images_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"'paths' must name one file per image \(2\), got 1"):
        write_images(np.zeros((2, 16, 8, 3), np.uint8), [str(tmp_path / "a.png")])
