"""Pair enclosing subgraphs + DRNL: reidgraph's vectorised builder vs the SEAL per-link loop.

The reference is the method of PyG's SEAL example (``examples/seal_link_pred.py``),
written out here: one ``k_hop_subgraph`` call per link, the target link removed,
DRNL from two scipy ``shortest_path`` calls on the subgraph without the other
target. Both run on the same pairs of a kNN graph over random features (half
of the pairs are graph edges, as SEAL's positive links, half random), and the
script asserts that both give identical node sets, edges and labels.

    python benchmarks/bench_pair_subgraphs.py            # ~10k nodes, k = 10
    python benchmarks/bench_pair_subgraphs.py --quick    # < 60 s
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from scipy.sparse.csgraph import shortest_path
from torch_geometric.data import Data
from torch_geometric.utils import (
    k_hop_subgraph,
    remove_self_loops,
    to_scipy_sparse_matrix,
    to_undirected,
)

from reidgraph.graph.pair_subgraphs import pair_subgraphs
from reidgraph.ops import topk


def knn_graph(num_nodes: int, dim: int, k: int, seed: int) -> Data:
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(num_nodes, dim, generator=gen), dim=1)
    _, idx = topk(x, k + 1)  # self first
    nbr = idx[:, 1:]
    # neighbour -> centre, PyG's kNN convention
    edge_index = torch.stack([nbr.reshape(-1), torch.arange(num_nodes).repeat_interleave(k)])
    return Data(x=x, edge_index=edge_index)


def make_pairs(data: Data, num_pairs: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    n = data.num_nodes
    links = data.edge_index[:, torch.randperm(data.edge_index.size(1), generator=gen)]
    links = links[:, : num_pairs // 2]
    rand = torch.randint(0, n, (2, 2 * num_pairs), generator=gen)
    rand = rand[:, rand[0] != rand[1]][:, : num_pairs - links.size(1)]
    pairs = torch.cat([links, rand], 1)
    return pairs[:, torch.randperm(pairs.size(1), generator=gen)]


def seal_reference(edge_index: torch.Tensor, num_nodes: int, src: int, dst: int, num_hops: int):
    """One link, the SEAL example's way. Returns (subset, local edge_index, z)."""
    subset, sub, mapping, _ = k_hop_subgraph(
        [src, dst], num_hops, edge_index, relabel_nodes=True, num_nodes=num_nodes
    )
    s, t = mapping.tolist()
    keep = ((sub[0] != s) | (sub[1] != t)) & ((sub[0] != t) | (sub[1] != s))
    sub = sub[:, keep]
    n = subset.numel()
    s, t = (t, s) if s > t else (s, t)  # the example swaps so that src < dst
    adj = to_scipy_sparse_matrix(sub, num_nodes=n).tocsr()
    idx = list(range(s)) + list(range(s + 1, n))
    adj_wo_s = adj[idx, :][:, idx]
    idx = list(range(t)) + list(range(t + 1, n))
    adj_wo_t = adj[idx, :][:, idx]
    d_s = shortest_path(adj_wo_t, directed=False, unweighted=True, indices=s)
    d_s = torch.from_numpy(np.insert(d_s, t, 0, axis=0))
    d_t = shortest_path(adj_wo_s, directed=False, unweighted=True, indices=t - 1)
    d_t = torch.from_numpy(np.insert(d_t, s, 0, axis=0))
    d = d_s + d_t
    half, odd = d // 2, d % 2
    z = 1 + torch.minimum(d_s, d_t) + half * (half + odd - 1)
    z[s] = 1.0
    z[t] = 1.0
    z[torch.isnan(z)] = 0.0  # unreachable: inf % 2 is NaN
    return subset, sub, z.long()


def assert_identical(batch, refs) -> None:
    for p, (subset, sub, z) in enumerate(refs):
        g = batch[p]
        assert set(g.n_id.tolist()) == set(subset.tolist()), f"pair {p}: node sets differ"
        ours = set(map(tuple, g.n_id[g.edge_index].t().tolist()))
        theirs = set(map(tuple, subset[sub].t().tolist()))
        assert ours == theirs, f"pair {p}: edges differ"
        assert dict(zip(g.n_id.tolist(), g.z.tolist(), strict=True)) == dict(
            zip(subset.tolist(), z.tolist(), strict=True)
        ), f"pair {p}: DRNL labels differ"


