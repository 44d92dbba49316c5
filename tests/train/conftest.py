"""Stand-ins for the training tests: a tiny CNN, a ground-truth labeler and a
minimal centroid-contrast recipe, so the loop is tested on its own."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidgraph.data import make_world
from reidgraph.data.records import ReIDSplit
from reidgraph.labelers import ClusterLabels, PseudoLabeler
from reidgraph.train import Recipe


class TinyNet(nn.Module):
    """Conv + BN + pooled linear head: ~2k parameters, milliseconds per batch."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 2)),
            nn.Flatten(),
        )
        self.head = nn.Linear(64, dim)
        self.out_dim = dim

    def backbone_parameters(self):
        return self.backbone.parameters()

    def head_parameters(self):
        return self.head.parameters()

    def forward(self, x):
        return self.head(self.backbone(x))


class TruthLabeler(PseudoLabeler):
    """Clusters = true identities (or all outliers / one cluster, for error tests)."""

    def __init__(self, mode: str = "truth") -> None:
        self.mode = mode

    def label(self, data):
        if self.mode == "outliers":
            return ClusterLabels(torch.full_like(data.pid, -1))
        if self.mode == "one":
            return ClusterLabels(torch.zeros_like(data.pid))
        return ClusterLabels(data.pid)


class CentroidRecipe(Recipe):
    """Cross-entropy against L2-normalised cluster centroids, recording every hook."""

    name = "centroid"
    defaults = {
        "optimizer": "adam",
        "lr": 1e-2,
        "epochs": 2,
        "iters": 2,
        "batch_size": 16,
        "num_instances": 4,
        "height": 64,
        "width": 32,
        "num_workers": 0,
        "extract_batch_size": 64,
        "verbose": False,
        "step_size": None,
    }

    def __init__(self, mode: str = "truth", temperature: float = 0.1) -> None:
        self.mode = mode
        self.temperature = temperature
        self.events: list[str] = []
        self.records: dict[str, list] = {}

    def _rec(self, name, value=None):
        self.events.append(name)
        if value is not None:
            self.records.setdefault(name, []).append(value)

    def check_dataset(self, dataset):
        self._rec("check_dataset")
        super().check_dataset(dataset)

    def build_model(self, config):
        self._rec("build_model")
        return TinyNet()

    def param_groups(self, model, config):
        self._rec("param_groups")
        return super().param_groups(model, config)

    def on_epoch_start(self, state):
        self._rec("on_epoch_start")

    def make_labeler(self, state):
        return TruthLabeler(self.mode)

    def pseudo_label(self, data, state):
        self._rec("pseudo_label", data)
        return super().pseudo_label(data, state)

    def on_labels(self, state):
        self._rec("on_labels")
        super().on_labels(state)

    def make_memory(self, state):
        self._rec("make_memory")
        labels = state.labels
        keep = labels >= 0
        c = int(labels.max()) + 1
        sums = torch.zeros(c, state.data.x.size(1)).index_add_(0, labels[keep], state.data.x[keep])
        return F.normalize(sums, dim=1)

    def make_sampler(self, state):
        self._rec("make_sampler")
        return super().make_sampler(state)

    def forward(self, model, batch, state):
        self._rec("forward")
        return model(batch["img"])

    def loss(self, batch, outputs, state):
        self._rec("loss")
        logits = F.normalize(outputs, dim=1) @ state.memory.t() / self.temperature
        return F.cross_entropy(logits, state.labels[batch["index"]])

    def after_step(self, batch, outputs, state):
        self._rec("after_step", torch.is_grad_enabled())

    def on_epoch_end(self, state):
        self._rec("on_epoch_end")
        return {"custom": 7}

    def evaluate(self, query_x, gallery_x, dataset):
        self._rec("evaluate")
        return super().evaluate(query_x, gallery_x, dataset)


@pytest.fixture(scope="session")
def tiny_world():
    return make_world("tiny", seed=0, verbose=False)


@pytest.fixture(scope="session")
def train_only_world(tiny_world):
    """The tiny world without query/gallery (no evaluation: faster)."""
    return dataclasses.replace(
        tiny_world, query=ReIDSplit([], "query"), gallery=ReIDSplit([], "gallery")
    )


@pytest.fixture
def standins():
    return SimpleNamespace(
        TinyNet=TinyNet, TruthLabeler=TruthLabeler, CentroidRecipe=CentroidRecipe
    )
