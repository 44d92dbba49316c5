"""Tests of extract_features / extract_data against a per-image loop, on 1 and 2 (gloo) ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from reidgraph.data import make_world
from reidgraph.data.image_dataset import ImageDataset
from reidgraph.data.transforms import build_transforms
from reidgraph.models import ReIDNet
from reidgraph.train.extract import extract_data, extract_features

N_IMAGES = 11  # odd: the two ranks' shards differ in size


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dataset():
    world = make_world("tiny", seed=0)
    split = world.gallery[:N_IMAGES]
    images = world.render("gallery", index=range(N_IMAGES))
    return ImageDataset(split, build_transforms(32, 16, train=False), images=images)


@pytest.fixture(scope="module")
def dataset():
    return _dataset()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = ReIDNet(18)
    # Non-trivial BNNeck statistics, so that eval mode visibly differs from train mode.
    net.bn.running_mean.uniform_(-0.5, 0.5)
    return net


def _reference(model, dataset, flip=True):
    """One image at a time: f(I) (+ f(mirror I)), divided by its norm."""
    model.eval()
    rows = []
    with torch.no_grad():
        for i in range(len(dataset)):
            img = dataset[i]["img"][None]
            f = model(img)
            if flip:
                f = f + model(torch.flip(img, dims=[3]))
            rows.append(f[0] / f[0].norm())
    return torch.stack(rows)


def test_matches_per_image_loop(model, dataset):
    ref = _reference(model, dataset)
    model.train()
    x = extract_features(model, dataset, batch_size=4, verbose=False)
    assert x.shape == (N_IMAGES, 512) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.allclose(x, ref, atol=1e-5)
    assert torch.allclose(x.norm(dim=1), torch.ones(N_IMAGES), atol=1e-6)
    assert model.training  # the caller's mode is restored
    no_flip = extract_features(model, dataset, batch_size=5, flip=False, verbose=False)
    assert torch.allclose(no_flip, _reference(model, dataset, flip=False), atol=1e-5)
    assert not torch.allclose(no_flip, x, atol=1e-3)


def test_eval_mode_kept_and_features_usable_in_autograd(model, dataset):
    model.eval()
    x = extract_features(model, dataset, batch_size=64, verbose=False, out_device=None)
    assert not model.training
    # Not inference tensors: a memory seeded with them can take part in a backward pass.
    w = torch.ones(512, requires_grad=True)
    (x * w).sum().backward()
    assert w.grad is not None


def test_extract_data_spine(model, dataset):
    data = extract_data(model, dataset, batch_size=6, verbose=False)
    split = dataset.split
    assert data.num_nodes == N_IMAGES and data.x.shape == (N_IMAGES, 512)
    assert data.camid.tolist() == split.camids.tolist()
    assert data.pid.tolist() == split.pids.tolist()
    assert data.modality.tolist() == split.modalities.tolist()
    assert torch.equal(data.time, torch.as_tensor(split.times, dtype=torch.float64))
    explicit = extract_data(model, dataset, split, batch_size=6, verbose=False)
    assert torch.allclose(explicit.x, data.x)


class _Fixed(nn.Module):
    """Returns a fixed output whatever the images."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images):
        return self.fn(images)


def test_errors(model, dataset):
    empty = ImageDataset(dataset.split[:0], images=torch.zeros(0, 8, 4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="'dataset' is empty"):
        extract_features(model, empty, verbose=False)
    with pytest.raises(TypeError, match="'model' must be a torch.nn.Module, got function"):
        extract_features(lambda x: x, dataset, verbose=False)
    with pytest.raises(TypeError, match="'dataset' must be a map-style dataset"):
        extract_features(model, iter([]), verbose=False)
    with pytest.raises(ValueError, match="'batch_size' must be >= 1"):
        extract_features(model, dataset, batch_size=0, verbose=False)
    with pytest.raises(ValueError, match="'num_workers' must be >= 0"):
        extract_features(model, dataset, num_workers=-1, verbose=False)
    tuple_model = _Fixed(lambda im: (im.mean((2, 3)), None))
    with pytest.raises(TypeError, match="feature tensor \\[B, D\\] in eval mode, got tuple"):
        extract_features(tuple_model, dataset, verbose=False)
    flat_model = _Fixed(lambda im: im.mean((1, 2, 3)))
    with pytest.raises(ValueError, match=r"features \[B, D\] for a batch of 11 images, got shape"):
        extract_features(flat_model, dataset, verbose=False)
    nan_model = _Fixed(lambda im: torch.full((im.size(0), 4), float("nan")))
    with pytest.raises(ValueError, match="non-finite features .*44 NaN.*it has diverged"):
        extract_features(nan_model, dataset, flip=False, verbose=False)


def test_extract_data_errors(model, dataset):
    with pytest.raises(ValueError, match="'split' has 10 records but 'dataset' 11 images"):
        extract_data(model, dataset, dataset.split[:10], verbose=False)
    with pytest.raises(TypeError, match="'split' must be a ReIDSplit, got list"):
        extract_data(model, dataset, [1], verbose=False)
    plain = torch.utils.data.TensorDataset(torch.zeros(2, 3, 32, 16))
    with pytest.raises(ValueError, match="'split' is required: TensorDataset has no ReIDSplit"):
        extract_data(model, plain, verbose=False)


_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    def run(rank, world_size, folder, test_file):
        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world_size
        )
        import importlib.util
        spec = importlib.util.spec_from_file_location("under_test", test_file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        from reidgraph.models import ReIDNet
        from reidgraph.train.extract import extract_features
        model = ReIDNet(18)
        model.load_state_dict(torch.load(f"{folder}/model.pt", weights_only=True))
        # DDP-wrapped: extraction must unwrap it (shards of 6 and 5 images, 2 and 2 batches).
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        x = extract_features(ddp, mod._dataset(), batch_size=3, verbose=False)
        torch.save(x, f"{folder}/rank{rank}.pt")
        dist.barrier()
        dist.destroy_process_group()

    if __name__ == "__main__":
        mp.spawn(run, args=(2, sys.argv[1], sys.argv[2]), nprocs=2)
    """
)


def test_two_gloo_ranks_get_the_full_matrix_in_order(tmp_path, model, dataset):
    torch.save(model.state_dict(), tmp_path / "model.pt")
    script = tmp_path / "run_extract.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), os.path.abspath(__file__)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = _reference(model, dataset)
    for rank in range(2):
        x = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert x.shape == (N_IMAGES, 512)
        assert torch.allclose(x, ref, atol=1e-5), f"rank {rank}"
