r"""Training recipes: one short file per method, stating only what differs.

* :class:`ClusterContrast` (``"baseline"``) — DBSCAN on the Jaccard
  distance, cluster memory, ClusterNCE; the base of G-Fusion and GUR.
* :class:`Supervised` (``"supervised"``) — identity + triplet loss on the
  true labels: the source-domain pre-training of the domain-adaptive papers.
* :class:`GFusion` (``"gfusion"``) — spatio-temporal graph, random
  GraphSAGE affinity, camera-grouped distillation (G-Fusion, MM 2023).
* :class:`ClusterContrastGFusion` (``"baseline+gfusion"``) — the baseline
  plus G-Fusion's distillation term with a weight.

:data:`RECIPES` maps the command-line names to the classes; a new recipe
is a :class:`~reidgraph.train.Recipe` subclass, used directly from Python
(``fit(MyRecipe(), dataset)``) or added to :data:`RECIPES` for the CLI.
"""

from __future__ import annotations

from reidgraph.train.recipe import Recipe
from reidgraph.train.recipes.baseline import ClusterContrast
from reidgraph.train.recipes.gfusion import ClusterContrastGFusion, GFusion
from reidgraph.train.recipes.supervised import Supervised

__all__ = [
    "ClusterContrast",
    "GFusion",
    "ClusterContrastGFusion",
    "Supervised",
    "RECIPES",
    "get_recipe",
]

#: Command-line name -> recipe class.
RECIPES: dict[str, type[Recipe]] = {
    "baseline": ClusterContrast,
    "gfusion": GFusion,
    "baseline+gfusion": ClusterContrastGFusion,
    "supervised": Supervised,
}


def get_recipe(name: str) -> type[Recipe]:
    r"""The recipe class called ``name`` (case-insensitive).

    Raises:
        ValueError: Unknown name (the message lists the known ones).

    Example:
        >>> get_recipe("baseline").__name__
        'ClusterContrast'
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in RECIPES:
        raise ValueError(f"Could not resolve recipe={name!r} among choices {sorted(RECIPES)}")
    return RECIPES[key]
