r"""G-Fusion graph re-ranking (MM 2023, Sec. 3.4, Eq. 15-16): ours vs the dense way.

Ours: :func:`reidgraph.rerank.gfusion` -- bounded top-k searches, the window test of
Eq. 4 on ``N x k_l`` candidates, a sparse symmetrised graph, queries attached as
receive-only nodes, :class:`~reidgraph.nn.RandomSAGE` on a sparse adjacency, and the
query x gallery distances in chunks.

Reference, timed in the same run: the **dense** way the equations read (and the
authors' code builds them, ``REFERENCE_NOTES.md`` A.5): the full ``N_g x N_g``
affinity matrix of Eq. 2, a full row ``argsort`` for the top-``k_l`` lists, a dense
adjacency ``A`` (Eq. 4-5), ``A* = (A + A^T) / 2`` (Eq. 6), dense ``D^-1 (A* + I)``
and the query rows ``A^qg`` (Eq. 16), dense products with the **same** random
projections, and a dense ``cdist``. Float32 throughout (float64 would double its
memory). Its distance matrix is compared with ours.

Data: the synthetic world's query / gallery / train splits (``market-like``: 2,396
queries, 13,404 gallery images; ``--quick``: ``small``, 482 x 2,663), features
camera-centred with train means as in ``reidgraph demo``, ``T(a, b)`` fitted on the
train split with ``k_s = 10``.

Usage::

    python benchmarks/bench_gfusion.py            # market-like
    python benchmarks/bench_gfusion.py --quick    # small world, < 60 s

Peak memory is the process's peak resident set size (``resource.getrusage``), read
after each step; it only grows, so ours runs first.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from reidgraph.data.synthetic import make_world
from reidgraph.graph import TransitionSet
from reidgraph.nn import RandomSAGE
from reidgraph.ops import camera_center, camera_means
from reidgraph.rerank.gfusion import gfusion


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def window_test(values: list[np.ndarray], ncam: int, a, b, dt, delta) -> np.ndarray:
    """Eq. 4 for arrays of (camera a, camera b, dt): any T(a, b) value in [dt-d, dt+d]."""
    ok = np.zeros(dt.shape, bool)
    for p in range(ncam * ncam):  # loop over camera pairs, vectorised within
        sel = (a * ncam + b) == p
        v = values[p]
        if not sel.any() or v.size == 0:
            continue
        lo = np.searchsorted(v, dt[sel] - delta, side="left")
        ok[sel] = (lo < v.size) & (v[np.minimum(lo, v.size - 1)] <= dt[sel] + delta)
    return ok


def dense_reference(q, g, T, k_s, k_l, delta, weights) -> np.ndarray:
    gx, qx = g.x.numpy(), q.x.numpy()
    gc, gt = g.camid.numpy(), g.time.numpy()
    qc, qt = q.camid.numpy(), q.time.numpy()
    ncam = T.num_cameras
    values = [T.values(a, b).numpy() for a in range(ncam) for b in range(ncam)]
    n_g, n_q = len(gx), len(qx)

    def sqdist(a, b):
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)

    d_gg = sqdist(gx, gx)  # N_g x N_g
    np.fill_diagonal(d_gg, -1.0)  # self first (k counts the node itself)
    order = np.argsort(d_gg, axis=1, kind="stable")[:, :k_l]  # full sort of every row
    a_mat = np.zeros((n_g, n_g), np.float32)
    rows = np.repeat(np.arange(n_g), k_l - 1)
    nbr = order[:, 1:].reshape(-1)
    rank = np.tile(np.arange(1, k_l), n_g)
    keep = rank < k_s
    cand = ~keep
    keep[cand] = window_test(values, ncam, gc[rows[cand]], gc[nbr[cand]],
                             gt[rows[cand]] - gt[nbr[cand]], delta)  # fmt: skip
    diff = gx[rows[keep]] - gx[nbr[keep]]
    a_mat[rows[keep], nbr[keep]] = np.exp(-(diff * diff).sum(1) / 2.0)
    a_star = (a_mat + a_mat.T) / 2.0  # Eq. 6
    del a_mat, d_gg, order
    np.fill_diagonal(a_star, 1.0)
    p_g = a_star / a_star.sum(1, keepdims=True)
    del a_star
    d_qg = sqdist(qx, gx)
    order = np.argsort(d_qg, axis=1, kind="stable")[:, :k_l]
    p_q = np.zeros((n_q, n_g), np.float32)
    rows = np.repeat(np.arange(n_q), k_l)
    nbr = order.reshape(-1)
    rank = np.tile(np.arange(k_l), n_q)
    keep = rank < k_s
    cand = ~keep
    keep[cand] = window_test(values, ncam, qc[rows[cand]], gc[nbr[cand]],
                             qt[rows[cand]] - gt[nbr[cand]], delta)  # fmt: skip
    diff = qx[rows[keep]] - gx[nbr[keep]]
    p_q[rows[keep], nbr[keep]] = np.exp(-(diff * diff).sum(1) / 2.0)
    self_w = np.ones((n_q, 1), np.float32)
    norm = p_q.sum(1, keepdims=True) + self_w
    p_q, self_w = p_q / norm, self_w / norm
    hg, hq = gx, qx
    for w in weights:  # Eq. 15 / 16 with the same projections
        hg, hq = (
            np.maximum(p_g @ hg @ w.T, 0),
            np.maximum((p_q @ hg + self_w * hq) @ w.T, 0),
        )
    dist = np.sqrt(sqdist(hq - hg.mean(0), hg - hg.mean(0)))
    return dist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small world (< 60 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = "small" if args.quick else "market-like"
    world = make_world(preset, seed=args.seed, verbose=False)
    train, q, g = (world.to_data(s) for s in ("train", "query", "gallery"))
    means = camera_means(train.x, train.camid)
    for d in (train, q, g):
        d.x = camera_center(d.x, d.camid, means)
    T = TransitionSet.fit(train, k_s=10)
    w = args.channels
    print(
        f"world {preset!r}: {q.num_nodes} queries x {g.num_nodes} gallery, d={q.x.size(1)}, "
        f"|T|={T.num_transitions}, width {w}, torch threads {torch.get_num_threads()}"
    )
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    ours = gfusion(q, g, T, hidden_channels=w, out_channels=w, seed=args.seed)
    t_ours = time.perf_counter() - t0
    rss1 = peak_rss_mib()
    weights = [wt.numpy() for wt in RandomSAGE(q.x.size(1), w, w, seed=args.seed).weights()]
    t0 = time.perf_counter()
    ref = dense_reference(q, g, T, 3, 60, 1.0, weights)
    t_ref = time.perf_counter() - t0
    rss2 = peak_rss_mib()
    diff = np.abs(ours.numpy() - ref).max()
    same_top1 = (ours.numpy().argmin(1) == ref.argmin(1)).mean()
    print(f"{'way':<34}{'seconds':>10}{'peak RSS +MiB':>16}")
    print(f"{'ours: reidgraph.rerank.gfusion':<34}{t_ours:>10.2f}{rss1 - rss0:>16.0f}")
    print(f"{'reference: dense N x N (float32)':<34}{t_ref:>10.2f}{rss2 - rss1:>16.0f}")
    print(f"ratio reference / ours: {t_ref / t_ours:.1f}x")
    print(
        f"max |ours - reference| = {diff:.2e}; same rank-1 for {100 * same_top1:.2f} % of queries"
    )


if __name__ == "__main__":
    main()
