"""Tests for reidgraph.eval.table.format_table."""

from __future__ import annotations

import doctest

import pytest
import torch

import reidgraph.eval.table as table_mod
from reidgraph.eval import aggregate_trials, format_table

A = {"cmc": torch.tensor([0.5, 1.0, 1.0, 1.0, 1.0]), "mAP": 0.4, "mINP": 0.2}
B = {"cmc": torch.tensor([0.7, 1.0, 1.0, 1.0, 1.0]), "mAP": 0.6, "mINP": 0.4}


def test_single_result():
    # rank1 0.5 -> 50.00, rank5 1.0 -> 100.00, mAP 0.4 -> 40.00, mINP 0.2 -> 20.00
    assert format_table(A).splitlines() == [
        "name  rank1  rank5   mAP    mINP",
        "-     50.00  100.00  40.00  20.00",
    ]


def test_named_rows_with_mean_and_std():
    # Aggregate of A and B: rank1 mean 0.6 std 0.1 -> "60.00±10.00"; rank5 100 ± 0.
    lines = format_table({"sysu": aggregate_trials([A, B]), "market": A}).splitlines()
    assert lines[0].split() == ["name", "rank1", "rank5", "mAP", "mINP"]
    assert lines[1].split() == ["sysu", "60.00±10.00", "100.00±0.00", "50.00±10.00", "30.00±10.00"]
    assert lines[2].split() == ["market", "50.00", "100.00", "40.00", "20.00"]


def test_fractions_and_missing_columns():
    # The short CMC has no rank 5: shown as "-".
    short = {"cmc": torch.tensor([0.25, 0.5]), "mAP": 0.125, "mINP": 0.0625}
    lines = format_table({"a": short, "b": A}, percent=False, digits=3).splitlines()
    assert lines[0].split() == ["name", "rank1", "rank5", "mAP", "mINP"]
    assert lines[1].split() == ["a", "0.250", "-", "0.125", "0.062"]
    assert lines[2].split() == ["b", "0.500", "1.000", "0.400", "0.200"]


def test_validation():
    with pytest.raises(TypeError, match="'results' must be a dict, got list"):
        format_table([A])
    with pytest.raises(ValueError, match="'results' is empty"):
        format_table({})
    with pytest.raises(ValueError, match=r"'results\['x'\]' is not a result dict"):
        format_table({"x": {"mAP": 0.1}})


def test_docstring_example():
    result = doctest.testmod(table_mod, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted >= 1 and result.failed == 0
