"""The baseline recipe (cluster contrast) end to end."""

import time
from types import SimpleNamespace

import numpy as np
import pytest

from reidgraph.data import make_world
from reidgraph.train import fit
from reidgraph.train.recipes import RECIPES, ClusterContrast, get_recipe


def test_paper_defaults():
    cfg = ClusterContrast().config()
    # Cluster-contrast code as used by MPRD / GUR: Adam 3.5e-4, wd 5e-4, 50 epochs of
    # 400 iterations, StepLR(20, 0.1), batch 64 with 16 images per pseudo-identity.
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay) == ("adam", 3.5e-4, 5e-4)
    assert (cfg.epochs, cfg.iters, cfg.schedule_milestones(), cfg.gamma) == (50, 400, (20, 40), 0.1)
    assert (cfg.batch_size, cfg.num_instances) == (64, 16)
    assert ClusterContrast().get_params() == {
        "eps": None, "min_samples": 4, "k1": 30, "k2": 6, "momentum": 0.1, "temperature": 0.05,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("eps", "dataset", "expected"),
    [
        (None, "market1501", 0.4),  # MPRD's scripts
        (None, "dukemtmc", 0.6),
        (None, "msmt17", 0.7),
        (None, "synthetic-small", 0.6),  # unknown dataset: cluster contrast's default
        (0.3, "market1501", 0.3),  # an explicit eps wins
    ],
)
def test_eps_per_dataset(eps, dataset, expected):
    state = SimpleNamespace(epoch=0, dataset=SimpleNamespace(name=dataset))
    labeler = ClusterContrast(eps=eps, min_samples=3, k1=20, k2=5).make_labeler(state)
    assert (labeler.eps, labeler.min_samples, labeler.k1, labeler.k2) == (expected, 3, 20, 5)


def test_registry():
    assert RECIPES["baseline"] is ClusterContrast
    assert get_recipe("Baseline") is ClusterContrast
    with pytest.raises(ValueError, match=r"recipe='nope' among choices \['baseline', "):
        get_recipe("nope")


class _Capture(ClusterContrast):
    """Records the inputs and the result of the first loss and memory update."""

    def loss(self, batch, outputs, state):
        value = super().loss(batch, outputs, state)
        if not hasattr(self, "cap"):
            self.cap = {
                "x": state.data.x.clone(),
                "labels": state.labels.clone(),
                "index": batch["index"].clone(),
                "q": outputs.bn_feat.detach().clone(),
                "loss": float(value["nce"].detach()),
                "memory_before": state.memory.features.clone(),
            }
        return value

    def after_step(self, batch, outputs, state):
        super().after_step(batch, outputs, state)
        if "memory_after" not in self.cap:
            self.cap["memory_after"] = state.memory.features.clone()


def test_loss_and_memory_follow_the_equations(tmp_path, train_only_world):
    recipe = _Capture(eps=0.5, k1=10, k2=3)
    result = fit(
        recipe,
        train_only_world,
        depth=18,
        last_stride=2,
        height=64,
        width=32,
        flip=False,
        epochs=1,
        iters=2,
        batch_size=16,
        num_instances=4,
        num_workers=0,
        output_dir=str(tmp_path),
        verbose=False,
    )
    cap = recipe.cap
    x, labels = cap["x"].double().numpy(), cap["labels"].numpy()
    n_clusters = labels.max() + 1
    assert result.history[0]["num_clusters"] == n_clusters >= 4
    # Eq. 1-2: centroid = mean feature of the cluster (outliers left out), normalised.
    centroids = np.stack([x[labels == k].mean(0) for k in range(n_clusters)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    np.testing.assert_allclose(cap["memory_before"].numpy(), centroids, atol=1e-5)
    # Eq. 3-4 with tau = 0.05, averaged over the batch, on the pseudo-label of each image.
    q = cap["q"].double().numpy()
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    targets = labels[cap["index"].numpy()]
    assert (targets >= 0).all()  # outliers are never sampled
    losses = []
    for qi, yi in zip(q, targets, strict=True):
        z = centroids @ qi / 0.05
        losses.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[yi])
    assert cap["loss"] == pytest.approx(np.mean(losses), rel=1e-4)
    # Momentum update, one sample after the other: m <- norm(0.1 m + 0.9 q).
    memory = centroids.copy()
    for qi, yi in zip(q, targets, strict=True):
        m = 0.1 * memory[yi] + 0.9 * qi
        memory[yi] = m / np.linalg.norm(m)
    np.testing.assert_allclose(cap["memory_after"].numpy(), memory, atol=1e-4)


def test_trains_on_a_dataset_root(tmp_path):
    # A real dataset loader on disk: the synthetic world written in Market-1501's layout.
    from reidgraph.data import load_dataset

    make_world(
        "tiny", seed=1, images=True, root=tmp_path / "market", image_format="jpg", verbose=False
    )
    market = load_dataset("market1501", tmp_path / "market")
    result = fit(
        ClusterContrast(eps=0.5, k1=10, k2=3),
        market,
        depth=18,
        last_stride=2,
        height=64,
        width=32,
        flip=False,
        epochs=1,
        iters=2,
        batch_size=16,
        num_instances=4,
        num_workers=0,
        output_dir=str(tmp_path / "run"),
        verbose=False,
    )
    assert 0.0 <= result.metrics["mAP"] <= 1.0
    assert np.isfinite(result.history[0]["loss"])


@pytest.mark.slow
def test_small_world_two_epochs_beat_random_init(tmp_path):
    # The acceptance run: small preset, 2 epochs, < 5 minutes on the 2-core CPU,
    # learned features better than the randomly initialised ones. Without ImageNet weights
    # the first clustering sees random features dominated by each camera's background:
    # with Market's k1=30 / eps=0.6 its same-cluster pairs are ~10% true matches (look-alikes
    # of one camera merged) and training on them does not help; the smaller k-reciprocal
    # neighbourhood of this small world (k1=10, k2=3, eps=0.5) gives ~80% precise clusters.
    # Measured (seeds 0, 1, 2; ~45 s each on an idle machine): mAP 0.029 -> 0.073,
    # 0.037 -> 0.086, 0.040 -> 0.087.
    world = make_world("small", seed=0, verbose=False)
    start = time.perf_counter()
    result = fit(
        ClusterContrast(eps=0.5, k1=10, k2=3),
        world,
        depth=18,
        height=32,
        width=16,
        flip=False,
        epochs=2,
        iters=100,
        batch_size=32,
        num_instances=4,
        num_workers=0,
        eval_before=True,
        eval_every=0,
        output_dir=str(tmp_path),
        verbose=False,
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 300, f"2 epochs took {elapsed:.0f} s"
    assert result.metrics["mAP"] > 1.5 * result.initial_metrics["mAP"]
    assert result.history[-1]["mAP"] == result.metrics["mAP"]
