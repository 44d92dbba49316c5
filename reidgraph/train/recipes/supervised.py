r"""Supervised training on a labelled (source) dataset: identity + triplet loss.

The starting point of the domain-adaptive papers: G-Fusion pre-trains its
ResNet-50 on the labelled source dataset with "the conventional identity loss
and hard-batch triplet loss", Adam, lr :math:`3.5\times10^{-4}`, batch 64,
80 epochs (Sec. 4.2), before the unsupervised stage on the target. The
identities are the dataset's own (``pid``), so the "pseudo-labels" are the
true labels, fixed for the whole run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from reidgraph.labelers import ClusterLabels
from reidgraph.train.recipe import Recipe, RecipeError

__all__ = ["Supervised"]


class Supervised(Recipe):
    r"""Identity (label-smoothed cross-entropy) plus batch-hard triplet loss
    on the true identities (G-Fusion Sec. 4.2's source pre-training; the
    re-ID "strong baseline" of Luo et al., CVPRW 2019).

    .. math::
        \mathcal{L} = \mathcal{L}_{\text{ID}}^{\epsilon}(W_c\, f^{bn}, y)
            + \mathcal{L}_{\text{tri}}(f, y; m)

    with :math:`f` the pooled feature, :math:`f^{bn}` the BNNeck feature,
    :math:`\epsilon = 0.1` and :math:`m = 0.3`. The classifier has one
    output per training identity.

    Args:
        epsilon (float, optional): Label smoothing :math:`\epsilon`.
            (default: :obj:`0.1`)
        margin (float, optional): Triplet margin :math:`m`.
            (default: :obj:`0.3`)

    Example:
        >>> Supervised().config().epochs
        80
    """

    name = "supervised"
    defaults: dict[str, Any] = {
        "optimizer": "adam",
        "lr": 3.5e-4,
        "weight_decay": 5e-4,
        "epochs": 80,
        "step_size": 40,
        "gamma": 0.1,
        "batch_size": 64,
        "num_instances": 4,
        "height": 256,
        "width": 128,
    }

    def __init__(self, epsilon: float = 0.1, margin: float = 0.3) -> None:
        self.epsilon = epsilon
        self.margin = margin

    def check_dataset(self, dataset) -> None:
        super().check_dataset(dataset)
        pids = torch.as_tensor(dataset.train.pids)
        if bool((pids < 0).any()):
            raise RecipeError(
                f"supervised training needs an identity for every training image, but "
                f"{int((pids < 0).sum())} training records of {dataset.name!r} have pid < 0"
            )
        self.classes_ = torch.unique(pids)
        if self.classes_.numel() < 2:
            raise RecipeError(
                f"supervised training needs at least two identities, {dataset.name!r} has "
                f"{self.classes_.numel()}"
            )

    def build_model(self, config) -> nn.Module:
        model = super().build_model(config)
        model.reset_classifier(int(self.classes_.numel()))
        return model

    def pseudo_label(self, data, state) -> ClusterLabels:
        pid = data.pid.long().cpu()
        return ClusterLabels(torch.searchsorted(self.classes_, pid))

    def loss(self, batch: dict[str, Any], outputs: Any, state) -> dict[str, Tensor]:
        from reidgraph.losses import cross_entropy_with_label_smoothing, hard_triplet_loss

        y = state.labels[batch["index"]]
        return {
            "id": cross_entropy_with_label_smoothing(outputs.logits.float(), y, self.epsilon),
            "triplet": hard_triplet_loss(outputs.feat.float(), y, self.margin),
        }
