"""Distributed training: helpers in one process, and the real loop under
``torchrun`` with two CPU processes (gloo)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from reidgraph.labelers import ClusterLabels
from reidgraph.train import distributed as D
from reidgraph.train.logger import read_csv


def test_single_process_fallbacks(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = D.init_distributed("cpu")
    assert (info.rank, info.world_size, info.distributed, info.is_main) == (0, 1, False, True)
    assert info.device == torch.device("cpu") and info.backend is None
    assert not D.is_distributed() and D.get_rank() == 0 and D.get_world_size() == 1
    x = torch.arange(6.0).view(3, 2)
    assert D.all_gather_rows(x) is x
    assert torch.equal(D.gather_strided(x, 3), x)
    obj = ClusterLabels(torch.tensor([0, -1, 1]))
    assert D.broadcast_object(obj) is obj
    assert float(D.all_reduce_mean(torch.tensor(2.5))) == 2.5
    D.barrier()  # no-op
    D.cleanup_distributed()  # no-op


def test_init_errors(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer .* got 'two'"):
        D.init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"backend='mpi' among choices \['gloo', 'nccl'\]"):
        D.init_distributed("cpu", backend="mpi")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available; pass device='cpu'"):
            D.init_distributed("cuda")


def test_gather_strided_checks_shard_size():
    with pytest.raises(ValueError, match=r"must hold rows range\(0, 4, 1\), i.e. 4 rows, got 3"):
        D.gather_strided(torch.zeros(3, 2), 4)


def _torchrun(script: str, tmp_path, timeout: int = 240) -> str:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    # --standalone: a local rendezvous on a free port (no fixed MASTER_PORT to clash).
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(path), str(tmp_path),
    ]  # fmt: skip
    # A new session, so that a hang can be ended with the workers torchrun started.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s:\n{output[-5000:]}")
    assert proc.returncode == 0, output[-8000:]
    return output


SCRIPT = """
import dataclasses, sys, torch
from reidgraph.data import make_world
from reidgraph.data.records import ReIDSplit
from reidgraph.labelers import ClusterLabels
from reidgraph.train import distributed as D
from reidgraph.train import fit
from reidgraph.train.recipes import ClusterContrast

out = sys.argv[1]

# 1. The collectives on their own.
info = D.init_distributed("cpu")
r, w = info.rank, info.world_size
# Row i of a 5 x 2 matrix is (i, 10 i); rank r holds rows r, r + 2, ...
rows = torch.arange(r, 5, w, dtype=torch.float32)
full = D.gather_strided(torch.stack([rows, 10 * rows], 1), 5)
ragged = D.all_gather_rows(torch.full((r + 1, 1), float(r)))
obj = D.broadcast_object(ClusterLabels(torch.tensor([3, 3, -1])) if r == 0 else None)
mean = D.all_reduce_mean(torch.tensor(float(r)))
bn = torch.nn.BatchNorm1d(2)
bn.running_mean.fill_(float(r))
D.broadcast_buffers(bn)
torch.save({"info": (r, w, info.backend), "full": full, "ragged": ragged,
            "labels": obj.labels, "mean": mean, "bn": bn.running_mean}, f"{out}/coll{r}.pt")

# 2. The training loop: the baseline recipe, ResNet-18 on the tiny world. The
# clustering of epoch 0 is kept for epoch 1, so that the two epochs' losses
# are comparable.
class Recording(ClusterContrast):
    def pseudo_label(self, data, state):
        with open(f"{out}/labelled_by_r{state.dist.rank}_e{state.epoch}", "w"):
            pass
        if not hasattr(self, "kept"):
            self.kept = super().pseudo_label(data, state)
        return self.kept

    def on_labels(self, state):
        super().on_labels(state)
        torch.save({"labels": state.labels.cpu(), "x": state.data.x.cpu()},
                   f"{out}/labels_r{state.dist.rank}_e{state.epoch}.pt")

    def loss(self, batch, outputs, state):
        value = super().loss(batch, outputs, state)
        self.losses.append(float(value["nce"].detach()))
        return value

world = make_world("tiny", seed=0, verbose=False)
world = dataclasses.replace(world, query=ReIDSplit([], "query"), gallery=ReIDSplit([], "gallery"))
recipe = Recording(eps=0.5, k1=10, k2=3)
recipe.losses = []
result = fit(recipe, world, depth=18, last_stride=2, height=64, width=32, flip=False,
             epochs=2, iters=6, batch_size=16, num_instances=4, num_workers=0,
             output_dir=f"{out}/run", verbose=False, log_every=1)
torch.save({"params": {k: v.clone() for k, v in result.model.state_dict().items()},
            "losses": recipe.losses}, f"{out}/final_r{r}.pt")
D.cleanup_distributed()
"""


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    _torchrun(SCRIPT, out)
    return out


def test_collectives_under_torchrun(torchrun_out):
    for r in range(2):
        got = torch.load(torchrun_out / f"coll{r}.pt", weights_only=True)
        assert got["info"] == (r, 2, "gloo")
        i = torch.arange(5.0)
        assert torch.equal(got["full"], torch.stack([i, 10 * i], 1))
        assert got["ragged"].flatten().tolist() == [0.0, 1.0, 1.0]  # 1 row of rank 0, 2 of rank 1
        assert got["labels"].tolist() == [0, 0, -1]  # rank 0's labels, compacted
        assert float(got["mean"]) == 0.5
        assert got["bn"].tolist() == [0.0, 0.0]  # rank 0's statistics everywhere


def test_training_under_torchrun_two_cpu_processes(torchrun_out):
    tmp_path = torchrun_out
    for epoch in range(2):
        a = torch.load(tmp_path / f"labels_r0_e{epoch}.pt", weights_only=True)
        b = torch.load(tmp_path / f"labels_r1_e{epoch}.pt", weights_only=True)
        # Features gathered from both shards; labels computed once, on rank 0,
        # and broadcast.
        assert torch.equal(a["x"], b["x"]) and a["x"].shape == (155, 512)
        assert torch.equal(a["labels"], b["labels"])
        assert int(a["labels"].max()) >= 1  # at least two clusters
        assert (tmp_path / f"labelled_by_r0_e{epoch}").exists()
        assert not (tmp_path / f"labelled_by_r1_e{epoch}").exists()
    f0 = torch.load(tmp_path / "final_r0.pt", weights_only=True)
    f1 = torch.load(tmp_path / "final_r1.pt", weights_only=True)
    # DDP kept the replicas identical (batch-norm statistics: rank 0's).
    for k, v in f0["params"].items():
        assert torch.equal(v, f1["params"][k]), k
    # Each rank trained on its own half of every batch...
    assert len(f0["losses"]) == len(f1["losses"]) == 12
    assert f0["losses"] != f1["losses"]
    # ...the log (rank 0) holds the loss averaged over ranks, step by step...
    steps = read_csv(tmp_path / "run" / "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 13))
    for i, row in enumerate(steps):
        assert float(row["loss"]) == pytest.approx(
            (f0["losses"][i] + f1["losses"][i]) / 2, rel=1e-4
        )
    # ...and on the same labels the second epoch's loss is lower.
    epochs = read_csv(tmp_path / "run" / "epochs.csv")
    assert len(epochs) == 2
    assert float(epochs[1]["loss"]) < float(epochs[0]["loss"])
    assert (tmp_path / "run" / "checkpoint.pth").exists()
