"""Runs the code of docs/tutorial_gnn_labeler.md, so the tutorial cannot rot."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from reidgraph.data import make_world
from reidgraph.labelers import ClusterLabels, JaccardDBSCAN, PseudoLabeler

DOC = Path(__file__).resolve().parents[2] / "docs" / "tutorial_gnn_labeler.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
SMOKE_MARK = "# A smoke run"


def _run(code: str, ns: dict, name: str) -> dict:
    exec(compile(code, f"{DOC.name}:{name}", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def ns():
    assert len(BLOCKS) == 3, "the tutorial has three python blocks: labeler, try, loop"
    return _run(BLOCKS[0], {}, "labeler")


def test_labeler_is_short_and_follows_the_protocol(ns):
    cls = ns["SmoothedDBSCAN"]
    # "a ~30-line labeler": the class body, blank lines and comments included
    start = BLOCKS[0].index("class SmoothedDBSCAN")
    assert len(BLOCKS[0][start:].strip().splitlines()) <= 32
    labeler = cls(k=5, eps=0.5)
    assert isinstance(labeler, PseudoLabeler)
    assert clone(labeler).get_params() == {
        "k": 5,
        "hops": 10,
        "alpha": 0.2,
        "eps": 0.5,
        "min_samples": 4,
        "k1": 30,
        "k2": 6,
    }


def test_try_block_prints_what_the_doc_says(ns, capsys):
    _run(BLOCKS[1], ns, "try")
    printed = capsys.readouterr().out.strip().splitlines()
    # the numbers written in the block's comments are what it prints
    documented = [
        line.split("#")[1].strip().split(",")[0]
        for line in BLOCKS[1].splitlines()
        if line.startswith("print(")
    ]
    assert printed[0] == documented[0] == "14 0"
    assert printed[1] == documented[1] == "0.636"
    assert printed[2] == "SmoothedDBSCAN(k1=10)" and documented[2].startswith(printed[2])
    labeler, data = ns["labeler"], ns["data"]
    assert isinstance(labeler.supervision_, ClusterLabels)
    assert labeler.labels_.shape == (data.num_nodes,)
    # the prose: smoothing raises ARI from 0.600 (plain JaccardDBSCAN, same k1) to 0.636;
    # checked with scikit-learn's ARI (outliers would each be their own cluster; there are none)
    assert labeler.n_outliers_ == 0
    smoothed = adjusted_rand_score(data.pid.numpy(), labeler.labels_.numpy())
    plain = JaccardDBSCAN(k1=10).fit(data)
    assert plain.n_outliers_ == 2
    plain_labels = plain.labels_.clone()
    out = plain_labels < 0  # outliers as singletons, as the doc's ARI counts them
    plain_labels[out] = plain_labels.max() + 1 + out.nonzero().flatten()
    assert round(smoothed, 3) == 0.636
    assert round(adjusted_rand_score(data.pid.numpy(), plain_labels.numpy()), 3) == 0.600


def test_loop_block_defines_a_recipe_using_the_labeler(ns):
    recipe_part = BLOCKS[2].split(SMOKE_MARK)[0]
    _run(recipe_part, ns, "recipe")
    recipe = ns["SmoothedContrast"]()
    labeler = recipe.make_labeler(SimpleNamespace(epoch=0, dataset=None))
    assert isinstance(labeler, ns["SmoothedDBSCAN"])
    assert (labeler.k1, labeler.k2, labeler.min_samples) == (30, 6, 4)
    assert recipe.name == "smoothed"


@pytest.mark.slow
def test_loop_block_trains(ns, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run(BLOCKS[2], ns, "loop")
    assert math.isfinite(float(capsys.readouterr().out.strip().splitlines()[-1]))
    assert (tmp_path / "runs" / "smoothed" / "checkpoint.pth").exists()
    assert ns["result"].metrics["mAP"] > 0


@pytest.mark.slow
def test_small_world_row_of_the_table(ns):
    data = make_world("small", seed=0, verbose=False).to_data("train")
    smoothed = ns["SmoothedDBSCAN"]().fit(data)
    plain = JaccardDBSCAN().fit(data)
    # table: small, 2,579 images, 0.601 -> 0.657 (no outliers in either at these settings)
    assert data.num_nodes == 2579 and smoothed.n_outliers_ == plain.n_outliers_ == 0
    pid = data.pid.numpy()
    assert round(adjusted_rand_score(pid, plain.labels_.numpy()), 3) == 0.601
    assert round(adjusted_rand_score(pid, smoothed.labels_.numpy()), 3) == 0.657
