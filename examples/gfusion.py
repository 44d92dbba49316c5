"""G-Fusion (MM 2023) end to end: train, re-rank, and print Table 2's ablation on one run.

The paper adapts a model pre-trained on a labelled source domain to an unlabelled target
domain (Sec. 4.2). By default both domains are synthetic worlds (different identities,
people and camera styles; the target's timestamps are used, its labels only to score):

    python examples/gfusion.py                       # small worlds, about 10 min on 2 CPU cores
    python examples/gfusion.py --quick               # tiny worlds, one short epoch: a smoke run

On real data, give the target root (Market-1501 layout, or any registered dataset) and either a
labelled source root to pre-train on or an existing source checkpoint:

    python examples/gfusion.py --dataset market1501 --data-root /data/Market-1501-v15.09.15 \\
        --source-dataset dukemtmc --source-root /data/DukeMTMC-reID --paper-schedule
    python examples/gfusion.py --dataset market1501 --data-root /data/Market-1501-v15.09.15 \\
        --init runs/supervised/checkpoint.pth --paper-schedule

Rows (Table 2): 0 visual graph in training, no re-ranking; 1 + ST_train; 2 + ST_train,
re-ranking without ST; 3 re-ranking only; 4 re-ranking + ST_test; 5 full. In two more rows
(1p, 5p) the ST model is trained with the public code's propagated targets instead
(``--no-propagated`` skips that third run).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
from typing import Any

import torch

from reidgraph.data import load_dataset, make_world
from reidgraph.data.image_dataset import ImageDataset
from reidgraph.data.transforms import build_transforms
from reidgraph.eval import evaluate
from reidgraph.models import load_checkpoint
from reidgraph.ops import pairwise_distance
from reidgraph.train import fit
from reidgraph.train.extract import extract_data
from reidgraph.train.recipes import GFusion, Supervised

ROWS = {
    "0": ("visual graph, no re-ranking", False, None),
    "1": ("+ ST_train", True, None),
    "2": ("+ ST_train, re-ranking w/o ST", True, False),
    "3": ("re-ranking only", False, False),
    "4": ("re-ranking + ST_test", False, True),
    "5": ("full: ST_train + re-ranking + ST_test", True, True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset", default="synthetic", help="target dataset name (default: synthetic)"
    )
    p.add_argument("--data-root", default=None, help="target dataset root (real data)")
    p.add_argument("--preset", default="small", help="synthetic world preset (default: small)")
    p.add_argument("--source-dataset", default=None, help="labelled source dataset name")
    p.add_argument("--source-root", default=None, help="labelled source dataset root")
    p.add_argument(
        "--init", default=None, help="source checkpoint to start from (skips pre-training)"
    )
    p.add_argument(
        "--pretrained", default=None, help="local ImageNet ResNet weights for pre-training"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source-epochs", type=int, default=12)
    p.add_argument("--epochs", type=int, default=8, help="G-Fusion epochs (paper: 8)")
    p.add_argument("--iters", type=int, default=40, help="iterations per epoch (paper code: 202)")
    p.add_argument("--batch-size", type=int, default=32, help="paper: 64")
    p.add_argument("--depth", type=int, default=18, help="ResNet depth (paper: 50)")
    p.add_argument("--height", type=int, default=64, help="paper: 256")
    p.add_argument("--width", type=int, default=32, help="paper: 128")
    p.add_argument(
        "--paper-schedule",
        action="store_true",
        help="ResNet-50 at 256x128, batch 64, 202 iterations, 80 source epochs",
    )
    p.add_argument("--k-s", type=int, default=3)
    p.add_argument(
        "--k-l",
        type=int,
        default=None,
        help="candidates of Eq. 4 (default: 60 as in Sec. 4.2; 20 on synthetic worlds)",
    )
    p.add_argument("--delta", type=float, default=1.0, help="half window in seconds (25 frames)")
    p.add_argument(
        "--transition-k",
        type=int,
        default=None,
        help="neighbours T(a, b) is fitted from (default: k_s as in Eq. 3; 5 on synthetic "
        "worlds, whose near-identical detections fill a top-3)",
    )
    p.add_argument("--softmax-over", default="camera", choices=("camera", "neighbours"))
    p.add_argument(
        "--no-propagated",
        dest="propagated",
        action="store_false",
        help="skip the third run, with the public code's propagated targets",
    )
    p.add_argument("--device", default=None)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-loading workers (default: 0 for synthetic worlds, 4 for files)",
    )
    p.add_argument("--output-dir", default="runs/gfusion_example")
    p.add_argument(
        "--quick", action="store_true", help="tiny worlds, 1 epoch of 2 iterations (smoke run)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.source_epochs, args.epochs, args.iters = "tiny", 1, 1, 2
        args.batch_size = 16
    if args.paper_schedule:
        args.depth, args.height, args.width, args.batch_size = 50, 256, 128, 64
        args.iters, args.source_epochs = 202, 80
    if args.workers is None:
        args.workers = 0 if args.data_root is None else 4
    synthetic = args.data_root is None
    if args.k_l is None:
        args.k_l = 20 if synthetic else 60
    if args.transition_k is None:
        args.transition_k = 5 if synthetic else args.k_s
    return args


def _datasets(args):
    if args.data_root is None:
        # Two worlds of one preset: the source's identities, people and camera styles differ.
        target = make_world(args.preset, seed=args.seed, verbose=False)
        source = make_world(args.preset, seed=args.seed + 1, verbose=False)
        return source, target
    target = load_dataset(args.dataset, args.data_root)
    source = None
    if args.source_root is not None:
        source = load_dataset(args.source_dataset or args.dataset, args.source_root)
    return source, target


def _last_stride(args) -> int:
    # Small synthetic inputs keep the ResNet's last stride (ReIDNet's minimum input size).
    return 2 if args.height < 128 else 1


def _run_config(args, name: str, **extra: Any) -> dict[str, Any]:
    return dict(
        depth=args.depth,
        last_stride=_last_stride(args),
        height=args.height,
        width=args.width,
        batch_size=args.batch_size,
        iters=args.iters,
        seed=args.seed,
        device=args.device,
        num_workers=args.workers,
        eval_every=0,
        verbose=False,
        output_dir=os.path.join(args.output_dir, name),
        **extra,
    )


def source_model(args, source) -> torch.nn.Module:
    """The model G-Fusion starts from: supervised on the labelled source (Sec. 4.2)."""
    from reidgraph.models import ReIDNet

    if args.init is not None:
        arch = load_checkpoint(args.init, restore_rng=False)["arch"]["config"]
        model = ReIDNet(**arch)
        load_checkpoint(args.init, model=model, restore_rng=False)  # resizes the classifier
        model.reset_classifier(0)
        return model
    if source is None:
        logging.warning(
            "no labelled source (--source-root) and no --init checkpoint: G-Fusion starts from "
            "%s, not from a source-trained model as in the paper",
            args.pretrained or "random weights",
        )
        return ReIDNet(args.depth, last_stride=_last_stride(args), pretrained=args.pretrained)
    milestones = (max(1, 2 * args.source_epochs // 3),)
    result = fit(
        Supervised(), source, epochs=args.source_epochs, milestones=milestones,
        pretrained=args.pretrained, **_run_config(args, "source"),
    )  # fmt: skip
    model = result.model
    model.reset_classifier(0)
    return model


def train_gfusion(args, target, init: torch.nn.Module, spatiotemporal: bool, kind: str):
    recipe = GFusion(
        spatiotemporal=spatiotemporal, k_s=args.k_s, k_l=args.k_l, delta=args.delta,
        transition_k=args.transition_k, target=kind, softmax_over=args.softmax_over,
        graph_seed=args.seed,
    )  # fmt: skip
    name = f"{kind}_{'st' if spatiotemporal else 'visual'}"
    milestones = (max(1, 3 * args.epochs // 4),)
    result = fit(
        recipe, target, model=copy.deepcopy(init), epochs=args.epochs, milestones=milestones,
        **_run_config(args, name),
    )  # fmt: skip
    return recipe, result.model


def _features(model, target, args) -> dict[str, Any]:
    """Train / query / gallery spines of one model (flip-averaged, L2-normalised)."""
    images = {} if args.data_root is not None else None
    tf = build_transforms(args.height, args.width, train=False)
    out = {}
    for split in ("train", "query", "gallery"):
        records = getattr(target, split)
        if images is None:
            ds = ImageDataset(records, tf, images=target.render(split))
        else:
            ds = ImageDataset(records, tf)
        out[split] = extract_data(model, ds, device=args.device, verbose=False)
    return out


def _score(dist, data) -> dict[str, float]:
    q, g = data["query"], data["gallery"]
    m = evaluate(dist, q.pid, g.pid, q.camid, g.camid)
    cmc = m["cmc"]
    return {"mAP": float(m["mAP"]), "rank1": float(cmc[0]), "rank5": float(cmc[4]),
            "rank10": float(cmc[9])}  # fmt: skip


def ablation(recipe: GFusion, models: dict[bool, torch.nn.Module], target, args) -> dict[str, dict]:
    """Table 2's rows from the visual-graph model (False) and the ST-graph model (True)."""
    feats = {st: _features(m, target, args) for st, m in models.items()}
    rows = {}
    for key, (_, st_train, rerank) in ROWS.items():
        data = feats[st_train]
        if rerank is None:
            dist = pairwise_distance(data["query"].x, data["gallery"].x, metric="cosine")
        else:
            # Sec. 3.4: T(a, b) fitted on the train features of this very model.
            dist = recipe.rerank(
                data["train"], data["query"], data["gallery"], spatiotemporal=rerank
            )
        rows[key] = _score(dist, data)
    return rows


