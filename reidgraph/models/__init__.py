r"""Backbones with the re-ID head, local weights and training checkpoints.

* :class:`ReIDNet` — torchvision ResNet-18/34/50/101/152 with last stride 1,
  average or GeM pooling and BNNeck; returns :class:`ReIDOutput` in training
  mode and the BNNeck feature in eval mode; :meth:`ReIDNet.feature_maps`
  gives ``layer3`` maps for matching models (QAConv).
* :func:`load_pretrained` — ImageNet weights from a local torchvision file
  (nothing is downloaded).
* :func:`save_checkpoint` / :func:`load_checkpoint` — atomic, resumable
  checkpoints (``weights_only``-safe).
"""

from reidgraph.models.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    save_checkpoint,
    unwrap_model,
)
from reidgraph.models.resnet import DEPTHS, GeneralizedMeanPooling, ReIDNet, ReIDOutput
from reidgraph.models.weights import TORCHVISION_URLS, load_pretrained, read_state_dict

__all__ = [
    "ReIDNet",
    "ReIDOutput",
    "GeneralizedMeanPooling",
    "DEPTHS",
    "load_pretrained",
    "read_state_dict",
    "TORCHVISION_URLS",
    "save_checkpoint",
    "load_checkpoint",
    "unwrap_model",
    "CHECKPOINT_FORMAT",
]
