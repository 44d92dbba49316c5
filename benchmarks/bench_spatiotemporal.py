r"""G-Fusion spatio-temporal graph (Eq. 1-5): our vectorised builder vs the reference ways.

Ours: :func:`reidgraph.graph.spatiotemporal_graph` (one bounded top-k search, then
the window test of Eq. 4 for all ``N x (k_l - k_s)`` candidates at once with
:meth:`TransitionSet.contains`, sorted arrays + ``searchsorted``).

Reference ways, timed in the same run:

* **loop** -- the straightforward per-pair Python loop over the candidate pairs
  (``any(dt - delta <= v <= dt + delta for v in T[a, b])``), timed on a random
  subset of candidates and **extrapolated** linearly to all of them (labelled so);
* **dense** -- the dense ``N x N`` way: the full squared-distance matrix, a full
  row ``argsort`` for the top-``k_l`` lists, and the window test by broadcasting
  every candidate against every transition time of its camera pair. Its edges
  are compared with ours.

Data: the synthetic ``market-like`` world (about 13k train detections, 6 cameras,
25 fps clock, 128-d features) when :mod:`reidgraph.data.synthetic` is present,
else random clustered features with a camera/time structure.

Usage::

    python benchmarks/bench_spatiotemporal.py            # market-like, k_l = 60
    python benchmarks/bench_spatiotemporal.py --quick    # ~3k nodes, < 60 s
    python benchmarks/bench_spatiotemporal.py --cuda-n 100000   # + CUDA timing when available

Peak memory is the process's peak resident set size (``resource.getrusage``),
read after each step; it only grows, so ours runs first.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time

import torch
from torch_geometric.data import Data

from reidgraph.graph.edge_types import SPATIOTEMPORAL
from reidgraph.graph.spatiotemporal import spatiotemporal_graph
from reidgraph.graph.transitions import TransitionSet
from reidgraph.graph.utils import symmetrize
from reidgraph.nn.random_sage import RandomSAGE, affinity
from reidgraph.ops import topk


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def load_data(n: int | None, seed: int) -> tuple[Data, str]:
    try:
        from reidgraph.data.synthetic import make_world

        data = make_world(preset="market-like", seed=seed).to_data("train")
        source = "synthetic world 'market-like'"
    except ImportError:  # pragma: no cover - fallback before the world existed
        data, source = random_data(n or 13000, seed), "random clustered features"
    if n is not None and n < data.num_nodes:
        keep = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(seed))[:n]
        keep = keep.sort().values
        data = Data(
            x=data.x[keep], camid=data.camid[keep], time=data.time[keep], pid=data.pid[keep]
        )
        source += f" (random subset of {n})"
    return Data(x=data.x.float(), camid=data.camid, time=data.time, pid=data.pid), source


def random_data(n: int, seed: int, dim: int = 128, cams: int = 6) -> Data:
    g = torch.Generator().manual_seed(seed)
    ids = n // 17
    pid = torch.randint(0, ids, (n,), generator=g)
    centers = torch.nn.functional.normalize(torch.randn(ids, dim, generator=g), dim=1)
    x = torch.nn.functional.normalize(
        centers[pid] + 0.5 * torch.randn(n, dim, generator=g) / dim**0.5, dim=1
    )
    camid = torch.randint(0, cams, (n,), generator=g)
    time = (
        pid.double() * 5.0 + camid.double() * 20.0 + torch.rand(n, generator=g, dtype=torch.float64)
    )
    return Data(x=x, camid=camid, time=time, pid=pid)


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def reference_loop(data, nbr, k_s, T, delta, subset, seed):
    r"""Per-pair Python window test on ``subset`` random candidates; returns seconds per pair."""
    camid, tm = data.camid.tolist(), data.time.tolist()
    sets = {
        (a, b): T.values(a, b).tolist() for a in range(T.num_cameras) for b in range(T.num_cameras)
    }
    cand = nbr[:, k_s - 1 :]
    n, c = cand.shape
    rng = random.Random(seed)
    picks = [(rng.randrange(n), rng.randrange(c)) for _ in range(subset)]
    cand_l = cand.tolist()
    t0 = time.perf_counter()
    hits = 0
    for i, r in picks:
        j = cand_l[i][r]
        a, b = camid[i], camid[j]
        if a == b:
            continue
        dt = tm[i] - tm[j]
        if any(dt - delta <= v <= dt + delta for v in sets[(a, b)]):
            hits += 1
    return (time.perf_counter() - t0) / subset, hits


def reference_dense(data, k_s, k_l, delta, T):
    r"""Dense N x N distances + full argsort + broadcast window test; returns the ST edge set."""
    x = data.x.double()
    sq = (x * x).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_(min=0)  # [N, N]
    dist.fill_diagonal_(-1.0)  # self first, as G-Fusion counts it
    order = dist.argsort(dim=1)[:, :k_l]  # [N, k_l], self at 0
    del dist
    cand = order[:, k_s:]  # ranks k_s+1 .. k_l
    i = torch.arange(x.size(0)).unsqueeze(1).expand_as(cand).reshape(-1)
    j = cand.reshape(-1)
    a, b = data.camid[i], data.camid[j]
    dt = data.time[i].double() - data.time[j].double()
    ok = torch.zeros_like(j, dtype=torch.bool)
    for ca in range(T.num_cameras):
        for cb in range(T.num_cameras):
            vals = T.values(ca, cb)
            sel = ((a == ca) & (b == cb)).nonzero().view(-1)
            if ca == cb or vals.numel() == 0 or sel.numel() == 0:
                continue
            d = dt[sel].unsqueeze(1)
            ok[sel] = ((d - delta <= vals) & (vals <= d + delta)).any(1)
    return set(zip(j[ok].tolist(), i[ok].tolist(), strict=True))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="~3k nodes, runs in well under 60 s")
    p.add_argument("--n", type=int, default=None, help="subsample the world to N nodes")
    p.add_argument("--k-s", type=int, default=3)
    p.add_argument("--k-l", type=int, default=60)
    p.add_argument("--delta", type=float, default=1.0, help="seconds (25 frames at 25 fps)")
    p.add_argument("--loop-subset", type=int, default=50_000, help="candidates timed in the loop")
    p.add_argument("--no-dense", action="store_true", help="skip the dense N x N reference")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cuda-n", type=int, default=100_000, help="nodes of the CUDA timing")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    n = args.n if args.n is not None else (3000 if args.quick else None)

    torch.manual_seed(args.seed)
    data, source = load_data(n, args.seed)
    N = data.num_nodes
    print(f"data: {source}; N = {N}, d = {data.x.size(1)}, cameras = {int(data.camid.max()) + 1}")
    print(
        f"k_s = {args.k_s}, k_l = {args.k_l}, delta = {args.delta} s, "
        f"torch threads = {torch.get_num_threads()}, device = cpu"
    )
    rss0 = peak_rss_mib()

    # --- ours ------------------------------------------------------------------------
    t_knn, _ = timed(lambda: topk(data.x, args.k_l, metric="euclidean"), args.repeat)
    t_fit, T = timed(lambda: TransitionSet.fit(data, k_s=args.k_s), args.repeat)
    t_ours, g = timed(
        lambda: spatiotemporal_graph(data, args.k_s, args.k_l, args.delta, transitions=T),
        args.repeat,
    )
    c0 = time.process_time()
    spatiotemporal_graph(data, args.k_s, args.k_l, args.delta, transitions=T)
    cpu_ours = time.process_time() - c0
    rss_ours = peak_rss_mib()
    st = g.edge_index[:, g.edge_type == SPATIOTEMPORAL]
    n_cand = N * (args.k_l - args.k_s)
    print(
        f"\n|T| = {T.num_transitions} transition times; graph: {g.edge_index.size(1)} edges "
        f"({st.size(1)} spatio-temporal) from {n_cand} Eq. 4 candidates"
    )
    # The window test alone, on all candidates at once.
    _, nbr = topk(data.x, args.k_l, metric="euclidean")
    nbr = nbr[:, 1:]
    cand = nbr[:, args.k_s - 1 :]
    ii = torch.arange(N).unsqueeze(1).expand_as(cand).reshape(-1)
    jj = cand.reshape(-1)
    dt = data.time[ii].double() - data.time[jj].double()
    t_win, _ = timed(
        lambda: T.contains(data.camid[ii], data.camid[jj], dt, args.delta), args.repeat
    )

    # --- reference: per-pair loop (extrapolated) ---------------------------------------
    per_pair, _ = reference_loop(data, nbr, args.k_s, T, args.delta, args.loop_subset, args.seed)
    t_loop = per_pair * n_cand

    print("\n{:<58s} {:>10s} {:>10s}".format("step", "seconds", "vs ours"))
    print(
        "{:<58s} {:>10.3f} {:>10s}".format(
            "ours: spatiotemporal_graph (kNN + Eq. 4), given T", t_ours, "1.0x"
        )
    )
    print("{:<58s} {:>10.3f}".format("   of which kNN search (ops.topk, k_l)", t_knn))
    print(
        "{:<58s} {:>10.3f}".format(
            "   graph assembly without the kNN search", max(t_ours - t_knn, 0.0)
        )
    )
    print("{:<58s} {:>10.3f}".format("ours: TransitionSet.fit (kNN k_s + Eq. 3)", t_fit))
    print(
        "{:<58s} {:>10.4f} {:>10s}".format(
            f"ours: window test only, {n_cand} pairs (contains)", t_win, "1.0x"
        )
    )
    print(
        "{:<58s} {:>10.3f} {:>9.0f}x".format(
            f"loop: per-pair Python window test, EXTRAPOLATED from {args.loop_subset}",
            t_loop,
            t_loop / t_win,
        )
    )
    # A large T: the ground-truth sets (Fig. 5b) hold every same-identity cross-camera pair.
    T_gt = TransitionSet.from_identities(data)
    t_win_gt, _ = timed(
        lambda: T_gt.contains(data.camid[ii], data.camid[jj], dt, args.delta), args.repeat
    )
    sub = max(1, args.loop_subset // 10)
    per_pair_gt, _ = reference_loop(data, nbr, args.k_s, T_gt, args.delta, sub, args.seed)
    t_loop_gt = per_pair_gt * n_cand
    print(
        "{:<58s} {:>10.4f} {:>10s}".format(
            f"ours: window test, ground-truth T (|T| = {T_gt.num_transitions})", t_win_gt, "1.0x"
        )
    )
    print(
        "{:<58s} {:>10.3f} {:>9.0f}x".format(
            f"loop: same, EXTRAPOLATED from {sub} pairs", t_loop_gt, t_loop_gt / t_win_gt
        )
    )
    # Sec. 3.2 on top: Eq. 6 + the random 2-layer GraphSAGE (Eq. 7) + M on the edges (Eq. 8).
    ei, w, _ = symmetrize(g.edge_index, g.edge_weight, N)
    conv = RandomSAGE(data.x.size(1), seed=args.seed)
    t_sage, h = timed(lambda: conv(data.x, ei, w), args.repeat)
    t_aff, _ = timed(lambda: affinity(h, ei), args.repeat)
    print("{:<58s} {:>10.3f}".format("ours: RandomSAGE on A* (Eq. 6-7), hidden 128", t_sage))
    print("{:<58s} {:>10.3f}".format(f"ours: affinity M on the {ei.size(1)} edges (Eq. 8)", t_aff))
    rss_ours = peak_rss_mib()
    print(f"peak RSS after ours: {rss_ours:.0f} MiB (start {rss0:.0f} MiB)")
    print(
        f"ours, CPU time of one spatiotemporal_graph call over all threads: {cpu_ours:.3f} s "
        f"(wall on an idle machine >= CPU / threads = {cpu_ours / torch.get_num_threads():.3f} s); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )

    # --- reference: dense N x N ---------------------------------------------------------
    if not args.no_dense:
        t_dense, st_dense = timed(
            lambda: reference_dense(data, args.k_s, args.k_l, args.delta, T), 1
        )
        rss_dense = peak_rss_mib()
        ours = set(zip(st[0].tolist(), st[1].tolist(), strict=True))
        print(
            "{:<58s} {:>10.3f} {:>9.1f}x".format(
                "dense: N x N distances + argsort + broadcast test", t_dense, t_dense / t_ours
            )
        )
        print(
            f"peak RSS after dense: {rss_dense:.0f} MiB (the N x N float64 matrix alone is "
            f"{N * N * 8 / 2**20:.0f} MiB)"
        )
        print(
            f"spatio-temporal edges identical to the dense reference: {ours == st_dense} "
            f"({len(ours)} vs {len(st_dense)})"
        )

    # --- CUDA ------------------------------------------------------------------------------
    if torch.cuda.is_available():
        big = random_data(args.cuda_n, args.seed).to("cuda")
        Tc = TransitionSet.fit(big, k_s=args.k_s, backend="torch")
        spatiotemporal_graph(big, args.k_s, args.k_l, args.delta, transitions=Tc, backend="torch")
        t_cuda, gc = timed(
            lambda: spatiotemporal_graph(
                big, args.k_s, args.k_l, args.delta, transitions=Tc, backend="torch"
            ),
            args.repeat,
        )
        print(
            f"\nCUDA ({torch.cuda.get_device_name()}): N = {args.cuda_n}, spatiotemporal_graph "
            f"{t_cuda:.3f} s, {gc.edge_index.size(1)} edges"
        )
    else:
        print("\nCUDA: not available on this machine; skipped")


if __name__ == "__main__":
    main()
