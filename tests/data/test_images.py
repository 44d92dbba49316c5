"""Reading and checking image files."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image, ImageFile

from reidgraph.data import images
from reidgraph.data.images import ImageReadError, read_image, verify_image


def _jpeg(h=128, w=64, seed=0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def test_read_image_good(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg())
    img = read_image(path)
    assert img.size == (64, 128) and img.mode == "RGB"
    assert read_image(str(path), mode="L").mode == "L"
    assert read_image(path, mode=None).mode == "RGB"
    verify_image(path)  # no error


def test_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.jpg"
    for fn in (read_image, verify_image):
        with pytest.raises(ImageReadError, match="missing.jpg' does not exist"):
            fn(missing)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"hello")
    for fn in (read_image, verify_image):
        with pytest.raises(ImageReadError, match="junk.jpg' is not a readable image"):
            fn(junk)
    # Both a ValueError (bad input) and an OSError (what PIL raises).
    with pytest.raises(ValueError):
        read_image(junk)
    with pytest.raises(OSError):
        read_image(junk)


def test_truncated_jpeg(tmp_path):
    data = _jpeg()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg' is corrupt or truncated"):
        read_image(cut)
    with pytest.raises(ImageReadError, match="cut.jpg' is a truncated JPEG"):
        verify_image(cut)
    # Only the 2-byte end marker missing: the tail check still sees it.
    cut.write_bytes(data[:-2])
    with pytest.raises(ImageReadError, match="no end-of-image marker"):
        verify_image(cut)
    # Padding after the marker is allowed.
    cut.write_bytes(data + b"\x00" * 100)
    verify_image(cut)
    # A header cut inside: PIL itself fails to parse it.
    cut.write_bytes(data[:30])
    with pytest.raises(ImageReadError, match="cut.jpg'"):
        verify_image(cut)


def test_truncated_png_and_bmp(tmp_path):
    arr = np.zeros((16, 8, 3), np.uint8)
    for fmt, ext in (("PNG", "png"), ("BMP", "bmp")):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt)
        path = tmp_path / f"x.{ext}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(ImageReadError, match=f"x.{ext}'"):
            read_image(path)


def test_warns_when_truncated_loading_is_enabled(tmp_path, monkeypatch, caplog):
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg())
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    monkeypatch.setattr(images, "_warned_truncated_flag", False)
    with caplog.at_level(logging.WARNING, logger="reidgraph.data.images"):
        read_image(path)
    assert "LOAD_TRUNCATED_IMAGES is True" in caplog.text
