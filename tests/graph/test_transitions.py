"""Tests of TransitionSet (G-Fusion Eq. 3 sets and the Eq. 4 window test)."""

from __future__ import annotations

import bisect
import random

import pytest
import torch
from torch_geometric.data import Data

from reidgraph.graph.transitions import TransitionSet

# Five nodes, three cameras, features on a line: 0, 0.1, 0.25, 1.0, 1.2.
# Neighbours best first (self excluded):
#   0: 1, 2, 3, 4      1: 0, 2, 3, 4      2: 1, 0, 3, 4
#   3: 4, 2, 1, 0      4: 3, 2, 1, 0
# camid = [0, 1, 2, 0, 1], time = [10, 14, 30, 100, 103.5] seconds.
X = torch.tensor([[0.0], [0.1], [0.25], [1.0], [1.2]])
CAM = torch.tensor([0, 1, 2, 0, 1])
TIME = torch.tensor([10.0, 14.0, 30.0, 100.0, 103.5], dtype=torch.float64)


def _data():
    return Data(x=X, camid=CAM, time=TIME)


def _t(a, b):
    return torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long)


def test_fit_ks2_by_hand():
    # k_s = 2 (self + 1): pairs (0,1) (1,0) (2,1) (3,4) (4,3); value t_i - t_j into T(c_i, c_j):
    #   (0,1): 10 - 14 = -4 -> T(0,1);   (1,0): +4 -> T(1,0);   (2,1): 30 - 14 = 16 -> T(2,1)
    #   (3,4): 100 - 103.5 = -3.5 -> T(0,1);   (4,3): +3.5 -> T(1,0)
    T = TransitionSet.fit(_data(), k_s=2, backend="torch")
    assert T.num_cameras == 3 and T.num_transitions == 5 and T.k_s == 2
    assert T.counts().tolist() == [[0, 2, 0], [2, 0, 0], [0, 1, 0]]
    assert T.values(0, 1).tolist() == [-4.0, -3.5]
    assert T.values(1, 0).tolist() == [3.5, 4.0]
    assert T.values(2, 1).tolist() == [16.0]
    # Not mirrored (Eq. 3 as written): 1's top-2 is 0, not 2, so T(1,2) is empty.
    assert T.values(1, 2).tolist() == []
    assert repr(T) == "TransitionSet(num_cameras=3, num_transitions=5, k_s=2)"


def test_fit_ks3_by_hand():
    # k_s = 3: lists 0:{1,2} 1:{0,2} 2:{1,0} 3:{4,2} 4:{3,2}
    #   T(0,1) = {10-14, 100-103.5} = {-4, -3.5}   T(0,2) = {10-30, 100-30} = {-20, 70}
    #   T(1,0) = {4, 3.5}    T(1,2) = {14-30, 103.5-30} = {-16, 73.5}
    #   T(2,0) = {30-10} = {20}    T(2,1) = {30-14} = {16}
    T = TransitionSet.fit(_data(), k_s=3, backend="torch")
    assert T.counts().tolist() == [[0, 2, 2], [2, 0, 2], [1, 1, 0]]
    assert T.values(0, 2).tolist() == [-20.0, 70.0]
    assert T.values(1, 2).tolist() == [-16.0, 73.5]
    assert T.values(2, 0).tolist() == [20.0]


def test_fit_symmetric_mirrors_pairs():
    # symmetric=True also adds t_j - t_i to T(c_j, c_i): (2,1) gives 14 - 30 = -16 to T(1,2).
    T = TransitionSet.fit(_data(), k_s=2, symmetric=True, backend="torch")
    assert T.values(1, 2).tolist() == [-16.0]
    assert T.values(0, 1).tolist() == [-4.0, -4.0, -3.5, -3.5]  # each pair seen both ways


