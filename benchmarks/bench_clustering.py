r"""Pseudo-labelling by DBSCAN on the k-reciprocal Jaccard distance: sparse (ours) vs dense.

The reference is the dense per-row way of cluster-contrast's
``compute_jaccard_distance`` (used by GUR and MPRD's code), written here with
numpy: the ranked lists from a full distance matrix, a dense ``[N, N]``
encoding matrix ``V`` filled row by row (k-reciprocal sets with the
half-size expansion, softmax weights), query expansion by averaging the
``k2`` nearest rows, an inverted index per column and a per-row Jaccard
loop into a dense ``[N, N]`` distance, then
``DBSCAN(metric="precomputed")`` on that dense matrix. Ours is
:class:`reidgraph.labelers.JaccardDBSCAN` (sparse Jaccard of
:func:`reidgraph.ops.k_reciprocal.jaccard_distance`, DBSCAN on the sparse
matrix). Both run on the train features of the synthetic world; the script
prints both wall times, their ratio and whether the clusterings agree.

Usage::

    python benchmarks/bench_clustering.py             # Market-sized (13k), both ways
    python benchmarks/bench_clustering.py --quick     # 800 images, < 60 s
    python benchmarks/bench_clustering.py --msmt      # 32,621 images: ours only, time + peak RSS
    python benchmarks/bench_clustering.py --memory    # time + peak RSS of each way

``--memory`` and ``--msmt`` run each way alone in a fresh process that loads
only the features, and report its peak resident memory.

The dense way holds at least two float32 ``[N, N]`` matrices (``V`` and the
distance): 8.5 GB at MSMT17's 32,621 images before DBSCAN's own neighbourhood
lists, so ``--msmt`` runs ours alone and prints the dense estimate.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from reidgraph.data.synthetic import make_world
from reidgraph.labelers import JaccardDBSCAN
from reidgraph.labelers.dbscan import dbscan_precomputed
from reidgraph.ops.k_reciprocal import jaccard_distance

MSMT_TRAIN = 32_621


def features(n: int | None, preset: str, dim: int, seed: int) -> torch.Tensor:
    world = make_world(preset, seed=seed, feature_dim=dim, verbose=False)
    x = world.features("train")
    if n is not None:
        if n > x.size(0):
            raise SystemExit(f"--n {n} exceeds the {x.size(0)} train images of preset {preset}")
        x = x[torch.randperm(x.size(0), generator=torch.Generator().manual_seed(seed))[:n]]
    return x.contiguous()


def _k_reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = rank[i, : k + 1]
    backward = rank[forward, : k + 1]
    return forward[np.where(backward == i)[0]]


def reference_jaccard(x: torch.Tensor, k1: int, k2: int) -> np.ndarray:
    r"""The dense per-row Jaccard distance (cluster-contrast's ``compute_jaccard_distance``)."""
    n = x.size(0)
    x = torch.nn.functional.normalize(x, dim=1)
    dist = 2.0 - 2.0 * x @ x.t()  # the full [N, N] distance (search_option 3)
    rank = torch.topk(dist, k1, dim=1, largest=False).indices.numpy()
    del dist
    nn_k1 = [_k_reciprocal(rank, i, k1) for i in range(n)]
    nn_half = [_k_reciprocal(rank, i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r = nn_k1[i]
        expansion = r
        for c in r:
            rc = nn_half[c]
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expansion = np.append(expansion, rc)
        expansion = np.unique(expansion)
        d = 2.0 - 2.0 * (x[i : i + 1] @ x[expansion].t())
        v[i, expansion] = torch.softmax(-d, dim=1).view(-1).numpy()
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = v[rank[i, :k2]].mean(0)
        v = v_qe
        del v_qe
    inv_index = [np.where(v[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        temp_min = np.zeros(n, dtype=np.float32)
        nonzero = np.where(v[i] != 0)[0]
        for j in nonzero:
            rows = inv_index[j]
            temp_min[rows] += np.minimum(v[i, j], v[rows, j])
        jaccard[i] = 1.0 - temp_min / (2.0 - temp_min)
    jaccard[jaccard < 0] = 0.0
    return jaccard


def reference(x: torch.Tensor, eps: float, k1: int, k2: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    jd = reference_jaccard(x, k1, k2)
    t1 = time.perf_counter()
    labels = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(jd)
    return labels, t1 - t0


def ours(x: torch.Tensor, eps: float, k1: int, k2: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    dist = jaccard_distance(x, k1=k1, k2=k2, metric="cosine")
    t1 = time.perf_counter()
    labels = dbscan_precomputed(dist, eps, 4)
    return labels, t1 - t0


def _peak_mib() -> float:
    # VmHWM is this address space's high-water mark; ru_maxrss would carry over the
    # parent's peak across fork + exec on Linux.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="800 images of the small preset, < 60 s"
    )
    parser.add_argument("--msmt", action="store_true", help="32,621 images, ours only")
    parser.add_argument("--n", type=int, default=None, help="subsample the train images")
    parser.add_argument("--preset", default="market-like")
    parser.add_argument("--dim", type=int, default=2048, help="ResNet-50 pooled features")
    parser.add_argument("--eps", type=float, default=0.6)
    parser.add_argument("--k1", type=int, default=30)
    parser.add_argument("--k2", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory", action="store_true", help="peak RSS of each way")
    parser.add_argument("--only", choices=["reference", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.preset, args.n = "small", args.n or 800
    if args.msmt:
        args.preset, args.n = "large", MSMT_TRAIN
    if args.only:  # a fresh process: only the features file and one way count in its RSS
        x = torch.load(args.features, weights_only=True)
        base = _peak_mib()
        fn = reference if args.only == "reference" else ours
        t0 = time.perf_counter()
        labels, t_jac = fn(x, args.eps, args.k1, args.k2)
        total = time.perf_counter() - t0
        print(
            f"{args.only}: {total:.2f} s (Jaccard {t_jac:.2f} s), "
            f"{len(set(labels.tolist()) - {-1})} clusters, {(labels < 0).sum()} outliers, "
            f"peak RSS {_peak_mib():,.0f} MiB (+{_peak_mib() - base:,.0f} MiB over "
            f"python, torch and the features)"
        )
        return

    x = features(args.n, args.preset, args.dim, args.seed)
    n = x.size(0)
    print(
        f"{n} images (synthetic {args.preset}), d={args.dim}, k1={args.k1}, k2={args.k2}, "
        f"eps={args.eps}, min_samples=4, threads={torch.get_num_threads()}"
    )
    print(f"dense way needs >= 2 x [N, N] float32 = {8 * n * n / 2**30:,.1f} GiB")
    if args.memory or args.msmt:
        ways = ("ours",) if args.msmt else ("reference", "ours")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.pt")
            torch.save(x, path)
            keep = [a for a in sys.argv[1:] if a not in ("--memory", "--msmt", "--quick")]
            for which in ways:
                cmd = [sys.executable, __file__, *keep, "--only", which, "--features", path]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                print(res.stdout.strip().splitlines()[-1])
        return

    JaccardDBSCAN(k1=min(args.k1, 10), k2=1).fit(x[:200])  # warm-up (allocator, BLAS)
    t0 = time.perf_counter()
    ref_labels, ref_jac = reference(x, args.eps, args.k1, args.k2)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    our_labels, our_jac = ours(x, args.eps, args.k1, args.k2)
    t_ours = time.perf_counter() - t0
    print(f"reference (dense, per row): {t_ref:7.2f} s  (Jaccard {ref_jac:.2f} s)")
    print(f"ours (sparse):              {t_ours:7.2f} s  (Jaccard {our_jac:.2f} s)")
    print(f"speed-up: {t_ref / t_ours:.1f}x")
    clusters = len(set(our_labels.tolist()) - {-1})
    print(
        f"clusters: {clusters} (reference {len(set(ref_labels.tolist()) - {-1})}), "
        f"outliers {(our_labels < 0).sum()} (reference {(ref_labels < 0).sum()}), "
        f"ARI between the two = {adjusted_rand_score(ref_labels, our_labels):.4f}"
    )


if __name__ == "__main__":
    main()
