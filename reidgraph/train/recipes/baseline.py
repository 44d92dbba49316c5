r"""Cluster contrast: the baseline recipe that G-Fusion and GUR build on.

Every epoch the training features are clustered by DBSCAN on the sparse
k-reciprocal Jaccard distance (:class:`~reidgraph.labelers.JaccardDBSCAN`;
outliers left out), a cluster memory is initialised with the centroids of
the clusters (GUR Eq. 1–2), and the network is trained with ClusterNCE
against it (GUR Eq. 3–4, temperature :math:`\tau`), the memory following
each batch by a momentum update. Schedule and sampling as in the public
cluster-contrast code that MPRD and GUR use (REFERENCE_NOTES A.2, A.4):
Adam at :math:`3.5\times10^{-4}`, weight decay :math:`5\times10^{-4}`, 50
epochs of 400 iterations, decay by 0.1 every 20 epochs, batches of 64
images with 16 per pseudo-identity.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from reidgraph.train.recipe import Recipe

__all__ = ["ClusterContrast"]


class ClusterContrast(Recipe):
    r"""DBSCAN on Jaccard distance :math:`\to` cluster memory :math:`\to`
    ClusterNCE.

    .. math::
        \mathbf{m}_k = \frac{1}{|\mathcal{H}_k|}\sum_{u \in \mathcal{H}_k} u,
        \qquad
        \mathcal{L}_q = -\log \frac{\exp(q \cdot \mathbf{m}_+ / \tau)}
            {\sum_{k=0}^{K} \exp(q \cdot \mathbf{m}_k / \tau)},
        \qquad
        \mathbf{m}_+ \leftarrow \mu\, \mathbf{m}_+ + (1 - \mu)\, q

    (GUR Eq. 1–4; the momentum update of Cluster Contrast, memory rows
    re-normalised). :math:`q` is the L2-normalised BNNeck feature.

    Args:
        eps (float, optional): DBSCAN radius on the Jaccard distance;
            :obj:`None` takes the dataset's value from
            :data:`reidgraph.labelers.EPS` (Market 0.4, Duke 0.6, MSMT 0.7,
            MPRD's scripts) and 0.6 for other datasets. (default: :obj:`None`)
        min_samples (int, optional): DBSCAN core-point size. (default: :obj:`4`)
        k1 (int, optional): k-reciprocal neighbourhood :math:`k_1`.
            (default: :obj:`30`)
        k2 (int, optional): Query expansion :math:`k_2`. (default: :obj:`6`)
        momentum (float, optional): Memory momentum :math:`\mu`.
            (default: :obj:`0.1`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.05`)

    Example:
        >>> from reidgraph.train import fit
        >>> from reidgraph.data import make_world
        >>> recipe = ClusterContrast(eps=0.5, k1=10, k2=3)
        >>> recipe.config(epochs=2, depth=18).iters
        400
        >>> result = fit(recipe, make_world("tiny"), epochs=2, depth=18)  # doctest: +SKIP
    """

    name = "baseline"
    defaults: dict[str, Any] = {
        "optimizer": "adam",
        "lr": 3.5e-4,
        "weight_decay": 5e-4,
        "epochs": 50,
        "iters": 400,
        "step_size": 20,
        "gamma": 0.1,
        "batch_size": 64,
        "num_instances": 16,
        "pooling": "avg",
        "height": 256,
        "width": 128,
    }

    def __init__(
        self,
        eps: float | None = None,
        min_samples: int = 4,
        k1: int = 30,
        k2: int = 6,
        momentum: float = 0.1,
        temperature: float = 0.05,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.k1 = k1
        self.k2 = k2
        self.momentum = momentum
        self.temperature = temperature

    def make_labeler(self, state):
        from reidgraph.labelers import EPS, JaccardDBSCAN

        eps = self.eps if self.eps is not None else EPS.get(state.dataset.name, 0.6)
        return JaccardDBSCAN(eps=eps, min_samples=self.min_samples, k1=self.k1, k2=self.k2)

    def make_memory(self, state) -> nn.Module:
        from reidgraph.nn.memory import ClusterMemory

        memory = ClusterMemory(
            state.data.x.size(1), momentum=self.momentum, temperature=self.temperature
        )
        memory.reset(state.data.x, state.labels)
        return memory

    def _targets(self, batch: dict[str, Any], state) -> Tensor:
        return state.labels[batch["index"]]

    def loss(self, batch: dict[str, Any], outputs: Any, state) -> dict[str, Tensor]:
        from reidgraph.losses import cluster_nce

        return {
            "nce": cluster_nce(outputs.bn_feat.float(), self._targets(batch, state), state.memory)
        }

    def after_step(self, batch: dict[str, Any], outputs: Any, state) -> None:
        # Under torchrun the memory all-gathers the batches of every rank, so
        # all ranks apply the same update and their memories stay identical.
        state.memory.update(outputs.bn_feat.float(), self._targets(batch, state))
