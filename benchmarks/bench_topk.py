"""Exact all-vs-all top-k (cosine) timings: reidgraph.ops.topk vs the reference ways.

Side by side in one run, for each size (N, d):

* ``faiss IndexFlatIP``: the reference (plain faiss on L2-normalised features);
* ``naive torch``: ``x @ x.T`` then ``torch.topk`` in one go, only where the
  N x N float32 matrix fits the ``--naive-max-gb`` limit (skipped with a note
  otherwise);
* ``ours auto`` / ``ours torch``: ``reidgraph.ops.topk(x, k, backend=...)``,
  validation and normalisation included;
* ``GEMM floor``: the bare matmuls of the torch backend's own blocking (same
  block shapes, no top-k), i.e. the cost no exact GEMM-based search can beat.

Columns: seconds (best of ``--repeat``), GFLOP/s of the 2 N^2 d multiply-adds,
the ratio to the faiss reference (< 1 is faster) and the GEMM floor as a
fraction of each method's time (1.0 = at the floor). Each method's neighbours
are compared with faiss' (share of identical indices; the rest are ties).
With CUDA available a second table times the torch backend on the GPU
(fp32 and TF32) against the GPU GEMM floor; the goal there is within 2x.

Usage::

    python benchmarks/bench_topk.py            # N=12,936 and 50,000, d=2,048 (minutes)
    python benchmarks/bench_topk.py --quick    # N=4,000, d=512 (< 60 s)
    python benchmarks/bench_topk.py --large    # adds N=100,000 x 2,048, torch backend only
    python benchmarks/bench_topk.py --sizes 12936x2048 --repeat 3

The machine load average is printed before and after: timings taken while
other processes compete for the cores are not comparable.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
from collections.abc import Callable

import torch

from reidgraph.ops import block_shape, l2_normalize, topk
from reidgraph.ops._faiss import load_faiss


def best_time(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None):
    """Best wall time of ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        out = None
        gc.collect()
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, out


