r"""The ``reidgraph train`` subcommand.

``reidgraph train RECIPE`` trains a recipe of :data:`reidgraph.train.recipes.RECIPES`
on the synthetic world or a dataset root::

    reidgraph train baseline --dataset synthetic --preset small --epochs 2
    reidgraph train baseline --dataset market1501 --data-root /data/Market-1501-v15.09.15
    reidgraph train baseline --resume runs/baseline/checkpoint.pth ...
    torchrun --nproc_per_node=4 -m reidgraph train baseline --dataset msmt17 --data-root ...

Every flag maps to one :class:`~reidgraph.train.TrainConfig` field or one
argument of the recipe's ``__init__`` (generated from its signature, so a
new recipe gets its flags for free). A flag left out keeps the recipe's
default (its paper's value). :func:`add_train_parser` adds the subcommand
to the ``reidgraph`` parser.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import types
import typing
from typing import Any

__all__ = ["add_train_parser", "run_train", "recipe_arguments"]

# (flag, TrainConfig field, argparse keyword arguments); default None = "recipe's default".
_BOOL = argparse.BooleanOptionalAction
_CONFIG_FLAGS: list[tuple[str, str, dict[str, Any]]] = [
    ("--epochs", "epochs", dict(type=int, help="training epochs")),
    ("--iters", "iters", dict(type=int, help="optimiser steps per epoch")),
    ("--batch-size", "batch_size", dict(type=int, help="images per step over all processes")),
    ("--num-instances", "num_instances", dict(type=int, help="images per pseudo-identity")),
    ("--optimizer", "optimizer", dict(choices=["adam", "sgd"], help="optimiser")),
    ("--lr", "lr", dict(type=float, help="learning rate of the new layers")),
    ("--backbone-lr-mult", "backbone_lr_mult", dict(type=float, help="backbone lr / lr")),
    ("--weight-decay", "weight_decay", dict(type=float, help="weight decay")),
    ("--sgd-momentum", "momentum", dict(type=float, help="SGD momentum")),
    ("--nesterov", "nesterov", dict(action=_BOOL, help="Nesterov momentum (SGD)")),
    ("--milestones", "milestones", dict(type=int, nargs="+", help="epochs of lr decay")),
    ("--step-size", "step_size", dict(type=int, help="StepLR period (epochs)")),
    ("--gamma", "gamma", dict(type=float, help="lr decay factor")),
    ("--warmup-epochs", "warmup_epochs", dict(type=int, help="warm-up epochs")),
    ("--warmup-factor", "warmup_factor", dict(type=float, help="warm-up start factor")),
    ("--warmup-method", "warmup_method", dict(choices=["linear", "constant"], help="warm-up")),
    ("--grad-clip", "grad_clip", dict(type=float, help="largest gradient norm")),
    ("--amp", "amp", dict(action=_BOOL, help="mixed precision (default: on with CUDA)")),
    ("--amp-dtype", "amp_dtype", dict(choices=["float16", "bfloat16"], help="AMP dtype")),
    ("--depth", "depth", dict(type=int, choices=[18, 34, 50, 101, 152], help="ResNet depth")),
    ("--pretrained", "pretrained", dict(help="local torchvision ImageNet state-dict file")),
    ("--last-stride", "last_stride", dict(type=int, choices=[1, 2], help="layer4 stride")),
    ("--pooling", "pooling", dict(choices=["avg", "gem"], help="global pooling")),
    ("--sync-bn", "sync_bn", dict(action=_BOOL, help="synchronised batch norm (torchrun)")),
    ("--height", "height", dict(type=int, help="input height")),
    ("--width", "width", dict(type=int, help="input width")),
    ("--pad", "pad", dict(type=int, help="random-crop padding (default: 10 per 128 px width)")),
    ("--erasing-prob", "erasing_prob", dict(type=float, help="random-erasing probability")),
    ("--workers", "num_workers", dict(type=int, help="data-loading workers per process")),
    ("--extract-batch-size", "extract_batch_size", dict(type=int, help="extraction batch")),
    ("--flip", "flip", dict(action=_BOOL, help="flip-averaged features (default: on)")),
    ("--seed", "seed", dict(type=int, help="seed of the run")),
    ("--deterministic", "deterministic", dict(action=_BOOL, help="deterministic kernels")),
    ("--device", "device", dict(help="cpu or cuda (default: cuda when available)")),
    ("--output-dir", "output_dir", dict(help="checkpoints and logs (default runs/RECIPE)")),
    ("--eval-every", "eval_every", dict(type=int, help="evaluate every N epochs (0: at the end)")),
    ("--eval-before", "eval_before", dict(action=_BOOL, help="evaluate the initial weights")),
    ("--checkpoint-every", "checkpoint_every", dict(type=int, help="checkpoint period (0: never)")),
    ("--log-every", "log_every", dict(type=int, help="steps between steps.csv rows")),
    (
        "--tensorboard",
        "tensorboard",
        dict(action=_BOOL, help="TensorBoard (default: if installed)"),
    ),
]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _plain_type(annotation: Any) -> Any:
    # "float | None" -> float; Optional[int] -> int.
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return annotation


def recipe_arguments(recipe_cls: type) -> list[tuple[str, Any, Any]]:
    r"""``(name, type, default)`` of the recipe's ``__init__`` parameters
    that the command line exposes (bool, int, float and str ones).

    Example:
        >>> from reidgraph.train.recipes import ClusterContrast
        >>> [n for n, _, _ in recipe_arguments(ClusterContrast)][:3]
        ['eps', 'min_samples', 'k1']
    """
    hints = typing.get_type_hints(recipe_cls.__init__)
    out = []
    for p in inspect.signature(recipe_cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = _plain_type(hints.get(p.name, type(p.default)))
        if kind in (bool, int, float, str):
            out.append((p.name, kind, p.default))
    return out


def _add_recipe_parser(sub: Any, name: str, recipe_cls: type) -> None:
    doc = (inspect.getdoc(recipe_cls) or name).splitlines()[0]
    p = sub.add_parser(name, help=doc, description=doc)
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="synthetic",
        help="market1501, dukemtmc, msmt17, sysu_mm01, regdb (with --data-root) or "
        "synthetic (default)",
    )
    data.add_argument("--data-root", default=None, help="dataset folder on disk")
    data.add_argument("--preset", default="small", help="synthetic world preset (default: small)")
    data.add_argument("--world-seed", type=int, default=0, help="synthetic world seed")
    run = p.add_argument_group("training (default: the recipe's paper values)")
    taken = set()
    for flag, field, kw in _CONFIG_FLAGS:
        kw = dict(kw)
        kw.setdefault("default", None)
        if "action" not in kw:
            kw["metavar"] = field.upper()
        run.add_argument(flag, dest=f"cfg_{field}", **kw)
        taken.add(flag)
    run.add_argument("--resume", default=None, help="checkpoint to continue from")
    run.add_argument(
        "--init",
        default=None,
        help="start from the weights of this reidgraph checkpoint (e.g. a source-domain "
        "'supervised' run); its classifier is dropped, optimiser and epoch are not restored",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    method = p.add_argument_group(f"{name} recipe ({recipe_cls.__name__})")
    for arg, kind, default in recipe_arguments(recipe_cls):
        flag = _flag(arg)
        if flag in taken:  # pragma: no cover - a developer error, caught by the tests
            raise ValueError(f"recipe {name!r} parameter {arg!r} clashes with flag {flag}")
        if kind is bool:
            method.add_argument(
                flag, dest=f"rcp_{arg}", action=argparse.BooleanOptionalAction, default=None
            )
        else:
            method.add_argument(
                flag,
                dest=f"rcp_{arg}",
                type=kind,
                default=None,
                metavar=arg.upper(),
                help=f"(default: {default})",
            )
    p.set_defaults(func=run_train, recipe_name=name)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    r"""Adds ``train`` (with one sub-subcommand per recipe) to the
    ``reidgraph`` command's subparsers.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.

    Returns:
        argparse.ArgumentParser: The ``train`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="reidgraph")
        >>> _ = add_train_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["train", "baseline", "--epochs", "2", "--eps", "0.5"])
        >>> args.cfg_epochs, args.rcp_eps
        (2, 0.5)
    """
    from reidgraph.train.recipes import RECIPES

    train = subparsers.add_parser(
        "train",
        help="train a CNN with graph-derived pseudo-labels (a recipe)",
        description="Train a re-ID network with one of the recipes; logs and checkpoints go "
        "to runs/RECIPE/ (--output-dir). Run under torchrun for several processes.",
    )
    sub = train.add_subparsers(dest="recipe_name", metavar="RECIPE")
    sub.required = True
    for name, cls in RECIPES.items():
        _add_recipe_parser(sub, name, cls)
    return train


def _load_data(args: argparse.Namespace):
    if args.dataset == "synthetic":
        if args.data_root is not None:
            raise ValueError(
                "--data-root was given with --dataset synthetic; name the dataset "
                "(e.g. --dataset market1501)"
            )
        from reidgraph.data.synthetic import make_world

        return make_world(args.preset, seed=args.world_seed, verbose=False)
    if args.data_root is None:
        raise ValueError(f"--data-root is required for --dataset {args.dataset}")
    from reidgraph.data import load_dataset

    return load_dataset(args.dataset, args.data_root)


def init_weights(model: Any, path: str) -> Any:
    r"""Loads a reidgraph checkpoint's network weights into ``model`` and
    gives it back its own classifier size (the checkpoint's classifier, e.g.
    of a source dataset's identities, is dropped)."""
    from reidgraph.models import load_checkpoint

    classes = getattr(model, "num_classes", None)
    load_checkpoint(path, model=model, restore_rng=False)
    if classes is not None and model.num_classes != classes:
        model.reset_classifier(classes)
    return model


def run_train(args: argparse.Namespace) -> int:
    r"""Handler of ``reidgraph train RECIPE``: builds the recipe, the
    config and the dataset from the flags, trains, prints a summary (rank 0
    only) and returns the exit status."""
    from reidgraph.train.distributed import cleanup_distributed, get_rank
    from reidgraph.train.loop import NonFiniteLossError, fit
    from reidgraph.train.recipes import get_recipe

    recipe_cls = get_recipe(args.recipe_name)
    recipe = recipe_cls(
        **{k[4:]: v for k, v in vars(args).items() if k.startswith("rcp_") and v is not None}
    )
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    if overrides.get("milestones") is not None:
        overrides["milestones"] = tuple(overrides["milestones"])
    if args.quiet:
        overrides["verbose"] = False
    dataset = _load_data(args)
    if args.dataset == "synthetic":
        # The world's pictures are small; train at their size unless told otherwise.
        h, w = dataset.config.image_size
        overrides.setdefault("height", h)
        overrides.setdefault("width", w)
    config = recipe.config(**overrides)
    model = None
    if args.init is not None:
        if args.resume is not None:
            raise ValueError("pass --init (new run from weights) or --resume (continue), not both")
        recipe.check_dataset(dataset)  # some recipes size their model from the dataset
        model = init_weights(recipe.build_model(config), args.init)
    try:
        result = fit(recipe, dataset, config, model=model, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        main_process = get_rank() == 0
        cleanup_distributed()
    if main_process:
        _print_summary(recipe, dataset, result)
    return 0


def _print_summary(recipe: Any, dataset: Any, result: Any) -> None:
    print(f"{recipe!r} on {dataset!r}")
    cols = ["epoch", "loss", "images_per_s", "extract_s", "graph_s", "num_clusters", "mAP"]
    present = [c for c in cols if any(c in row for row in result.history)]
    print("  ".join(f"{c:>12s}" for c in present))
    for row in result.history:
        cells = []
        for c in present:
            v = row.get(c, "")
            cells.append(f"{v:12.4g}" if isinstance(v, float) else f"{v!s:>12s}")
        print("  ".join(cells))
    if result.initial_metrics:
        print("before training: " + _metrics_line(result.initial_metrics))
    if result.metrics:
        print("after training:  " + _metrics_line(result.metrics))
    print(f"logs: {os.path.join(result.output_dir, 'epochs.csv')}")
    if result.checkpoint:
        print(f"checkpoint: {result.checkpoint}")


def _metrics_line(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items())
