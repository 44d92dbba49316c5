r"""The one training loop shared by every method.

:class:`Trainer` runs a :class:`~reidgraph.train.Recipe` on a
:class:`~reidgraph.data.ReIDDataset`: per epoch it extracts the training
features (gathered over all processes), lets the recipe's pseudo-labeler
rebuild the supervision on rank 0 and broadcasts it, trains for one epoch
on the recipe's loss, steps the schedule, evaluates on query/gallery and
saves a checkpoint. It runs unchanged in one process or under
``torchrun --nproc_per_node=N`` (DistributedDataParallel, one sampler shard
per rank). :func:`fit` is the one-call form.

Every epoch logs (``epochs.csv``, TensorBoard when installed): the mean
loss and its terms, learning rates, images/s of the training steps, seconds
spent extracting features, seconds of graph work (pseudo-labelling and
memory building) and their share of the epoch, the pseudo-label statistics,
and the evaluation metrics.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from reidgraph.seed import seed_everything
from reidgraph.train.config import TrainConfig
from reidgraph.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    broadcast_buffers,
    broadcast_object,
    init_distributed,
)
from reidgraph.train.logger import MetricLogger
from reidgraph.train.recipe import Recipe, RecipeError
from reidgraph.train.schedule import WarmupMultiStepLR

__all__ = [
    "Trainer",
    "TrainState",
    "TrainResult",
    "NonFiniteLossError",
    "fit",
    "build_image_sets",
    "CHECKPOINT_NAME",
    "BEST_NAME",
]

logger = logging.getLogger(__name__)

#: File name of the checkpoint written after every epoch in ``output_dir``.
CHECKPOINT_NAME = "checkpoint.pth"
#: File name of the checkpoint with the best evaluation mAP.
BEST_NAME = "best.pth"

# Supervision statistics copied into the epoch log when the supervision has them.
_SUPERVISION_STATS = ("num_clusters", "num_outliers", "num_pairs", "num_positive", "num_edges")


class NonFiniteLossError(FloatingPointError):
    r"""The training loss became NaN or infinite; the message says at which
    step, which loss terms, and what to change."""


@dataclass
class TrainState:
    r"""Everything the loop and the recipe hooks share during training.

    Recipes read ``config``, ``epoch``, ``data`` (the spine graph of the
    training features, rebuilt every epoch), ``supervision`` (this epoch's
    pseudo-labels, identical on every rank) and ``memory``, and may keep
    their own things in ``extra``.
    """

    config: TrainConfig
    recipe: Recipe
    dist: DistInfo
    dataset: Any
    train_set: Dataset
    extract_sets: dict[str, Dataset]
    module: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: WarmupMultiStepLR
    scaler: torch.amp.GradScaler
    output_dir: str
    epoch: int = 0
    step: int = 0
    data: Any = None
    supervision: Any = None
    memory: nn.Module | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    best_map: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def labels(self) -> Tensor | None:
        r"""Cluster labels ``[N]`` of this epoch (``-1`` outlier), or
        :obj:`None` when the supervision is not clusters."""
        return getattr(self.supervision, "labels", None)


@dataclass
class TrainResult:
    r"""What :meth:`Trainer.fit` returns.

    Args:
        model (nn.Module): The trained network (not DDP-wrapped).
        history (list[dict]): One log row per epoch (as in ``epochs.csv``).
        metrics (dict): Evaluation of the final model (empty without
            query/gallery).
        initial_metrics (dict): Evaluation before training
            (``eval_before=True``), else empty.
        output_dir (str): Where logs and checkpoints are.
        checkpoint (str, optional): The last checkpoint written.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    initial_metrics: dict[str, Any]
    output_dir: str
    checkpoint: str | None


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    # Independent streams per (epoch, rank): a resumed run draws the same
    # augmentations as an uninterrupted one, and ranks never share a stream.
    return int(np.random.SeedSequence([seed, epoch + 1, rank]).generate_state(1)[0])


