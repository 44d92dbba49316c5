r"""Records, real dataset layouts and the synthetic camera-network world.

* :class:`ImageRecord`, :class:`ReIDSplit`, :class:`ReIDDataset` — the record
  types every dataset produces; :meth:`ReIDSplit.to_data` builds the spine.
* :func:`load_dataset` — Market-1501, DukeMTMC-reID, MSMT17, SYSU-MM01, RegDB
  from their released folder layouts (``datasets/README.md``).
* :func:`make_world` — the synthetic world (:mod:`reidgraph.data.synthetic`).
"""

from reidgraph.data.datasets import (
    DatasetLayoutError,
    DatasetNotFoundError,
    chain_session_frames,
    load_dukemtmc,
    load_market1501,
    load_msmt17,
    load_regdb,
    load_sysu_mm01,
    msmt17_recordings,
    msmt17_to_frame,
    sysu_gallery_indices,
)
from reidgraph.data.image_dataset import ImageDataset, collate_images
from reidgraph.data.images import ImageReadError, read_image, verify_image
from reidgraph.data.load import dataset_names, load_dataset, register_dataset, unregister_dataset
from reidgraph.data.records import INFRARED, VISIBLE, ImageRecord, ReIDDataset, ReIDSplit
from reidgraph.data.samplers import RandomIdentitySampler
from reidgraph.data.synthetic import PRESETS, SyntheticWorld, WorldConfig, make_world
from reidgraph.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

__all__ = [
    "ImageRecord",
    "ReIDSplit",
    "ReIDDataset",
    "VISIBLE",
    "INFRARED",
    "load_dataset",
    "register_dataset",
    "unregister_dataset",
    "dataset_names",
    "load_market1501",
    "load_dukemtmc",
    "load_msmt17",
    "load_sysu_mm01",
    "load_regdb",
    "chain_session_frames",
    "msmt17_recordings",
    "msmt17_to_frame",
    "sysu_gallery_indices",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "read_image",
    "verify_image",
    "ImageReadError",
    "ImageDataset",
    "collate_images",
    "build_transforms",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RandomIdentitySampler",
    "make_world",
    "SyntheticWorld",
    "WorldConfig",
    "PRESETS",
]
