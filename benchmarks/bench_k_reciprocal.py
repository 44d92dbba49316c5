r"""k-reciprocal re-ranking: ours vs a plain per-row numpy port of the published algorithm.

Side by side in one run, on synthetic identity-structured features
(L2-normalised, Market-1501-sized by default: 3,368 queries x 15,913 gallery,
d = 2,048):

* ``reference``: the euclidean distance matrices ``q_g, q_q, g_g`` (torch
  GEMMs), then ``reference_re_ranking`` below — a per-row numpy port of the
  published ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)``
  (dense ``(Nq+Ng)^2`` arrays, ``argsort`` of every row, one Python iteration
  per item for the sets, dense query expansion, an inverted index per column
  and a per-query Jaccard loop);
* ``ours (features)``: :func:`reidgraph.rerank.k_reciprocal.k_reciprocal_features`
  from the features, never building an ``(Nq+Ng)^2`` matrix;
* ``ours (dense in)``: :func:`reidgraph.rerank.k_reciprocal.k_reciprocal` on
  the same distance matrices as the reference (its signature takes them
  dense), compared with the port alone;
* ``matmul floor``: the all-vs-all product ``x @ x.T`` of the ``Nq+Ng``
  features alone, which any exact method computes (ours computes only the
  tiles on and above the diagonal of the symmetric distance matrix).

Printed: seconds (best of ``--repeat`` for ours and the floor; the reference
runs ``--ref-repeat`` times, default once), the speed-up over the reference,
time over the matmul floor, peak resident memory added during each call
(sampled every 2 ms; CUDA: ``max_memory_allocated``), the largest absolute
difference from the reference, the share of entries that differ by more than
1e-5 and the share of queries whose top-1 gallery item is the same. The
features path computes its own float32 distances, so near-ties among deep
neighbours can order differently from the reference's distance matrices and
change a few k-reciprocal sets; the dense path reads the same matrices. The goal
is >= 7.5x over the reference, i.e. within 1.5x of the matmul floor.

The machine is shared: the load average is printed before and after, and
only best-of-N timings are reported. On a loaded 2-core machine torch's
two-thread parallel regions wait for descheduled threads (a second thread
then makes the many mid-sized tensor operations several times slower, while
the numpy port is single-threaded anyway); ``--threads 1`` gives the fairer
comparison there. With CUDA, a second table times the GPU
path (fp32, tf32, fp16 GEMMs) against the GPU matmul floor (goal < 25 ms).

Usage::

    python benchmarks/bench_k_reciprocal.py            # Market-sized (several minutes)
    python benchmarks/bench_k_reciprocal.py --quick    # 500 x 2,500, d = 256 (< 60 s)
    python benchmarks/bench_k_reciprocal.py --no-reference --repeat 3
    python benchmarks/bench_k_reciprocal.py --threads 1   # loaded shared machine
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from reidgraph.rerank.k_reciprocal import k_reciprocal, k_reciprocal_features


# ----------------------------------------------------------------------------- reference
def reference_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Per-row numpy port of the published algorithm (Zhong et al., CVPR 2017)."""
    n_q = q_g.shape[0]
    n = n_q + q_g.shape[1]
    dist = np.block([[q_q, q_g], [q_g.T, g_g]])
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(dist / np.max(dist, axis=0))  # normalise columns, transpose
    rank = np.argsort(dist, axis=1).astype(np.int32)
    half = int(np.around(k1 / 2.0))

    def reciprocal(i, k):
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = r
        for cand in r:
            r_cand = reciprocal(cand, half)
            if len(np.intersect1d(r_cand, r)) > 2.0 / 3 * len(r_cand):
                expanded = np.append(expanded, r_cand)
        expanded = np.unique(expanded)
        weight = np.exp(-dist[i, expanded])
        v[i, expanded] = weight / np.sum(weight)
    dist = dist[:n_q]
    if k2 != 1:
        v_qe = np.zeros_like(v)
        for i in range(n):
            v_qe[i] = np.mean(v[rank[i, :k2]], axis=0)
        v = v_qe
        del v_qe
    inverted = [np.where(v[:, c] != 0)[0] for c in range(n)]
    jaccard = np.zeros((n_q, n), dtype=np.float32)
    for i in range(n_q):
        overlap = np.zeros(n, dtype=np.float32)
        for c in np.where(v[i] != 0)[0]:
            rows = inverted[c]
            overlap[rows] += np.minimum(v[i, c], v[rows, c])
        jaccard[i] = 1 - overlap / (2.0 - overlap)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, n_q:]