def build_image_sets(dataset: Any, config: TrainConfig) -> tuple[Dataset, dict[str, Dataset]]:
    r"""The image datasets the loop reads: the augmented training set and
    the un-augmented ``train`` / ``query`` / ``gallery`` sets for feature
    extraction.

    Records with files are read from disk; a synthetic world without files
    (:func:`~reidgraph.data.make_world` with ``images=False``) is rendered
    in memory (:meth:`~reidgraph.data.SyntheticWorld.render`).

    Args:
        dataset (ReIDDataset): The dataset.
        config (TrainConfig): Input ``height`` and ``width``.

    Returns:
        tuple: ``(train_set, {"train": ..., "query": ..., "gallery": ...})``
        (query/gallery only when the dataset has them).

    Raises:
        RecipeError: Records without image paths in a dataset that cannot
            render them.
    """
    from reidgraph.data.image_dataset import ImageDataset
    from reidgraph.data.transforms import build_transforms

    train_tf = build_transforms(
        config.height,
        config.width,
        train=True,
        pad=config.augmentation_pad(),
        erasing_prob=config.erasing_prob,
    )
    test_tf = build_transforms(config.height, config.width, train=False)
    extract: dict[str, Dataset] = {}
    train_set = None
    for split in dataset.splits():
        if len(split) == 0:
            continue
        images = None
        if any(not r.path for r in split):
            if not hasattr(dataset, "render"):
                raise RecipeError(
                    f"split {split.name!r} of dataset {dataset.name!r} has records without an "
                    "image path; training needs images (files, or a synthetic world that "
                    "renders them)"
                )
            images = dataset.render(split.name)
        extract[split.name] = ImageDataset(split, test_tf, images=images)
        if split.name == "train":
            train_set = ImageDataset(split, train_tf, images=images)
    if train_set is None:
        raise RecipeError(f"dataset {dataset.name!r} has no training images")
    return train_set, extract


