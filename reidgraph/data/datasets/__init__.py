r"""Parsers for the on-disk layouts of real re-ID datasets.

Each ``load_<name>(root, **options)`` reads one released layout (see
``datasets/README.md`` for the trees) into a
:class:`~reidgraph.data.records.ReIDDataset` whose records keep the original
image files as absolute paths. Use :func:`reidgraph.data.load.load_dataset`
to pick a layout by name.
"""

from reidgraph.data.datasets._common import DatasetLayoutError, DatasetNotFoundError
from reidgraph.data.datasets.dukemtmc import (
    DUKEMTMC_FPS,
    DUKEMTMC_LAYOUT,
    DUKEMTMC_OFFSETS,
    load_dukemtmc,
)
from reidgraph.data.datasets.market1501 import (
    MARKET1501_FPS,
    MARKET1501_LAYOUT,
    chain_session_frames,
    load_market1501,
)
from reidgraph.data.datasets.msmt17 import (
    MSMT17_LAYOUT,
    load_msmt17,
    msmt17_recordings,
    msmt17_to_frame,
)
from reidgraph.data.datasets.regdb import REGDB_LAYOUT, load_regdb
from reidgraph.data.datasets.sysu_mm01 import (
    SYSU_GALLERY_CAMERAS,
    SYSU_INFRARED_CAMERAS,
    SYSU_MM01_LAYOUT,
    SYSU_VISIBLE_CAMERAS,
    load_sysu_mm01,
    sysu_gallery_indices,
)

__all__ = [
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "load_market1501",
    "chain_session_frames",
    "MARKET1501_FPS",
    "MARKET1501_LAYOUT",
    "load_dukemtmc",
    "DUKEMTMC_FPS",
    "DUKEMTMC_OFFSETS",
    "DUKEMTMC_LAYOUT",
    "load_msmt17",
    "msmt17_recordings",
    "msmt17_to_frame",
    "MSMT17_LAYOUT",
    "load_sysu_mm01",
    "sysu_gallery_indices",
    "SYSU_VISIBLE_CAMERAS",
    "SYSU_INFRARED_CAMERAS",
    "SYSU_GALLERY_CAMERAS",
    "SYSU_MM01_LAYOUT",
    "load_regdb",
    "REGDB_LAYOUT",
]
