r"""Market-1501 (Zheng et al., ICCV 2015) from its released folder layout."""

from __future__ import annotations

import logging
import os

import numpy as np

from reidgraph._validation import check_choice
from reidgraph.data.datasets._common import (
    DatasetLayoutError,
    check_nonempty,
    find_layout_root,
    make_split,
    scan_market_style,
    verify_split_images,
)
from reidgraph.data.records import ReIDDataset

__all__ = ["load_market1501", "chain_session_frames", "MARKET1501_FPS", "MARKET1501_LAYOUT"]

logger = logging.getLogger(__name__)

#: Frame rate assumed by TLift (QAConv ``reid/datasets/market.py``: ``fps = 25.``).
MARKET1501_FPS: float = 25.0

MARKET1501_LAYOUT = """\
<root>/                         (or <root>/Market-1501-v15.09.15/,
  bounding_box_train/            <root>/market1501/Market-1501-v15.09.15/ as torchreid)
    0002_c1s1_000451_03.jpg     <pid>_c<camera>s<session>_<frame>_<box>.jpg
  query/
    0001_c1s1_001051_00.jpg
  bounding_box_test/
    -1_c1s1_000401_03.jpg       pid -1: junk (dropped)
    0000_c1s1_000151_01.jpg     pid 0: distractor (kept, matches nothing)
  gt_bbox/, gt_query/           (ignored)
"""

