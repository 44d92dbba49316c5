"""Checkpoints every epoch and resuming: the resumed run is the uninterrupted one."""

import logging

import pytest
import torch

from reidgraph.models import ReIDNet, save_checkpoint
from reidgraph.train import CHECKPOINT_NAME, fit
from reidgraph.train.logger import read_csv


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_gives_the_uninterrupted_run(tmp_path, train_only_world, standins):
    kw = dict(iters=3, lr=1e-2, log_every=2)
    straight = fit(
        standins.CentroidRecipe(), train_only_world, output_dir=str(tmp_path / "a"), epochs=3, **kw
    )
    # Interrupted after epoch 1 (its checkpoint), then resumed in the same folder.
    out = tmp_path / "b"
    first = fit(standins.CentroidRecipe(), train_only_world, output_dir=str(out), epochs=2, **kw)
    assert first.checkpoint == str(out / CHECKPOINT_NAME)
    resumed = fit(
        standins.CentroidRecipe(),
        train_only_world,
        output_dir=str(out),
        epochs=3,
        resume=first.checkpoint,
        **kw,
    )
    a, b = _weights(straight.model), _weights(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # Same losses epoch by epoch; the log holds each epoch once.
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert [r["epoch"] for r in read_csv(out / "epochs.csv")] == ["0", "1", "2"]
    # Steps 1..9, every second logged: 2 (epoch 0), 4, 6 (epoch 1), 8 (epoch 2, resumed).
    steps = read_csv(out / "steps.csv")
    assert [(r["step"], r["epoch"]) for r in steps] == [
        ("2", "0"),
        ("4", "1"),
        ("6", "1"),
        ("8", "2"),
    ]


def test_resume_of_a_finished_run_trains_nothing(tmp_path, tiny_world, standins, caplog):
    done = fit(standins.CentroidRecipe(), tiny_world, output_dir=str(tmp_path), epochs=1, iters=1)
    recipe = standins.CentroidRecipe()
    with caplog.at_level(logging.WARNING, logger="reidgraph.train.loop"):
        again = fit(
            recipe,
            tiny_world,
            output_dir=str(tmp_path),
            epochs=1,
            iters=1,
            resume=done.checkpoint,
        )
    assert "nothing is left to train" in caplog.text
    assert "forward" not in recipe.events
    assert len(again.history) == 1
    # The last evaluation is reported again.
    assert again.metrics == done.metrics and 0.0 <= done.metrics["mAP"] <= 1.0


def test_resume_missing_file(tmp_path, train_only_world, standins):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at .*nope.pth.*checkpoint"):
        fit(
            standins.CentroidRecipe(),
            train_only_world,
            output_dir=str(tmp_path),
            resume=str(tmp_path / "nope.pth"),
        )


def test_resume_from_another_architecture(tmp_path, train_only_world):
    from reidgraph.train.recipes import ClusterContrast

    net = ReIDNet(18, last_stride=2)
    opt = torch.optim.Adam(net.parameters())
    path = save_checkpoint(tmp_path / "r18.pth", model=net, optimizer=opt, epoch=0)
    with pytest.raises(
        ValueError,
        match=r"saved from another architecture.*depth: checkpoint "
        r"18 vs model 34",
    ):
        fit(
            ClusterContrast(),
            train_only_world,
            output_dir=str(tmp_path),
            depth=34,
            last_stride=2,
            height=64,
            width=32,
            resume=path,
            verbose=False,
        )