# ----------------------------------------------------------------------------- helpers
def features(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """About 12 images per identity around random centres, L2-normalised."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(max(1, n // 12), d, generator=gen)
    ids = torch.randint(0, centres.size(0), (n,), generator=gen)
    x = centres[ids] + 0.9 * torch.randn(n, d, generator=gen)
    return torch.nn.functional.normalize(x, dim=1)


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2.0 * (a @ b.T)
    return sq.clamp_(min=0.0).sqrt_()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None):
    """Best wall time of ``repeat`` runs, the peak RSS added (bytes) and the last result."""
    best, peak_add, out = float("inf"), 0, None
    for _ in range(repeat):
        out = None
        gc.collect()
        sync()
        base = _rss()
        peak = [base]
        done = threading.Event()

        def sample(peak=peak, done=done):
            while not done.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        out = fn()
        sync()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        best = min(best, elapsed)
        peak_add = max(peak_add, max(peak[0], _rss()) - base)
    return best, peak_add, out


def compare(ours: torch.Tensor, ref: np.ndarray | None) -> str:
    """Largest |difference|, share of entries off by more than 1e-5, same top-1."""
    if ref is None:
        return f"{'-':>10s} {'-':>9s} {'-':>7s}"
    ours = ours.detach().cpu().numpy()
    diff = np.abs(ours - ref)
    top1 = float((ours.argmin(axis=1) == ref.argmin(axis=1)).mean())
    return f"{float(diff.max()):10.2e} {float((diff > 1e-5).mean()):9.2e} {top1:7.4f}"


# ----------------------------------------------------------------------------- runs
def run_cpu(n_q: int, n_g: int, d: int, repeat: int, ref_repeat: int, reference: bool) -> None:
    x = features(n_q + n_g, d)
    q, g = x[:n_q], x[n_q:]
    rows = []
    floor, floor_mem, _ = measure(lambda: x @ x.T, repeat)
    t_feat, m_feat, out_feat = measure(lambda: k_reciprocal_features(q, g), repeat)

    def distances():
        return euclidean(q, g), euclidean(q, q), euclidean(g, g)

    t_dist, m_dist, mats = measure(distances, 1)
    q_g, q_q, g_g = mats
    t_dense, m_dense, out_dense = measure(lambda: k_reciprocal(q_g, q_q, g_g), repeat)
    ref = t_ref = m_ref = None
    if reference:
        np_mats = [m.numpy() for m in mats]
        t_ref, m_ref, ref = measure(lambda: reference_re_ranking(*np_mats), ref_repeat)

    rows.append(("matmul floor x @ x.T", floor, floor_mem, None, None))
    if reference:
        rows.append(("reference: distances + port", t_dist + t_ref, m_ref, None, None))
        rows.append(("  distances (torch GEMMs)", t_dist, m_dist, None, None))
        rows.append(("  port alone (dense in)", t_ref, m_ref, None, None))
    rows.append(("ours k_reciprocal_features", t_feat, m_feat, out_feat, "total"))
    rows.append(("ours k_reciprocal (dense in)", t_dense, m_dense, out_dense, "port"))
    print(
        f"  {'method':32s} {'seconds':>8s} {'speed-up':>8s} {'t/floor':>8s} "
        f"{'peak +MiB':>10s} {'max |diff|':>10s} {'>1e-5':>9s} {'top1 eq':>7s}"
    )
    for name, t, mem, out, against in rows:
        speed = "-"
        if reference and against == "total":
            speed = f"{(t_dist + t_ref) / t:.1f}x"
        elif reference and against == "port":
            speed = f"{t_ref / t:.1f}x"
        print(
            f"  {name:32s} {t:8.2f} {speed:>8s} {t / floor:8.2f} {mem / 2**20:10.0f} "
            f"{compare(out, ref) if out is not None else '':>28s}"
        )
    inputs = sum(m.numel() * m.element_size() for m in mats) / 2**20
    print(
        f"  (the dense inputs take {inputs:.0f} MiB; a dense (Nq+Ng)^2 float64 matrix "
        f"would take {(n_q + n_g) ** 2 * 8 / 2**20:.0f} MiB)"
    )


def run_cuda(n_q: int, n_g: int, d: int, repeat: int) -> None:
    x = features(n_q + n_g, d).cuda()
    q, g = x[:n_q], x[n_q:]
    sync = torch.cuda.synchronize
    k_reciprocal_features(q[:64], g[:512])  # warm-up (cuBLAS, allocator)
    ref = k_reciprocal_features(q, g).cpu().numpy()
    xh = x.half()
    print(
        f"  {'method':32s} {'ms':>8s} {'t/floor':>8s} {'peak MiB':>9s} {'max |diff|':>10s} top1 eq"
    )
    print("  (max |diff| and top1 eq against the fp32 GPU result)")
    for precision in ("fp32", "tf32", "fp16"):
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
        gemm = (lambda: xh @ xh.T) if precision == "fp16" else (lambda: x @ x.T)
        floor, _, _ = measure(gemm, repeat, sync)
        torch.backends.cuda.matmul.allow_tf32 = prev
        torch.cuda.reset_peak_memory_stats()
        t, _, out = measure(
            lambda p=precision: k_reciprocal_features(q, g, precision=p), repeat, sync
        )
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(
            f"  {'ours precision=' + precision:32s} {t * 1e3:8.1f} {t / floor:8.2f} {peak:9.0f} "
            f"{compare(out, ref)}  (floor {floor * 1e3:.1f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 x 2,500, d=256 (< 60 s)")
    parser.add_argument("--repeat", type=int, default=3, help="best of R for ours and the floor")
    parser.add_argument("--ref-repeat", type=int, default=1, help="runs of the reference")
    parser.add_argument("--no-reference", action="store_true", help="skip the numpy port")
    parser.add_argument("--size", default=None, help="NQxNGxD, e.g. 3368x15913x2048")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_q, n_g, d = (500, 2_500, 256) if args.quick else (3_368, 15_913, 2_048)
    if args.size:
        n_q, n_g, d = (int(v) for v in args.size.split("x"))
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; k1=20, k2=6, lambda=0.3; ours and the floor: "
        f"best of {args.repeat}, reference: best of {args.ref_repeat}"
    )
    print(f"\nCPU: {n_q:,} queries x {n_g:,} gallery, d={d:,}")
    run_cpu(n_q, n_g, d, args.repeat, args.ref_repeat, not args.no_reference)
    if torch.cuda.is_available():
        print(f"\nCUDA ({torch.cuda.get_device_name()}): {n_q:,} x {n_g:,}, d={d:,}")
        run_cuda(n_q, n_g, d, max(args.repeat, 5))
    else:
        print("\nCUDA: not available, GPU timings skipped")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