_CANDIDATES = ("", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15")
_REQUIRED = ("bounding_box_train/", "query/", "bounding_box_test/")
_PATTERN = r"^(?P<pid>-?\d+)_c(?P<cam>\d)s(?P<session>\d)_(?P<frame>\d+)_(?P<box>\d+)\.jpg$"
_EXAMPLE = "0002_c1s1_000451_03.jpg"
_NUM_CAMERAS = 6
# QAConv's loop `for s in range(1, 6)` chains sessions 1..6 only.
_QACONV_SESSIONS = 6


def chain_session_frames(
    camid: np.ndarray,
    session: np.ndarray,
    frame: np.ndarray,
    *,
    rule: str = "continuous",
) -> np.ndarray:
    r"""Frame numbers on one clock per camera, chaining its recording sessions.

    Market-1501 restarts the frame counter in every session ``s`` of a
    camera. TLift (QAConv, ECCV 2020, Sec. 4 and ``reid/datasets/market.py``)
    assumes the sessions were recorded back to back and shifts session
    ``s`` by

    .. math::
        o_{c,1} = 0, \qquad
        o_{c,s} = o_{c,s-1} + \max\{f : (c, s-1)\},

    the largest frame number seen in camera ``c``, session ``s-1`` (``0`` if
    that session has no image), taken over all the images passed in
    (train ∪ query ∪ gallery). The result is ``frame + o[camid, session]``.

    ``rule="qaconv"`` reproduces the released code bit for bit instead: it
    shifts session ``s-1`` in place before taking its maximum, so a
    non-empty previous session contributes ``max f + o_{c,s-1}`` and
    :math:`o_{c,s} = \max\{f : (c,s-1)\} + 2\,o_{c,s-1}` (empty: no change);
    only sessions 1..6 are chained. Use it to match QAConv/TLift's published
    numbers.

    Cost: :math:`O(N)` time, :math:`O(C \cdot S)` memory.

    Args:
        camid (np.ndarray): Camera per image ``[N]``, 0-based.
        session (np.ndarray): Session per image ``[N]``, 1-based.
        frame (np.ndarray): Frame number per image ``[N]``.
        rule (str, optional): ``"continuous"`` (the rule above) or
            ``"qaconv"``. (default: :obj:`"continuous"`)

    Returns:
        np.ndarray: Chained frame numbers ``[N]`` (int64).

    Example:
        >>> chain_session_frames(np.array([0, 0, 0]), np.array([1, 1, 2]),
        ...                      np.array([10, 40, 5])).tolist()
        [10, 40, 45]
    """
    rule = check_choice(rule, "rule", ("continuous", "qaconv"))
    cam = np.asarray(camid, dtype=np.int64)
    ses = np.asarray(session, dtype=np.int64) - 1
    frm = np.asarray(frame, dtype=np.int64)
    if cam.size == 0:
        return frm.copy()
    if ses.min() < 0 or cam.min() < 0:
        raise ValueError("'session' must be >= 1 and 'camid' >= 0")
    n_cam, n_ses = int(cam.max()) + 1, int(ses.max()) + 1
    # Group-by (camera, session) maximum without a Python loop over images.
    last = np.zeros((n_cam, n_ses), dtype=np.int64)
    np.maximum.at(last, (cam, ses), frm)
    offset = np.zeros((n_cam, n_ses), dtype=np.int64)
    if rule == "continuous":
        offset[:, 1:] = np.cumsum(last, axis=1)[:, :-1]
    else:
        present = np.zeros((n_cam, n_ses), dtype=bool)
        present[cam, ses] = True
        # A recurrence over sessions (<= 9), vectorised over cameras.
        for s in range(1, min(n_ses, _QACONV_SESSIONS)):
            shifted_max = np.where(present[:, s - 1], last[:, s - 1] + offset[:, s - 1], 0)
            offset[:, s] = shifted_max + offset[:, s - 1]
    return frm + offset[cam, ses]


def load_market1501(
    root: str | os.PathLike,
    *,
    verify_images: bool = True,
    session_chaining: str = "continuous",
    verbose: bool = True,
) -> ReIDDataset:
    r"""Loads Market-1501 from its released layout (see ``datasets/README.md``).

    Splits: ``bounding_box_train/`` → train, ``query/`` → query,
    ``bounding_box_test/`` → gallery. File names
    ``<pid>_c<camera>s<session>_<frame>_<box>.jpg`` give the identity, the
    camera (``c1`` → ``camid`` 0), the session and the frame. Following the
    standard protocol, junk images (pid ``-1``) are dropped and distractors
    (pid ``0``) kept in the gallery, where they match no query. ``gt_bbox/``
    and ``gt_query/`` are ignored. Pids are kept as in the file names (not
    relabelled).

    Timestamps (TLift, QAConv ECCV 2020): sessions of each camera are chained
    by :func:`chain_session_frames` over train ∪ query ∪ gallery (junk
    excluded, as in the released code) and

    .. math::
        t = \frac{f + o_{c,s}}{25\ \mathrm{fps}}\ \text{seconds},

    on one clock per camera; cameras are not synchronised with each other.

    ``root`` may be the folder that holds the three sub-folders, or a parent
    in torchreid's nesting (``<root>/market1501/Market-1501-v15.09.15/``);
    the candidates are searched in order and the error lists those tried.

    Args:
        root (str or os.PathLike): Dataset folder.
        verify_images (bool, optional): Check every image header at load
            time (:func:`~reidgraph.data.images.verify_image`, 150-250
            µs/image measured; about 8 s for Market-1501). A corrupt image
            raises at read time either way. (default: :obj:`True`)
        session_chaining (str, optional): ``"continuous"`` or ``"qaconv"``,
            see :func:`chain_session_frames`. (default: :obj:`"continuous"`)
        verbose (bool, optional): Progress bar while verifying.
            (default: :obj:`True`)

    Returns:
        ReIDDataset: ``name="market1501"``, ``has_time=True``, absolute paths.

    Example:
        >>> ds = load_market1501("/data/Market-1501-v15.09.15")  # doctest: +SKIP
        >>> ds.query.to_frame().head()  # doctest: +SKIP
    """
    rule = check_choice(session_chaining, "session_chaining", ("continuous", "qaconv"))
    base = find_layout_root(
        root, _CANDIDATES, _REQUIRED, dataset="Market-1501", layout=MARKET1501_LAYOUT
    )
    scanned = scan_market_style(
        base, _PATTERN, dataset="Market-1501", layout=MARKET1501_LAYOUT, example=_EXAMPLE
    )
    cols: dict[str, dict[str, np.ndarray]] = {}
    for split, (paths, fields) in scanned.items():
        pid = fields["pid"].astype(np.int64).to_numpy()
        cam = fields["cam"].astype(np.int64).to_numpy()
        ses = fields["session"].astype(np.int64).to_numpy()
        bad_cam = (cam < 1) | (cam > _NUM_CAMERAS)
        bad = bad_cam | (ses < 1) | (pid < -1)
        if bad.any():
            names = [os.path.basename(p) for p, b in zip(paths, bad, strict=True) if b]
            raise DatasetLayoutError(
                f"Market-1501: file name(s) in '{os.path.dirname(paths[0])}' with a camera "
                f"outside c1..c{_NUM_CAMERAS}, session s0 or pid < -1: {names[:10]}\n"
                f"Expected layout:\n{MARKET1501_LAYOUT}"
            )
        keep = pid != -1
        n_junk = int((~keep).sum())
        if n_junk:
            logger.info("Market-1501: dropped %d junk image(s) (pid -1) from %s", n_junk, split)
        folder = os.path.dirname(paths[0])
        check_nonempty(
            int(keep.sum()), split, folder, dataset="Market-1501", layout=MARKET1501_LAYOUT
        )
        cols[split] = {
            "path": np.asarray(paths, dtype=object)[keep],
            "pid": pid[keep],
            "camid": cam[keep] - 1,
            "session": ses[keep],
            "frame": fields["frame"].astype(np.int64).to_numpy()[keep],
        }
    order = list(cols)
    chained = chain_session_frames(
        np.concatenate([cols[s]["camid"] for s in order]),
        np.concatenate([cols[s]["session"] for s in order]),
        np.concatenate([cols[s]["frame"] for s in order]),
        rule=rule,
    )
    bounds = np.cumsum([0] + [len(cols[s]["pid"]) for s in order])
    splits = {}
    for i, s in enumerate(order):
        c = cols[s]
        if verify_images:
            verify_split_images(c["path"].tolist(), dataset="Market-1501", split=s, verbose=verbose)
        splits[s] = make_split(
            s,
            c["path"].tolist(),
            c["pid"],
            c["camid"],
            times=chained[bounds[i] : bounds[i + 1]] / MARKET1501_FPS,
            frames=c["frame"],
        )
    return ReIDDataset(
        name="market1501",
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=base,
        has_time=True,
        extra={"fps": MARKET1501_FPS, "session_chaining": rule},
    )
