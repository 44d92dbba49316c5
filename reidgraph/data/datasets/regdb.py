r"""RegDB (Nguyen et al., Sensors 2017), visible-thermal, from its index files."""

from __future__ import annotations

import os

import numpy as np

from reidgraph._validation import check_choice, check_int
from reidgraph.data.datasets._common import (
    check_files_exist,
    check_nonempty,
    find_layout_root,
    make_split,
    read_path_label_list,
    verify_split_images,
)
from reidgraph.data.records import INFRARED, VISIBLE, ReIDDataset

__all__ = ["load_regdb", "REGDB_LAYOUT"]

REGDB_LAYOUT = """\
<root>/                         (or <root>/RegDB/)
  Visible/<pid>/<image>.bmp
  Thermal/<pid>/<image>.bmp
  idx/
    train_visible_1.txt         '<path relative to root> <label>' per line, trials 1..10
    train_thermal_1.txt
    test_visible_1.txt
    test_thermal_1.txt
    ...
    test_thermal_10.txt
"""

_CANDIDATES = ("", "RegDB")
_NUM_TRIALS = 10
#: The one visible and the one thermal camera: camid and modality per index-file kind.
_CAMERA = {"visible": VISIBLE, "thermal": INFRARED}


def load_regdb(
    root: str | os.PathLike,
    *,
    trial: int = 1,
    direction: str = "v2t",
    verify_images: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    r"""Loads one RegDB trial from ``idx/{train,test}_{visible,thermal}_<trial>.txt``.

    Each index line is ``<path relative to root> <label>``; the label is the
    pid. RegDB has one visible and one thermal camera: visible records get
    ``camid`` 0 / ``modality`` 0, thermal ones ``camid`` 1 / ``modality`` 1.

    - **train**: ``train_visible`` then ``train_thermal`` of the trial.
    - **query / gallery** by ``direction`` (both are reported in the
      literature, one model per trial): ``"v2t"`` visible → thermal (query
      ``test_visible``, gallery ``test_thermal``), ``"t2v"`` the reverse.

    No timestamps: ``time`` is ``nan``, ``frame`` -1, ``has_time=False``.

    Args:
        root (str or os.PathLike): Dataset folder (or its parent holding
            ``RegDB/``).
        trial (int, optional): Split 1..10. (default: :obj:`1`)
        direction (str, optional): ``"v2t"`` or ``"t2v"``.
            (default: :obj:`"v2t"`)
        verify_images (bool, optional): Check every image header at load
            time; a corrupt image raises at read time either way.
            (default: :obj:`True`)
        verbose (bool, optional): Progress bar while verifying.
            (default: :obj:`True`)

    Returns:
        ReIDDataset: ``name="regdb"``, ``has_time=False``, absolute paths.

    Example:
        >>> ds = load_regdb("/data/RegDB", trial=3, direction="t2v")  # doctest: +SKIP
    """
    trial = check_int(
        trial,
        "trial",
        min_value=1,
        max_value=_NUM_TRIALS,
        max_reason="RegDB has trials 1..10",
    )
    direction = check_choice(direction, "direction", ("v2t", "t2v"))
    files = {
        (part, kind): f"idx/{part}_{kind}_{trial}.txt"
        for part in ("train", "test")
        for kind in ("visible", "thermal")
    }
    base = find_layout_root(
        root, _CANDIDATES, tuple(files.values()), dataset="RegDB", layout=REGDB_LAYOUT
    )

    def read(part: str, kind: str):
        list_path = os.path.join(base, files[(part, kind)])
        rel, labels = read_path_label_list(list_path, dataset="RegDB", layout=REGDB_LAYOUT)
        check_nonempty(len(rel), f"{part}_{kind}", list_path, dataset="RegDB", layout=REGDB_LAYOUT)
        full = [os.path.join(base, p) for p in rel]
        check_files_exist(full, listed_in=list_path, dataset="RegDB", layout=REGDB_LAYOUT)
        cam = np.full(len(full), _CAMERA[kind], dtype=np.int64)
        return full, labels, cam

    tv, tt = read("train", "visible"), read("train", "thermal")
    qk, gk = ("visible", "thermal") if direction == "v2t" else ("thermal", "visible")
    q, g = read("test", qk), read("test", gk)
    train_cols = (tv[0] + tt[0], np.concatenate([tv[1], tt[1]]), np.concatenate([tv[2], tt[2]]))
    splits = {}
    for name, (paths, pids, cams) in (("train", train_cols), ("query", q), ("gallery", g)):
        if verify_images:
            verify_split_images(paths, dataset="RegDB", split=name, verbose=verbose)
        # camid and modality coincide on RegDB: camera 0 visible, camera 1 thermal.
        splits[name] = make_split(name, paths, pids, cams, modalities=cams)
    return ReIDDataset(
        name="regdb",
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=base,
        has_time=False,
        extra={"trial": trial, "direction": direction},
    )
