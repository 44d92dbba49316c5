r"""The :class:`Recipe` base class: what a method states, and nothing else.

The training loop (:class:`~reidgraph.train.Trainer`) owns everything the
papers share: data loading, feature extraction, distributed training, mixed
precision, clipping, schedules, evaluation, logging and checkpoints. A
recipe states what differs, through a handful of hooks that the loop calls
in this order::

    check_dataset(dataset)                       once, before anything else
    build_model(config) -> nn.Module             once (unless a model is given)
    param_groups(model, config) -> [dict]        once: optimiser groups
    for every epoch:
        on_epoch_start(state)                        every rank
        pseudo_label(data, state) -> supervision     rank 0 only (via make_labeler), broadcast
        on_labels(state)                             every rank: checks
        make_memory(state) -> nn.Module | None       every rank: e.g. cluster centroids
        make_sampler(state) -> Sampler               every rank
        for every step:
            forward(model, batch, state) -> outputs
            loss(batch, outputs, state) -> Tensor | {name: Tensor}
            after_step(batch, outputs, state)        e.g. momentum memory update
        on_epoch_end(state) -> {name: value}         extra numbers for the log
    evaluate(query_x, gallery_x, dataset) -> dict    at evaluation epochs

A recipe's hyper-parameters are the arguments of its ``__init__`` (stored
under the same names, scikit-learn style, so :meth:`Recipe.get_params` and
``repr`` list them and the command line makes one flag per parameter); its
schedule is :attr:`Recipe.defaults`, a dict of
:class:`~reidgraph.train.TrainConfig` overrides.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Sampler

from reidgraph.train.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

    from reidgraph.data.records import ReIDDataset
    from reidgraph.train.loop import TrainState

__all__ = ["Recipe", "RecipeError", "PermutationSampler"]

logger = logging.getLogger(__name__)


class RecipeError(ValueError):
    r"""A recipe cannot train on what it was given (dataset, labels, model);
    the message says what happened and what to change."""


class PermutationSampler(Sampler[int]):
    r"""A seeded random permutation of ``range(n)`` per epoch, dealt out
    round-robin over ranks (each rank gets ``ceil(n / W)`` indices; the last
    ones wrap around so every rank has the same number of steps).

    The sampler for supervision without cluster labels (pairs, affinities),
    whose losses pair samples within a batch themselves.

    Args:
        n (int): Dataset size.
        seed (int, optional): Base seed; epoch :math:`e` uses ``seed + e``.
            (default: :obj:`0`)
        rank (int, optional): This process's rank. (default: :obj:`0`)
        world_size (int, optional): Number of processes. (default: :obj:`1`)

    Example:
        >>> s = PermutationSampler(5, seed=0, rank=1, world_size=2)
        >>> s.set_epoch(0); len(list(s))
        3
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if n < 1:
            raise ValueError(f"'n' must be >= 1, got {n}")
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        total = len(self) * self.world_size
        if total > self.n:
            perm = torch.cat([perm, perm[: total - self.n]])
        return iter(perm[self.rank :: self.world_size].tolist())


