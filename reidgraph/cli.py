r"""The ``reidgraph`` command line.

Subcommands:

* ``reidgraph demo`` — the main job: on the synthetic camera-network world
  (no arguments needed), ranks every query against the gallery and
  re-ranks it with k-reciprocal encoding, TLift, G-Fusion (visual-only and
  spatio-temporal graphs) and their combinations; prints the metrics table,
  saves it as CSV and draws the transition-time histogram and rank lists
  (``docs/demo.md``).
* ``reidgraph rerank`` — the same re-rankers on your own features, read from
  an ``.npz`` archive (schema: :mod:`reidgraph.rerank.npz`).
* ``reidgraph info`` — loads a dataset (a real one from ``--data-root`` or
  the synthetic world) and prints its statistics.

Only this module prints; the library logs through :mod:`logging`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "build_parser", "DEMO_ROWS", "RERANK_METHODS"]

log = logging.getLogger("reidgraph")

#: Rows of the demo table, in order.
DEMO_ROWS: tuple[str, ...] = (
    "baseline (raw features)",
    "baseline",
    "+ k-reciprocal",
    "+ TLift",
    "+ G-Fusion (visual)",
    "+ G-Fusion (ST)",
    "+ k-reciprocal + TLift",
    "+ G-Fusion (ST) + TLift",
)

#: Methods of ``reidgraph rerank``.
RERANK_METHODS: tuple[str, ...] = ("k_reciprocal", "tlift", "gfusion")

_COLUMNS = ("mAP", "rank1", "rank5", "rank10", "mINP", "seconds")


def _add_world_args(p: argparse.ArgumentParser, default_preset: str = "market-like") -> None:
    p.add_argument(
        "--preset",
        default=default_preset,
        help="synthetic world preset: tiny, small, market-like or large "
        f"(default: {default_preset})",
    )
    p.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")


def _add_gfusion_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("G-Fusion (MM 2023, Sec. 3.4)")
    g.add_argument("--k-s", type=int, default=3, help="visual neighbours k_s (default: 3)")
    g.add_argument("--k-l", type=int, default=60, help="candidate list k_l of Eq. 4 (default: 60)")
    g.add_argument("--delta", type=float, default=1.0, help="window delta in s (default: 1.0)")
    g.add_argument(
        "--transition-k",
        type=int,
        default=10,
        help="neighbours per training image (itself counted) whose time gaps form T(a, b) "
        "(default: 10; see docs/rerank_gfusion.md)",
    )
    g.add_argument(
        "--gfusion-seed", type=int, default=0, help="seed of the random projections (default: 0)"
    )


def _add_krr_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("k-reciprocal re-ranking (Zhong et al., CVPR 2017)")
    g.add_argument("--k1", type=int, default=20, help="k1 (default: 20)")
    g.add_argument("--k2", type=int, default=6, help="k2 (default: 6)")
    g.add_argument("--lambda-value", type=float, default=0.3, help="lambda (default: 0.3)")


def _add_tlift_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("TLift (QAConv-TLift, ECCV 2020, Sec. 4)")
    g.add_argument(
        "--tlift-preset",
        default="code",
        help="TLift parameters: 'code' (the authors' implementation) or 'paper' (default: code)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reidgraph",
        description="Person re-identification as graph problems on PyTorch Geometric.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="re-ranking showcase on the built-in synthetic camera-network world",
        description="Generate the synthetic world, rank the gallery for every query, re-rank "
        "with k-reciprocal, TLift and G-Fusion, print and save the metrics table and pictures.",
    )
    _add_world_args(demo)
    demo.add_argument(
        "--quick", action="store_true", help="the small world (same as --preset small)"
    )
    demo.add_argument(
        "--out", default=os.path.join("runs", "demo"), help="output folder (default: runs/demo)"
    )
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG pictures")
    demo.add_argument(
        "--calibration-size",
        type=int,
        default=2000,
        help="training images used to calibrate scores for TLift (default: 2000)",
    )
    demo.add_argument(
        "--save-features",
        action="store_true",
        help="also write the demo's features as features.npz (input of 'reidgraph rerank')",
    )
    _add_gfusion_args(demo)
    _add_krr_args(demo)
    _add_tlift_args(demo)
    demo.set_defaults(func=_run_demo)

    rerank = sub.add_parser(
        "rerank",
        help="re-rank your own features (.npz) with k-reciprocal, TLift or G-Fusion",
        description="Read query/gallery features (+ camera ids, timestamps, optional identities "
        "and training data) from an .npz archive, re-rank, write the ranking as .npz and, when "
        "identities are given, print metrics. Schema: docs/demo.md or reidgraph.rerank.npz.",
    )
    rerank.add_argument("--method", required=True, choices=RERANK_METHODS, help="re-ranker")
    rerank.add_argument("--input", required=True, help="feature archive (.npz)")
    rerank.add_argument("--output", required=True, help="ranking archive to write (.npz)")
    rerank.add_argument(
        "--top-k", type=int, default=100, help="length of the ranked lists (0: none; default 100)"
    )
    rerank.add_argument(
        "--no-matrix", action="store_true", help="do not store the full query x gallery matrix"
    )
    rerank.add_argument(
        "--no-normalize",
        action="store_true",
        help="use the features as they are (default: L2-normalise them first)",
    )
    _add_gfusion_args(rerank)
    _add_krr_args(rerank)
    _add_tlift_args(rerank)
    rerank.add_argument(
        "--sigmoid",
        type=float,
        nargs=2,
        metavar=("SHIFT", "TEMPERATURE"),
        default=None,
        help="tlift: score = sigmoid(-(cosine distance - SHIFT) / TEMPERATURE) instead of "
        "fitting it on the archive's training pairs",
    )
    rerank.add_argument(
        "--calibration-size",
        type=int,
        default=2000,
        help="tlift: training images used for the Platt scaling (default: 2000)",
    )
    rerank.set_defaults(func=_run_rerank)

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

    from reidgraph.train.cli import add_train_parser

    add_train_parser(sub)
    return parser


# ----------------------------------------------------------------------------- shared steps
def _metrics(dist: Any, q: Any, g: Any, larger_is_better: bool = False) -> dict[str, float]:
    from reidgraph.eval import evaluate

    res = evaluate(-dist if larger_is_better else dist, q.pid, g.pid, q.camid, g.camid, 10)
    cmc = res["cmc"]
    return {
        "mAP": 100 * float(res["mAP"]),
        "rank1": 100 * float(cmc[0]),
        "rank5": 100 * float(cmc[4]),
        "rank10": 100 * float(cmc[9]),
        "mINP": 100 * float(res["mINP"]),
    }


def _format_rows(rows: dict[str, dict[str, float]]) -> str:
    cols = [c for c in _COLUMNS if any(c in r for r in rows.values())]
    cells = [["method", *cols]]
    for name, r in rows.items():
        cells.append([name, *(f"{r[c]:.2f}" if c in r else "-" for c in cols)])
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w))
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    )


def _write_csv(path: str, rows: dict[str, dict[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", *_COLUMNS])
        for name, r in rows.items():
            writer.writerow([name, *(f"{r[c]:.4f}" if c in r else "" for c in _COLUMNS)])


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _subset(data: Any, index: Any) -> Any:
    from torch_geometric.data import Data

    return Data(**{k: data[k][index] for k in ("x", "camid", "time", "pid") if k in data})


def _platt(train: Any, rank: Callable[[Any, Any], Any], size: int, seed: int) -> tuple:
    r"""Platt scaling of a ranking's distances on the labelled training split.

    TLift needs a *calibrated* similarity (QAConv-TLift Sec. 4; the authors' scores
    average 0.01-0.1, ``docs/rerank_tlift.md``). A random subset of ``size``
    training images is split into pseudo-queries (a quarter) and a pseudo-gallery,
    ranked by the same method, and :func:`~reidgraph.rerank.tlift.fit_sigmoid`
    fits ``(shift, temperature)`` on every pair the single-query protocol keeps.
    """
    import torch

    from reidgraph.rerank.tlift import fit_sigmoid

    n = min(size, train.num_nodes)
    perm = torch.randperm(train.num_nodes, generator=torch.Generator().manual_seed(seed))[:n]
    cut = max(1, n // 4)
    cq, cg = _subset(train, perm[:cut].sort().values), _subset(train, perm[cut:].sort().values)
    d = rank(cq, cg)
    same = cq.pid[:, None] == cg.pid[None, :]
    keep = ~(same & (cq.camid[:, None] == cg.camid[None, :]))
    return fit_sigmoid(d[keep], same[keep])


def _sigmoid_scores(dist: Any, params: tuple) -> Any:
    from reidgraph.rerank.tlift import scores_from_distance

    return scores_from_distance(dist, "sigmoid", shift=params[0], temperature=params[1])


# ----------------------------------------------------------------------------- demo
def _run_demo(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from reidgraph.data.synthetic import make_world
    from reidgraph.graph import TransitionSet
    from reidgraph.ops import camera_center, camera_means, pairwise_distance
    from reidgraph.rerank.gfusion import gfusion
    from reidgraph.rerank.k_reciprocal import k_reciprocal_features
    from reidgraph.rerank.tlift import tlift

    preset = "small" if args.quick else args.preset
    if args.quick and args.preset not in ("market-like", "small"):
        raise ValueError(f"--quick means --preset small; it contradicts --preset {args.preset}")
    os.makedirs(args.out, exist_ok=True)
    stages = [
        "world",
        "baseline",
        "k-reciprocal",
        "TLift",
        "transition sets",
        "G-Fusion (visual)",
        "G-Fusion (ST)",
        "combinations",
        "evaluation",
    ]
    if not args.no_plots:
        stages.append("pictures")
    t_start = time.perf_counter()
    bar = tqdm(total=len(stages), desc="demo", unit="step", file=sys.stderr)

    def step(name: str) -> None:
        bar.set_description(f"demo: {name}")

    step("world")
    world = make_world(preset=preset, seed=args.seed, verbose=False)
    train, q, g = (world.to_data(s) for s in ("train", "query", "gallery"))
    raw_q, raw_g = q.x, g.x
    # The demo's "model features": camera-centred with train means (no labels, no test
    # statistics) stand in for a camera-robust trained backbone (docs/demo.md).
    means = camera_means(train.x, train.camid)
    for d in (train, q, g):
        d.x = camera_center(d.x, d.camid, means)
    if args.k_l > g.num_nodes:
        print(f"note: the gallery has {g.num_nodes} images; using k_l={g.num_nodes}")
    bar.update()

    # One function per ranking, applied to the test split and, for TLift's score
    # calibration, to a pseudo query/gallery split of the training set.
    def rank_base(a: Any, b: Any) -> Any:
        return pairwise_distance(a.x, b.x, metric="cosine")

    def rank_kr(a: Any, b: Any) -> Any:
        k1 = min(args.k1, a.num_nodes + b.num_nodes - 1)
        return k_reciprocal_features(a.x, b.x, k1, min(args.k2, k1), args.lambda_value)

    gf_kw = dict(k_s=args.k_s, delta=args.delta, seed=args.gfusion_seed)

    def rank_gfusion(a: Any, b: Any, transitions: Any) -> Any:
        return gfusion(a, b, transitions, k_l=min(args.k_l, b.num_nodes), **gf_kw)

    def lift(dist: Any, rank: Callable[[Any, Any], Any]) -> Any:
        params = _platt(train, rank, args.calibration_size, args.seed)
        score = _sigmoid_scores(dist, params)
        return tlift(score, q.camid, g.camid, q.time, g.time, preset=args.tlift_preset)

    dists: dict[str, tuple[Any, bool]] = {}  # name -> (matrix, larger_is_better)
    secs: dict[str, float] = {}

    def run(name: str, fn: Callable[[], Any], larger: bool = False, extra: float = 0.0) -> Any:
        out, seconds = _timed(fn)
        dists[name], secs[name] = (out, larger), seconds + extra
        return out

    step("baseline")
    run("baseline (raw features)", lambda: pairwise_distance(raw_q, raw_g, metric="cosine"))
    base = run("baseline", lambda: rank_base(q, g))
    bar.update()

    step("k-reciprocal")
    kr = run("+ k-reciprocal", lambda: rank_kr(q, g))
    bar.update()

    step("TLift")
    run("+ TLift", lambda: lift(base, rank_base), larger=True)
    bar.update()

    step("transition sets")
    transitions, t_fit = _timed(lambda: TransitionSet.fit(train, k_s=args.transition_k))
    bar.update()

    step("G-Fusion (visual)")
    run("+ G-Fusion (visual)", lambda: rank_gfusion(q, g, None))
    bar.update()

    step("G-Fusion (ST)")
    gst = run("+ G-Fusion (ST)", lambda: rank_gfusion(q, g, transitions), extra=t_fit)
    bar.update()

    step("combinations")
    run(
        "+ k-reciprocal + TLift",
        lambda: lift(kr, rank_kr),
        larger=True,
        extra=secs["+ k-reciprocal"],
    )
    run(
        "+ G-Fusion (ST) + TLift",
        lambda: lift(gst, lambda a, b: rank_gfusion(a, b, transitions)),
        larger=True,
        extra=secs["+ G-Fusion (ST)"],
    )
    bar.update()

    step("evaluation")
    rows: dict[str, dict[str, float]] = {}
    for name in DEMO_ROWS:
        mat, larger = dists[name]
        rows[name] = {**_metrics(mat, q, g, larger), "seconds": secs[name]}
    bar.update()

    pictures: list[str] = []
    if not args.no_plots:
        step("pictures")
        pictures = _demo_pictures(world, train, q, g, transitions, base, gst, args)
        bar.update()
    bar.close()

    csv_path = os.path.join(args.out, "results.csv")
    _write_csv(csv_path, rows)
    if args.save_features:
        from reidgraph.rerank.npz import save_features

        save_features(os.path.join(args.out, "features.npz"), q, g, train)
    print(world)
    print(
        f"{q.num_nodes} queries x {g.num_nodes} gallery images, single-query protocol; "
        f"features camera-centred with train means; T(a, b) from {train.num_nodes} training "
        f"images, top-{args.transition_k}: {transitions.num_transitions} transitions"
    )
    print(_format_rows(rows))
    print(f"saved {csv_path}" + "".join(f", {p}" for p in pictures))
    print(f"total {time.perf_counter() - t_start:.1f} s on {torch.get_num_threads()} thread(s)")
    return 0


def _demo_pictures(
    world: Any, train: Any, q: Any, g: Any, transitions: Any, base: Any, gst: Any, args: Any
) -> list[str]:
    import numpy as np
    import torch

    from reidgraph.graph import TransitionSet, plot_transition_histogram
    from reidgraph.viz import plot_rank_list, rank_list

    out = []
    # G-Fusion Fig. 5: estimated T(a, b) vs the ground truth, for the camera pair with the
    # most estimated transitions.
    truth = TransitionSet.from_identities(train)
    counts = transitions.counts().view(transitions.num_cameras, -1)
    a, b = divmod(int(counts.argmax()), transitions.num_cameras)
    gt = truth.values(a, b)
    if gt.numel():
        lo, hi = torch.quantile(gt, torch.tensor([0.01, 0.99], dtype=gt.dtype)).tolist()
        if lo == hi:
            lo, hi = lo - 1.0, hi + 1.0
    else:
        lo, hi = -1.0, 1.0
    fig = plot_transition_histogram(
        transitions, a, b, ground_truth=truth, bins=60, range=(lo, hi), density=True
    )
    fig.axes[0].set_title(
        f"T({a}, {b}): estimated (top-{args.transition_k} train neighbours) vs ground truth"
    )
    path = os.path.join(args.out, "transitions.png")
    fig.savefig(path, dpi=120)
    out.append(path)

    # Rank lists before / after G-Fusion (ST) for a few queries it fixes at rank 1.
    topk = 8
    all_q = np.arange(q.num_nodes)
    i0, ok0 = rank_list(base, all_q, q.pid, g.pid, q.camid, g.camid, 1)
    i1, ok1 = rank_list(gst, all_q, q.pid, g.pid, q.camid, g.camid, 1)
    fixed = np.flatnonzero(~ok0[:, 0] & ok1[:, 0])
    pool = fixed if fixed.size >= 4 else all_q
    rng = np.random.default_rng(args.seed)
    picks = np.sort(rng.choice(pool, size=min(4, pool.size), replace=False))
    idx0, m0 = rank_list(base, picks, q.pid, g.pid, q.camid, g.camid, topk)
    idx1, m1 = rank_list(gst, picks, q.pid, g.pid, q.camid, g.camid, topk)
    index = np.stack([idx0, idx1], 1).reshape(-1, idx0.shape[1])  # rows: before, after
    match = np.stack([m0, m1], 1).reshape(-1, m0.shape[1])
    q_img = world.render("query", np.repeat(picks, 2))
    flat = index.reshape(-1)
    g_img = np.zeros((flat.size, *q_img.shape[1:]), np.uint8)
    valid = flat >= 0
    g_img[valid] = world.render("gallery", flat[valid])
    labels = [f"q{int(p)} {lab}" for p in picks for lab in ("baseline", "+ G-Fusion (ST)")]
    fig = plot_rank_list(
        q_img,
        g_img.reshape(*index.shape, *q_img.shape[1:]),
        match,
        row_labels=labels,
        title="top-8 gallery images (green: same person, red: another person)",
    )
    path = os.path.join(args.out, "rank_list.png")
    fig.savefig(path)
    out.append(path)
    return out


# ----------------------------------------------------------------------------- rerank
def _run_rerank(args: argparse.Namespace) -> int:
    from reidgraph.graph import TransitionSet
    from reidgraph.ops import l2_normalize, pairwise_distance
    from reidgraph.rerank.npz import check_requirements, load_features, save_ranking

    data = load_features(args.input)
    check_requirements(data, args.method)
    q, g = data["query"], data["gallery"]
    train = data.get("train")
    if not args.no_normalize:
        for d in data.values():
            d.x = l2_normalize(d.x)
    base, t_base = _timed(lambda: pairwise_distance(q.x, g.x, metric="cosine"))
    t0 = time.perf_counter()
    if args.method == "k_reciprocal":
        from reidgraph.rerank.k_reciprocal import k_reciprocal_features

        mat, larger = k_reciprocal_features(q.x, g.x, args.k1, args.k2, args.lambda_value), False
    elif args.method == "tlift":
        from reidgraph.rerank.tlift import tlift

        if args.sigmoid is not None:
            params = tuple(args.sigmoid)
            how = "given by --sigmoid"
        elif train is not None and getattr(train, "pid", None) is not None:
            params = _platt(
                train,
                lambda a, b: pairwise_distance(a.x, b.x, metric="cosine"),
                args.calibration_size,
                0,
            )
            how = f"Platt scaling on {min(args.calibration_size, train.num_nodes)} training images"
        else:
            raise ValueError(
                "TLift needs a calibrated similarity (scores averaging 0.01-0.1, QAConv-TLift "
                "Sec. 4): put 'train_features', 'train_camids', 'train_times' and 'train_pids' "
                "in the archive to fit a sigmoid on training pairs, or pass --sigmoid SHIFT "
                "TEMPERATURE (score = sigmoid(-(cosine distance - SHIFT) / TEMPERATURE)); "
                "(1 + cos) / 2 lets the timestamps outweigh appearance (docs/rerank_tlift.md)"
            )
        print(f"TLift scores: sigmoid(-(d - {params[0]:.4g}) / {params[1]:.4g}), {how}")
        mat = tlift(
            _sigmoid_scores(base, params),
            q.camid,
            g.camid,
            q.time,
            g.time,
            preset=args.tlift_preset,
        )
        larger = True
    else:
        from reidgraph.rerank.gfusion import gfusion

        transitions = None
        if train is not None:
            transitions = TransitionSet.fit(
                train,
                k_s=args.transition_k,
                num_cameras=int(max(int(d.camid.max()) for d in data.values()) + 1),
            )
        mat = gfusion(
            q,
            g,
            transitions,
            k_s=args.k_s,
            k_l=args.k_l,
            delta=args.delta,
            seed=args.gfusion_seed,
            verbose=True,
        )
        larger = False
        print(
            "G-Fusion graph: "
            + (
                f"visual + spatio-temporal, T(a, b) from {train.num_nodes} training images "
                f"({transitions.num_transitions} transitions)"
                if transitions is not None
                else "visual only (no train_* keys in the archive)"
            )
        )
    seconds = time.perf_counter() - t0
    saved = save_ranking(
        args.output,
        mat,
        method=args.method,
        larger_is_better=larger,
        top_k=args.top_k,
        save_matrix=not args.no_matrix,
    )
    print(
        f"{args.method}: {q.num_nodes} queries x {g.num_nodes} gallery in {seconds:.2f} s; "
        f"wrote {args.output} ({', '.join(sorted(k for k in saved if k != 'method'))})"
    )
    if getattr(q, "pid", None) is not None:
        rows = {
            "baseline": {**_metrics(base, q, g), "seconds": t_base},
            args.method: {**_metrics(mat, q, g, larger), "seconds": seconds},
        }
        print(_format_rows(rows))
    return 0


# ----------------------------------------------------------------------------- info
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
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
