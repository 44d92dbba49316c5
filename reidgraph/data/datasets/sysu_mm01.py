r"""SYSU-MM01 (Wu et al., ICCV 2017), visible-infrared, from its released layout."""

from __future__ import annotations

import logging
import os
import random

import numpy as np

from reidgraph._validation import check_choice, check_int
from reidgraph.data.datasets._common import (
    check_nonempty,
    find_layout_root,
    list_images,
    make_split,
    read_id_list,
    verify_split_images,
)
from reidgraph.data.records import INFRARED, VISIBLE, ReIDDataset

__all__ = [
    "load_sysu_mm01",
    "sysu_gallery_indices",
    "SYSU_VISIBLE_CAMERAS",
    "SYSU_INFRARED_CAMERAS",
    "SYSU_GALLERY_CAMERAS",
    "SYSU_MM01_LAYOUT",
]

logger = logging.getLogger(__name__)

#: Visible (RGB) cameras, 1-based as in the folder names ``cam1`` ...
SYSU_VISIBLE_CAMERAS: tuple[int, ...] = (1, 2, 4, 5)
#: Infrared cameras, 1-based.
SYSU_INFRARED_CAMERAS: tuple[int, ...] = (3, 6)
#: Gallery cameras per search mode, 1-based (all-search: all visible;
#: indoor-search: the two indoor visible cameras).
SYSU_GALLERY_CAMERAS: dict[str, tuple[int, ...]] = {"all": (1, 2, 4, 5), "indoor": (1, 2)}

SYSU_MM01_LAYOUT = """\
<root>/                         (or <root>/SYSU-MM01/)
  cam1/ ... cam6/               visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
    0001/                       <pid:04d>/ (an id may be missing from a camera)
      0001.jpg
  exp/
    train_id.txt                '1,2,4,...' comma-separated ids on the first line
    val_id.txt
    test_id.txt
"""

_CANDIDATES = ("", "SYSU-MM01")
_REQUIRED = (
    *(f"cam{c}/" for c in range(1, 7)),
    "exp/train_id.txt",
    "exp/val_id.txt",
    "exp/test_id.txt",
)
_NUM_TRIALS = 10


def sysu_gallery_indices(
    g_pid: np.ndarray,
    g_camid: np.ndarray,
    mode: str = "all",
    seed: int = 0,
) -> np.ndarray:
    r"""The single-shot SYSU-MM01 gallery of one trial: one random visible
    image per (identity, camera).

    Follows the released protocol (Wu et al. 2017; GUR ``sysu_test.py``
    ``process_gallery_sysu``): keep the mode's cameras (all-search 1, 2, 4, 5;
    indoor-search 1, 2), visit the (pid, camera) groups in ascending pid, then
    camera order, and draw one image per group with Python's
    ``random.Random(seed).choice`` over the group in its given order. With the
    pool ordered as :func:`load_sysu_mm01` orders it (pid, camera, file name)
    and ``seed = trial`` (0..9), the result equals the reference galleries
    image for image.

    Cost: :math:`O(N \log N)` for the grouping plus one draw per group.

    Args:
        g_pid (np.ndarray): Identity per pool image ``[N]``.
        g_camid (np.ndarray): Camera per pool image ``[N]``, 0-based
            (``cam1`` → 0).
        mode (str, optional): ``"all"`` or ``"indoor"``. (default: :obj:`"all"`)
        seed (int, optional): The trial seed. (default: :obj:`0`)

    Returns:
        np.ndarray: int64 indices into the pool, one per (pid, camera) group
        of the mode's cameras, in (pid, camera) order.

    Example:
        >>> sysu_gallery_indices(np.array([1, 1, 1, 2]), np.array([0, 0, 3, 0]),
        ...                      mode="indoor", seed=0).tolist()
        [1, 3]
    """
    mode = check_choice(mode, "mode", tuple(SYSU_GALLERY_CAMERAS))
    seed = check_int(seed, "seed", min_value=0)
    pid = np.asarray(g_pid, dtype=np.int64).reshape(-1)
    cam = np.asarray(g_camid, dtype=np.int64).reshape(-1)
    if pid.shape != cam.shape:
        raise ValueError(
            f"'g_pid' and 'g_camid' must have the same length, got {pid.size} and {cam.size}"
        )
    allowed = np.asarray(SYSU_GALLERY_CAMERAS[mode], dtype=np.int64) - 1
    idx = np.flatnonzero(np.isin(cam, allowed))
    if idx.size == 0:
        return idx.astype(np.int64)
    # Stable (pid, camera) order that keeps the pool order inside a group.
    idx = idx[np.lexsort((idx, cam[idx], pid[idx]))]
    key_p, key_c = pid[idx], cam[idx]
    starts = np.flatnonzero(np.r_[True, (key_p[1:] != key_p[:-1]) | (key_c[1:] != key_c[:-1])])
    sizes = np.diff(np.r_[starts, idx.size])
    rng = random.Random(seed)
    # One draw per group (a few hundred), in the reference's visiting order;
    # choice(range(n)) consumes the generator exactly as choice(list_of_n).
    picks = [rng.choice(range(n)) for n in sizes.tolist()]
    return idx[starts + np.asarray(picks, dtype=np.int64)]


def _scan(base: str, pids: list[int], cams: tuple[int, ...]) -> tuple[list[str], list, list]:
    paths, pid_col, cam_col = [], [], []
    for pid in sorted(set(pids)):
        for cam in cams:
            folder = os.path.join(base, f"cam{cam}", f"{pid:04d}")
            if not os.path.isdir(folder):
                continue
            names = list_images(folder, dataset="SYSU-MM01", layout=SYSU_MM01_LAYOUT)
            paths.extend(os.path.join(folder, n) for n in names)
            pid_col.extend([pid] * len(names))
            cam_col.extend([cam - 1] * len(names))
    return paths, pid_col, cam_col


