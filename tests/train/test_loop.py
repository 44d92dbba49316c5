"""The training loop: hook order, optimisation, logging, evaluation, bad input."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from reidgraph.data.records import ReIDDataset, ReIDSplit
from reidgraph.train import (
    NonFiniteLossError,
    PermutationSampler,
    Recipe,
    RecipeError,
    TrainConfig,
    Trainer,
    extract_features,
    fit,
)
from reidgraph.train.logger import read_csv


def test_hooks_run_in_documented_order(tmp_path, tiny_world, standins):
    recipe = standins.CentroidRecipe()
    result = fit(recipe, tiny_world, output_dir=str(tmp_path), epochs=2, iters=2)
    step = ["forward", "loss", "after_step"]
    epoch = [
        "on_epoch_start",
        "pseudo_label",
        "on_labels",
        "make_memory",
        "make_sampler",
        *step,
        *step,
        "on_epoch_end",
        "evaluate",
    ]
    assert recipe.events == ["check_dataset", "build_model", "param_groups", *epoch, *epoch]
    # after_step runs without autograd.
    assert recipe.records["after_step"] == [False] * 4
    # The labeler saw the spine of the training split: unit features + metadata.
    data = recipe.records["pseudo_label"][0]
    assert data.x.shape == (len(tiny_world.train), 16)
    assert torch.allclose(data.x.norm(dim=1), torch.ones(len(tiny_world.train)), atol=1e-5)
    assert data.camid.tolist() == tiny_world.train.camids.tolist()
    assert data.pid.tolist() == tiny_world.train.pids.tolist()
    assert [row["custom"] for row in result.history] == [7, 7]
    assert [row["num_clusters"] for row in result.history] == [16, 16]  # 16 train identities


def test_loss_decreases_with_fixed_labels(tmp_path, train_only_world, standins):
    result = fit(
        standins.CentroidRecipe(), train_only_world, output_dir=str(tmp_path), epochs=3, iters=8
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert result.metrics == {}  # no query/gallery: nothing to evaluate


def test_param_groups_and_schedule(tmp_path, train_only_world, standins):
    # backbone at 0.1 x lr; milestone 1 halves both groups from epoch 1 on.
    result = fit(
        standins.CentroidRecipe(),
        train_only_world,
        output_dir=str(tmp_path),
        lr=0.01,
        backbone_lr_mult=0.1,
        milestones=(1,),
        gamma=0.5,
        iters=1,
    )
    lrs = [(row["lr_backbone"], row["lr_head"]) for row in result.history]
    assert lrs == [pytest.approx((0.001, 0.01)), pytest.approx((0.0005, 0.005))]


class _ScaledLoss:
    """Mixin: multiply the loss so that its gradient norm is far above the clip."""

    def loss(self, batch, outputs, state):
        if "before" not in self.records:
            self.records["before"] = [[p.detach().clone() for p in state.module.parameters()]]
        return 1e3 * super().loss(batch, outputs, state)

    def after_step(self, batch, outputs, state):
        if "after" not in self.records:
            self.records["after"] = [[p.detach().clone() for p in state.module.parameters()]]


def _first_step_norm(tmp_path, world, standins, **kw):
    recipe = type("Scaled", (_ScaledLoss, standins.CentroidRecipe), {})()
    fit(
        recipe,
        world,
        output_dir=str(tmp_path),
        epochs=1,
        iters=1,
        optimizer="sgd",
        lr=1.0,
        momentum=0.0,
        weight_decay=0.0,
        **kw,
    )
    before, after = recipe.records["before"][0], recipe.records["after"][0]
    return float(torch.cat([(a - b).flatten() for a, b in zip(after, before, strict=True)]).norm())


def test_gradient_clipping(tmp_path, train_only_world, standins):
    # Plain SGD with lr 1: the step is minus the gradient, so its norm is the
    # (clipped) gradient norm: exactly grad_clip when the raw norm is larger.
    clipped = _first_step_norm(tmp_path / "a", train_only_world, standins, grad_clip=1e-3)
    assert clipped == pytest.approx(1e-3, rel=1e-3)
    raw = _first_step_norm(tmp_path / "b", train_only_world, standins)
    assert raw > 1.0


def test_csv_logs(tmp_path, tiny_world, standins):
    fit(
        standins.CentroidRecipe(),
        tiny_world,
        output_dir=str(tmp_path),
        epochs=2,
        iters=3,
        log_every=1,
        eval_before=True,
        eval_every=2,
    )
    rows = read_csv(tmp_path / "epochs.csv")
    assert [r["epoch"] for r in rows] == ["-1", "0", "1"]
    # Evaluation before training and at epoch 1 (eval_every=2); none at epoch 0.
    assert rows[0]["mAP"] != "" and rows[1]["mAP"] == "" and rows[2]["mAP"] != ""
    for key in ("loss", "images_per_s", "extract_s", "graph_s", "graph_share", "epoch_s"):
        assert all(math.isfinite(float(r[key])) for r in rows[1:]), key
    assert all(0.0 <= float(r["graph_share"]) <= 1.0 for r in rows[1:])
    steps = read_csv(tmp_path / "steps.csv")
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [int(r["epoch"]) for r in steps] == [0, 0, 0, 1, 1, 1]
    assert (tmp_path / "checkpoint.pth").exists() and (tmp_path / "best.pth").exists()


def _brute_force_map(qx, gx, q_pid, g_pid, q_cam, g_cam):
    # Independent reference: loop over queries, drop same id + same camera,
    # AP = mean over true matches of (matches so far / rank).
    dist = 1.0 - qx.numpy() @ gx.numpy().T
    aps = []
    for i in range(len(q_pid)):
        keep = ~((g_pid == q_pid[i]) & (g_cam == q_cam[i]))
        order = np.argsort(dist[i][keep], kind="stable")
        match = (g_pid[keep] == q_pid[i])[order]
        if not match.any():
            continue
        hits = np.flatnonzero(match)
        aps.append(np.mean((np.arange(len(hits)) + 1) / (hits + 1)))
    return float(np.mean(aps))


def test_evaluation_matches_brute_force(tmp_path, tiny_world, standins):
    from reidgraph.data.image_dataset import ImageDataset
    from reidgraph.data.transforms import build_transforms

    result = fit(standins.CentroidRecipe(), tiny_world, output_dir=str(tmp_path), epochs=1, iters=2)
    tf = build_transforms(64, 32, train=False)
    feats = {
        s: extract_features(
            result.model,
            ImageDataset(tiny_world.split(s), tf, images=tiny_world.render(s)),
            verbose=False,
        )
        for s in ("query", "gallery")
    }
    q, g = tiny_world.query, tiny_world.gallery
    expected = _brute_force_map(
        feats["query"], feats["gallery"], q.pids, g.pids, q.camids, g.camids
    )
    assert result.metrics["mAP"] == pytest.approx(expected, abs=1e-5)
    assert result.history[-1]["mAP"] == result.metrics["mAP"]


def test_nan_loss_stops_with_advice(tmp_path, train_only_world, standins):
    class NaNAtStep2(standins.CentroidRecipe):
        def loss(self, batch, outputs, state):
            value = super().loss(batch, outputs, state)
            return value * float("nan") if state.step == 2 else value

    with pytest.raises(
        NonFiniteLossError,
        match=r"became nan at epoch 1, step 0 of the epoch "
        r"\(global step 2\).*Lower the learning rate \(lr=0.01\), clip gradients",
    ):
        fit(NaNAtStep2(), train_only_world, output_dir=str(tmp_path), epochs=2, iters=2)


def test_inf_loss_term_is_named(tmp_path, train_only_world, standins):
    class InfTerm(standins.CentroidRecipe):
        def loss(self, batch, outputs, state):
            return {"ce": super().loss(batch, outputs, state), "bad": outputs.sum() * float("inf")}

    with pytest.raises(NonFiniteLossError, match=r"loss terms: ce=.*, bad=(-)?inf"):
        fit(InfTerm(), train_only_world, output_dir=str(tmp_path), epochs=1, iters=1)


def test_all_outliers_stops_with_advice(tmp_path, train_only_world, standins):
    with pytest.raises(
        RecipeError,
        match=r"epoch 0: the pseudo-labeler of recipe 'centroid' "
        r"found nothing to train on: no clusters found: all 155 samples are "
        r"outliers.*Change the labeler's parameters",
    ):
        fit(standins.CentroidRecipe("outliers"), train_only_world, output_dir=str(tmp_path))


def test_one_cluster_stops_with_advice(tmp_path, train_only_world, standins):
    with pytest.raises(
        RecipeError,
        match=r"found 1 cluster\(s\) among 155 training images "
        r"\(0 outliers\), so there is nothing to contrast.*raise 'eps'",
    ):
        fit(standins.CentroidRecipe("one"), train_only_world, output_dir=str(tmp_path))


def test_per_camera_recipe_needs_two_cameras(tmp_path, tiny_world, standins):
    class PerCamera(standins.CentroidRecipe):
        min_cameras = 2

    one_cam = ReIDSplit([dataclasses.replace(r, camid=0) for r in tiny_world.train], "train")
    ds = dataclasses.replace(tiny_world, name="one-cam", train=one_cam)
    with pytest.raises(
        RecipeError,
        match=r"needs training images from at least 2 cameras, but "
        r"the training split of dataset 'one-cam' has 1 camera\(s\) \(camid \[0\]\)",
    ):
        fit(PerCamera(), ds, output_dir=str(tmp_path))


def test_records_without_images(tmp_path, tiny_world, standins):
    plain = ReIDDataset("plain", tiny_world.train, tiny_world.query, tiny_world.gallery)
    with pytest.raises(RecipeError, match="records without an image path"):
        fit(standins.CentroidRecipe(), plain, output_dir=str(tmp_path))
    empty = ReIDDataset("empty", ReIDSplit([], "train"), tiny_world.query, tiny_world.gallery)
    with pytest.raises(RecipeError, match="dataset 'empty' has no training images"):
        fit(standins.CentroidRecipe(), empty, output_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1.0], TypeError, "must be a scalar tensor or a non-empty dict"),
        ({}, TypeError, "must be a scalar tensor or a non-empty dict"),
        ("vector", ValueError, r"must be a scalar, got shape \(2,\)"),
        ("dict-vector", ValueError, "loss term 'a' must be a scalar tensor"),
    ],
)
def test_bad_loss_values(tmp_path, train_only_world, standins, value, error, match):
    class Bad(standins.CentroidRecipe):
        def loss(self, batch, outputs, state):
            if value == "vector":
                return outputs.sum(0)[:2]
            if value == "dict-vector":
                return {"a": outputs.sum(0)}
            return value

    with pytest.raises(error, match=match):
        fit(Bad(), train_only_world, output_dir=str(tmp_path), epochs=1, iters=1)


def test_sampler_with_no_full_batch(tmp_path, train_only_world, standins):
    class Few(standins.CentroidRecipe):
        def make_sampler(self, state):
            return [0, 1, 2]

    with pytest.raises(
        RecipeError,
        match=r"gives 3 images per process, fewer than one batch "
        r"of 16; lower batch_size",
    ):
        fit(Few(), train_only_world, output_dir=str(tmp_path))


def test_setup_errors(tmp_path, train_only_world, standins):
    with pytest.raises(TypeError, match="'recipe' must be a Recipe"):
        Trainer(object())
    with pytest.raises(TypeError, match="'config' must be a TrainConfig"):
        Trainer(standins.CentroidRecipe(), {"epochs": 1})
    with pytest.raises(ValueError, match="amp_dtype='float16' needs CUDA"):
        fit(standins.CentroidRecipe(), train_only_world, device="cpu", amp=True)
    with pytest.raises(TypeError, match="'model' must be a torch.nn.Module"):
        fit(standins.CentroidRecipe(), train_only_world, model="resnet")

    class NoParams(standins.CentroidRecipe):
        def param_groups(self, model, config):
            return []

    with pytest.raises(RecipeError, match="returned no trainable parameter groups"):
        fit(NoParams(), train_only_world, output_dir=str(tmp_path))
    with pytest.raises(NotImplementedError, match="must implement make_labeler"):
        Recipe().make_labeler(None)


def test_recipe_parameters_and_config(standins):
    recipe = standins.CentroidRecipe(temperature=0.2)
    assert recipe.get_params() == {"mode": "truth", "temperature": 0.2}
    assert repr(recipe) == "CentroidRecipe(mode='truth', temperature=0.2)"
    cfg = recipe.config(epochs=5)
    assert isinstance(cfg, TrainConfig)
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (5, 1e-2, 16)  # override, defaults, defaults
    # A model without backbone/head split: one group of all parameters.
    groups = Recipe().param_groups(torch.nn.Linear(2, 2), TrainConfig(lr=0.5))
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [("all", 0.5, 2)]


def test_permutation_sampler_partitions_over_ranks():
    parts = []
    for rank in range(2):
        s = PermutationSampler(5, seed=3, rank=rank, world_size=2)
        s.set_epoch(1)
        parts.append(list(s))
        assert len(s) == 3
    # Five items dealt over two ranks of three: all covered, one repeated.
    assert sorted(set(parts[0] + parts[1])) == [0, 1, 2, 3, 4]
    s = PermutationSampler(5, seed=3)
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(0)
    assert list(s) == first and sorted(first) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="'n' must be >= 1"):
        PermutationSampler(0)
