r"""Evaluation: CMC, mAP and mINP, and the re-ID evaluation protocols.

* :func:`evaluate` — single-query protocol of Market-1501 / DukeMTMC-reID /
  MSMT17 (same identity and camera removed).
* :func:`rank_metrics` — the general core (any :class:`Exclusion` rule,
  optional identity-deduplicated CMC) the protocols are built on.
* :func:`evaluate_sysu`, :func:`sysu_gallery_indices` — SYSU-MM01 all/indoor
  search with random single-shot galleries over trials.
* :func:`evaluate_regdb` — RegDB, visible→thermal or thermal→visible.
* :func:`aggregate_trials` — mean/std over trials or splits.
* :func:`format_table` — a plain-text table of results.
"""

from reidgraph.eval.protocols import (
    REGDB_DIRECTIONS,
    SYSU_CAM3_CAM2,
    SYSU_GALLERY_CAMS,
    SYSU_QUERY_CAMS,
    aggregate_trials,
    evaluate_regdb,
    evaluate_sysu,
    sysu_gallery_indices,
)
from reidgraph.eval.rank import SAME_ID_SAME_CAM, Exclusion, evaluate, rank_metrics
from reidgraph.eval.table import format_table

__all__ = [
    "evaluate",
    "rank_metrics",
    "Exclusion",
    "SAME_ID_SAME_CAM",
    "SYSU_CAM3_CAM2",
    "SYSU_GALLERY_CAMS",
    "SYSU_QUERY_CAMS",
    "REGDB_DIRECTIONS",
    "sysu_gallery_indices",
    "evaluate_sysu",
    "evaluate_regdb",
    "aggregate_trials",
    "format_table",
]
