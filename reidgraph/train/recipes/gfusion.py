r"""G-Fusion (MM 2023): distil a spatio-temporal graph's affinity into the CNN.

Sec. 3 of the paper, in the loop's hooks. Every epoch:

* **3.1 graph** — the training features (extracted by the loop, L2-normalised)
  give the transition set :math:`T(a, b)` from each image's top-:math:`k_s`
  visual neighbours (Eq. 3) and the graph :math:`E_v \cup E_{st}` with
  Gaussian weights (Eq. 1–5), symmetrised (Eq. 6);
* **3.2 propagation** — a random, untrained two-layer GraphSAGE embeds it
  (Eq. 7) and the Gaussian of the embeddings is the affinity :math:`M` on the
  graph's edges (Eq. 8);
* **3.3 distillation** — Eq. 10 turns :math:`M` into per-camera targets
  (:class:`~reidgraph.labelers.GFusionAffinity`), and each batch minimises
  Eq. 12–13 against an instance memory
  (:func:`~reidgraph.losses.camera_grouped_distillation`) that follows the
  batch features with momentum :math:`m = 0.01` (Eq. 14,
  :class:`~reidgraph.nn.InstanceMemory`);
* **3.4 re-ranking** at test time — :meth:`GFusion.rerank`:
  :func:`reidgraph.rerank.gfusion` with the transition set fitted on train.

Schedule of Sec. 4.2: Adam, lr :math:`3.5\times10^{-4}`, batch 64, 8 epochs;
weight decay :math:`5\times10^{-4}`, 202 iterations per epoch and a decay by
0.1 at epoch 6 as in the public code (``REFERENCE_NOTES.md`` A.5; its warm-up
length is not recorded and a warm-up would spend one of the 8 epochs at 1 %
of the rate, so there is none).

:class:`ClusterContrastGFusion` adds the same term, with a weight, to the
baseline cluster-contrast recipe: the paper's best results combine G-Fusion
with another method (Table 1: MMT, SpCL, CAP, ICE + G-Fusion).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from reidgraph.labelers import ClusterLabels, SoftAffinity
from reidgraph.labelers.gfusion import GFusionAffinity
from reidgraph.losses.camera_distillation import camera_grouped_distillation
from reidgraph.nn.memory import InstanceMemory
from reidgraph.train.recipe import Recipe, RecipeError
from reidgraph.train.recipes.baseline import ClusterContrast

__all__ = ["GFusion", "ClusterContrastGFusion", "ClustersAndAffinity"]

logger = logging.getLogger(__name__)

_SCHEDULE: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 3.5e-4,
    "weight_decay": 5e-4,
    "epochs": 8,
    "iters": 202,
    "milestones": (6,),
    "gamma": 0.1,
    "batch_size": 64,
    "pooling": "avg",
    "height": 256,
    "width": 128,
}


class _GFusionTerm:
    r"""The G-Fusion pieces shared by :class:`GFusion` and
    :class:`ClusterContrastGFusion`: labeler, memory, loss, update, test-time
    re-ranking. Reads the G-Fusion hyper-parameters from ``self``."""

    spatiotemporal: bool
    transitions_: Any = None

    def _store(self, values: dict[str, Any]) -> None:
        # scikit-learn style: every __init__ argument is stored under its own name.
        for name in self._param_names():
            setattr(self, name, values[name])

    def check_dataset(self, dataset: Any) -> None:
        super().check_dataset(dataset)
        self._check_time(dataset)

    def _check_time(self, dataset: Any) -> None:
        if self.spatiotemporal and not getattr(dataset, "has_time", True):
            raise RecipeError(
                f"dataset {dataset.name!r} has no usable timestamps (has_time=False), so "
                "G-Fusion cannot build spatio-temporal edges (Eq. 3-4). Train with the "
                "visual-only graph instead: spatiotemporal=False (--no-spatiotemporal), "
                "Table 2's model 0"
            )

    def _labeler(self) -> GFusionAffinity:
        return GFusionAffinity(
            k_s=self.k_s,
            k_l=self.k_l,
            delta=self.delta,
            alpha=self.alpha,
            spatiotemporal=self.spatiotemporal,
            transition_k=self.transition_k,
            channels=self.channels,
            seed=self.graph_seed,
            target=self.target,
            lam=self.lam,
            top_k=self.top_k,
        )

    def _affinity(self, data: Any) -> SoftAffinity:
        labeler = self._labeler().fit(data)
        # Rank 0 keeps the transition set: test-time re-ranking reuses it (Sec. 3.4).
        self.transitions_ = labeler.transitions_
        return labeler.supervision_

    def _instance_memory(self, state: Any, momentum: float) -> InstanceMemory:
        # Eq. 14's bank starts every epoch from the features just extracted.
        x = state.data.x
        memory = InstanceMemory(x.size(0), x.size(1), momentum=momentum)
        memory.reset(x)
        return memory

    def _distillation(
        self, feats: Tensor, batch: dict, targets: SoftAffinity, memory, state, tau: float
    ) -> Tensor:
        return camera_grouped_distillation(
            feats,
            batch["index"],
            targets,
            memory.features,
            state.data.camid,
            tau,
            softmax_over=self.softmax_over,
        )

    def rerank(
        self,
        train: Any,
        query: Any,
        gallery: Any,
        spatiotemporal: bool | None = None,
        **kwargs: Any,
    ) -> Tensor:
        r"""G-Fusion's test-time re-ranking (Sec. 3.4): query × gallery
        distances from :func:`reidgraph.rerank.gfusion`, with :math:`T(a, b)`
        fitted on the training features ``train`` (Eq. 3, top-``transition_k``).

        Args:
            train (Data): Training spine (``x``, ``camid``, ``time``) of the
                final model.
            query (Data): Query spine.
            gallery (Data): Gallery spine.
            spatiotemporal (bool, optional): Use :math:`ST_{test}` (Table 2,
                model 4/5) or not (models 2/3). (default: :obj:`None`, the
                recipe's ``spatiotemporal``)
            **kwargs: Passed on to :func:`reidgraph.rerank.gfusion`.

        Returns:
            torch.Tensor: ``[N_q, N_g]`` distances.
        """
        from reidgraph.graph import TransitionSet
        from reidgraph.rerank import gfusion

        st = self.spatiotemporal if spatiotemporal is None else spatiotemporal
        transitions = None
        if st:
            k_t = self.k_s if self.transition_k is None else self.transition_k
            transitions = TransitionSet.fit(train, k_t)
        return gfusion(
            query, gallery, transitions, self.k_s, self.k_l, self.delta, self.alpha, **kwargs
        )


class GFusion(_GFusionTerm, Recipe):
    r"""G-Fusion: spatio-temporal graph :math:`\to` random GraphSAGE affinity
    :math:`\to` camera-grouped distillation (MM 2023, Sec. 3).

    .. math::
        \mathcal{L} = -\sum_i \sum_{c=1}^{N_c} \sum_{j \in \mathbb{N}(i),\,
        C_j = c} \mathbb{M}_{ij}^{(c)} \log \mathcal{P}^{(c)}(\mathbb{I}_j
        \mid f_i), \qquad \mathbb{I}_i \leftarrow m\, \mathbb{I}_i + (1 - m)\,
        f_i

    (Eq. 12–14; :math:`\mathbb{M}^{(c)}` from Eq. 10 on the affinity of
    Eq. 8). :math:`f_i` is the L2-normalised BNNeck feature.

    Args:
        spatiotemporal (bool, optional): Add the spatio-temporal edges of
            Eq. 4 (:math:`ST_{train}`); :obj:`False` is the visual graph of
            Table 2's model 0. (default: :obj:`True`)
        k_s (int, optional): Visual neighbours, self counted.
            (default: :obj:`3`, Sec. 4.2)
        k_l (int, optional): Candidates of Eq. 4. (default: :obj:`60`)
        delta (float, optional): :math:`\delta` in seconds.
            (default: :obj:`1.0` = 25 frames at 25 fps)
        alpha (float, optional): :math:`\alpha` of Eq. 2, 8.
            (default: :obj:`1.0`)
        transition_k (int, optional): Neighbours :math:`T(a, b)` is fitted
            from; :obj:`None` is ``k_s`` (Eq. 3). (default: :obj:`None`)
        channels (int, optional): Width of the random GraphSAGE.
            (default: :obj:`2048`)
        target (str, optional): ``"paper"`` (Eq. 8, 10) or ``"propagated"``
            (the public code's :math:`(I - \lambda W)^{-1} W`, top-``top_k``).
            (default: :obj:`"paper"`)
        lam (float, optional): :math:`\lambda`. (default: :obj:`0.99`)
        top_k (int, optional): Propagated neighbours kept. (default: :obj:`14`)
        softmax_over (str, optional): Eq. 13's softmax over the camera's
            whole memory, ``"camera"`` (the public code; Eq. 10's zero
            targets outside the neighbourhood are then its negatives), or
            over the anchor's ``"neighbours"`` in the camera, the
            denominator as printed, which degrades the features in our runs
            (``docs/train_gfusion.md``). (default: :obj:`"camera"`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.05`)
        momentum (float, optional): :math:`m` of Eq. 14, the weight of the
            old memory entry. (default: :obj:`0.01`)
        graph_seed (int, optional): Seed of the random projections.
            (default: :obj:`0`)

    Example:
        >>> recipe = GFusion()
        >>> cfg = recipe.config()
        >>> cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs
        ('adam', 0.00035, 64, 8)
    """

    name = "gfusion"
    defaults = dict(_SCHEDULE)
    min_cameras = 2

    def __init__(
        self,
        spatiotemporal: bool = True,
        k_s: int = 3,
        k_l: int = 60,
        delta: float = 1.0,
        alpha: float = 1.0,
        transition_k: int | None = None,
        channels: int = 2048,
        target: str = "paper",
        lam: float = 0.99,
        top_k: int = 14,
        softmax_over: str = "camera",
        temperature: float = 0.05,
        momentum: float = 0.01,
        graph_seed: int = 0,
    ) -> None:
        self._store(locals())

    def pseudo_label(self, data, state) -> SoftAffinity:
        return self._affinity(data)

    def make_memory(self, state) -> nn.Module:
        return self._instance_memory(state, self.momentum)

    def loss(self, batch: dict[str, Any], outputs: Any, state) -> dict[str, Tensor]:
        feats, sup, tau = outputs.bn_feat.float(), state.supervision, self.temperature
        return {"gfusion": self._distillation(feats, batch, sup, state.memory, state, tau)}

    def after_step(self, batch: dict[str, Any], outputs: Any, state) -> None:
        state.memory.update(F.normalize(outputs.bn_feat.float(), dim=1), batch["index"])


@dataclass(eq=False)
class ClustersAndAffinity:
    r"""Supervision of :class:`ClusterContrastGFusion`: cluster labels for
    ClusterNCE and G-Fusion's targets for the distillation term."""

    clusters: ClusterLabels
    affinity: SoftAffinity

    @property
    def labels(self) -> Tensor:
        return self.clusters.labels

    @property
    def num_clusters(self) -> int:
        return self.clusters.num_clusters

    @property
    def num_outliers(self) -> int:
        return self.clusters.num_outliers

    @property
    def num_nodes(self) -> int:
        return self.clusters.num_nodes

    @property
    def num_edges(self) -> int:
        return self.affinity.num_edges


class ClusterContrastGFusion(_GFusionTerm, ClusterContrast):
    r"""Cluster contrast plus G-Fusion's distillation term, weighted.

    .. math::
        \mathcal{L} = \mathcal{L}_{\text{ClusterNCE}}
            + w\, \mathcal{L}_{\text{G-Fusion}}

    The paper reports G-Fusion on top of other unsupervised methods (Table 1:
    "MMT + G-Fusion*", …); this is that combination with the library's
    baseline. Cluster labels, cluster memory, sampler and schedule are the
    baseline's (:class:`ClusterContrast`); the G-Fusion targets and instance
    memory are :class:`GFusion`'s.

    Args:
        gfusion_weight (float, optional): :math:`w`. (default: :obj:`1.0`)
        eps, min_samples, k1, k2, momentum, temperature: As
            :class:`ClusterContrast` (the cluster memory's momentum and
            temperature).
        spatiotemporal, k_s, k_l, delta, alpha, transition_k, channels,
            target, lam, top_k, softmax_over, graph_seed: As :class:`GFusion`.
        instance_momentum (float, optional): :math:`m` of Eq. 14.
            (default: :obj:`0.01`)
        gfusion_temperature (float, optional): :math:`\tau` of Eq. 13.
            (default: :obj:`0.05`)

    Example:
        >>> ClusterContrastGFusion(gfusion_weight=0.5).name
        'baseline+gfusion'
    """

    name = "baseline+gfusion"
    min_cameras = 2

    def __init__(
        self,
        gfusion_weight: float = 1.0,
        eps: float | None = None,
        min_samples: int = 4,
        k1: int = 30,
        k2: int = 6,
        momentum: float = 0.1,
        temperature: float = 0.05,
        spatiotemporal: bool = True,
        k_s: int = 3,
        k_l: int = 60,
        delta: float = 1.0,
        alpha: float = 1.0,
        transition_k: int | None = None,
        channels: int = 2048,
        target: str = "paper",
        lam: float = 0.99,
        top_k: int = 14,
        softmax_over: str = "camera",
        instance_momentum: float = 0.01,
        gfusion_temperature: float = 0.05,
        graph_seed: int = 0,
    ) -> None:
        self._store(locals())

    def pseudo_label(self, data, state) -> ClustersAndAffinity:
        clusters = self.make_labeler(state).fit(data).supervision_
        return ClustersAndAffinity(clusters, self._affinity(data))

    def make_memory(self, state) -> nn.Module:
        cluster = super().make_memory(state)
        instance = self._instance_memory(state, self.instance_momentum)
        return nn.ModuleDict({"cluster": cluster, "instance": instance})

    def loss(self, batch: dict[str, Any], outputs: Any, state) -> dict[str, Tensor]:
        from reidgraph.losses import cluster_nce

        feats = outputs.bn_feat.float()
        sup, memory = state.supervision, state.memory
        nce = cluster_nce(feats, self._targets(batch, state), memory["cluster"])
        tau = self.gfusion_temperature
        gf = self._distillation(feats, batch, sup.affinity, memory["instance"], state, tau)
        return {"nce": nce, "gfusion": self.gfusion_weight * gf}

    def after_step(self, batch: dict[str, Any], outputs: Any, state) -> None:
        feats = outputs.bn_feat.float()
        state.memory["cluster"].update(feats, self._targets(batch, state))
        state.memory["instance"].update(F.normalize(feats, dim=1), batch["index"])
