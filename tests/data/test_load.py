"""The ``load_dataset`` entry point and the dataset registry."""

from __future__ import annotations

import pytest

from reidgraph.data.load import dataset_names, load_dataset, register_dataset, unregister_dataset
from reidgraph.data.records import ImageRecord, ReIDDataset, ReIDSplit

MARKET = (
    ["0002_c1s1_000451_03.jpg"],
    ["0002_c2s1_000200_00.jpg"],
    ["0002_c1s2_000350_00.jpg"],
)


def _tiny(root, *, flavour="a"):
    rec = ImageRecord(path=f"{root}/x.jpg", pid=1, camid=0)
    split = ReIDSplit([rec], "train")
    return ReIDDataset(flavour, split, split, split, root=str(root))


def test_builtin_names():
    assert dataset_names() == ["dukemtmc", "market1501", "msmt17", "regdb", "sysu_mm01"]


def test_load_dataset_dispatches_with_options(build_market_style):
    root = build_market_style(*MARKET)
    ds = load_dataset("Market1501", root, verify_images=False, session_chaining="qaconv")
    assert ds.name == "market1501" and len(ds.train) == 1
    # 0002_c1s2_000350 -> c1 s2 offset = max frame of c1s1 = 451: (350 + 451) / 25
    assert ds.gallery.times.tolist() == [(350 + 451) / 25]


def test_unknown_name_and_option(build_market_style):
    with pytest.raises(
        ValueError, match=r"Could not resolve name='cuhk03' among choices \[.*'regdb'"
    ):
        load_dataset("cuhk03", "/tmp")
    root = build_market_style(*MARKET)
    with pytest.raises(TypeError, match=r"'market1501' does not take option\(s\) \['trial'\]"):
        load_dataset("market1501", root, trial=1)
    with pytest.raises(TypeError, match="'name' must be a str"):
        load_dataset(3, root)
    with pytest.raises(ValueError, match="non-empty"):
        load_dataset("  ", root)


def test_register_function_and_decorator(tmp_path):
    def load_a(root, *, flavour="a"):
        return _tiny(root, flavour=flavour)

    register_dataset("My_A", load_a)
    try:
        assert "my_a" in dataset_names()
        assert load_dataset("my_a", tmp_path, flavour="zz").name == "zz"
        with pytest.raises(TypeError, match=r"accepts \['flavour'\]"):
            load_dataset("my_a", tmp_path, colour=1)
        register_dataset("my_a", load_a)  # same loader again: a no-op
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("my_a", lambda root: _tiny(root))
        register_dataset("my_a", lambda root, **kw: _tiny(root, flavour="b"), overwrite=True)
        assert load_dataset("my_a", tmp_path, anything=1).name == "b"  # **kw: no option check
    finally:
        unregister_dataset("my_a")
    assert "my_a" not in dataset_names()

    @register_dataset("my_b")
    def load_b(root):
        return _tiny(root, flavour="b")

    try:
        assert load_b(tmp_path).name == "b" and load_dataset("MY_B", tmp_path).name == "b"
    finally:
        unregister_dataset("my_b")


def test_register_class_loader(tmp_path):
    class CamsDataset(ReIDDataset):
        def __init__(self, root, split_seed=0):
            tiny = _tiny(root, flavour=f"cams{split_seed}")
            super().__init__(tiny.name, tiny.train, tiny.query, tiny.gallery, root=str(root))

    register_dataset("cams", CamsDataset)
    try:
        assert load_dataset("cams", tmp_path, split_seed=3).name == "cams3"
        with pytest.raises(TypeError, match=r"accepts \['split_seed'\]"):
            load_dataset("cams", tmp_path, seed=3)
    finally:
        unregister_dataset("cams")


def test_registry_errors(tmp_path):
    with pytest.raises(TypeError, match="must be callable"):
        register_dataset("bad", 3)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("market1501", lambda root: None)
    register_dataset("bad", lambda root: "not a dataset")
    try:
        with pytest.raises(TypeError, match="must return a ReIDDataset, got str"):
            load_dataset("bad", tmp_path)
    finally:
        unregister_dataset("bad")
    with pytest.raises(ValueError, match="Could not resolve name='bad'"):
        unregister_dataset("bad")


def test_builtin_overwrite_is_restored(tmp_path):
    register_dataset("regdb", lambda root: _tiny(root, flavour="mine"), overwrite=True)
    try:
        assert load_dataset("regdb", tmp_path).name == "mine"
    finally:
        unregister_dataset("regdb")
    assert "regdb" in dataset_names()
    with pytest.raises(FileNotFoundError):
        load_dataset("regdb", tmp_path / "none")


def test_common_checks_direct(tmp_path, caplog):
    # Defensive branches the loaders reach only through races or odd layouts.
    from reidgraph.data.datasets import _common as c

    with pytest.raises(c.DatasetNotFoundError, match="Folder '.*nope' of X does not exist"):
        c.list_images(str(tmp_path / "nope"), dataset="X", layout="tree")
    with pytest.raises(c.DatasetNotFoundError, match="id list '.*ids.txt' does not exist"):
        c.read_id_list(str(tmp_path / "ids.txt"), dataset="X", layout="tree")
    with pytest.raises(c.DatasetNotFoundError, match="list file '.*l.txt' does not exist"):
        c.read_path_label_list(str(tmp_path / "l.txt"), dataset="X", layout="tree")
    fields = c.parse_names(
        [], r"^(?P<pid>\d+)\.jpg$", where="w", dataset="X", layout="t", example="1.jpg"
    )
    assert list(fields.columns) == ["pid"] and len(fields) == 0
    # A folder of sub-folders and non-images: only images are listed, others logged.
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "d" / "b.JPG").write_bytes(b"x")
    (tmp_path / "d" / "a.png").write_bytes(b"x")
    with caplog.at_level("INFO", logger="reidgraph.data.datasets._common"):
        assert c.list_images(str(tmp_path / "d"), dataset="X", layout="t") == ["a.png", "b.JPG"]
    assert "ignoring 1 non-image file(s)" in caplog.text and "Thumbs.db" in caplog.text


def test_verify_split_images_reports_all_failures(tmp_path):
    from reidgraph.data.datasets._common import verify_split_images
    from reidgraph.data.images import ImageReadError

    bad = [str(tmp_path / f"{i}.jpg") for i in range(1001)]  # > 1000: progress bar path
    with pytest.raises(ImageReadError, match=r"1001 unreadable image\(s\)(.|\n)*and 991 more"):
        verify_split_images(bad, dataset="X", split="train", verbose=True)
