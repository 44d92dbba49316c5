r"""Post-processing of retrieval results with the graph and with time.

* :func:`k_reciprocal` — k-reciprocal re-ranking (Zhong et al., CVPR 2017),
  same inputs and output as the widely used reference implementation;
  :func:`k_reciprocal_features` works from features.
* :func:`tlift` — temporal lifting (QAConv + TLift, ECCV 2020, Eq. 3) on
  similarities in [0, 1]; :func:`scores_from_distance`, :func:`fit_sigmoid`
  make such scores.
* :func:`gfusion` — G-Fusion's graph-based multi-modal re-ranking
  (MM 2023, Sec. 3.4).
* :mod:`reidgraph.rerank.npz` — the ``.npz`` schema of ``reidgraph rerank``.
"""

from reidgraph.rerank import npz
from reidgraph.rerank.gfusion import gfusion, gfusion_embeddings
from reidgraph.rerank.k_reciprocal import k_reciprocal, k_reciprocal_features
from reidgraph.rerank.tlift import (
    TLIFT_PRESETS,
    TLiftParams,
    fit_sigmoid,
    scores_from_distance,
    tlift,
)

__all__ = [
    "k_reciprocal",
    "k_reciprocal_features",
    "tlift",
    "TLiftParams",
    "TLIFT_PRESETS",
    "scores_from_distance",
    "fit_sigmoid",
    "gfusion",
    "gfusion_embeddings",
    "npz",
]
