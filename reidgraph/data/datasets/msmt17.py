r"""MSMT17 (Wei et al., CVPR 2018), releases V1 and V2, from their list files."""

from __future__ import annotations

import logging
import math
import numbers
import os

import numpy as np
import pandas as pd

from reidgraph._validation import check_choice
from reidgraph.data.datasets._common import (
    DatasetLayoutError,
    check_files_exist,
    check_nonempty,
    find_layout_variant,
    make_split,
    parse_names,
    read_path_label_list,
    verify_split_images,
)
from reidgraph.data.records import ReIDDataset, ReIDSplit

__all__ = ["load_msmt17", "msmt17_recordings", "msmt17_to_frame", "MSMT17_LAYOUT"]

logger = logging.getLogger(__name__)

MSMT17_LAYOUT = """\
<root>/                         (or <root>/MSMT17_V1/, <root>/MSMT17_V2/,
                                 <root>/msmt17/MSMT17_V{1,2}/ as torchreid)
  train/                        V2: mask_train_v2/
    0000/0000_000_01_0303morning_0015_0.jpg
  test/                         V2: mask_test_v2/
    0000/0000_000_01_0303morning_0036_0.jpg
  list_train.txt                '<path relative to train/> <pid>' per line
  list_val.txt                  (relative to train/)
  list_query.txt                (relative to test/)
  list_gallery.txt              (relative to test/)
file name: <pid>_<index>_<camera 01..15>_<date><morning|noon|afternoon>_<frame>_<k>[...].jpg
"""

_FOLDERS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
_CANDIDATES = (
    "",
    "MSMT17_V1",
    "MSMT17_V2",
    "MSMT17",
    "msmt17/MSMT17_V1",
    "msmt17/MSMT17_V2",
)
_PATTERN = (
    r"^(?P<pid>\d+)_(?P<index>\d+)_(?P<cam>\d+)_(?P<recording>(?P<date>\d+)"
    r"(?P<time_of_day>[A-Za-z]+))_(?P<frame>\d+)(?:_[^/\\]*)?\.(?:jpg|jpeg|png)$"
)
_EXAMPLE = "0000_000_01_0303morning_0015_0.jpg"
_NUM_CAMERAS = 15


def _basename_fields(paths: list[str], where: str) -> pd.DataFrame:
    base = pd.Series(paths, dtype=object).str.replace("\\", "/", regex=False)
    base = base.str.rsplit("/", n=1).str[-1]
    return parse_names(
        base.tolist(),
        _PATTERN,
        where=where,
        dataset="MSMT17",
        layout=MSMT17_LAYOUT,
        example=_EXAMPLE,
    )


def msmt17_recordings(split: ReIDSplit) -> np.ndarray:
    r"""The recording token (date + time of day, e.g. ``"0303morning"``) of
    every record of an MSMT17 split, parsed from its file name.

    MSMT17 was filmed in 12 recordings (4 days × morning / noon / afternoon);
    frame numbers, hence ``time``, are comparable only between records with
    the same token.

    Args:
        split (ReIDSplit): A split returned by :func:`load_msmt17`.

    Returns:
        np.ndarray: Object array ``[len(split)]`` of tokens.

    Example:
        >>> msmt17_recordings(ds.train)[:2]  # doctest: +SKIP
        array(['0303morning', '0303morning'], dtype=object)
    """
    if len(split) == 0:
        return np.asarray([], dtype=object)
    fields = _basename_fields(split.paths, where=f"split '{split.name}'")
    return fields["recording"].to_numpy(dtype=object)


def msmt17_to_frame(split: ReIDSplit) -> pd.DataFrame:
    r""":meth:`ReIDSplit.to_frame` plus the recording columns of MSMT17.

    Adds ``recording`` (e.g. ``"0303morning"``), ``date`` (``"0303"``) and
    ``time_of_day`` (``"morning"``). Group by ``(camid, recording)`` before
    using ``time``: the clock restarts in every recording.

    Args:
        split (ReIDSplit): A split returned by :func:`load_msmt17`.

    Returns:
        pandas.DataFrame: One row per record.

    Example:
        >>> msmt17_to_frame(ds.query).groupby(["camid", "recording"]).size()  # doctest: +SKIP
    """
    frame = split.to_frame()
    if len(split) == 0:
        for col in ("recording", "date", "time_of_day"):
            frame[col] = pd.Series(dtype=object)
        return frame
    fields = _basename_fields(split.paths, where=f"split '{split.name}'")
    for col in ("recording", "date", "time_of_day"):
        frame[col] = fields[col].to_numpy(dtype=object)
    return frame