def load_sysu_mm01(
    root: str | os.PathLike,
    *,
    mode: str = "all",
    trial: int = 0,
    verify_images: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    r"""Loads SYSU-MM01 with the all-/indoor-search protocol of one trial.

    Identities and cameras come from the path components
    ``cam<k>/<pid:04d>/<image>`` (never from character offsets), ``camid =
    k - 1`` and ``modality`` 1 (infrared) for ``cam3`` and ``cam6``, 0 else.

    - **train**: every image of the ids in ``exp/train_id.txt`` ∪
      ``exp/val_id.txt``, all six cameras.
    - **query**: every infrared image (``cam3``, ``cam6``) of the ids in
      ``exp/test_id.txt`` (both modes).
    - **gallery**: :func:`sysu_gallery_indices` with ``seed=trial``: one
      visible image per (id, camera) over cameras 1, 2, 4, 5 (``"all"``) or
      1, 2 (``"indoor"``).
    - ``extra["gallery_pool"]``: every visible test image of the mode's
      cameras, so an evaluation can draw the ten trials' galleries itself;
      ``extra["gallery_pool_index"]``: this trial's picks into the pool.

    Records are ordered by (pid, camera, file name), the reference order.
    SYSU-MM01 has no timestamps: ``time`` is ``nan``, ``frame`` -1,
    ``has_time=False``. Pids are the dataset's ids (not relabelled).

    Args:
        root (str or os.PathLike): Dataset folder (or its parent holding
            ``SYSU-MM01/``).
        mode (str, optional): ``"all"`` or ``"indoor"``. (default: :obj:`"all"`)
        trial (int, optional): Gallery trial 0..9, the random seed of the
            single-shot draw. (default: :obj:`0`)
        verify_images (bool, optional): Check every image header at load
            time; a corrupt image raises at read time either way.
            (default: :obj:`True`)
        verbose (bool, optional): Progress bar while verifying.
            (default: :obj:`True`)

    Returns:
        ReIDDataset: ``name="sysu_mm01"``, ``has_time=False``, absolute paths.

    Example:
        >>> ds = load_sysu_mm01("/data/SYSU-MM01", mode="indoor", trial=3)  # doctest: +SKIP
    """
    mode = check_choice(mode, "mode", tuple(SYSU_GALLERY_CAMERAS))
    trial = check_int(
        trial,
        "trial",
        min_value=0,
        max_value=_NUM_TRIALS - 1,
        max_reason="the SYSU-MM01 protocol has trials 0..9",
    )
    base = find_layout_root(
        root, _CANDIDATES, _REQUIRED, dataset="SYSU-MM01", layout=SYSU_MM01_LAYOUT
    )
    exp = os.path.join(base, "exp")
    ids = {
        name: read_id_list(
            os.path.join(exp, f"{name}_id.txt"), dataset="SYSU-MM01", layout=SYSU_MM01_LAYOUT
        )
        for name in ("train", "val", "test")
    }
    infrared = np.asarray(SYSU_INFRARED_CAMERAS, dtype=np.int64) - 1

    def modality(camid: list) -> np.ndarray:
        return np.where(np.isin(np.asarray(camid, np.int64), infrared), INFRARED, VISIBLE)

    train_ids = ids["train"] + ids["val"]
    paths, pids, cams = _scan(base, train_ids, tuple(range(1, 7)))
    missing = sorted(set(train_ids) - set(pids))
    if missing:
        logger.warning(
            "SYSU-MM01: %d training id(s) have no images: %s", len(missing), missing[:10]
        )
    check_nonempty(len(paths), "train", exp, dataset="SYSU-MM01", layout=SYSU_MM01_LAYOUT)
    train = make_split(
        "train", paths, np.asarray(pids), np.asarray(cams), modalities=modality(cams)
    )

    q_paths, q_pids, q_cams = _scan(base, ids["test"], SYSU_INFRARED_CAMERAS)
    check_nonempty(
        len(q_paths),
        "query",
        os.path.join(exp, "test_id.txt"),
        dataset="SYSU-MM01",
        layout=SYSU_MM01_LAYOUT,
    )
    query = make_split(
        "query", q_paths, np.asarray(q_pids), np.asarray(q_cams), modalities=modality(q_cams)
    )

    p_paths, p_pids, p_cams = _scan(base, ids["test"], SYSU_GALLERY_CAMERAS[mode])
    check_nonempty(
        len(p_paths),
        "gallery",
        os.path.join(exp, "test_id.txt"),
        dataset="SYSU-MM01",
        layout=SYSU_MM01_LAYOUT,
    )
    pool = make_split(
        "gallery", p_paths, np.asarray(p_pids), np.asarray(p_cams), modalities=modality(p_cams)
    )
    pick = sysu_gallery_indices(pool.pids, pool.camids, mode=mode, seed=trial)
    gallery = make_split(
        "gallery",
        [p_paths[i] for i in pick.tolist()],
        pool.pids[pick],
        pool.camids[pick],
        modalities=pool.modalities[pick],
    )

    if verify_images:
        for split in (train, query, pool):
            verify_split_images(split.paths, dataset="SYSU-MM01", split=split.name, verbose=verbose)
    return ReIDDataset(
        name="sysu_mm01",
        train=train,
        query=query,
        gallery=gallery,
        root=base,
        has_time=False,
        extra={"mode": mode, "trial": trial, "gallery_pool": pool, "gallery_pool_index": pick},
    )
