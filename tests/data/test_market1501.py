"""Market-1501 parser on a hand-made copy of the released layout."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from reidgraph.data.datasets import (
    DatasetLayoutError,
    DatasetNotFoundError,
    chain_session_frames,
    load_market1501,
)
from reidgraph.data.images import ImageReadError, read_image

TRAIN = [
    "0002_c1s1_000451_03.jpg",
    "0002_c1s2_000100_01.jpg",
    "0007_c2s1_000300_00.jpg",
    "0007_c1s3_000050_00.jpg",
]
QUERY = ["0002_c2s1_000200_00.jpg", "0007_c1s2_000400_00.jpg"]
GALLERY = [
    "-1_c1s1_009999_00.jpg",  # junk: dropped, and its frame must not count
    "0000_c1s1_000500_02.jpg",  # distractor: kept
    "0002_c1s2_000350_00.jpg",
    "0007_c2s2_000010_00.jpg",
    "0007_c1s3_000020_00.jpg",
]

# Largest frame per (camera, session) over train ∪ query ∪ gallery, junk excluded:
#   c1s1: {451, 500} -> 500    c1s2: {100, 400, 350} -> 400    c1s3: {50, 20} -> 50
#   c2s1: {300, 200} -> 300    c2s2: {10} -> 10
# Continuous chaining: c1 offsets s1 0, s2 0+500 = 500, s3 500+400 = 900;
#                      c2 offsets s1 0, s2 0+300 = 300.
# time = (frame + offset) / 25.
# Records are in sorted file-name order within each folder.
EXPECTED = {
    "train": {
        "names": [
            "0002_c1s1_000451_03.jpg",  # 451 / 25 = 18.04
            "0002_c1s2_000100_01.jpg",  # (100 + 500) / 25 = 24.0
            "0007_c1s3_000050_00.jpg",  # (50 + 900) / 25 = 38.0
            "0007_c2s1_000300_00.jpg",  # 300 / 25 = 12.0
        ],
        "pid": [2, 2, 7, 7],
        "camid": [0, 0, 0, 1],
        "frame": [451, 100, 50, 300],
        "time": [18.04, 24.0, 38.0, 12.0],
    },
    "query": {
        "names": ["0002_c2s1_000200_00.jpg", "0007_c1s2_000400_00.jpg"],
        "pid": [2, 7],
        "camid": [1, 0],
        "frame": [200, 400],
        "time": [8.0, 36.0],  # 200 / 25; (400 + 500) / 25
    },
    "gallery": {
        "names": [
            "0000_c1s1_000500_02.jpg",  # 500 / 25 = 20.0
            "0002_c1s2_000350_00.jpg",  # (350 + 500) / 25 = 34.0
            "0007_c1s3_000020_00.jpg",  # (20 + 900) / 25 = 36.8
            "0007_c2s2_000010_00.jpg",  # (10 + 300) / 25 = 12.4
        ],
        "pid": [0, 2, 7, 7],
        "camid": [0, 0, 0, 1],
        "frame": [500, 350, 20, 10],
        "time": [20.0, 34.0, 36.8, 12.4],
    },
}

FOLDER = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def test_market1501_records(build_market_style):
    root = build_market_style(TRAIN, QUERY, GALLERY)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")  # ships in Market
    (root / "gt_bbox").mkdir()
    (root / "gt_bbox" / "weird_name.jpg").write_bytes(b"ignored folder")
    ds = load_market1501(root, verbose=False)
    assert ds.name == "market1501" and ds.has_time
    assert ds.root == os.path.abspath(root)
    for split in ("train", "query", "gallery"):
        got, exp = getattr(ds, split), EXPECTED[split]
        assert len(got) == len(exp["names"])
        assert got.paths == [
            os.path.join(os.path.abspath(root), FOLDER[split], n) for n in exp["names"]
        ]
        assert got.pids.tolist() == exp["pid"]
        assert got.camids.tolist() == exp["camid"]
        assert got.column("frame").tolist() == exp["frame"]
        np.testing.assert_allclose(got.times, exp["time"], rtol=0, atol=1e-12)
        assert got.modalities.tolist() == [0] * len(exp["names"])
        assert {r.split for r in got} == {split}
    frame = ds.gallery.to_frame()
    assert list(frame.columns)[:6] == ["path", "pid", "camid", "time", "frame", "modality"]
    assert ds.num_cameras == 2


def test_market1501_qaconv_chaining(build_market_style):
    # Released-code rule: o_s = max f(s-1) + 2 o_{s-1} for a non-empty s-1.
    # c1: o2 = 500 + 0 = 500, o3 = 400 + 2 * 500 = 1400; c2: o2 = 300.
    root = build_market_style(TRAIN, QUERY, GALLERY)
    ds = load_market1501(root, session_chaining="qaconv", verify_images=False)
    np.testing.assert_allclose(ds.train.times, [18.04, 24.0, (50 + 1400) / 25, 12.0])
    np.testing.assert_allclose(ds.gallery.times, [20.0, 34.0, (20 + 1400) / 25, 12.4])
    assert ds.extra["session_chaining"] == "qaconv"


def _qaconv_reference(cam, ses, frame):
    """Transcription of the released loop (QAConv reid/datasets/market.py):
    6 cameras x 6 sessions, frames of session s shifted in place at step s."""
    frame = frame.copy()
    ses = ses - 1
    offset = np.zeros((6, 6), dtype=np.int64)
    for c in range(6):
        for s in range(1, 6):
            m = (cam == c) & (ses == s - 1)
            offset[c][s] = frame[m].max() if m.any() else 0
            offset[c][s] += offset[c][s - 1]
            frame[(cam == c) & (ses == s)] += offset[c][s]
    return frame


def _continuous_reference(cam, ses, frame):
    out = frame.copy()
    for i in range(len(frame)):
        total = 0
        for s in range(1, ses[i]):
            m = (cam == cam[i]) & (ses == s)
            total += frame[m].max() if m.any() else 0
        out[i] = frame[i] + total
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chain_session_frames_matches_reference_loops(seed):
    rng = np.random.default_rng(seed)
    n = 200
    cam = rng.integers(0, 6, n)
    ses = rng.integers(1, 7, n)
    frame = rng.integers(0, 5000, n)
    keep = ~((cam == 2) & (ses == 3))  # leave one session empty
    cam, ses, frame = cam[keep], ses[keep], frame[keep]
    np.testing.assert_array_equal(
        chain_session_frames(cam, ses, frame, rule="qaconv"), _qaconv_reference(cam, ses, frame)
    )
    np.testing.assert_array_equal(
        chain_session_frames(cam, ses, frame), _continuous_reference(cam, ses, frame)
    )


def test_chain_session_frames_small_and_errors():
    # c0: s1 {10, 40} -> 40; s2 offset 40; empty s2 in c1 keeps its s3 at +s1 max only.
    # c1: s1 {7}, s2 empty, s3 {1}: offset s3 = 7 + 0 = 7.
    got = chain_session_frames(
        np.array([0, 0, 0, 1, 1]), np.array([1, 1, 2, 1, 3]), np.array([10, 40, 5, 7, 1])
    )
    assert got.tolist() == [10, 40, 45, 7, 8]
    assert chain_session_frames(np.array([]), np.array([]), np.array([])).size == 0
    with pytest.raises(ValueError, match="'session' must be >= 1"):
        chain_session_frames(np.array([0]), np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match="rule"):
        chain_session_frames(np.array([0]), np.array([1]), np.array([3]), rule="magic")


@pytest.mark.parametrize(
    "sub", ["Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501"]
)
def test_market1501_nested_roots(build_market_style, tmp_path, sub):
    build_market_style(TRAIN, QUERY, GALLERY, sub=sub)
    ds = load_market1501(tmp_path, verify_images=False)
    assert ds.root == os.path.join(os.path.abspath(tmp_path), *sub.split("/"))
    assert len(ds.train) == 4 and len(ds.query) == 2 and len(ds.gallery) == 4


def test_market1501_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=r"nowhere.*does not exist(.|\n)*bounding_box"):
        load_market1501(missing)
    with pytest.raises(FileNotFoundError):
        load_market1501(missing)
    with pytest.raises(TypeError, match="'root' must be a path"):
        load_market1501(123)


def test_market1501_wrong_folder_lists_tried_paths(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_market1501(tmp_path)
    msg = str(info.value)
    assert "missing: bounding_box_train/, bounding_box_test/" in msg
    assert os.path.join(str(tmp_path), "market1501", "Market-1501-v15.09.15") in msg
    assert "Expected layout" in msg and "0002_c1s1_000451_03.jpg" in msg


@pytest.mark.parametrize(
    "bad",
    [
        "0002_c1_000451_03.jpg",
        "0002_c7s1_000451_03.jpg",
        "0002_c1s0_000451_03.jpg",
        "-2_c1s1_000451_03.jpg",
        "0002_c1s1_000451_03.png",
    ],
)
def test_market1501_bad_file_name(build_market_style, bad):
    root = build_market_style(TRAIN, QUERY + [bad], GALLERY)
    with pytest.raises(DatasetLayoutError, match=bad.replace(".", r"\.")):
        load_market1501(root, verify_images=False)


def test_market1501_empty_splits(build_market_style):
    root = build_market_style(TRAIN, [], GALLERY)
    with pytest.raises(DatasetLayoutError, match=r"query split is empty.*query"):
        load_market1501(root)
    root = build_market_style(TRAIN, QUERY, ["-1_c1s1_000401_03.jpg"], sub="junk_only")
    with pytest.raises(DatasetLayoutError, match="gallery split is empty"):
        load_market1501(root)


def test_market1501_corrupt_and_truncated_images(build_market_style):
    root = build_market_style(TRAIN, QUERY, GALLERY)
    bad = root / "query" / QUERY[0]
    bad.write_bytes(b"garbage, not a JPEG")
    with pytest.raises(ImageReadError, match=r"1 unreadable image.*query(.|\n)*0002_c2s1_000200"):
        load_market1501(root, verbose=False)
    # Without the load-time check it loads, and reading still fails.
    ds = load_market1501(root, verify_images=False)
    with pytest.raises(ImageReadError, match="0002_c2s1_000200_00.jpg"):
        read_image(ds.query.paths[0])
    # A real-size (128x64) JPEG cut in half, inside its pixel data: PIL's
    # header check passes, the end-of-image check catches it.
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="JPEG")
    bad.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with Image.open(bad) as img:
        img.verify()  # PIL alone does not notice
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        load_market1501(root, verbose=False)


def test_market1501_bad_option(build_market_style):
    root = build_market_style(TRAIN, QUERY, GALLERY)
    with pytest.raises(ValueError, match="session_chaining"):
        load_market1501(root, session_chaining="linear")
