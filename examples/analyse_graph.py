"""Analyse a spatio-temporal re-ID graph with networkx (G-Fusion Sec. 3.1, Fig. 5).

Builds the visual kNN graph and the spatio-temporal graph of G-Fusion on the
synthetic world's training split, scores both against the true identities,
exports the spatio-temporal graph to networkx, runs connected components and
Louvain community detection there, and reports how well the communities match
identities. Saves the transition-time histogram of the busiest camera pair
(estimated T(a, b) against the ground truth) and a community-size plot.

    python examples/analyse_graph.py --preset small --out analyse_graph_out
"""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")

import networkx as nx  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reidgraph.data.synthetic import make_world  # noqa: E402
from reidgraph.graph import (  # noqa: E402
    TransitionSet,
    adjusted_rand_index,
    communities_to_labels,
    graph_quality,
    knn_graph,
    plot_transition_histogram,
    purity,
    spatiotemporal_graph,
    to_networkx,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", help="synthetic world preset (default: small)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-s", type=int, default=3, help="visual neighbours, self counted")
    p.add_argument("--k-l", type=int, default=60, help="candidates for spatio-temporal edges")
    p.add_argument("--delta", type=float, default=1.0, help="window half-width in seconds")
    p.add_argument("--out", default="analyse_graph_out", help="folder for the plots")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    world = make_world(args.preset, seed=args.seed, verbose=False)
    train = world.to_data("train")
    print(world)

    transitions = TransitionSet.fit(train, k_s=args.k_s)
    graphs = {
        "visual kNN": knn_graph(train, k=args.k_s, symmetric=True),
        "spatio-temporal": spatiotemporal_graph(
            train,
            k_s=args.k_s,
            k_l=args.k_l,
            delta=args.delta,
            transitions=transitions,
            symmetric=True,
        ),
    }
    rows = {name: graph_quality(g) for name, g in graphs.items()}
    table = pd.DataFrame(rows).T
    cols = [
        c
        for c in table.columns
        if c
        in (
            "precision",
            "precision/visual",
            "precision/spatiotemporal",
            "recall",
            "num_components",
            "component_purity",
            "component_ari",
        )
    ]
    print("\nGraph quality against true identities (edges joining one identity, recall of")
    print("same-identity pairs, connected components):")
    print(table[cols].to_string(float_format=lambda v: f"{v:.3f}"))

    # networkx analysis of the spatio-temporal graph.
    st = graphs["spatio-temporal"]
    G = to_networkx(st).to_undirected()
    G = nx.Graph(G)  # merge parallel visual / spatio-temporal edges for community detection
    components = list(nx.connected_components(G))
    communities = nx.community.louvain_communities(G, weight="weight", seed=args.seed)
    labels = communities_to_labels(communities, st.num_nodes)
    print(
        f"\nnetworkx: {G.number_of_nodes()} nodes, {G.number_of_edges()} undirected edges, "
        f"{len(components)} connected components, {len(communities)} Louvain communities "
        f"for {int(torch.unique(st.pid).numel())} identities"
    )
    print(
        f"Louvain communities vs identities: purity {purity(labels, st.pid):.3f}, "
        f"ARI {adjusted_rand_index(labels, st.pid):.3f}"
    )

    # Transition-time histogram of the busiest camera pair (G-Fusion Fig. 5).
    counts = transitions.counts()
    a, b = divmod(int(torch.argmax(counts)), counts.size(1))
    truth = TransitionSet.from_identities(train)
    fig = plot_transition_histogram(transitions, a, b, ground_truth=truth, density=True)
    path = os.path.join(args.out, f"transitions_cam{a}_cam{b}.png")
    fig.savefig(path, dpi=120)
    print(
        f"\nsaved {path} (estimated T({a},{b}) from top-{args.k_s} neighbours vs ground truth; "
        f"walking time {float(world.walk_time[a, b]):.0f} s)"
    )

    sizes = sorted((len(c) for c in communities), reverse=True)
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.hist(sizes, bins=30)
    ax.set_xlabel("community size (images)")
    ax.set_ylabel("communities")
    ax.set_title("Louvain communities of the spatio-temporal graph")
    fig.tight_layout()
    path = os.path.join(args.out, "community_sizes.png")
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