def test_window_test_by_hand():
    T = TransitionSet.fit(_data(), k_s=2, backend="torch")  # T(0,1) = {-4, -3.5}, ...
    a, b = _t([0, 0, 0, 1, 1, 0, 2, 2], [1, 1, 1, 0, 2, 0, 1, 1])
    dt = torch.tensor([-5.0, -2.4, -2.5, -4.0, 16.0, 0.0, 15.2, 17.5])
    # [-6, -4] hits -4 (closed interval);  [-3.4, -1.4] misses -3.5;  [-3.5, -1.5] hits -3.5;
    # T(1,0) = {3.5, 4} has no value in [-5, -3] (the sign matters);  T(1,2) is empty;
    # same camera (0,0) is never a transition;  [14.2, 16.2] hits 16;  [16.5, 18.5] misses.
    assert T.contains(a, b, dt, delta=1.0).tolist() == [
        True,
        False,
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    # delta = 0: exact membership only.
    a, b = _t([0, 0], [1, 1])
    assert T.contains(a, b, torch.tensor([-4.0, -4.1]), delta=0.0).tolist() == [True, False]
    # Default delta is 1.0 s (25 frames at 25 fps); integer dt is accepted.
    assert T.contains(a, b, torch.tensor([-3, -6])).tolist() == [True, False]
    # Numpy / list input.
    assert T.contains([0], [1], [-4.0]).tolist() == [True]


def test_contains_pairs_by_hand():
    T = TransitionSet.fit(_data(), k_s=2, backend="torch")
    camid = torch.tensor([0, 1, 1])
    time = torch.tensor([0.0, 4.5, 20.0])
    # (0,1): dt = -4.5 -> [-5.5, -3.5] hits -4;  (0,2): dt = -20 -> no;  (1,0): +4.5 -> hits 4.
    pairs = torch.tensor([[0, 0, 1], [1, 2, 0]])
    assert T.contains_pairs(camid, time, pairs).tolist() == [True, False, True]


def _brute_window(sets, a, b, dt, delta):
    """Independent reference: loop over the pairs, bisect into a sorted Python list."""
    out = []
    for ai, bi, d in zip(a, b, dt, strict=True):
        vals = sets.get((ai, bi), [])
        k = bisect.bisect_left(vals, d - delta)
        out.append(k < len(vals) and vals[k] <= d + delta)
    return out


def test_window_test_matches_brute_force_random():
    rng = random.Random(0)
    n, num_cams = 300, 4
    camid = [rng.randrange(num_cams) for _ in range(n)]
    time = [rng.uniform(0, 500) for _ in range(n)]
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(900)]
    sets: dict[tuple[int, int], list[float]] = {}
    for i, j in pairs:
        if camid[i] != camid[j]:
            sets.setdefault((camid[i], camid[j]), []).append(time[i] - time[j])
    for v in sets.values():
        v.sort()
    T = TransitionSet.from_pairs(
        torch.tensor(camid), torch.tensor(time, dtype=torch.float64), torch.tensor(pairs).t()
    )
    for key, v in sets.items():
        assert T.values(*key).tolist() == v
    q = 5000
    a = [rng.randrange(num_cams) for _ in range(q)]
    b = [rng.randrange(num_cams) for _ in range(q)]
    dt = [rng.uniform(-600, 600) for _ in range(q)]
    # Also exact boundary hits: dt = v + delta and v - delta for stored v.
    stored = [(k, x) for k, v in sets.items() for x in v][:200]
    for (ka, kb), x in stored:
        a += [ka, ka]
        b += [kb, kb]
        dt += [x + 2.5, x - 2.5]
    expected = _brute_window(sets, a, b, dt, 2.5)
    got = T.contains(torch.tensor(a), torch.tensor(b), torch.tensor(dt, dtype=torch.float64), 2.5)
    assert got.tolist() == expected
    assert 0 < sum(expected) < len(expected)  # the test exercises both outcomes


