"""Tests of the transition-time histogram plot (G-Fusion Fig. 5)."""

from __future__ import annotations

import pytest
import torch

from reidgraph.graph.plots import plot_transition_histogram
from reidgraph.graph.transitions import TransitionSet

matplotlib = pytest.importorskip("matplotlib")

# Pairs (anchor, neighbour) with cameras (0, 1): t_i - t_j = -10, -10, -4, 20 -> T(0,1).
CAM = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
TIME = torch.tensor([0.0, 10.0, 5.0, 15.0, 30.0, 34.0, 50.0, 30.0])
PAIRS = torch.tensor([[0, 2, 4, 6], [1, 3, 5, 7]])


def _bar_heights(ax, index):
    """Heights of the index-th stairs artist."""
    return ax.patches[index].get_data().values.tolist()


def test_plot_estimated_only_by_hand():
    T = TransitionSet.from_pairs(CAM, TIME, PAIRS)
    fig = plot_transition_histogram(T, 0, 1, bins=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "T(0, 1)"
    assert ax.get_xlabel() == r"$\Delta t = t_i - t_j$ (s)"
    # Range (-10, 20), 3 bins of 10 s: [-10,0) holds -10, -10, -4; [0,10) none; [10,20] holds 20.
    assert _bar_heights(ax, 0) == [3.0, 0.0, 1.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["estimated (n=4)"]
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders headless


def test_plot_with_ground_truth_shares_bins():
    T = TransitionSet.from_pairs(CAM, TIME, PAIRS)
    # Ground truth T(0,1) = {-10, 30}: joint range (-10, 30), 4 bins of 10 s.
    gt = TransitionSet.from_pairs(
        torch.tensor([0, 1, 0, 1]),
        torch.tensor([0.0, 10.0, 40.0, 10.0]),
        torch.tensor([[0, 2], [1, 3]]),
    )
    fig = plot_transition_histogram(T, 0, 1, ground_truth=gt, bins=4)
    ax = fig.axes[0]
    # Bins [-10,0) [0,10) [10,20) [20,30]: estimated -10, -10, -4 | 20; truth -10 | 30.
    assert _bar_heights(ax, 0) == [3.0, 0.0, 0.0, 1.0]
    assert _bar_heights(ax, 1) == [1.0, 0.0, 0.0, 1.0]
    assert ax.get_legend().get_texts()[1].get_text() == "ground truth (n=2)"
    # A plain array of ground-truth times, fractions instead of counts, an explicit range.
    fig = plot_transition_histogram(
        T, 0, 1, ground_truth=[-10.0, 30.0], bins=2, range=(-10.0, 30.0), density=True
    )
    ax = fig.axes[0]
    assert _bar_heights(ax, 0) == [0.75, 0.25]  # bins [-10,10) [10,30]: 3 of 4, then 20
    assert _bar_heights(ax, 1) == [0.5, 0.5]
    assert ax.get_ylabel() == "fraction of transitions"


def test_plot_into_given_axes_and_empty_pair():
    from matplotlib.figure import Figure

    T = TransitionSet.from_pairs(CAM, TIME, PAIRS)
    fig = Figure()
    axes = fig.subplots(1, 2)
    out = plot_transition_histogram(T, 1, 0, ax=axes[1], bins=2)  # T(1,0) is empty
    assert out is fig
    assert _bar_heights(axes[1], 0) == [0.0, 0.0]
    assert axes[1].get_title() == "T(1, 0)"


def test_plot_errors():
    T = TransitionSet.from_pairs(CAM, TIME, PAIRS)
    with pytest.raises(TypeError, match="'transitions' must be a TransitionSet"):
        plot_transition_histogram({}, 0, 1)
    with pytest.raises(ValueError, match="'bins' must be >= 1"):
        plot_transition_histogram(T, 0, 1, bins=0)
    with pytest.raises(TypeError, match="'density' must be a bool"):
        plot_transition_histogram(T, 0, 1, density=1)
    with pytest.raises(ValueError, match=r"'a' must be <= 1 \(num_cameras=2\)"):
        plot_transition_histogram(T, 2, 1)
    with pytest.raises(ValueError, match="'ground_truth' must be a TransitionSet or a 1-D array"):
        plot_transition_histogram(T, 0, 1, ground_truth=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="'ground_truth' must be a TransitionSet or a 1-D array"):
        plot_transition_histogram(T, 0, 1, ground_truth=[float("nan")])