def format_rows(rows: dict[str, dict]) -> str:
    names = {**{k: v[0] for k, v in ROWS.items()}, "1p": "+ ST_train, propagated targets",
             "5p": "full, propagated targets"}  # fmt: skip
    lines = [f"{'model':<6}{'components':<40}{'mAP':>7}{'R1':>7}{'R5':>7}{'R10':>7}"]
    for key, r in rows.items():
        lines.append(
            f"{key:<6}{names[key]:<40}{100 * r['mAP']:7.1f}{100 * r['rank1']:7.1f}"
            f"{100 * r['rank5']:7.1f}{100 * r['rank10']:7.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    source, target = _datasets(args)
    init = source_model(args, source)
    recipe_v, model_v = train_gfusion(args, target, init, False, "paper")
    recipe_st, model_st = train_gfusion(args, target, init, True, "paper")
    rows = ablation(recipe_st, {False: model_v, True: model_st}, target, args)
    if args.propagated:
        _, model_p = train_gfusion(args, target, init, True, "propagated")
        extra = ablation(recipe_st, {False: model_v, True: model_p}, target, args)
        rows["1p"], rows["5p"] = extra["1"], extra["5"]
    print(f"G-Fusion ablation (Table 2) on {target.name}:")
    print(format_rows(rows))
    return rows


if __name__ == "__main__":
    main()
