"""Builders for tiny copies of the real dataset layouts in ``tmp_path``.

Each builder writes the exact folder structure and file names of a released
dataset, with tiny real image files (JPEG, or BMP for RegDB) encoded by PIL,
and returns the root. The tests pass the file names explicitly, so every
expected count, id, camera and timestamp is worked out next to them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@lru_cache(maxsize=8)
def image_bytes(fmt: str = "JPEG", seed: int = 0) -> bytes:
    """A valid 8x4 image file in ``fmt`` (encoded once, then copied)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(8, 4, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(fmt))
    return path


def write_images(folder: Path, names: Iterable[str], fmt: str = "JPEG") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_image(folder / name, fmt)


@pytest.fixture
def build_market_style(tmp_path) -> Callable[..., Path]:
    """Market-1501 / DukeMTMC-reID: ``bounding_box_train/``, ``query/``,
    ``bounding_box_test/`` under ``tmp_path / sub``."""

    def build(train, query, gallery, *, sub: str = "") -> Path:
        base = tmp_path / sub if sub else tmp_path
        write_images(base / "bounding_box_train", train)
        write_images(base / "query", query)
        write_images(base / "bounding_box_test", gallery)
        return base

    return build


@pytest.fixture
def build_msmt17(tmp_path) -> Callable[..., Path]:
    """MSMT17: list files ``'<pid folder>/<name> <pid>'`` beside ``train/`` and
    ``test/`` (V1) or ``mask_train_v2/`` and ``mask_test_v2/`` (V2). Each
    list is a list of ``(relative path, pid)``."""

    def build(train, val, query, gallery, *, version: str = "v1", sub: str = "") -> Path:
        base = tmp_path / sub if sub else tmp_path
        train_dir, test_dir = (
            ("train", "test") if version == "v1" else ("mask_train_v2", "mask_test_v2")
        )
        for name, rows, folder in (
            ("list_train.txt", train, train_dir),
            ("list_val.txt", val, train_dir),
            ("list_query.txt", query, test_dir),
            ("list_gallery.txt", gallery, test_dir),
        ):
            base.mkdir(parents=True, exist_ok=True)
            (base / name).write_text("".join(f"{p} {pid}\n" for p, pid in rows))
            for p, _ in rows:
                write_image(base / folder / p)
        return base

    return build


@pytest.fixture
def build_sysu(tmp_path) -> Callable[..., Path]:
    """SYSU-MM01: ``cam<k>/<pid:04d>/<img>.jpg`` for ``(cam, pid, n_images)``
    triples and ``exp/{train,val,test}_id.txt`` (ids on the first line)."""

    def build(images, train_ids, val_ids, test_ids, *, sub: str = "") -> Path:
        base = tmp_path / sub if sub else tmp_path
        for cam in range(1, 7):
            (base / f"cam{cam}").mkdir(parents=True, exist_ok=True)
        for cam, pid, n in images:
            write_images(
                base / f"cam{cam}" / f"{pid:04d}", [f"{i:04d}.jpg" for i in range(1, n + 1)]
            )
        (base / "exp").mkdir(parents=True, exist_ok=True)
        for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
            (base / "exp" / f"{name}_id.txt").write_text(",".join(map(str, ids)) + "\n")
        return base

    return build


@pytest.fixture
def build_regdb(tmp_path) -> Callable[..., Path]:
    """RegDB: ``Visible/<pid>/*.bmp``, ``Thermal/<pid>/*.bmp`` and
    ``idx/{train,test}_{visible,thermal}_<trial>.txt``; ``lists`` maps
    ``(part, kind, trial)`` to ``[(relative path, label), ...]``."""

    def build(lists, *, sub: str = "") -> Path:
        base = tmp_path / sub if sub else tmp_path
        (base / "idx").mkdir(parents=True, exist_ok=True)
        for (part, kind, trial), rows in lists.items():
            (base / "idx" / f"{part}_{kind}_{trial}.txt").write_text(
                "".join(f"{p} {label}\n" for p, label in rows)
            )
            for p, _ in rows:
                write_image(base / p, "BMP")
        return base

    return build