def load_msmt17(
    root: str | os.PathLike,
    *,
    version: str | None = None,
    use_val: bool = False,
    fps: float = 25.0,
    verify_images: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    r"""Loads MSMT17 V1 or V2 from its list files (see ``datasets/README.md``).

    ``list_train.txt`` (and ``list_val.txt`` with ``use_val=True``) index
    ``train/`` (V2 ``mask_train_v2/``); ``list_query.txt`` and
    ``list_gallery.txt`` index ``test/`` (V2 ``mask_test_v2/``). Each line is
    ``<relative path> <pid>``; the pid comes from the list, the camera (01..15
    → ``camid`` 0..14), recording token and frame from the file name
    ``<pid>_<index>_<camera>_<date><time of day>_<frame>_<k>.jpg``.

    **Time.** MSMT17 has no global clock: the frame counter restarts in each
    of its 12 recordings (4 days × morning / noon / afternoon), and the
    release does not state a frame rate. Records get
    :math:`t = f / \mathrm{fps}` (``fps`` assumed), meaningful **only within
    one recording of one camera**; times from different recording tokens are
    not on one clock. ``has_time`` is therefore ``False`` (as QAConv's
    ``has_time_info``); use :func:`msmt17_recordings` /
    :func:`msmt17_to_frame` to group by recording.

    Args:
        root (str or os.PathLike): Dataset folder, or a parent holding
            ``MSMT17_V1/``, ``MSMT17_V2/`` or torchreid's ``msmt17/MSMT17_V*``.
        version (str, optional): ``"v1"``, ``"v2"`` or ``None`` to detect
            (V1 folders tried first). (default: :obj:`None`)
        use_val (bool, optional): Add ``list_val.txt`` to the training split.
            torchreid adds it only with ``combineall``; the conventional
            protocol does not. (default: :obj:`False`)
        fps (float, optional): Frame rate for ``time = frame / fps``.
            (default: :obj:`25.0`, an assumption)
        verify_images (bool, optional): Check every image header at load
            time; a corrupt image raises at read time either way.
            (default: :obj:`True`)
        verbose (bool, optional): Progress bar while verifying.
            (default: :obj:`True`)

    Returns:
        ReIDDataset: ``name="msmt17"``, ``has_time=False``, absolute paths;
        ``extra`` holds ``version``, ``fps`` and ``time_scope="recording"``.

    Example:
        >>> ds = load_msmt17("/data/MSMT17_V1")  # doctest: +SKIP
        >>> msmt17_to_frame(ds.query).head()  # doctest: +SKIP
    """
    if version is not None:
        version = check_choice(version, "version", tuple(_FOLDERS))
    if not isinstance(use_val, bool):
        raise TypeError(f"'use_val' must be a bool, got {type(use_val).__name__}")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise TypeError(f"'fps' must be a real number, got {type(fps).__name__}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"'fps' must be a positive finite number, got {fps!r}")
    variants = {
        v: (f"{tr}/", f"{te}/", *_LISTS)
        for v, (tr, te) in _FOLDERS.items()
        if version is None or v == version
    }
    base, version = find_layout_variant(
        root, _CANDIDATES, variants, dataset="MSMT17", layout=MSMT17_LAYOUT
    )
    train_dir, test_dir = (os.path.join(base, f) for f in _FOLDERS[version])

    sources = {
        "train": [("list_train.txt", train_dir)]
        + ([("list_val.txt", train_dir)] if use_val else []),
        "query": [("list_query.txt", test_dir)],
        "gallery": [("list_gallery.txt", test_dir)],
    }
    splits = {}
    for split, lists in sources.items():
        paths: list[str] = []
        pids: list[np.ndarray] = []
        for list_name, folder in lists:
            list_path = os.path.join(base, list_name)
            rel, labels = read_path_label_list(list_path, dataset="MSMT17", layout=MSMT17_LAYOUT)
            check_nonempty(len(rel), split, list_path, dataset="MSMT17", layout=MSMT17_LAYOUT)
            full = [os.path.join(folder, p) for p in rel]
            check_files_exist(full, listed_in=list_path, dataset="MSMT17", layout=MSMT17_LAYOUT)
            paths.extend(full)
            pids.append(labels)
        fields = _basename_fields(paths, where=", ".join(os.path.join(base, n) for n, _ in lists))
        cam = fields["cam"].astype(np.int64).to_numpy()
        bad = (cam < 1) | (cam > _NUM_CAMERAS)
        if bad.any():
            names = [os.path.basename(p) for p, b in zip(paths, bad, strict=True) if b]
            raise DatasetLayoutError(
                f"MSMT17: {int(bad.sum())} file name(s) in the {split} lists have a camera "
                f"outside 01..{_NUM_CAMERAS}: {names[:10]}\nExpected layout:\n{MSMT17_LAYOUT}"
            )
        frame = fields["frame"].astype(np.int64).to_numpy()
        if verify_images:
            verify_split_images(paths, dataset="MSMT17", split=split, verbose=verbose)
        splits[split] = make_split(
            split,
            paths,
            np.concatenate(pids),
            cam - 1,
            times=frame / float(fps),
            frames=frame,
        )
    return ReIDDataset(
        name="msmt17",
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=base,
        has_time=False,
        extra={
            "version": version,
            "fps": float(fps),
            "time_scope": "recording",
            "use_val": use_val,
        },
    )
