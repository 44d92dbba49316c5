r"""GUR cross-modality label unification: our sparse/chunked propagation vs the dense reference way.

The reference is GUR's code path (``sysu_train.py`` / ``regdb_train.py``),
vectorised: a dense ``W = softmax(norm(f_rgb) @ norm(f_ir).T)`` of
``[N_v, N_i]``, a top-k mask per row, ``W @ onehot(ir_labels + 1)``, the row
argmax minus 1, then the homogeneous step with a dense ``[N_v, N_v]``
similarity, a binary top-k mask ``@ onehot(rgb_labels + 1)`` and the argmax.
Ours is :class:`reidgraph.nn.CrossModalityLabelPropagation` with
``homogeneous_weight="binary"`` (GUR's code), which never allocates the dense
matrices. Both run on the same synthetic clustered features; the script prints
the wall times, their ratio and the fraction of identical visible labels.

Usage::

    python benchmarks/bench_label_propagation.py            # 10k visible x 5k infrared
    python benchmarks/bench_label_propagation.py --quick    # small, < 60 s
    python benchmarks/bench_label_propagation.py --device cuda
    python benchmarks/bench_label_propagation.py --quick --memory   # + peak RSS per path

``--memory`` reruns each path alone in a fresh process and reports the growth
of its peak resident memory (CPU) over the inputs.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from reidgraph.nn.label_propagation import CrossModalityLabelPropagation


def make_features(n_vis, n_ir, classes, dim, outliers, seed, device):
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    vis_pid = torch.randint(0, classes, (n_vis,), generator=g)
    ir_pid = torch.randint(0, classes, (n_ir,), generator=g)
    # noise of norm ~0.9 per sample: clusters overlap, so the votes are not trivial
    x_vis = F.normalize(
        centers[vis_pid] + 0.9 * torch.randn(n_vis, dim, generator=g) / dim**0.5, dim=1
    )
    x_ir = F.normalize(
        centers[ir_pid] + 0.9 * torch.randn(n_ir, dim, generator=g) / dim**0.5, dim=1
    )
    ir_labels = torch.where(torch.rand(n_ir, generator=g) < outliers, -1, ir_pid)
    return x_vis.to(device), x_ir.to(device), ir_labels.to(device)


@torch.no_grad()
def reference_dense(x_vis, x_ir, ir_labels, k, k_homo):
    r"""GUR's code path with dense matrices (argmax vectorised instead of its Python row loop)."""
    w = torch.softmax(F.normalize(x_vis) @ F.normalize(x_ir).T, dim=1)  # [N_v, N_i]
    mask = torch.zeros_like(w).scatter_(1, w.topk(k, dim=1).indices, 1.0)
    w = w * mask
    num_classes = int(ir_labels.max()) + 2
    y = F.one_hot(ir_labels + 1, num_classes).float()
    soft = w @ y  # [N_v, C + 1]
    y_star = torch.where(soft.sum(1) > 0, soft.argmax(1), 0) - 1
    s = F.normalize(x_vis) @ F.normalize(x_vis).T  # [N_v, N_v]
    mask_h = torch.zeros_like(s).scatter_(1, s.topk(k_homo, dim=1).indices, 1.0)
    smooth = mask_h @ F.one_hot(y_star + 1, num_classes).float()
    return smooth.argmax(1) - 1


def timed(fn, repeat, device):
    best, out = float("inf"), None
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 x 1,000, d=128")
    parser.add_argument("--n-visible", type=int, default=10_000)
    parser.add_argument("--n-infrared", type=int, default=5_000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--dim", type=int, default=2048, help="ResNet-50 pooled features")
    parser.add_argument("--k", type=int, default=20, help="GUR SYSU-MM01: 20, RegDB: 10")
    parser.add_argument("--outliers", type=float, default=0.1, help="fraction of -1 IR labels")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", help="reidgraph.ops.topk backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory", action="store_true", help="peak RSS of each path (CPU)")
    parser.add_argument("--only", choices=["reference", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        base = [a for a in sys.argv[1:] if a != "--memory"]
        for which in ("reference", "ours"):
            cmd = [sys.executable, __file__, *base, "--only", which, "--repeat", "1"]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = [x for x in res.stdout.splitlines() if x.startswith("peak RSS")]
            print(f"{which:<10} {line[-1]}")
        return
    if args.quick:
        args.n_visible, args.n_infrared, args.dim = 2_000, 1_000, 128
    device = torch.device(args.device)

    x_vis, x_ir, ir_labels = make_features(
        args.n_visible, args.n_infrared, args.classes, args.dim, args.outliers, args.seed, device
    )
    data = Data(
        x=torch.cat([x_vis, x_ir]),
        modality=torch.cat([torch.zeros(args.n_visible), torch.ones(args.n_infrared)])
        .long()
        .to(device),
    )
    labels = torch.cat([torch.full((args.n_visible,), -1, device=device), ir_labels])
    if args.only:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.only == "reference":
            reference_dense(x_vis, x_ir, ir_labels, args.k, args.k)
        else:
            CrossModalityLabelPropagation(
                k=args.k, homogeneous_weight="binary", backend=args.backend
            )(data, labels)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS +{after - before:,.0f} MiB over the inputs ({before:,.0f} MiB before)")
        return
    n_v, n_i, c = args.n_visible, args.n_infrared, args.classes + 1
    print(
        f"{n_v} visible x {n_i} infrared, d={args.dim}, {args.classes} classes, k={args.k}, "
        f"device={device}, threads={torch.get_num_threads()}"
    )
    dense_mb = 4 * (2 * n_v * n_i + 2 * n_v * n_v + n_i * c + 2 * n_v * c) / 2**20
    print(f"reference dense matrices: ~{dense_mb:,.0f} MiB (W, mask, S, mask_h, one-hots)")

    t_ref, ref = timed(
        lambda: reference_dense(x_vis, x_ir, ir_labels, args.k, args.k), args.repeat, device
    )
    print(f"reference (dense GUR code path)          {t_ref:8.3f} s")
    clu = CrossModalityLabelPropagation(k=args.k, homogeneous_weight="binary", backend=args.backend)
    t_ours, out = timed(lambda: clu(data, labels), args.repeat, device)
    agree = float((out[:n_v] == ref).float().mean())
    print(
        f"ours (sparse, chunked, topk backend={args.backend:<5})  {t_ours:8.3f} s   "
        f"speed-up x{t_ref / t_ours:5.2f}   agreement {agree:.4%}"
    )
    print(
        f"visible labels: {int((ref == -1).sum())} outliers, "
        f"{ref[ref >= 0].unique().numel()} distinct clusters"
    )


if __name__ == "__main__":
    main()
