"""``reidgraph train``: flags -> config and recipe, end to end, resume."""

import argparse

import pytest

from reidgraph.train.cli import add_train_parser, recipe_arguments
from reidgraph.train.logger import read_csv
from reidgraph.train.recipes import ClusterContrast

FAST = [
    "--preset", "tiny", "--epochs", "1", "--iters", "2", "--batch-size", "16",
    "--num-instances", "4", "--depth", "18", "--height", "32", "--width", "16", "--no-flip",
    "--workers", "0", "--eps", "0.5", "--k1", "10", "--k2", "3", "--quiet",
]  # fmt: skip


def _parser():
    parser = argparse.ArgumentParser(prog="reidgraph")
    add_train_parser(parser.add_subparsers(dest="command"))
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def test_flags_map_to_config_and_recipe():
    args = _parser().parse_args(
        ["train", "baseline", "--lr", "0.001", "--milestones", "3", "5", "--no-amp",
         "--sgd-momentum", "0.8", "--momentum", "0.2", "--min-samples", "3"]
    )  # fmt: skip
    assert (args.cfg_lr, args.cfg_milestones, args.cfg_amp) == (0.001, [3, 5], False)
    # --sgd-momentum is the optimiser's, --momentum the recipe's (memory).
    assert (args.cfg_momentum, args.rcp_momentum, args.rcp_min_samples) == (0.8, 0.2, 3)
    assert args.cfg_epochs is None and args.rcp_eps is None  # unset: the recipe's default
    assert [n for n, _, _ in recipe_arguments(ClusterContrast)] == [
        "eps", "min_samples", "k1", "k2", "momentum", "temperature",
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "nosuchrecipe"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "baseline", "--depth", "20"])


def test_every_config_field_has_a_flag():
    import dataclasses

    from reidgraph.train import TrainConfig

    args = vars(_parser().parse_args(["train", "baseline"]))
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"verbose"}  # --quiet
    assert fields == {k[4:] for k in args if k.startswith("cfg_")}


def test_flags_reach_fit(monkeypatch):
    import reidgraph.train.loop as loop

    seen = {}

    def capture(recipe, dataset, config, *, model=None, resume=None):
        seen.update(recipe=recipe, dataset=dataset, config=config, resume=resume, model=model)
        raise loop.NonFiniteLossError("stop here")

    monkeypatch.setattr(loop, "fit", capture)
    _run(["train", "baseline", "--preset", "tiny", "--lr", "0.01", "--k1", "12",
          "--milestones", "3", "--resume", "ckpt.pth"])  # fmt: skip
    cfg = seen["config"]
    # Flags given: applied; not given: the recipe's defaults; the synthetic world's
    # images are 64x32, so training runs at that size unless told otherwise.
    assert (cfg.lr, cfg.milestones, cfg.iters, cfg.num_instances) == (0.01, (3,), 400, 16)
    assert (cfg.height, cfg.width) == (64, 32)
    assert seen["recipe"].get_params()["k1"] == 12 and seen["resume"] == "ckpt.pth"
    assert seen["dataset"].name == "synthetic-tiny"


def test_synthetic_end_to_end_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", "baseline", "--dataset", "synthetic", *FAST,
                 "--output-dir", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "ClusterContrast(eps=0.5, min_samples=4, k1=10, k2=3" in printed
    assert "after training:  rank1" in printed and f"checkpoint: {out}" in printed
    rows = read_csv(out / "epochs.csv")
    assert [r["epoch"] for r in rows] == ["0"]
    # Resume: epoch 1 only.
    assert (
        _run(
            [
                "train",
                "baseline",
                "--dataset",
                "synthetic",
                *FAST,
                "--epochs",
                "2",
                "--output-dir",
                str(out),
                "--resume",
                str(out / "checkpoint.pth"),
            ]
        )
        == 0
    )
    assert [r["epoch"] for r in read_csv(out / "epochs.csv")] == ["0", "1"]


def test_data_root(tmp_path, capsys):
    from reidgraph.data import make_world

    make_world("tiny", seed=2, images=True, root=tmp_path / "m", image_format="jpg", verbose=False)
    root, out = str(tmp_path / "m"), str(tmp_path / "run")
    argv = ["train", "baseline", "--dataset", "market1501", "--data-root", root, *FAST]
    assert _run([*argv, "--output-dir", out]) == 0
    assert "market1501" in capsys.readouterr().out


def test_bad_data_flags(tmp_path):
    with pytest.raises(ValueError, match="--data-root is required for --dataset market1501"):
        _run(["train", "baseline", "--dataset", "market1501"])
    with pytest.raises(ValueError, match="--data-root was given with --dataset synthetic"):
        _run(["train", "baseline", "--data-root", str(tmp_path)])


def test_diverged_training_is_reported(monkeypatch, capsys):
    import reidgraph.train.loop as loop

    def diverge(*args, **kwargs):
        raise loop.NonFiniteLossError("the training loss became nan at epoch 0 ...")

    monkeypatch.setattr(loop, "fit", diverge)
    assert _run(["train", "baseline", *FAST]) == 2
    assert "error: the training loss became nan at epoch 0" in capsys.readouterr().err


def test_init_from_a_source_checkpoint(tmp_path, monkeypatch):
    # G-Fusion's starting point (Sec. 4.2): a supervised source run, then --init on the target.
    import torch

    import reidgraph.train.loop as loop

    fast = [a for a in FAST if a not in ("--eps", "0.5", "--k1", "10", "--k2", "3")]
    src = tmp_path / "source"
    argv = ["train", "supervised", "--world-seed", "1", *fast, "--output-dir", str(src)]
    assert _run(argv) == 0
    saved = torch.load(src / "checkpoint.pth", weights_only=True)["model"]
    assert saved["classifier.weight"].shape[0] == 16  # the tiny world's 16 training identities
    seen = {}

    def capture(recipe, dataset, config, *, model=None, resume=None):
        seen.update(model=model, resume=resume)
        raise loop.NonFiniteLossError("stop here")

    monkeypatch.setattr(loop, "fit", capture)
    _run(["train", "gfusion", *fast, "--init", str(src / "checkpoint.pth")])
    model = seen["model"]
    assert model is not None and seen["resume"] is None
    assert model.num_classes == 0  # the source classifier is dropped
    ours = model.state_dict()
    for key, value in saved.items():
        if not key.startswith("classifier."):
            assert torch.equal(ours[key], value), key
    with pytest.raises(ValueError, match="--init .* or --resume"):
        _run(["train", "gfusion", *fast, "--init", "a.pth", "--resume", "b.pth"])