def features(n: int, d: int, device: str = "cpu") -> torch.Tensor:
    # Identity-like structure: 10 images around each of n/10 centres.
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(-(-n // 10), d, generator=gen)
    x = centres.repeat_interleave(10, dim=0)[:n] + 0.7 * torch.randn(n, d, generator=gen)
    return x.to(device)


def gemm_floor(x: torch.Tensor) -> None:
    """The torch backend's block GEMMs alone (same blocking, same reused buffer)."""
    n = x.size(0)
    rows, cols = block_shape(n, n, element_size=x.element_size())
    buf = x.new_empty(rows * cols)
    for r0 in range(0, n, rows):
        a = x[r0 : r0 + rows]
        for c0 in range(0, n, cols):
            b = x[c0 : c0 + cols]
            torch.mm(a, b.T, out=buf[: a.size(0) * b.size(0)].view(a.size(0), b.size(0)))


def agreement(index: torch.Tensor, ref: torch.Tensor | None) -> str:
    if ref is None:
        return "-"
    return f"{(index.cpu() == ref).float().mean().item():.4f}"


def run_cpu(n: int, d: int, k: int, repeat: int, naive_max_gb: float, only_torch: bool) -> None:
    x = features(n, d)
    xn = l2_normalize(x)
    flops = 2.0 * n * n * d
    rows = []
    faiss = load_faiss()
    ref_time = ref_index = None
    if faiss is not None and not only_torch:

        def faiss_flat():
            index = faiss.IndexFlatIP(d)
            index.add(xn.numpy())
            return index.search(xn.numpy(), k)

        ref_time, (_, ref_i) = best_time(faiss_flat, repeat)
        ref_index = torch.from_numpy(ref_i)
        rows.append(("faiss IndexFlatIP (reference)", ref_time, ref_index))
    elif not only_torch:
        print("  faiss not installed: no faiss reference (pip install faiss-cpu)")

    naive_gb = n * n * 4 / 2**30
    if only_torch:
        pass
    elif naive_gb <= naive_max_gb:

        def naive():
            scores = xn @ xn.T
            return torch.topk(scores, k, dim=1)

        t, (_, i) = best_time(naive, repeat)
        rows.append(("naive torch (matmul + topk)", t, i))
    else:
        print(
            f"  naive torch skipped: its {n}x{n} float32 matrix needs {naive_gb:.1f} GiB "
            f"(> --naive-max-gb {naive_max_gb}); the chunked torch backend stands in"
        )

    backends = ["torch"] if only_torch else ["auto", "torch"]
    for backend in backends:
        t, (_, i) = best_time(lambda b=backend: topk(x, k, metric="cosine", backend=b), repeat)
        rows.append((f"ours backend={backend!r}", t, i))
    floor, _ = best_time(lambda: gemm_floor(xn), repeat)
    rows.append(("GEMM floor (bare block matmuls)", floor, None))

    print(f"  {'method':34s} {'seconds':>9s} {'GFLOP/s':>8s} {'/faiss':>7s} {'floor/t':>8s} "
          f"{'same idx as faiss':>17s}")  # fmt: skip
    for name, t, i in rows:
        ratio = f"{t / ref_time:7.2f}" if ref_time else "      -"
        print(
            f"  {name:34s} {t:9.2f} {flops / t / 1e9:8.1f} {ratio} {floor / t:8.2f} "
            f"{agreement(i, ref_index) if i is not None else '-':>17s}"
        )


def run_cuda(n: int, d: int, k: int, repeat: int) -> None:
    x = features(n, d, "cuda")
    xn = l2_normalize(x)
    sync = torch.cuda.synchronize
    best_time(lambda: topk(x[:1024], k, backend="torch"), 1, sync)  # warm-up / cuBLAS init
    floor, _ = best_time(lambda: gemm_floor(xn), repeat, sync)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    floor_tf32, _ = best_time(lambda: gemm_floor(xn), repeat, sync)
    torch.backends.cuda.matmul.allow_tf32 = prev
    print(f"  {'method':34s} {'seconds':>9s} {'t/floor':>8s}  (goal: within 2x of the GEMM floor)")
    print(f"  {'GEMM floor fp32':34s} {floor:9.3f} {1.0:8.2f}")
    print(f"  {'GEMM floor tf32':34s} {floor_tf32:9.3f} {1.0:8.2f}")
    for precision, ref in (("fp32", floor), ("tf32", floor_tf32), ("fp16", floor_tf32)):
        t, _ = best_time(lambda p=precision: topk(x, k, backend="torch", precision=p), repeat, sync)
        print(f"  {'ours torch precision=' + precision:34s} {t:9.3f} {t / ref:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=4,000, d=512 only (< 60 s)")
    parser.add_argument("--large", action="store_true", help="add N=100,000 x 2,048 (torch)")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=None, help="best of R (1 full, 3 quick)")
    parser.add_argument("--naive-max-gb", type=float, default=4.0)
    parser.add_argument(
        "--sizes", default=None, help="comma-separated NxD list, e.g. 12936x2048 (overrides)"
    )
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 1)
    sizes = [(4_000, 512)] if args.quick else [(12_936, 2_048), (50_000, 2_048)]
    if args.sizes:
        sizes = [tuple(int(v) for v in item.split("x")) for item in args.sizes.split(",")]

    faiss = load_faiss()
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), faiss "
        f"{getattr(faiss, '__version__', 'missing')} "
        f"({faiss.omp_get_max_threads() if faiss else 0} threads), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; k={args.k}, best of {repeat}"
    )
    for n, d in sizes:
        print(f"\nCPU, all-vs-all exact top-{args.k} cosine, N={n:,}, d={d:,}")
        run_cpu(n, d, args.k, repeat, args.naive_max_gb, only_torch=False)
    if args.large:
        n, d = 100_000, 2_048
        print(f"\nCPU, N={n:,}, d={d:,}: torch backend, 256 MiB blocks (N x N would be 37 GiB)")
        run_cpu(n, d, args.k, 1, args.naive_max_gb, only_torch=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"  peak resident memory of this process: {peak:.2f} GiB")

    if torch.cuda.is_available():
        for n, d in sizes + ([(100_000, 2_048)] if args.large else []):
            print(f"\nCUDA ({torch.cuda.get_device_name()}), N={n:,}, d={d:,}")
            run_cuda(n, d, args.k, max(repeat, 3))
    else:
        print("\nCUDA: not available, GPU section skipped")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