def _link_or_copy(src: str, dst: str) -> None:
    # A hard link costs nothing, and stays valid when the next epoch's
    # checkpoint replaces ``src`` (os.replace gives that name a new file).
    tmp = f"{dst}.tmp.{os.getpid()}"
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _move(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {
        k: v.to(device, non_blocking=nb) if isinstance(v, Tensor) else v for k, v in batch.items()
    }


def _loss_terms(loss: Any) -> tuple[Tensor, dict[str, Tensor]]:
    if isinstance(loss, Tensor):
        if loss.dim() != 0:
            raise ValueError(f"the recipe's loss must be a scalar, got shape {tuple(loss.shape)}")
        return loss, {}
    if isinstance(loss, Mapping) and loss:
        terms = dict(loss)
        for name, value in terms.items():
            if not isinstance(value, Tensor) or value.dim() != 0:
                raise ValueError(f"loss term {name!r} must be a scalar tensor, got {value!r}")
        total = sum(terms.values())
        return total, terms
    raise TypeError(
        f"the recipe's loss must be a scalar tensor or a non-empty dict of them, got "
        f"{type(loss).__name__}"
    )


def _scalar(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item() if value.numel() == 1 else None
    return value if isinstance(value, int | float | str | bool) else None


def _metric_row(metrics: Mapping[str, Any]) -> dict[str, float]:
    row: dict[str, float] = {}
    cmc = metrics.get("cmc")
    if cmc is not None:
        cmc = torch.as_tensor(cmc).flatten()
        for r in (1, 5, 10):
            if cmc.numel() >= r:
                row[f"rank{r}"] = float(cmc[r - 1])
    for key in ("mAP", "mINP"):
        if key in metrics:
            row[key] = float(metrics[key])
    return row


class Trainer:
    r"""Trains a network with a :class:`~reidgraph.train.Recipe`.

    Args:
        recipe (Recipe): The method (labeler, memory, loss, schedule).
        config (TrainConfig, optional): Run settings. (default: :obj:`None`,
            ``recipe.config()``: the recipe's paper defaults)

    Example:
        >>> from reidgraph.train import Trainer
        >>> from reidgraph.train.recipes import ClusterContrast
        >>> from reidgraph.data import make_world
        >>> recipe = ClusterContrast(eps=0.6)
        >>> trainer = Trainer(recipe, recipe.config(epochs=2, depth=18))
        >>> result = trainer.fit(make_world("tiny"))  # doctest: +SKIP
    """

    def __init__(self, recipe: Recipe, config: TrainConfig | None = None) -> None:
        if not isinstance(recipe, Recipe):
            raise TypeError(f"'recipe' must be a Recipe, got {type(recipe).__name__}")
        if config is None:
            config = recipe.config()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"'config' must be a TrainConfig, got {type(config).__name__}")
        self.recipe = recipe
        self.config = config
        self._log: MetricLogger | None = None
        self._amp = False

    # --------------------------------------------------------------- set-up
    def _setup(
        self, dataset: Any, model: nn.Module | None, resume: str | os.PathLike | None
    ) -> tuple[TrainState, int, MetricLogger | None]:
        cfg, recipe = self.config, self.recipe
        info = init_distributed(cfg.device)
        device = info.device
        use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
        if use_amp and device.type != "cuda" and cfg.amp_dtype == "float16":
            raise ValueError(
                "'amp' with amp_dtype='float16' needs CUDA; on the CPU pass amp=False "
                "(or amp_dtype='bfloat16')"
            )
        self._amp = use_amp
        if cfg.batch_size % info.world_size:
            raise ValueError(
                f"'batch_size' ({cfg.batch_size}) is the batch over all processes and must be "
                f"a multiple of the {info.world_size} processes"
            )
        recipe.check_dataset(dataset)
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        train_set, extract_sets = build_image_sets(dataset, cfg)
        if model is None:
            model = recipe.build_model(cfg)
        if not isinstance(model, nn.Module):
            raise TypeError(f"'model' must be a torch.nn.Module, got {type(model).__name__}")
        module = model.to(device)
        if info.distributed and cfg.sync_bn:
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        groups = recipe.param_groups(module, cfg)
        if not groups or not any(g["params"] for g in groups):
            raise RecipeError(f"recipe {recipe.name!r} returned no trainable parameter groups")
        if cfg.optimizer == "adam":
            optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                groups,
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                nesterov=cfg.nesterov,
            )
        scheduler = WarmupMultiStepLR(
            optimizer,
            cfg.schedule_milestones(),
            cfg.gamma,
            cfg.warmup_epochs,
            cfg.warmup_factor,
            cfg.warmup_method,
        )
        scaler = torch.amp.GradScaler(device.type, enabled=use_amp and cfg.amp_dtype == "float16")
        wrapped: nn.Module = module
        if info.distributed:
            wrapped = nn.parallel.DistributedDataParallel(
                module, device_ids=[device.index] if device.type == "cuda" else None
            )
        out_dir = cfg.output_dir or os.path.join("runs", recipe.name)
        state = TrainState(
            config=cfg,
            recipe=recipe,
            dist=info,
            dataset=dataset,
            train_set=train_set,
            extract_sets=extract_sets,
            module=module,
            model=wrapped,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            output_dir=out_dir,
        )
        start = 0
        if resume is not None:
            start = self._resume(state, resume)
        log = None
        if info.is_main:
            os.makedirs(out_dir, exist_ok=True)
            log = MetricLogger(
                out_dir,
                tensorboard=cfg.tensorboard,
                resume_epoch=start if resume is not None else None,
                overwrite=resume is None,
            )
        logger.info(
            "training %r on %r: %d train images, %s, device %s, %d process(es), amp %s",
            recipe,
            getattr(dataset, "name", "?"),
            len(train_set),
            type(module).__name__,
            device,
            info.world_size,
            use_amp,
        )
        return state, start, log

    def _resume(self, state: TrainState, path: str | os.PathLike) -> int:
        from reidgraph.models import load_checkpoint

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"--resume: no checkpoint file at {path!r}; checkpoints are written to "
                f"<output_dir>/{CHECKPOINT_NAME} after every epoch"
            )
        ckpt = load_checkpoint(
            path,
            model=state.module,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            map_location=state.device,
        )
        extra = ckpt.get("extra") or {}
        saved_recipe = extra.get("recipe")
        if saved_recipe is not None and saved_recipe != self.recipe.name:
            logger.warning(
                "resuming recipe %r from a checkpoint of recipe %r (%s)",
                self.recipe.name,
                saved_recipe,
                path,
            )
        if "scaler" in extra and state.scaler.is_enabled():
            state.scaler.load_state_dict(extra["scaler"])
        state.step = int(extra.get("step", 0))
        state.history = list(extra.get("history", []))
        state.best_map = float(extra.get("best_map", -math.inf))
        evaluated = [row for row in state.history if "mAP" in row]
        if evaluated:  # a finished run resumed: report its last evaluation
            state.metrics = {
                k: evaluated[-1][k]
                for k in ("rank1", "rank5", "rank10", "mAP", "mINP")
                if k in evaluated[-1]
            }
        self.recipe.load_state_dict(extra.get("recipe_state", {}), state)
        epoch = int(ckpt["epoch"])
        if epoch + 1 >= self.config.epochs:
            logger.warning(
                "checkpoint %s finished epoch %d; with epochs=%d nothing is left to train",
                path,
                epoch,
                self.config.epochs,
            )
        logger.info("resumed from %s (epoch %d done)", path, epoch)
        return epoch + 1

    # ---------------------------------------------------------------- pieces
    def _extract(self, state: TrainState, split: str) -> Tensor:
        from reidgraph.train.extract import extract_features

        cfg = state.config
        return extract_features(
            state.module,
            state.extract_sets[split],
            batch_size=cfg.extract_batch_size,
            flip=cfg.flip,
            device=state.device,
            num_workers=cfg.num_workers,
            verbose=cfg.verbose and state.dist.is_main,
            amp=self._amp,
            out_device=state.device,
        )

    def _pseudo_label(self, state: TrainState) -> None:
        # Rank 0 labels; an exception there is sent to every rank so that no
        # process waits forever on a broadcast that never comes.
        payload: tuple[str, Any] = ("ok", None)
        if state.dist.is_main:
            try:
                payload = ("ok", self.recipe.pseudo_label(state.data, state))
            except Exception as exc:  # re-raised below on every rank
                msg = self._empty_message(state, exc)
                if not state.dist.distributed:
                    if msg is None:
                        raise
                    raise RecipeError(msg) from exc
                payload = (
                    "error",
                    msg
                    or f"epoch {state.epoch}: pseudo-labelling failed on rank 0 "
                    f"({type(exc).__name__}): {exc}",
                )
        kind, value = broadcast_object(payload)
        if kind == "error":
            raise RecipeError(value)
        # The supervision forms have .to(device); anything else stays as sent.
        to = getattr(value, "to", None)
        state.supervision = to(state.device) if callable(to) else value

    def _empty_message(self, state: TrainState, exc: Exception) -> str | None:
        from reidgraph.labelers import EmptySupervisionError

        if not isinstance(exc, EmptySupervisionError):
            return None
        return (
            f"epoch {state.epoch}: the pseudo-labeler of recipe {self.recipe.name!r} found "
            f"nothing to train on: {exc}. Change the labeler's parameters ({self.recipe!r}), "
            "or start from better features (--pretrained PATH with ImageNet weights: a "
            "randomly initialised backbone gives nearly identical features)"
        )

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        r"""Evaluates the current model on query/gallery (every rank
        extracts its share; rank 0 scores with ``recipe.evaluate``; all ranks
        get the result). Empty when the dataset has no query/gallery."""
        if "query" not in state.extract_sets or "gallery" not in state.extract_sets:
            return {}
        qx = self._extract(state, "query")
        gx = self._extract(state, "gallery")
        out: dict[str, Any] = {}
        if state.dist.is_main:
            out = _metric_row(self.recipe.evaluate(qx, gx, state.dataset))
        return broadcast_object(out)

    def _make_loader(self, state: TrainState, sampler: Any) -> DataLoader:
        from reidgraph.data.image_dataset import collate_images

        cfg = state.config
        per_rank = cfg.batch_size // state.dist.world_size
        loader = DataLoader(
            state.train_set,
            batch_size=per_rank,
            sampler=sampler,
            collate_fn=collate_images,
            num_workers=cfg.num_workers,
            pin_memory=state.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        if len(loader) == 0:
            raise RecipeError(
                f"epoch {state.epoch}: the sampler gives {len(sampler)} images per process, "
                f"fewer than one batch of {per_rank}; lower batch_size (now {cfg.batch_size}) "
                "or check the pseudo-labels (too many outliers?)"
            )
        return loader

    def _diverged(self, state: TrainState, value: float, terms: Mapping[str, float], k: int):
        cfg = state.config
        parts = ", ".join(f"{n}={v:.4g}" for n, v in terms.items()) or "single term"
        ckpt = os.path.join(state.output_dir, CHECKPOINT_NAME)
        last = f"; the last checkpoint is {ckpt}" if os.path.exists(ckpt) else ""
        amp = " or switch mixed precision off (amp=False, --no-amp)" if self._amp else ""
        clip = (
            f"lower grad_clip (now {cfg.grad_clip})"
            if cfg.grad_clip is not None
            else "clip gradients (grad_clip=5.0, --grad-clip 5)"
        )
        raise NonFiniteLossError(
            f"the training loss became {value} at epoch {state.epoch}, step {k} of the epoch "
            f"(global step {state.step}); loss terms: {parts}. Training stopped. Lower the "
            f"learning rate (lr={cfg.lr}), {clip}{amp}, and check the input images{last}"
        )

    def _train_epoch(self, state: TrainState, loader: DataLoader, sampler: Any) -> dict[str, Any]:
        from tqdm.auto import tqdm

        cfg, recipe, model = state.config, self.recipe, state.model
        steps = cfg.iters or len(loader)
        model.train()
        amp_dtype = torch.float16 if cfg.amp_dtype == "float16" else torch.bfloat16
        params = [p for g in state.optimizer.param_groups for p in g["params"]]
        sums: dict[str, float] = {}
        total_sum, images = 0.0, 0
        restart = 0
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(state.epoch)
        it = iter(loader)
        bar = tqdm(
            total=steps,
            desc=f"epoch {state.epoch}",
            disable=not (cfg.verbose and state.dist.is_main),
            leave=False,
        )
        t0 = time.perf_counter()
        for k in range(steps):
            try:
                batch = next(it)
            except StopIteration:
                restart += 1
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(state.epoch + restart * cfg.epochs)
                it = iter(loader)
                batch = next(it)
            batch = _move(batch, state.device)
            with torch.autocast(state.device.type, dtype=amp_dtype, enabled=self._amp):
                outputs = recipe.forward(model, batch, state)
                total, terms = _loss_terms(recipe.loss(batch, outputs, state))
            # One host sync per step: the loss and its terms for the log and the
            # NaN check, averaged over ranks so that every rank stops together.
            values = all_reduce_mean(
                torch.stack([total.detach().float(), *(t.detach().float() for t in terms.values())])
            ).tolist()
            value = values[0]
            term_values = dict(zip(terms, values[1:], strict=True))
            if not math.isfinite(value):
                self._diverged(state, value, term_values, k)
            state.optimizer.zero_grad(set_to_none=True)
            state.scaler.scale(total).backward()
            if cfg.grad_clip is not None:
                state.scaler.unscale_(state.optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            state.scaler.step(state.optimizer)
            state.scaler.update()
            with torch.no_grad():
                recipe.after_step(batch, outputs, state)
            state.step += 1
            n_img = int(batch["img"].size(0)) * state.dist.world_size
            images += n_img
            total_sum += value
            for n, v in term_values.items():
                sums[n] = sums.get(n, 0.0) + v
            elapsed = time.perf_counter() - t0
            bar.set_postfix(loss=f"{total_sum / (k + 1):.4f}", img_s=f"{images / elapsed:.1f}")
            bar.update(1)
            if self._log is not None and (state.step % cfg.log_every == 0):
                self._log.log_step(
                    state.step,
                    state.epoch,
                    {"loss": value, **term_values, "lr": state.optimizer.param_groups[-1]["lr"]},
                )
        bar.close()
        train_s = time.perf_counter() - t0
        row: dict[str, Any] = {"loss": total_sum / steps}
        row.update({f"loss_{n}": s / steps for n, s in sums.items()})
        row.update({"steps": steps, "images": images, "train_s": train_s})
        row["images_per_s"] = images / train_s if train_s > 0 else float("nan")
        return row

    def _checkpoint(self, state: TrainState, name: str) -> str:
        from reidgraph.models import save_checkpoint

        path = os.path.join(state.output_dir, name)
        if state.dist.is_main:
            save_checkpoint(
                path,
                model=state.module,
                optimizer=state.optimizer,
                scheduler=state.scheduler,
                epoch=state.epoch,
                config=state.config.to_dict(),
                extra={
                    "recipe": self.recipe.name,
                    "recipe_params": {
                        k: v
                        for k, v in self.recipe.get_params().items()
                        if isinstance(v, int | float | str | bool | type(None))
                    },
                    "recipe_state": self.recipe.state_dict(state),
                    "scaler": state.scaler.state_dict(),
                    "step": state.step,
                    "best_map": state.best_map,
                    "history": state.history,
                },
            )
        barrier()
        return path

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        dataset: Any,
        *,
        model: nn.Module | None = None,
        resume: str | os.PathLike | None = None,
    ) -> TrainResult:
        r"""Trains on ``dataset`` and returns the trained model with its log.

        Per epoch :math:`e` (from 0, or from the checkpoint's next epoch):

        1. ``recipe.on_epoch_start``; extract L2-normalised, flip-averaged
           training features (sharded over ranks, gathered on all) into the
           spine ``state.data``;
        2. ``recipe.pseudo_label`` on rank 0, broadcast to every rank as
           ``state.supervision``; ``recipe.on_labels`` and
           ``recipe.make_memory`` on every rank (the *graph work*, timed);
        3. ``iters`` steps (or one pass) of ``recipe.loss`` on the recipe's
           sampler with mixed precision on CUDA, gradient clipping and a NaN
           check; ``recipe.after_step`` after each;
        4. the schedule steps; evaluation at evaluation epochs; a checkpoint
           (``output_dir/checkpoint.pth``, atomic) and a log row.

        Args:
            dataset (ReIDDataset): Training (and, for evaluation, query and
                gallery) records; a synthetic world is rendered in memory.
            model (nn.Module, optional): A network to train instead of
                ``recipe.build_model(config)``. (default: :obj:`None`)
            resume (str, optional): Checkpoint to continue from (written by
                this loop): weights, optimiser, schedule, step counter and
                log are restored and training goes on with the next epoch.
                (default: :obj:`None`)

        Returns:
            TrainResult: model, per-epoch history, final and initial metrics.

        Raises:
            RecipeError: The dataset does not suit the recipe (e.g. one
                camera for a per-camera recipe), or the pseudo-labeler found
                no clusters; the message says what to change.
            NonFiniteLossError: The loss became NaN or infinite.
            FileNotFoundError: ``resume`` does not exist.
        """
        state, start, self._log = self._setup(dataset, model, resume)
        cfg, recipe = self.config, self.recipe
        initial: dict[str, Any] = {}
        checkpoint = None
        try:
            if cfg.eval_before and start == 0:
                t = time.perf_counter()
                initial = self.evaluate(state)
                if self._log is not None and initial:
                    self._log.log_epoch(-1, {**initial, "eval_s": time.perf_counter() - t})
                logger.info("before training: %s", initial)
            for epoch in range(start, cfg.epochs):
                state.epoch = epoch
                seed_everything(_epoch_seed(cfg.seed, epoch, state.dist.rank))
                t_epoch = time.perf_counter()
                recipe.on_epoch_start(state)
                t = time.perf_counter()
                feats = self._extract(state, "train")
                state.data = dataset.train.to_data(feats)
                extract_s = time.perf_counter() - t
                t = time.perf_counter()
                self._pseudo_label(state)
                recipe.on_labels(state)
                memory = recipe.make_memory(state)
                state.memory = memory.to(state.device) if isinstance(memory, nn.Module) else memory
                graph_s = time.perf_counter() - t
                sampler = recipe.make_sampler(state)
                loader = self._make_loader(state, sampler)
                row = self._train_epoch(state, loader, sampler)
                # One model on every rank for evaluation, checkpoint and the
                # next extraction: rank 0's batch-norm statistics.
                broadcast_buffers(state.module)
                for g in state.optimizer.param_groups:  # the rates this epoch trained with
                    row[f"lr_{g.get('name', 'group')}"] = g["lr"]
                state.scheduler.step()
                row.update(recipe.on_epoch_end(state) or {})
                is_last = epoch == cfg.epochs - 1
                eval_s = 0.0
                if is_last or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0):
                    t = time.perf_counter()
                    state.metrics = self.evaluate(state)
                    eval_s = time.perf_counter() - t
                    row.update(state.metrics)
                epoch_s = time.perf_counter() - t_epoch
                for stat in _SUPERVISION_STATS:
                    if hasattr(state.supervision, stat):
                        row[stat] = getattr(state.supervision, stat)
                row.update(
                    extract_s=extract_s,
                    graph_s=graph_s,
                    eval_s=eval_s,
                    epoch_s=epoch_s,
                    graph_share=graph_s / epoch_s,
                )
                row = {k: _scalar(v) for k, v in row.items() if _scalar(v) is not None}
                state.history.append({"epoch": epoch, **row})
                if self._log is not None:
                    self._log.log_epoch(epoch, row)
                logger.info(
                    "epoch %d: loss %.4f, %.1f images/s, graph work %.2f s (%.0f%% of the epoch)%s",
                    epoch,
                    row["loss"],
                    row["images_per_s"],
                    graph_s,
                    100.0 * graph_s / epoch_s,
                    f", mAP {row['mAP']:.4f}" if "mAP" in row else "",
                )
                improved = "mAP" in row and row["mAP"] > state.best_map
                if improved:
                    state.best_map = row["mAP"]
                if cfg.checkpoint_every and (is_last or (epoch + 1) % cfg.checkpoint_every == 0):
                    checkpoint = self._checkpoint(state, CHECKPOINT_NAME)
                    if improved and state.dist.is_main:
                        _link_or_copy(checkpoint, os.path.join(state.output_dir, BEST_NAME))
        finally:
            if self._log is not None:
                self._log.close()
        return TrainResult(
            model=state.module,
            history=state.history,
            metrics=state.metrics,
            initial_metrics=initial,
            output_dir=state.output_dir,
            checkpoint=checkpoint,
        )


