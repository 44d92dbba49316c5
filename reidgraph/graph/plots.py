r"""Plots of the transition-time sets, as in G-Fusion (MM 2023) Fig. 5.

matplotlib is imported lazily, and figures are built with
:class:`matplotlib.figure.Figure` directly (no :mod:`pyplot`, no global
state, no display needed): safe under the ``Agg`` backend and in tests.
"""

from __future__ import annotations

from typing import Any

import torch

from reidgraph._validation import as_tensor, check_int
from reidgraph.graph.transitions import TransitionSet

__all__ = ["plot_transition_histogram"]


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError(
            "plot_transition_histogram needs matplotlib: pip install matplotlib"
        ) from exc
    return Figure


def plot_transition_histogram(
    transitions: TransitionSet,
    cam_a: int,
    cam_b: int,
    *,
    ground_truth: TransitionSet | Any | None = None,
    bins: int = 50,
    range: tuple[float, float] | None = None,
    density: bool = False,
    ax: Any = None,
) -> Any:
    r"""Histogram of the estimated :math:`T(a, b)` (G-Fusion Eq. 3) against an
    optional ground truth, one camera pair (G-Fusion Fig. 5).

    The horizontal axis is :math:`\Delta t = t_i - t_j` in seconds (anchor
    in camera :math:`a`, neighbour in camera :math:`b`; see
    :class:`~reidgraph.graph.transitions.TransitionSet`). Both histograms
    share the bins.

    Args:
        transitions (TransitionSet): The estimated sets, e.g.
            ``TransitionSet.fit(train, k_s=3)``.
        cam_a (int): Camera :math:`a`.
        cam_b (int): Camera :math:`b`.
        ground_truth (TransitionSet or torch.Tensor, optional): Ground truth
            (e.g. :meth:`TransitionSet.from_identities`), or the ground-truth
            times of this pair as a 1-D array. (default: :obj:`None`)
        bins (int, optional): Number of bins. (default: :obj:`50`)
        range (tuple, optional): ``(low, high)`` in seconds. (default:
            :obj:`None`, the span of all plotted values)
        density (bool, optional): Plot fractions (each histogram sums to 1)
            instead of counts, to compare sets of different size.
            (default: :obj:`False`)
        ax (matplotlib.axes.Axes, optional): Draw here; a new
            :class:`~matplotlib.figure.Figure` otherwise. (default: :obj:`None`)

    Returns:
        matplotlib.figure.Figure: The figure (save it with ``fig.savefig``).

    Example:
        >>> T = TransitionSet.from_pairs(torch.tensor([0, 1]), torch.tensor([0.0, 5.0]),
        ...                              torch.tensor([[0], [1]]))
        >>> fig = plot_transition_histogram(T, 0, 1, bins=4)
        >>> fig.axes[0].get_title()
        'T(0, 1)'
    """
    Figure = _require_matplotlib()
    if not isinstance(transitions, TransitionSet):
        raise TypeError(f"'transitions' must be a TransitionSet, got {type(transitions).__name__}")
    bins = check_int(bins, "bins", min_value=1)
    if not isinstance(density, bool):
        raise TypeError(f"'density' must be a bool, got {type(density).__name__}")
    est = transitions.values(cam_a, cam_b).cpu()
    truth = None
    if isinstance(ground_truth, TransitionSet):
        truth = ground_truth.values(cam_a, cam_b).cpu()
    elif ground_truth is not None:
        truth = as_tensor(ground_truth, "ground_truth").to(torch.float64).cpu()
        if truth.dim() != 1 or not bool(torch.isfinite(truth).all()):
            raise ValueError(
                "'ground_truth' must be a TransitionSet or a 1-D array of finite times, got "
                f"shape {tuple(truth.shape)}"
            )
    if range is None:
        everything = est if truth is None else torch.cat([est, truth])
        if everything.numel():
            range = (float(everything.min()), float(everything.max()))
        else:
            range = (-1.0, 1.0)
        if range[0] == range[1]:
            range = (range[0] - 0.5, range[1] + 0.5)

    if ax is None:
        fig = Figure(figsize=(6.0, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    counts, edges = transitions.histogram(cam_a, cam_b, bins=bins, range=range)
    series = [("estimated", counts)]
    if truth is not None:
        gt_counts, _ = torch.histogram(truth, bins=bins, range=(float(range[0]), float(range[1])))
        series.append(("ground truth", gt_counts.long()))
    for (label, c), style in zip(
        series, ({"fill": True, "alpha": 0.6}, {"linewidth": 1.5}), strict=False
    ):
        heights = c.double()
        if density and heights.sum() > 0:
            heights = heights / heights.sum()
        ax.stairs(heights.numpy(), edges.numpy(), label=f"{label} (n={int(c.sum())})", **style)
    ax.set_title(f"T({int(cam_a)}, {int(cam_b)})")
    ax.set_xlabel(r"$\Delta t = t_i - t_j$ (s)")
    ax.set_ylabel("fraction of transitions" if density else "transitions")
    ax.legend(loc="best", fontsize="small")
    return fig