class Recipe:
    r"""Base class of the training recipes (one short file per method).

    Subclasses set :attr:`name` and :attr:`defaults`, take their
    hyper-parameters in ``__init__`` (stored as attributes of the same
    name, no work there) and override the hooks they need; the defaults
    below give a plain ReIDNet trained on cluster labels with an
    identity-balanced sampler.

    Attributes:
        name (str): The name used by the command line and ``runs/<name>/``.
        defaults (dict): :class:`TrainConfig` overrides: the paper's
            schedule.
        min_cameras (int): Fewest training cameras the method needs (2 for
            per-camera methods); :meth:`check_dataset` enforces it.
    """

    name: ClassVar[str] = "recipe"
    defaults: ClassVar[dict[str, Any]] = {}
    min_cameras: ClassVar[int] = 1

    # ------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        r"""The recipe's hyper-parameters (the ``__init__`` arguments)."""
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def config(self, **overrides: Any) -> TrainConfig:
        r"""The :class:`TrainConfig` of this recipe: the generic defaults,
        then :attr:`defaults`, then ``overrides``.

        Example:
            >>> Recipe().config(epochs=3).epochs
            3
        """
        return TrainConfig().replace(**{**self.defaults, **overrides})

    # ----------------------------------------------------------------- hooks
    def check_dataset(self, dataset: ReIDDataset) -> None:
        r"""Stops early when the dataset cannot be trained on by this recipe.

        The default checks that the training split is non-empty and has
        images from at least :attr:`min_cameras` cameras.

        Raises:
            RecipeError: With what was found and what to change.
        """
        train = dataset.train
        if len(train) == 0:
            raise RecipeError(
                f"dataset {dataset.name!r} has no training images; check the dataset root "
                "and its layout (datasets/README.md)"
            )
        cams = np.unique(train.camids)
        if cams.size < self.min_cameras:
            raise RecipeError(
                f"recipe {self.name!r} learns across cameras and needs training images from at "
                f"least {self.min_cameras} cameras, but the training split of dataset "
                f"{dataset.name!r} has {cams.size} camera(s) (camid {cams.tolist()}). Use a "
                "recipe that does not work per camera (e.g. 'baseline'), or check that the "
                "dataset loader parses camera ids from the file names"
            )

    def build_model(self, config: TrainConfig) -> nn.Module:
        r"""The network: :class:`reidgraph.models.ReIDNet` with the config's
        depth, last stride, pooling and (local) pretrained weights."""
        from reidgraph.models import ReIDNet

        return ReIDNet(
            config.depth,
            last_stride=config.last_stride,
            pooling=config.pooling,
            pretrained=config.pretrained,
        )

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        r"""Optimiser parameter groups: the backbone at
        ``lr * backbone_lr_mult``, the new layers (head) at ``lr``.

        Papers that fine-tune a pretrained backbone slower than the new
        layers set ``backbone_lr_mult=0.1`` (QAConv's ECCV code, IICS's code;
        REFERENCE_NOTES A.1, A.3); cluster contrast trains both at one rate.

        Models without ``backbone_parameters`` / ``head_parameters`` get one
        group of all their parameters. Frozen parameters are left out.
        """
        if hasattr(model, "backbone_parameters") and hasattr(model, "head_parameters"):
            backbone = [p for p in model.backbone_parameters() if p.requires_grad]
            head = [p for p in model.head_parameters() if p.requires_grad]
            groups = [
                {"params": backbone, "lr": config.lr * config.backbone_lr_mult, "name": "backbone"},
                {"params": head, "lr": config.lr, "name": "head"},
            ]
            return [g for g in groups if g["params"]]
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "lr": config.lr, "name": "all"}]

    def make_labeler(self, state: TrainState) -> Any:
        r"""The pseudo-labeler for this epoch (a
        :class:`~reidgraph.labelers.PseudoLabeler`; ``state.epoch`` and
        ``state.dataset`` are set); methods with stages return a different
        one per stage."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_labeler(state)")

    def on_epoch_start(self, state: TrainState) -> None:
        r"""Runs on every rank at the start of each epoch, before the
        features are extracted (e.g. switch a training stage). Default:
        nothing."""

    def pseudo_label(self, data: Data, state: TrainState) -> Any:
        r"""Supervision for this epoch from the spine graph of the training
        features. Runs on rank 0 only; what it returns is broadcast to every
        rank (so it must pickle) and stored as ``state.supervision``."""
        return self.make_labeler(state).fit(data).supervision_

    def on_labels(self, state: TrainState) -> None:
        r"""Runs on every rank once ``state.supervision`` is set: checks the
        labels and (re)builds what depends on them besides the memory
        (classifier heads).

        The default stops when cluster labels hold fewer than two clusters,
        since a contrastive or classification loss over one class is zero.
        """
        sup = state.supervision
        n_clusters = getattr(sup, "num_clusters", None)
        if n_clusters is not None and n_clusters < 2:
            raise RecipeError(
                f"epoch {state.epoch}: the pseudo-labeler found {n_clusters} cluster(s) among "
                f"{sup.num_nodes} training images ({sup.num_outliers} outliers), so there is "
                "nothing to contrast. Change the labeler's parameters (for DBSCAN: raise 'eps' "
                "to merge more, lower 'min_samples'), or start from better features "
                "(--pretrained PATH with ImageNet weights)"
            )

    def make_memory(self, state: TrainState) -> nn.Module | None:
        r"""The memory for this epoch's loss (e.g. cluster centroids from
        ``state.data.x`` and the labels), built on every rank after
        :meth:`on_labels`; the loop moves it to the device and stores it as
        ``state.memory``. Default: none."""
        return None

    def make_sampler(self, state: TrainState) -> Sampler[int]:
        r"""The training sampler of this epoch (rank-aware).

        Cluster labels (a ``labels`` attribute on the supervision) give
        :class:`reidgraph.data.samplers.RandomIdentitySampler` (P x K
        batches, outliers left out); other supervision a
        :class:`PermutationSampler`.
        """
        cfg = state.config
        labels = getattr(state.supervision, "labels", None)
        if labels is not None:
            from reidgraph.data.samplers import RandomIdentitySampler

            # The sampler takes the per-process batch; every rank draws the
            # same global list of batches and keeps its share.
            return RandomIdentitySampler(
                labels.cpu(),
                cfg.batch_size // state.dist.world_size,
                cfg.num_instances,
                seed=cfg.seed,
                rank=state.dist.rank,
                world_size=state.dist.world_size,
            )
        return PermutationSampler(
            len(state.train_set), cfg.seed, state.dist.rank, state.dist.world_size
        )

    def forward(self, model: nn.Module, batch: dict[str, Any], state: TrainState) -> Any:
        r"""The training forward pass (default ``model(batch["img"])``)."""
        return model(batch["img"])

    def loss(self, batch: dict[str, Any], outputs: Any, state: TrainState) -> Tensor | dict:
        r"""The training loss of one batch: a scalar tensor, or a dict of
        named scalar terms that the loop sums (and logs one by one)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement loss(batch, outputs, state)"
        )

    def after_step(self, batch: dict[str, Any], outputs: Any, state: TrainState) -> None:
        r"""Runs after each optimiser step (under ``torch.no_grad``), e.g. a
        momentum update of a memory. Default: nothing."""

    def on_epoch_end(self, state: TrainState) -> dict[str, Any]:
        r"""Extra numbers for this epoch's log row. Default: none."""
        return {}

    def evaluate(self, query_x: Tensor, gallery_x: Tensor, dataset: ReIDDataset) -> dict[str, Any]:
        r"""Retrieval metrics from query and gallery features.

        The default is the single-query protocol
        (:func:`reidgraph.eval.evaluate`) on cosine distances; cross-modality
        recipes override it with their dataset's protocol.
        """
        from reidgraph.eval import evaluate
        from reidgraph.ops import pairwise_distance

        dist = pairwise_distance(query_x, gallery_x, metric="cosine")
        return evaluate(
            dist,
            torch.as_tensor(dataset.query.pids),
            torch.as_tensor(dataset.gallery.pids),
            torch.as_tensor(dataset.query.camids),
            torch.as_tensor(dataset.gallery.camids),
        )

    # ------------------------------------------------------------ checkpoint
    def state_dict(self, state: TrainState) -> dict[str, Any]:
        r"""Recipe state to checkpoint beyond the model (tensors and plain
        Python only). Default: the memory's ``state_dict`` if there is one."""
        memory = getattr(state, "memory", None)
        return {"memory": memory.state_dict()} if isinstance(memory, nn.Module) else {}

    def load_state_dict(self, values: dict[str, Any], state: TrainState) -> None:
        r"""Restores :meth:`state_dict`'s output (memories rebuilt every epoch
        from the labels need nothing). Default: nothing."""
