"""Tests of ImageDataset (files and in-memory images) and collate_images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from reidgraph.data import INFRARED, ImageReadError, ImageRecord, ReIDSplit, make_world
from reidgraph.data.image_dataset import ImageDataset, collate_images
from reidgraph.data.transforms import build_transforms


@pytest.fixture(scope="module")
def world():
    return make_world("tiny", seed=0, images=False)


def _files(tmp_path, arrays, modes=None):
    records = []
    for i, arr in enumerate(arrays):
        path = tmp_path / f"{i:04d}_c{i % 2 + 1}s1_000001_00.png"
        img = Image.fromarray(arr)
        if modes is not None and modes[i] is not None:
            img = img.convert(modes[i])
        img.save(path)
        records.append(ImageRecord(str(path), pid=i + 1, camid=i % 2, modality=i % 2))
    return ReIDSplit(records, "query")


def test_in_memory_items_match_the_pixels(world):
    images = world.render("train")
    ds = ImageDataset(world.train, images=images)
    assert len(ds) == len(world.train) == images.shape[0]
    for i in (0, 7, len(ds) - 1):
        item = ds[i]
        rec = world.train[i]
        # No transform: [3, H, W] floats, pixel / 255.
        expected = torch.from_numpy(images[i].astype(np.float32) / 255).permute(2, 0, 1)
        assert torch.allclose(item["img"], expected)
        assert item["index"] == i and item["pid"] == rec.pid and item["camid"] == rec.camid
        assert item["modality"] == rec.modality
    assert ds[-1]["index"] == len(ds) - 1
    assert ds[np.int64(3)]["index"] == 3 and ds[torch.tensor(4)]["index"] == 4
    assert repr(ds) == f"ImageDataset(split='train', n={len(ds)}, images=memory)"


def test_in_memory_with_transform_and_tensor_input(world):
    images = world.render("query")
    tf = build_transforms(32, 16, train=False)
    ds = ImageDataset(world.query, tf, images=torch.from_numpy(images))
    ref = tf(Image.fromarray(images[5]))
    assert torch.equal(ds[5]["img"], ref) and ds[5]["img"].shape == (3, 32, 16)


def test_files_are_read_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(8, 4, 3), dtype=np.uint8) for _ in range(3)]
    # Record 1 is a grey (infrared-like) file: read as 3 equal channels.
    split = _files(tmp_path, arrays, modes=[None, "L", None])
    ds = ImageDataset(split)
    assert torch.allclose(
        ds[0]["img"], torch.from_numpy(arrays[0] / 255.0).permute(2, 0, 1).float()
    )
    grey = ds[1]["img"]
    assert grey.shape == (3, 8, 4)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert ds[1]["modality"] == INFRARED and ds[2]["pid"] == 3
    assert "images=files" in repr(ds)


def test_corrupt_file_raises_image_read_error(tmp_path):
    rng = np.random.default_rng(1)
    split = _files(tmp_path, [rng.integers(0, 256, size=(8, 4, 3), dtype=np.uint8)])
    path = split[0].path
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="is corrupt or truncated"):
        ImageDataset(split)[0]


def test_loader_batches_with_collate(world):
    ds = ImageDataset(world.gallery, images=world.render("gallery"))
    batch = next(iter(DataLoader(ds, batch_size=5, collate_fn=collate_images)))
    assert batch["img"].shape == (5, 3, 64, 32)
    assert batch["index"].tolist() == [0, 1, 2, 3, 4]
    assert batch["pid"].tolist() == [r.pid for r in world.gallery[:5]]


def test_collate_refuses_mixed_sizes():
    items = [{"img": torch.zeros(3, 8, 4), "index": 0}, {"img": torch.zeros(3, 9, 4), "index": 1}]
    with pytest.raises(ValueError, match=r"share a size, got 2 sizes \[\(3, 8, 4\), \(3, 9, 4\)\]"):
        collate_images(items)
    with pytest.raises(TypeError, match="dicts with an 'img' tensor .*got tuple"):
        collate_images([(torch.zeros(3, 8, 4), 0)])


def test_construction_errors(world):
    images = world.render("query")
    with pytest.raises(TypeError, match="'split' must be a ReIDSplit, got list"):
        ImageDataset([1, 2])
    with pytest.raises(TypeError, match="'transform' must be callable, got int"):
        ImageDataset(world.query, 3, images=images)
    with pytest.raises(ValueError, match=r"Record 0 of split 'query' \(and 48 more\) has no image"):
        ImageDataset(world.query)
    with pytest.raises(TypeError, match="'images' must be uint8 RGB, got dtype float32"):
        ImageDataset(world.query, images=images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\] \(RGB\), got \(49, 64, 32\)"):
        ImageDataset(world.query, images=images[..., 0])
    with pytest.raises(ValueError, match=r"one image per record of split 'query' \(49\), got 48"):
        ImageDataset(world.query, images=images[:48])
    with pytest.raises(TypeError, match="'images' must be a numpy array or tensor, got list"):
        ImageDataset(world.query, images=[[0]])


def test_item_errors(world):
    images = world.render("query")
    ds = ImageDataset(world.query, images=images)
    with pytest.raises(IndexError, match="Index 49 out of range for a dataset of 49 images"):
        ds[49]
    with pytest.raises(TypeError, match="Index must be an int, got str"):
        ds["0"]
    pil_only = ImageDataset(world.query, lambda img: img, images=images)
    with pytest.raises(TypeError, match="must return a tensor .*got Image"):
        pil_only[0]
    grey = ImageDataset(world.query, lambda img: torch.zeros(1, 4, 4), images=images)
    with pytest.raises(ValueError, match=r"RGB tensor \[3, H, W\], got shape \(1, 4, 4\)"):
        grey[0]