def test_unseen_camera_and_empty_pairs():
    T = TransitionSet.fit(_data(), k_s=2, num_cameras=4, backend="torch")
    assert T.counts().shape == (4, 4)
    # Camera 3 is known (num_cameras=4) but has no transitions: window test false.
    assert T.contains(*_t([3, 0], [0, 3]), torch.tensor([0.0, 0.0])).tolist() == [False, False]
    with pytest.raises(ValueError, match=r"'cam_a' holds camera id\(s\) \[4\] that the "):
        T.contains(*_t([4], [0]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match=r"'cam_b' holds camera id\(s\) \[7\]"):
        T.contains(*_t([0], [7]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="'num_cameras' must exceed the largest camera id"):
        TransitionSet.fit(_data(), k_s=2, num_cameras=2)


def test_empty_transition_set():
    # k_s = 1: every node's neighbourhood is itself, no pairs, T is empty everywhere.
    T = TransitionSet.fit(_data(), k_s=1, backend="torch")
    assert T.num_transitions == 0
    assert T.contains(*_t([0, 1], [1, 0]), torch.tensor([-4.0, 4.0])).tolist() == [False, False]
    counts, edges = T.histogram(0, 1, bins=2)
    assert counts.tolist() == [0, 0] and edges.tolist() == [-1.0, 0.0, 1.0]
    empty_q = T.contains(
        torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), torch.empty(0)
    )
    assert empty_q.shape == (0,)


def test_histogram_by_hand():
    T = TransitionSet.fit(_data(), k_s=3, backend="torch")  # T(0,2) = {-20, 70}
    counts, edges = T.histogram(0, 2, bins=9, range=(-20.0, 70.0))
    assert edges.tolist() == [-20.0 + 10 * i for i in range(10)]
    assert counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    counts, edges = T.histogram(0, 2, bins=2)  # default range = (-20, 70)
    assert counts.tolist() == [1, 1] and edges.tolist() == [-20.0, 25.0, 70.0]
    counts, edges = T.histogram(2, 0, bins=1)  # single value 20 -> range (19.5, 20.5)
    assert counts.tolist() == [1] and edges.tolist() == [19.5, 20.5]
    with pytest.raises(ValueError, match="'range' must be"):
        T.histogram(0, 2, range=(5.0, 5.0))
    with pytest.raises(ValueError, match="'bins' must be >= 1"):
        T.histogram(0, 2, bins=0)
    with pytest.raises(ValueError, match=r"'a' must be <= 2 \(num_cameras=3\)"):
        T.values(3, 0)
    with pytest.raises(ValueError, match="'b' must be >= 0"):
        T.values(0, -1)


def test_from_identities_by_hand():
    # pid 0: nodes 0 (cam 0, t 10), 1 (cam 1, t 14) -> T(0,1) = {-4}, T(1,0) = {4}
    # pid 1: nodes 2 (cam 0, t 30), 3 (cam 2, t 35) -> T(0,2) = {-5}, T(2,0) = {5}
    # node 4 has pid -1 (unknown) and is ignored.
    data = Data(
        pid=torch.tensor([0, 0, 1, 1, -1]),
        camid=torch.tensor([0, 1, 0, 2, 1]),
        time=torch.tensor([10.0, 14.0, 30.0, 35.0, 50.0]),
    )
    T = TransitionSet.from_identities(data)
    assert T.counts().tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert T.values(0, 1).tolist() == [-4.0] and T.values(2, 0).tolist() == [5.0]
    # 2^2 + 2^2 = 8 ordered pairs are enumerated.
    assert TransitionSet.from_identities(data, max_pairs=8).num_transitions == 4
    with pytest.raises(ValueError, match="would enumerate 8 pairs, more than max_pairs=7"):
        TransitionSet.from_identities(data, max_pairs=7)
    with pytest.raises(ValueError, match="needs identities; data.pid is missing"):
        TransitionSet.from_identities(Data(camid=data.camid, time=data.time))
    with pytest.raises(TypeError, match="from_identities expects a torch_geometric"):
        TransitionSet.from_identities({"pid": data.pid})


def test_from_identities_brute_force():
    rng = random.Random(3)
    n = 60
    pid = [rng.randrange(-1, 8) for _ in range(n)]
    cam = [rng.randrange(3) for _ in range(n)]
    time = [float(rng.randrange(1000)) for _ in range(n)]
    expected: dict[tuple[int, int], list[float]] = {}
    for i in range(n):
        for j in range(n):
            if pid[i] >= 0 and pid[i] == pid[j] and cam[i] != cam[j]:
                expected.setdefault((cam[i], cam[j]), []).append(time[i] - time[j])
    T = TransitionSet.from_identities(
        Data(pid=torch.tensor(pid), camid=torch.tensor(cam), time=torch.tensor(time))
    )
    for a in range(3):
        for b in range(3):
            assert T.values(a, b).tolist() == sorted(expected.get((a, b), []))


def test_state_dict_save_load(tmp_path):
    T = TransitionSet.fit(_data(), k_s=3, backend="torch")
    state = T.state_dict()
    assert set(state) == {"values", "ptr", "num_cameras", "k_s"}
    T2 = TransitionSet.from_state_dict(state)
    assert T2 == T and T2.k_s == 3
    path = tmp_path / "transitions.pt"
    T.save(path)
    T3 = TransitionSet.load(path)
    assert T3 == T
    assert T3.values(1, 2).tolist() == [-16.0, 73.5]
    assert T.to("cpu") == T
    assert T != TransitionSet.fit(_data(), k_s=2, backend="torch")
    assert T.__eq__(3) is NotImplemented
    no_ks = TransitionSet.from_pairs(CAM, TIME, torch.tensor([[0], [1]]))
    assert TransitionSet.from_state_dict(no_ks.state_dict()).k_s is None
    with pytest.raises(ValueError, match=r"'state' is missing key\(s\) \['ptr'\]"):
        TransitionSet.from_state_dict({"values": state["values"], "num_cameras": 3, "k_s": 3})
    with pytest.raises(TypeError, match="'state' must be a dict"):
        TransitionSet.from_state_dict([1, 2])


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"'ptr' must have length 5 \(the number of camera pairs"):
        TransitionSet(torch.tensor([1.0]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="'ptr' must be non-decreasing CSR pointers"):
        TransitionSet(torch.tensor([1.0]), torch.tensor([0, 0, 0, 0, 2]), 2)
    with pytest.raises(TypeError, match="'ptr' must be integer CSR pointers"):
        TransitionSet(torch.tensor([1.0]), torch.tensor([0.0, 1, 1, 1, 1]), 2)
    with pytest.raises(ValueError, match="'values' must be sorted by camera pair"):
        TransitionSet(torch.tensor([2.0, 1.0]), torch.tensor([0, 0, 2, 2, 2]), 2)
    with pytest.raises(ValueError, match="'values' must contain only finite values"):
        TransitionSet(torch.tensor([float("nan")]), torch.tensor([0, 0, 1, 1, 1]), 2)
    with pytest.raises(ValueError, match="'num_cameras' must be >= 1"):
        TransitionSet(torch.tensor([]), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match="'k_s' must be >= 1"):
        TransitionSet(torch.tensor([]), torch.tensor([0, 0]), 1, k_s=0)


def test_from_pairs_errors():
    pairs = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match=r"'pair_index' must have shape \[2, P\]"):
        TransitionSet.from_pairs(CAM, TIME, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="'pair_index' must hold node ids"):
        TransitionSet.from_pairs(CAM, TIME, pairs.float())
    with pytest.raises(
        ValueError, match=r"'pair_index' must index nodes 0..4, found ids in \[0, 5\]"
    ):
        TransitionSet.from_pairs(CAM, TIME, torch.tensor([[0], [5]]))
    with pytest.raises(ValueError, match="'time' must be finite seconds, found 1 NaN"):
        TransitionSet.from_pairs(CAM, torch.tensor([0.0, float("nan"), 0, 0, 0]), pairs)
    with pytest.raises(ValueError, match=r"'time' must have length 5 \(the number of entries of"):
        TransitionSet.from_pairs(CAM, TIME[:3], pairs)
    with pytest.raises(TypeError, match="'symmetric' must be a bool"):
        TransitionSet.from_pairs(CAM, TIME, pairs, symmetric=1)
    with pytest.raises(TypeError, match="'camid' must hold integer camera ids"):
        TransitionSet.from_pairs(CAM.float(), TIME, pairs)
    with pytest.raises(ValueError, match="'camid' must hold 0-based camera ids >= 0, found -1"):
        TransitionSet.from_pairs(torch.tensor([0, -1, 0, 0, 0]), TIME, pairs)


