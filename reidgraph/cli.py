r"""The ``reidgraph`` command line.

Subcommands:

* ``reidgraph demo`` — the main job: builds the synthetic camera-network
  world, retrieves every query against the gallery on its features and
  prints the standard re-ID metrics as a table.
* ``reidgraph info`` — loads a dataset (a real one from ``--data-root`` or
  the synthetic world) and prints its statistics.

Only this module prints; the library logs through :mod:`logging`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

log = logging.getLogger("reidgraph")


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="market-like",
        help="synthetic world preset: tiny, small, market-like or large (default: market-like)",
    )
    p.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reidgraph",
        description="Person re-identification as graph problems on PyTorch Geometric.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="retrieval + evaluation on the built-in synthetic camera-network world",
        description="Generate the synthetic world, rank the gallery for every query "
        "and print CMC / mAP / mINP.",
    )
    _add_world_args(demo)
    demo.add_argument(
        "--max-rank", type=int, default=20, help="longest CMC rank reported (default: 20)"
    )
    demo.set_defaults(func=_run_demo)

    info = sub.add_parser(
        "info",
        help="print statistics of a dataset (real root or synthetic world)",
        description="Load a dataset and print image / identity / camera counts per split.",
    )
    info.add_argument(
        "--dataset",
        default="synthetic",
        help="market1501, dukemtmc, msmt17, sysu_mm01, regdb or synthetic (default)",
    )
    info.add_argument("--data-root", default=None, help="dataset folder on disk")
    _add_world_args(info)
    info.set_defaults(func=_run_info)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from reidgraph.data.synthetic import make_world
    from reidgraph.eval import evaluate, format_table
    from reidgraph.ops import camera_center, camera_means, pairwise_distance

    t0 = time.perf_counter()
    world = make_world(preset=args.preset, seed=args.seed)
    t_world = time.perf_counter() - t0
    print(world)
    q = world.to_data("query")
    g = world.to_data("gallery")

    train = world.to_data("train")
    # Camera means come from the training split: no test statistics, no labels.
    means = camera_means(train.x, train.camid)
    variants = {
        "cosine": (q.x, g.x),
        "cosine, camera-centred": (
            camera_center(q.x, q.camid, means),
            camera_center(g.x, g.camid, means),
        ),
    }
    rows = {}
    for name, (qx, gx) in variants.items():
        t1 = time.perf_counter()
        dist = pairwise_distance(qx, gx, metric="cosine")
        rows[name] = evaluate(dist, q.pid, g.pid, q.camid, g.camid, max_rank=args.max_rank)
        log.info("%s: retrieval + evaluation %.2f s", name, time.perf_counter() - t1)
    print(f"{len(q.x)} queries x {len(g.x)} gallery images, single-query protocol")
    print(format_table(rows, ranks=(1, 5, 10)))
    print(f"world generated in {t_world:.2f} s; total {time.perf_counter() - t0:.2f} s")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    if args.dataset == "synthetic":
        from reidgraph.data.synthetic import make_world

        ds = make_world(preset=args.preset, seed=args.seed)
    else:
        from reidgraph.data import load_dataset

        if args.data_root is None:
            print(f"error: --data-root is required for --dataset {args.dataset}", file=sys.stderr)
            return 2
        ds = load_dataset(args.dataset, args.data_root)
    print(ds)
    for split in ds.splits():
        if not len(split):
            continue
        df = split.to_frame()
        t = df["time"]
        span = f"{t.min():.1f}..{t.max():.1f} s" if t.notna().any() else "none"
        modalities = sorted(df["modality"].unique().tolist())
        print(
            f"  {split.name:8s} images={len(df):7d} ids={df['pid'].nunique():6d} "
            f"cameras={df['camid'].nunique():3d} modalities={modalities} "
            f"time={span}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # PyG 2.8 calls torch.jit.script at import time, which torch >= 2.10 flags as
    # deprecated; the warning is noise for CLI users (the library leaves it alone).
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