def fit(
    recipe: Recipe,
    dataset: Any,
    config: TrainConfig | None = None,
    *,
    model: nn.Module | None = None,
    resume: str | os.PathLike | None = None,
    **overrides: Any,
) -> TrainResult:
    r"""Trains with ``recipe`` on ``dataset``: ``Trainer(recipe,
    config).fit(dataset)``.

    Args:
        recipe (Recipe): The method.
        dataset (ReIDDataset): The data.
        config (TrainConfig, optional): Run settings. (default: :obj:`None`,
            ``recipe.config()``)
        model (nn.Module, optional): Network to train instead of the
            recipe's. (default: :obj:`None`)
        resume (str, optional): Checkpoint to continue from.
            (default: :obj:`None`)
        **overrides: :class:`TrainConfig` fields replacing ``config``'s.

    Returns:
        TrainResult: see :meth:`Trainer.fit`.

    Example:
        >>> from reidgraph.train import fit
        >>> from reidgraph.train.recipes import ClusterContrast
        >>> from reidgraph.data import make_world
        >>> result = fit(ClusterContrast(), make_world("small"), epochs=2)  # doctest: +SKIP
        >>> result.metrics["mAP"]  # doctest: +SKIP
    """
    if config is None:
        config = recipe.config(**overrides)
    elif overrides:
        config = config.replace(**overrides)
    return Trainer(recipe, config).fit(dataset, model=model, resume=resume)
