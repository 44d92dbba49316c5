r"""Pictures of re-ID results: rank lists (matplotlib imported lazily).

* :func:`rank_list` — the gallery images a query's ranked list shows under the
  single-query protocol, and whether each is a true match.
* :func:`draw_rank_list` / :func:`plot_rank_list` — the picture, green / red
  frames for true / false matches (torchreid's ``visualize_ranked_results``).

Transition-time histograms (G-Fusion Fig. 5) live beside the transition sets:
:func:`reidgraph.graph.plot_transition_histogram`.
"""

from reidgraph.viz.rank_list import (
    GREEN,
    QUERY_COLOR,
    RED,
    draw_rank_list,
    plot_rank_list,
    rank_list,
)

__all__ = ["rank_list", "draw_rank_list", "plot_rank_list", "GREEN", "RED", "QUERY_COLOR"]
