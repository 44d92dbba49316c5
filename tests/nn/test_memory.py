"""Instance, cluster and class memories: updates worked out by hand."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch

import reidgraph.nn.memory as memory_module
from reidgraph.labelers import ClusterLabels
from reidgraph.nn.memory import (
    ClassMemory,
    ClusterMemory,
    InstanceMemory,
    all_gather_varlen,
    momentum_update_,
    mprd_update_rate,
)


# ---------------------------------------------------------------- instance
def test_instance_memory_gfusion_eq14_by_hand():
    mem = InstanceMemory(3, 2)  # m = 0.01, G-Fusion Sec. 4.2
    assert mem.momentum == 0.01 and not mem.normalize
    mem.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    mem.update(torch.tensor([[0.0, 1.0], [3.0, 3.0]]), torch.tensor([0, 2]))
    # row 0: 0.01*[1, 0] + 0.99*[0, 1]; row 2: 0.01*[1, 1] + 0.99*[3, 3]; row 1 untouched
    expected = torch.tensor([[0.01, 0.99], [0.0, 1.0], [2.98, 2.98]])
    torch.testing.assert_close(mem.features, expected)


def test_instance_memory_mprd_eq1_by_hand():
    gamma = mprd_update_rate(20, 40)  # 1 - 0.5 * 20/39
    assert gamma == pytest.approx(1 - 0.5 * 20 / 39)
    mem = InstanceMemory(2, 2, normalize=True)
    mem.reset(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))  # normalised on reset
    torch.testing.assert_close(mem.features, torch.eye(2))
    mem.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]), momentum=0.25)  # gamma = 0.75
    # 0.25*[1, 0] + 0.75*[0, 1] = [0.25, 0.75], norm sqrt(0.625)
    n = math.sqrt(0.625)
    torch.testing.assert_close(mem.features[0], torch.tensor([0.25 / n, 0.75 / n]))


def test_mprd_update_rate_schedule():
    assert mprd_update_rate(0) == 1.0  # first epoch: the memory is the current feature
    assert mprd_update_rate(39) == 0.5  # 40th epoch
    assert mprd_update_rate(100) == 0.5
    assert mprd_update_rate(5, 1) == 1.0
    assert mprd_update_rate(1, 3, start=0.2, end=0.6) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="'epoch' must be >= 0"):
        mprd_update_rate(-1)
    with pytest.raises(ValueError, match=r"'end' must be in \[0, 1\]"):
        mprd_update_rate(0, end=1.5)


def test_repeated_indices_follow_batch_order():
    bank = torch.zeros(3, 1)
    # index 1 three times (values 1, 2, 4), index 0 once between them, m = 0.5:
    # b1: 0 -> 0.5 -> 1.25 -> 2.625 ; b0: 0 -> 1.5
    momentum_update_(
        bank, torch.tensor([1, 0, 1, 1]), torch.tensor([[1.0], [3.0], [2.0], [4.0]]), 0.5
    )
    torch.testing.assert_close(bank, torch.tensor([[1.5], [2.625], [0.0]]))


def test_repeated_indices_with_normalisation_match_a_loop():
    g = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=1)
    index = torch.tensor([3, 1, 3, 3, 0, 1])
    value = torch.randn(6, 4, generator=g)
    ref = bank.clone()
    for i, v in zip(index.tolist(), value, strict=True):  # the sequential definition
        ref[i] = 0.1 * ref[i] + 0.9 * v
        ref[i] = ref[i] / ref[i].norm()
    momentum_update_(bank, index, value, 0.1, normalize=True)
    torch.testing.assert_close(bank, ref)


def test_instance_memory_is_a_buffer_without_grad():
    mem = InstanceMemory(4, 3, momentum=0.5)
    assert "features" in mem.state_dict() and list(mem.parameters()) == []
    feats = torch.ones(2, 3, requires_grad=True)
    mem.update(feats * 2, torch.tensor([0, 1]))
    assert not mem.features.requires_grad
    torch.testing.assert_close(mem.features[:2], torch.ones(2, 3))
    sims = mem(torch.tensor([[1.0, 0.0, 0.0]]))
    assert sims.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    twin = InstanceMemory(4, 3)
    twin.load_state_dict(mem.state_dict())
    torch.testing.assert_close(twin.features, mem.features)
    assert "momentum=0.5" in repr(mem)


def test_instance_memory_errors():
    mem = InstanceMemory(3, 2)
    with pytest.raises(ValueError, match="'feats' must have 2 columns"):
        mem.update(torch.zeros(1, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"sample indices in \[0, 2\], found \[0, 3\]"):
        mem.update(torch.zeros(2, 2), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer sample indices"):
        mem.update(torch.zeros(1, 2), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="length 2"):
        mem.update(torch.zeros(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="finite"):
        mem.update(torch.full((1, 2), float("nan")), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"'momentum' must be in \[0, 1\], got 2.0"):
        mem.update(torch.zeros(1, 2), torch.tensor([0]), momentum=2.0)
    with pytest.raises(ValueError, match=r"one row per sample \(3\), got 2"):
        mem.reset(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="'momentum' must be a float"):
        InstanceMemory(3, 2, momentum="0.1")
    with pytest.raises(TypeError, match="'normalize' must be a bool"):
        InstanceMemory(3, 2, normalize=1)
    with pytest.raises(ValueError, match="'num_samples' must be >= 1"):
        InstanceMemory(0, 2)


# ----------------------------------------------------------------- cluster
def test_cluster_memory_reset_gur_eq1_by_hand():
    mem = ClusterMemory(2)
    assert (mem.momentum, mem.temperature) == (0.1, 0.05)
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [5.0, 5.0]])
    mem.reset(feats, torch.tensor([0, 0, 1, -1]))
    # cluster 0: mean([1,0],[0,1]) = [.5,.5] -> normalised; cluster 1: [0, 2] -> [0, 1];
    # the outlier [5, 5] is left out
    h = 1 / math.sqrt(2)
    torch.testing.assert_close(mem.features, torch.tensor([[h, h], [0.0, 1.0]]))
    assert mem.num_clusters == 2
    mem.reset(feats[:3], ClusterLabels(torch.tensor([4, 4, 4])))  # a ClusterLabels works too
    assert mem.num_clusters == 1


def test_cluster_memory_update_by_hand():
    mem = ClusterMemory(2, momentum=0.1)
    mem.reset(torch.eye(2), torch.tensor([0, 1]))
    # two samples of cluster 0 in one batch, applied in order; the query [0, 2] is
    # normalised to [0, 1] first.
    mem.update(torch.tensor([[0.0, 2.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    a = torch.tensor([0.1, 0.9]) / math.sqrt(0.1**2 + 0.9**2)
    b = 0.1 * a + torch.tensor([0.0, 0.9])
    torch.testing.assert_close(mem.features[0], b / b.norm())
    torch.testing.assert_close(mem.features[1], torch.tensor([0.0, 1.0]))


def test_cluster_memory_logits_by_hand():
    mem = ClusterMemory(2, temperature=0.05)
    mem.reset(torch.eye(2), torch.tensor([0, 1]))
    feats = torch.tensor([[2.0, 0.0], [3.0, 4.0]], requires_grad=True)
    logits = mem.logits(feats)
    # q = [1, 0] -> [1/0.05, 0]; q = [.6, .8] -> [12, 16]
    torch.testing.assert_close(logits, torch.tensor([[20.0, 0.0], [12.0, 16.0]]))
    logits.sum().backward()
    assert feats.grad is not None and not mem.features.requires_grad
    assert torch.equal(mem(feats.detach()), logits.detach())


def test_cluster_memory_state_dict_resizes():
    mem = ClusterMemory(2)
    mem.reset(torch.eye(2).repeat(2, 1), torch.tensor([0, 1, 2, 2]))
    fresh = ClusterMemory(2)
    fresh.load_state_dict(mem.state_dict())
    torch.testing.assert_close(fresh.features, mem.features)
    assert "num_clusters=3" in repr(fresh)


def test_cluster_memory_errors():
    mem = ClusterMemory(2)
    with pytest.raises(RuntimeError, match=r"empty: call reset\(features, labels\)"):
        mem.logits(torch.zeros(1, 2))
    with pytest.raises(RuntimeError, match="empty"):
        mem.update(torch.zeros(1, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"clusters \[1\] have no member"):
        mem.reset(torch.eye(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="no cluster"):
        mem.reset(torch.eye(2), torch.tensor([-1, -1]))
    with pytest.raises(TypeError, match="integer cluster labels"):
        mem.reset(torch.eye(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=">= -1"):
        mem.reset(torch.eye(2), torch.tensor([0, -3]))
    with pytest.raises(ValueError, match="'features' must have 2 columns"):
        mem.reset(torch.zeros(2, 3), torch.tensor([0, 1]))
    mem.reset(torch.eye(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="outliers \\(-1\\) must be left out of the batch"):
        mem.update(torch.eye(2), torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="'temperature' must be > 0"):
        ClusterMemory(2, temperature=0.0)
    with pytest.raises(TypeError, match="'temperature' must be a float"):
        ClusterMemory(2, temperature=None)


# ------------------------------------------------------------------- class
def test_class_memory_direct_replacement_last_wins():
    mem = ClassMemory(3, (1, 2, 2))  # QAConv-like feature maps [d, h, w]
    maps = torch.arange(3 * 4, dtype=torch.float32).view(3, 1, 2, 2)
    mem.update(maps, torch.tensor([2, 0, 2]))
    # class 2 keeps its last sample (the third map), class 0 the second, class 1 nothing
    torch.testing.assert_close(mem.features[2], maps[2])
    torch.testing.assert_close(mem.features[0], maps[1])
    assert mem.features[1].abs().sum() == 0
    assert mem.filled.tolist() == [True, False, True]
    mem.update(torch.full((1, 1, 2, 2), 7.0), torch.tensor([2]))  # replaced, not averaged
    assert mem.features[2].unique().tolist() == [7.0]
    assert set(mem.state_dict()) == {"features", "filled"}


def test_class_memory_half_and_errors():
    mem = ClassMemory(2, 3, dtype=torch.float16)
    mem.update(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([1]))
    assert mem.features.dtype == torch.float16 and mem.features[1].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"shape \[B, 3\], got \(1, 4\)"):
        mem.update(torch.zeros(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 1\]"):
        mem.update(torch.zeros(1, 3), torch.tensor([2]))
    with pytest.raises(TypeError, match="floating type"):
        ClassMemory(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="'shape' must be >= 1"):
        ClassMemory(2, (3, 0))


# ------------------------------------------------------------- distributed
def test_all_gather_without_process_group_is_identity():
    t = torch.tensor([1, 2])
    assert all_gather_varlen(t)[0] is t


_DDP_SCRIPT = textwrap.dedent(
    """
    import importlib.util, os, sys
    import torch, torch.distributed as dist

    # Load memory.py alone: the reidgraph.nn package would import PyG in every rank.
    spec = importlib.util.spec_from_file_location("memory", sys.argv[4])
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)

    rank, out = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{sys.argv[3]}",
                            rank=rank, world_size=2)
    inst = memory.InstanceMemory(4, 1, momentum=0.5)
    # rank 0 writes sample 0 once; rank 1 writes samples 3 and 0 (a batch of another size)
    if rank == 0:
        inst.update(torch.tensor([[2.0]]), torch.tensor([0]))
    else:
        inst.update(torch.tensor([[4.0], [6.0]]), torch.tensor([3, 0]))
    clu = memory.ClusterMemory(2, momentum=0.5)
    clu.reset(torch.eye(2), torch.tensor([0, 1]))
    if rank == 0:
        clu.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    else:
        clu.update(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 1]))
    torch.save({"inst": inst.features, "clu": clu.features}, os.path.join(out, f"{rank}.pt"))
    dist.destroy_process_group()
    """
)


def test_updates_are_gathered_across_two_gloo_ranks(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "ddp_memory.py"
    script.write_text(_DDP_SCRIPT)
    args = [str(tmp_path), str(port), memory_module.__file__]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    # rank order: sample 0 <- 2 (rank 0), then 3 <- 4 and 0 <- 6 (rank 1), m = 0.5:
    # b0: 0 -> 1 -> 3.5 ; b3: 0 -> 2
    expected = torch.tensor([[3.5], [0.0], [0.0], [2.0]])
    for r in (r0, r1):
        torch.testing.assert_close(r["inst"], expected)
    # centroid 0: 0.5*[1,0] + 0.5*[0,1] -> [h, h]; centroid 1: [0,1] -> 0.5*[0,1] + 0.5*[1,0]
    # -> [h, h], then 0.5*[h, h] + 0.5*[0, 1] = [h/2, h/2 + 1/2] normalised
    h = 1 / math.sqrt(2)
    c1 = torch.tensor([h / 2, h / 2 + 0.5])
    expected_c = torch.stack([torch.tensor([h, h]), c1 / c1.norm()])
    for r in (r0, r1):
        torch.testing.assert_close(r["clu"], expected_c)


@pytest.mark.gpu
def test_memories_on_cuda_match_cpu():
    g = torch.Generator().manual_seed(0)
    feats, index = torch.randn(8, 4, generator=g), torch.tensor([0, 2, 0, 1, 2, 2, 1, 0])
    for device in ("cpu", "cuda"):
        mem = ClusterMemory(4).to(device)
        mem.reset(
            torch.randn(6, 4, generator=torch.Generator().manual_seed(1)).to(device),
            torch.tensor([0, 1, 2, 0, 1, 2]).to(device),
        )
        mem.update(feats.to(device), index.to(device))
        inst = InstanceMemory(3, 4, momentum=0.3).to(device)
        inst.update(feats.to(device), index.to(device))
        cls = ClassMemory(3, 4).to(device)
        cls.update(feats.to(device), index.to(device))
        if device == "cpu":
            ref = (mem.features, inst.features, cls.features)
        else:
            for a, b in zip((mem.features, inst.features, cls.features), ref, strict=True):
                assert a.is_cuda
                torch.testing.assert_close(a.cpu(), b)
