"""Benchmark: reidgraph.eval.evaluate vs a per-query Python loop (torchreid style).

The reference below is written from the description of torchreid's
``eval_market1501``: argsort every row, mark gallery entries of the query's
identity, drop same-identity-same-camera entries per query, CMC = cumulative
hits clipped at 1, AP = mean precision at the hits, INP = hits / rank of the
last hit. Rows are argsorted with ``kind="stable"`` so that ties are broken by
gallery index, the documented rule of reidgraph (torchreid's default quicksort
leaves tie order unspecified).

The problem is Market-1501-sized (3,368 queries x 15,913 gallery images, 751
test identities, 6 cameras, 2,793 distractors) with distances from random
features that have identity structure: feature = identity centre + camera
offset + noise. Three noise levels give a strong, a medium and a weak model,
which exercise both bucketing paths of the core. The two evaluators must agree
(mAP and mINP to 1e-6, CMC to 1e-6) or the script exits with an error.

Usage::

    python benchmarks/bench_evaluate.py            # Market size, ~1 minute
    python benchmarks/bench_evaluate.py --quick    # small size, a few seconds
    python benchmarks/bench_evaluate.py --large    # also 20,000 x 100,000 (ours only)
    python benchmarks/bench_evaluate.py --threads 1

On a machine shared with other CPU-heavy processes, torch's OpenMP threads
wait on each other; ``--threads 1`` is then often faster (docs/eval.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np
import torch

from reidgraph.eval import evaluate


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Per-query loop over argsorted rows, as torchreid's eval_market1501 does it."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][~remove]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        last = np.flatnonzero(raw_cmc)[-1]
        all_inp.append(cmc[last] / (last + 1.0))
        hits = cmc.copy()
        hits[hits > 1] = 1
        all_cmc.append(hits[:max_rank])
        precision = cmc / np.arange(1, len(cmc) + 1)
        all_ap.append((precision * raw_cmc).sum() / raw_cmc.sum())
    cmc = np.asarray(all_cmc, dtype=np.float32).sum(0) / len(all_cmc)
    return cmc, float(np.mean(all_ap)), float(np.mean(all_inp))


def market_like(nq, ng, n_id, n_distractor, noise, seed=0, dim=128, n_cam=6):
    """Query/gallery distances with identity structure, Market-1501 proportions."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_id + 1, dim, generator=g), dim=1)
    cam_offset = 0.3 * torch.nn.functional.normalize(torch.randn(n_cam, dim, generator=g), dim=1)
    q_pid = torch.arange(nq) % n_id + 1
    q_cam = torch.randint(0, n_cam, (nq,), generator=g)
    n_real = ng - n_distractor
    g_pid = torch.cat(
        [torch.arange(n_real) % n_id + 1, torch.zeros(n_distractor, dtype=torch.long)]
    )
    g_cam = torch.randint(0, n_cam, (ng,), generator=g)

    def features(pid, cam):
        base = centres[pid]
        base[pid == 0] = torch.nn.functional.normalize(  # distractors: anyone
            torch.randn(int((pid == 0).sum()), dim, generator=g), dim=1
        )
        x = base + cam_offset[cam] + noise * torch.randn(len(pid), dim, generator=g) / dim**0.5
        return torch.nn.functional.normalize(x, dim=1)

    qf, gf = features(q_pid, q_cam), features(g_pid, g_cam)
    distmat = (2 - 2 * qf @ gf.T).clamp_(min=0)  # squared Euclidean of unit vectors
    return distmat, q_pid, g_pid, q_cam, g_cam


def best_time(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run_case(args, noise):
    nq, ng = (800, 4000) if args.quick else (3368, 15913)
    n_id = 200 if args.quick else 751
    n_distractor = 700 if args.quick else 2793
    distmat, q_pid, g_pid, q_cam, g_cam = market_like(nq, ng, n_id, n_distractor, noise, args.seed)
    evaluate(distmat, q_pid, g_pid, q_cam, g_cam)  # warm-up
    ours_t, ours = best_time(lambda: evaluate(distmat, q_pid, g_pid, q_cam, g_cam), 3)
    arrays = [a.numpy() for a in (distmat, q_pid, g_pid, q_cam, g_cam)]
    ref_t, (ref_cmc, ref_map, ref_minp) = best_time(lambda: reference_eval(*arrays), 1)
    ok = (
        abs(ours["mAP"] - ref_map) <= 1e-6
        and abs(ours["mINP"] - ref_minp) <= 1e-6
        and np.allclose(ours["cmc"].numpy(), ref_cmc, atol=1e-6, rtol=0)
    )
    print(
        f"{nq:>6d} x {ng:<6d} noise {noise:<4.2f} mAP {ours['mAP']:.4f} mINP {ours['mINP']:.4f} "
        f"R1 {float(ours['cmc'][0]):.4f} | evaluate {ours_t:7.3f} s | reference loop "
        f"{ref_t:7.3f} s | speed-up x{ref_t / ours_t:6.1f} | agree: {ok}",
        flush=True,
    )
    if not ok:
        print(
            f"  disagreement: ours mAP {ours['mAP']!r} mINP {ours['mINP']!r}, reference "
            f"mAP {ref_map!r} mINP {ref_minp!r}",
            file=sys.stderr,
        )
    return ok


def rss_bytes():
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_large(args):
    """20,000 x 100,000: time and peak extra memory of evaluate (no reference)."""
    nq, ng, n_id, dim = 20_000, 100_000, 5_000, 64
    dtype = getattr(torch, args.large_dtype)
    need = nq * ng * torch.finfo(dtype).bits // 8
    print(
        f"large: building a {nq} x {ng} {args.large_dtype} distance matrix ({need / 2**30:.1f} GiB)"
    )
    g = torch.Generator().manual_seed(args.seed)
    centres = torch.nn.functional.normalize(torch.randn(n_id, dim, generator=g), dim=1)
    q_pid, g_pid = torch.arange(nq) % n_id, torch.arange(ng) % n_id
    q_cam, g_cam = (
        torch.randint(0, 15, (nq,), generator=g),
        torch.randint(0, 15, (ng,), generator=g),
    )

    def features(pid):
        x = centres[pid] + 1.2 * torch.randn(len(pid), dim, generator=g) / dim**0.5
        return torch.nn.functional.normalize(x, dim=1)

    qf, gf = features(q_pid), features(g_pid)
    distmat = torch.empty(nq, ng, dtype=dtype)
    for s in range(0, nq, 1000):
        distmat[s : s + 1000] = (2 - 2 * qf[s : s + 1000] @ gf.T).clamp_(min=0).to(dtype)
    del qf, gf
    base = rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    out = evaluate(distmat, q_pid, g_pid, q_cam, g_cam)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    print(
        f"large: {nq} x {ng} evaluate {elapsed:.2f} s, peak extra RSS "
        f"{(peak[0] - base) / 2**20:.0f} MiB over the {need / 2**30:.1f} GiB input "
        f"(mAP {out['mAP']:.4f}, mINP {out['mINP']:.4f}, R1 {float(out['cmc'][0]):.4f})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problem (seconds)")
    parser.add_argument("--large", action="store_true", help="also time 20,000 x 100,000")
    parser.add_argument("--large-dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument(
        "--noise",
        type=float,
        nargs="+",
        default=[1.2, 1.5, 2.0],
        help="feature noise levels (strong, medium, weak model)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    ok = all([run_case(args, noise) for noise in args.noise])
    if args.large:
        run_large(args)
    if not ok:
        sys.exit("evaluate and the reference loop disagree")


if __name__ == "__main__":
    main()
