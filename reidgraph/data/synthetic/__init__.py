r"""A synthetic camera-network world for tests, demos and calibration.

Cameras in a walkway network, identities walking routes at their own speed
(some stopping on the way), a few detections per visit, features following
IICS's appearance model :math:`A_p + S_c + E_n` with look-alike groups and
an optional infrared modality, and optional small rendered images — all
from one seed, returned as a :class:`~reidgraph.data.ReIDDataset`.

Example:
    >>> from reidgraph.data.synthetic import make_world
    >>> world = make_world("tiny", seed=0)
    >>> data = world.to_data("gallery")   # x, camid, time, modality, pid
"""

from reidgraph.data.synthetic.appearance import Appearance, detection_features, make_appearance
from reidgraph.data.synthetic.config import MODALITIES, PRESETS, WorldConfig, resolve_config
from reidgraph.data.synthetic.network import CameraNetwork, make_network
from reidgraph.data.synthetic.render import RenderParams, make_render_params, render_images
from reidgraph.data.synthetic.trajectories import Walks, simulate_walks
from reidgraph.data.synthetic.world import (
    IMAGE_FORMATS,
    SPLIT_FOLDERS,
    SyntheticWorld,
    make_world,
)

__all__ = [
    "make_world",
    "SyntheticWorld",
    "WorldConfig",
    "PRESETS",
    "MODALITIES",
    "IMAGE_FORMATS",
    "SPLIT_FOLDERS",
    "resolve_config",
    "CameraNetwork",
    "make_network",
    "Walks",
    "simulate_walks",
    "Appearance",
    "make_appearance",
    "detection_features",
    "RenderParams",
    "make_render_params",
    "render_images",
]