def test_fit_errors():
    with pytest.raises(TypeError, match="TransitionSet.fit expects a torch_geometric.data.Data"):
        TransitionSet.fit(X, k_s=2)
    with pytest.raises(ValueError, match=r"TransitionSet.fit needs 'camid'"):
        TransitionSet.fit(Data(x=X, time=TIME), k_s=2)
    with pytest.raises(ValueError, match=r"TransitionSet.fit needs 'time'"):
        TransitionSet.fit(Data(x=X, camid=CAM), k_s=2)
    nan_time = TIME.clone()
    nan_time[3] = float("nan")
    with pytest.raises(ValueError, match=r"needs finite timestamps, but 'data.time' has 1 NaN"):
        TransitionSet.fit(Data(x=X, camid=CAM, time=nan_time), k_s=2)
    with pytest.raises(ValueError, match=r"'k_s' must be <= 5"):
        TransitionSet.fit(_data(), k_s=6)
    with pytest.raises(ValueError, match=r"'data.camid' must have length 5"):
        TransitionSet.fit(Data(x=X, camid=CAM[:4], time=TIME), k_s=2)


def test_contains_errors():
    T = TransitionSet.fit(_data(), k_s=2, backend="torch")
    a, b = _t([0], [1])
    with pytest.raises(ValueError, match="'delta' must be a finite number of seconds >= 0"):
        T.contains(a, b, torch.tensor([0.0]), delta=-1.0)
    with pytest.raises(ValueError, match="'delta' must be a finite number of seconds >= 0"):
        T.contains(a, b, torch.tensor([0.0]), delta=float("nan"))
    with pytest.raises(TypeError, match=r"'delta' must be a float \(seconds\)"):
        T.contains(a, b, torch.tensor([0.0]), delta="1")
    with pytest.raises(TypeError, match="'cam_a' must hold integer camera ids"):
        T.contains(a.float(), b, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="'cam_a', 'cam_b' and 'dt' must be 1-D of equal length"):
        T.contains(a, b, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="'cam_a', 'cam_b' and 'dt' must be 1-D of equal length"):
        T.contains(a.view(1, 1), b.view(1, 1), torch.tensor([[0.0]]))
    with pytest.raises(ValueError, match="'dt' must be finite seconds"):
        T.contains(a, b, torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match=r"'pair_index' must be integer with shape \[2, P\]"):
        T.contains_pairs(CAM, TIME, torch.tensor([[0.0], [1.0]]))
    with pytest.raises(ValueError, match=r"'pair_index' must index nodes 0..4"):
        T.contains_pairs(CAM, TIME, torch.tensor([[0], [9]]))
    with pytest.raises(ValueError, match=r"'time' must have length 5 \(the number of entries of"):
        T.contains_pairs(CAM, TIME[:2], torch.tensor([[0], [1]]))


@pytest.mark.gpu
def test_contains_cuda_matches_cpu():
    T = TransitionSet.fit(_data(), k_s=3, backend="torch")
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 3, (1000,), generator=gen)
    b = torch.randint(0, 3, (1000,), generator=gen)
    dt = torch.rand(1000, generator=gen, dtype=torch.float64) * 200 - 100
    cpu = T.contains(a, b, dt, 5.0)
    gpu = T.to("cuda").contains(a.cuda(), b.cuda(), dt.cuda(), 5.0)
    assert gpu.is_cuda and torch.equal(cpu, gpu.cpu())
