r"""DukeMTMC-reID (Zheng et al., ICCV 2017) from its released folder layout.

The dataset is no longer distributed by its authors; the layout is supported
for copies researchers already hold. Nothing in the library depends on it.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from reidgraph.data.datasets._common import (
    DatasetLayoutError,
    check_nonempty,
    find_layout_root,
    make_split,
    scan_market_style,
    verify_split_images,
)
from reidgraph.data.records import ReIDDataset

__all__ = ["load_dukemtmc", "DUKEMTMC_FPS", "DUKEMTMC_OFFSETS", "DUKEMTMC_LAYOUT"]

logger = logging.getLogger(__name__)

#: Frame rate of the DukeMTMC videos (QAConv ``60ccb62^:reid/datasets/duke.py``).
DUKEMTMC_FPS: float = 59.94

#: Published per-camera synchronisation offsets in frames, cameras 1..8.
DUKEMTMC_OFFSETS: tuple[int, ...] = (5542, 3606, 27243, 31181, 0, 22401, 18967, 46765)

DUKEMTMC_LAYOUT = """\
<root>/                         (or <root>/DukeMTMC-reID/,
  bounding_box_train/            <root>/dukemtmc-reid/DukeMTMC-reID/ as torchreid)
    0001_c2_f0046182.jpg        <pid>_c<camera 1..8>_f<frame>.jpg
  query/
    0005_c2_f0046985.jpg
  bounding_box_test/
    0002_c1_f0044158.jpg
"""

_CANDIDATES = ("", "DukeMTMC-reID", "dukemtmc-reid", "dukemtmc-reid/DukeMTMC-reID")
_REQUIRED = ("bounding_box_train/", "query/", "bounding_box_test/")
_PATTERN = r"^(?P<pid>-?\d+)_c(?P<cam>\d)_f(?P<frame>\d+)\.jpg$"
_EXAMPLE = "0001_c2_f0046182.jpg"


def load_dukemtmc(
    root: str | os.PathLike,
    *,
    verify_images: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    r"""Loads DukeMTMC-reID from its released layout (see ``datasets/README.md``).

    Splits as Market-1501: ``bounding_box_train/``, ``query/``,
    ``bounding_box_test/``. File names ``<pid>_c<camera>_f<frame>.jpg``
    (camera ``c1`` → ``camid`` 0). A pid ``-1`` (none in the release) would
    be dropped as junk, as in Market-1501. Pids are kept as in the names.

    Timestamps (TLift, QAConv ECCV 2020, ``reid/datasets/duke.py``): the
    eight cameras share one clock through the published synchronisation
    offsets :math:`o_c` = ``DUKEMTMC_OFFSETS`` (frames),

    .. math::
        t = \frac{f + o_c}{59.94\ \mathrm{fps}}\ \text{seconds}.

    Args:
        root (str or os.PathLike): Dataset folder (or a parent in torchreid's
            ``dukemtmc-reid/DukeMTMC-reID/`` nesting).
        verify_images (bool, optional): Check every image header at load
            time; a corrupt image raises at read time either way.
            (default: :obj:`True`)
        verbose (bool, optional): Progress bar while verifying.
            (default: :obj:`True`)

    Returns:
        ReIDDataset: ``name="dukemtmc"``, ``has_time=True``, absolute paths.

    Example:
        >>> ds = load_dukemtmc("/data/DukeMTMC-reID")  # doctest: +SKIP
    """
    base = find_layout_root(
        root, _CANDIDATES, _REQUIRED, dataset="DukeMTMC-reID", layout=DUKEMTMC_LAYOUT
    )
    scanned = scan_market_style(
        base, _PATTERN, dataset="DukeMTMC-reID", layout=DUKEMTMC_LAYOUT, example=_EXAMPLE
    )
    offsets = np.asarray(DUKEMTMC_OFFSETS, dtype=np.int64)
    splits = {}
    for split, (paths, fields) in scanned.items():
        pid = fields["pid"].astype(np.int64).to_numpy()
        cam = fields["cam"].astype(np.int64).to_numpy()
        frame = fields["frame"].astype(np.int64).to_numpy()
        folder = os.path.dirname(paths[0])
        bad = (cam < 1) | (cam > len(offsets)) | (pid < -1)
        if bad.any():
            names = [os.path.basename(p) for p, b in zip(paths, bad, strict=True) if b]
            raise DatasetLayoutError(
                f"DukeMTMC-reID: file name(s) in '{folder}' with a camera outside "
                f"c1..c{len(offsets)} or pid < -1: {names[:10]}\n"
                f"Expected layout:\n{DUKEMTMC_LAYOUT}"
            )
        keep = pid != -1
        if not keep.all():
            logger.info(
                "DukeMTMC-reID: dropped %d junk image(s) from %s", int((~keep).sum()), split
            )
        check_nonempty(
            int(keep.sum()), split, folder, dataset="DukeMTMC-reID", layout=DUKEMTMC_LAYOUT
        )
        kept_paths = [p for p, k in zip(paths, keep, strict=True) if k]
        camid = cam[keep] - 1
        if verify_images:
            verify_split_images(kept_paths, dataset="DukeMTMC-reID", split=split, verbose=verbose)
        splits[split] = make_split(
            split,
            kept_paths,
            pid[keep],
            camid,
            times=(frame[keep] + offsets[camid]) / DUKEMTMC_FPS,
            frames=frame[keep],
        )
    return ReIDDataset(
        name="dukemtmc",
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=base,
        has_time=True,
        extra={"fps": DUKEMTMC_FPS},
    )