def timed(fn, repeats: int = 1) -> tuple[float, float, object]:
    """Best wall-clock and best process-CPU seconds over ``repeats`` runs.

    CPU time (all threads of this process) is reported next to wall time
    because it barely moves when other processes load a shared machine.
    """
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 60 s")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=10, help="kNN neighbours per node")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs for the 1-hop run")
    parser.add_argument("--pairs-2hop", type=int, default=4_000)
    parser.add_argument(
        "--ref-pairs",
        type=int,
        default=400,
        help="pairs given to the per-link reference (both ways time these)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.pairs, args.pairs_2hop, args.ref_pairs = 3_000, 5_000, 1_000, 150
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    data = knn_graph(args.nodes, args.dim, args.k, args.seed)
    graph = Data(edge_index=data.edge_index, num_nodes=data.num_nodes)
    und = to_undirected(remove_self_loops(data.edge_index)[0], num_nodes=data.num_nodes)
    print(
        f"# kNN graph: {data.num_nodes} nodes, k={args.k}, {und.size(1) // 2} undirected "
        f"edges (mean degree {und.size(1) / data.num_nodes:.1f})"
    )
    pair_subgraphs(graph, make_pairs(data, 50, args.seed), 1)  # warm-up

    rows = []
    for hops, num_pairs in ((1, args.pairs), (2, args.pairs_2hop)):
        pairs = make_pairs(data, num_pairs, args.seed + hops)
        same = pairs[:, : args.ref_pairs]
        w_full, c_full, full = timed(
            lambda p=pairs, h=hops: pair_subgraphs(graph, p, h), args.repeats
        )
        w_same, c_same, ours = timed(
            lambda p=same, h=hops: pair_subgraphs(graph, p, h), args.repeats
        )
        w_ref, c_ref, refs = timed(
            lambda p=same, h=hops: [
                seal_reference(und, data.num_nodes, int(i), int(j), h) for i, j in p.t()
            ]
        )
        assert_identical(ours, refs)
        m = same.size(1)
        print(
            f"{hops}-hop ({full.num_nodes / num_pairs:.1f} nodes, "
            f"{full.edge_index.size(1) / num_pairs:.1f} directed edges per subgraph); "
            f"identical nodes/edges/labels on all {m} reference pairs\n"
            f"  wall: ours {num_pairs / w_full:,.0f} pairs/s ({num_pairs:,} pairs), "
            f"{m / w_same:,.0f} pairs/s ({m} reference pairs); SEAL loop {m / w_ref:,.0f} "
            f"pairs/s -> {w_ref / m * num_pairs / w_full:.0f}x "
            f"(same pairs {w_ref / w_same:.0f}x)\n"
            f"  cpu:  ours {num_pairs / c_full:,.0f} pairs/s, {m / c_same:,.0f} pairs/s; "
            f"SEAL loop {m / c_ref:,.0f} pairs/s -> {c_ref / m * num_pairs / c_full:.0f}x "
            f"(same pairs {c_ref / c_same:.0f}x)"
        )
        rows.append((hops, num_pairs / w_full, m / w_ref, num_pairs / c_full, m / c_ref))

    pairs = make_pairs(data, args.pairs, args.seed + 7)
    w_feat, _, _ = timed(lambda: pair_subgraphs(data, pairs, mode="mprd", k=8), args.repeats)
    w_graph, _, _ = timed(lambda: pair_subgraphs(graph, pairs, mode="mprd", k=None), args.repeats)
    print(
        f"mprd (Eq. 4, K=8): {args.pairs / w_feat:,.0f} pairs/s with NN_k from features "
        f"(topk included), {args.pairs / w_graph:,.0f} pairs/s from the kNN graph"
    )
    print("\n| subgraph | ours, wall (pairs/s) | SEAL loop, wall | ratio | ratio, CPU time |")
    print("|---|---|---|---|---|")
    for hops, w_ours, w_ref, c_ours, c_ref in rows:
        print(
            f"| {hops}-hop | {w_ours:,.0f} | {w_ref:,.0f} | {w_ours / w_ref:.0f}x "
            f"| {c_ours / c_ref:.0f}x |"
        )


if __name__ == "__main__":
    main()
