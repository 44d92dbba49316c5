r"""Camera-to-camera transition-time sets :math:`T(a, b)` of G-Fusion (MM 2023, Eq. 3–4)."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import as_tensor, check_int, check_matrix, check_vector

__all__ = ["TransitionSet"]

logger = logging.getLogger(__name__)


def _check_delta(delta: Any) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        raise TypeError(f"'delta' must be a float (seconds), got {type(delta).__name__}")
    delta = float(delta)
    if not (delta >= 0.0 and delta != float("inf")):
        raise ValueError(f"'delta' must be a finite number of seconds >= 0, got {delta}")
    return delta


def _check_cameras(camid: Any, name: str, num_cameras: int | None = None) -> Tensor:
    camid = as_tensor(camid, name)
    if camid.is_floating_point() or camid.dtype == torch.bool or camid.is_complex():
        raise TypeError(f"'{name}' must hold integer camera ids, got dtype {camid.dtype}")
    camid = camid.long()
    if camid.numel() and int(camid.min()) < 0:
        raise ValueError(f"'{name}' must hold 0-based camera ids >= 0, found {int(camid.min())}")
    if num_cameras is not None and camid.numel() and int(camid.max()) >= num_cameras:
        unseen = sorted({int(c) for c in camid[camid >= num_cameras].unique().tolist()})
        raise ValueError(
            f"'{name}' holds camera id(s) {unseen} that the TransitionSet never saw: it was "
            f"fitted on num_cameras={num_cameras} (ids 0..{num_cameras - 1}); refit with "
            "data from these cameras or pass num_cameras when fitting"
        )
    return camid


class TransitionSet:
    r"""The transition-time sets :math:`T(a, b)` of G-Fusion Eq. 3 and the
    window test of Eq. 4, vectorised.

    .. math::
        T(a, b) = \left\{ t_i - t_j \;\middle|\; S_{ij} \in \{S_i\}_{k_s},\
        C(V_i) = a,\ C(V_j) = b \right\}

    .. math::
        [\Delta t_{ij} - \delta,\ \Delta t_{ij} + \delta] \cap T(a, b) \neq
        \emptyset, \qquad \Delta t_{ij} = t_i - t_j

    **Conventions** (exactly the paper's): the *anchor* :math:`i` is the node
    whose top-:math:`k_s` list contains :math:`j`; :math:`a = C(V_i)`,
    :math:`b = C(V_j)`, and the stored value is :math:`t_i - t_j` (anchor
    time minus neighbour time, in seconds). :math:`T(a, b)` and
    :math:`T(b, a)` are *not* mirrored: :math:`T(b, a)` only holds
    :math:`t_j - t_i` for pairs where :math:`i` is in :math:`j`'s own
    top-:math:`k_s` list (pass ``symmetric=True`` to mirror every pair).
    Only cross-camera pairs (:math:`a \neq b`) are stored, since
    :math:`E_{st}` links images of *another* camera (Sec. 3.1); the sets are
    multisets (histograms count every pair, as Fig. 5 does).

    **Empty sets** follow the paper: :math:`[\cdot] \cap \emptyset =
    \emptyset`, so a camera pair with no fitted transition (and every
    same-camera pair) fails the window test and gets no spatio-temporal edge.
    A camera id :math:`\ge` :attr:`num_cameras` (never seen when fitting)
    raises :class:`ValueError`.

    **Storage**: one array of all values sorted by camera pair
    :math:`p = a \cdot C + b` and, within a pair, by value, with CSR
    pointers ``ptr`` (:math:`T(a, b)` is ``values[ptr[p]:ptr[p + 1]]``).
    :meth:`contains` finds, for millions of queries at once, the first value
    :math:`\ge \Delta t - \delta` inside the query's segment with one
    :func:`torch.searchsorted` on exact int64 keys (segment, rank of the
    value) and checks it is :math:`\le \Delta t + \delta`: time
    :math:`O(Q \log |T|)`, memory :math:`O(Q + |T|)`, no Python loop.

    Build it with :meth:`fit` (pseudo-matched top-:math:`k_s` pairs, the
    paper's way), :meth:`from_pairs` (any pair list) or
    :meth:`from_identities` (ground truth, G-Fusion Fig. 5b). Fit on the
    training set, then reuse it at test time (Sec. 3.4); :meth:`save` /
    :meth:`load` and :meth:`state_dict` / :meth:`from_state_dict` persist it.

    Args:
        values (torch.Tensor): ``[|T|]`` transition times (seconds), sorted by
            camera pair, then by value.
        ptr (torch.Tensor): ``[C * C + 1]`` CSR pointers into ``values``.
        num_cameras (int): Number of cameras :math:`C`.
        k_s (int, optional): The :math:`k_s` used to fit, for information.
            (default: :obj:`None`)

    Example:
        >>> camid = torch.tensor([0, 1, 1])
        >>> time = torch.tensor([10.0, 14.0, 30.0])
        >>> T = TransitionSet.from_pairs(camid, time, torch.tensor([[0], [1]]))
        >>> T.values(0, 1)  # t_0 - t_1
        tensor([-4.], dtype=torch.float64)
        >>> T.contains(torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([-4.5, -20.0]))
        tensor([ True, False])
    """

    def __init__(
        self, values: Tensor, ptr: Tensor, num_cameras: int, k_s: int | None = None
    ) -> None:
        num_cameras = check_int(num_cameras, "num_cameras", min_value=1)
        values = check_vector(values, "values", dtype=torch.float64, finite=True)
        ptr = check_vector(
            ptr,
            "ptr",
            length=num_cameras * num_cameras + 1,
            length_of="camera pairs + 1",
            device=values.device,
        )
        if ptr.is_floating_point():
            raise TypeError(f"'ptr' must be integer CSR pointers, got dtype {ptr.dtype}")
        ptr = ptr.long()
        if int(ptr[0]) != 0 or int(ptr[-1]) != values.numel() or bool((ptr.diff() < 0).any()):
            raise ValueError(
                "'ptr' must be non-decreasing CSR pointers from 0 to len(values) = "
                f"{values.numel()}, got ptr[0]={int(ptr[0])}, ptr[-1]={int(ptr[-1])}"
            )
        if k_s is not None:
            k_s = check_int(k_s, "k_s", min_value=1)
        self.num_cameras, self.k_s = num_cameras, k_s
        self._values, self._ptr = values, ptr
        num_pairs = num_cameras * num_cameras
        pair = torch.repeat_interleave(torch.arange(num_pairs, device=values.device), ptr.diff())
        # Exact int64 keys: v >= lo  <=>  rank(v) >= rank(lo), where rank(x) is the
        # number of stored values < x. Float offsets per segment would round.
        self._sorted = values.sort().values
        rank = torch.searchsorted(self._sorted, values, side="left")
        self._keys = pair * (values.numel() + 1) + rank
        if bool((self._keys.diff() < 0).any()):
            raise ValueError("'values' must be sorted by camera pair and, within a pair, by value")

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_pairs(
        cls,
        camid: Any,
        time: Any,
        pair_index: Any,
        *,
        num_cameras: int | None = None,
        symmetric: bool = False,
        k_s: int | None = None,
    ) -> TransitionSet:
        r"""Collects :math:`t_i - t_j` into :math:`T(C(i), C(j))` for every
        given pair ``(i, j) = pair_index[:, e]`` with :math:`C(i) \neq C(j)`
        (Eq. 3 with an explicit pair list).

        Args:
            camid (torch.Tensor): ``[N]`` camera ids, 0-based.
            time (torch.Tensor): ``[N]`` timestamps in seconds, finite.
            pair_index (torch.Tensor): ``[2, P]``; row 0 the anchor :math:`i`,
                row 1 its neighbour :math:`j`.
            num_cameras (int, optional): :math:`C`. (default: :obj:`None`,
                ``camid.max() + 1``)
            symmetric (bool, optional): Also add :math:`t_j - t_i` to
                :math:`T(C(j), C(i))`. (default: :obj:`False`, Eq. 3 as written)
            k_s (int, optional): Stored for information. (default: :obj:`None`)
        """
        camid = _check_cameras(camid, "camid")
        n = camid.numel()
        time = check_vector(time, "time", length=n, length_of="entries of 'camid'")
        time = time.to(device=camid.device, dtype=torch.float64)
        if not bool(torch.isfinite(time).all()):
            bad = int((~torch.isfinite(time)).sum())
            raise ValueError(f"'time' must be finite seconds, found {bad} NaN or infinite")
        pair_index = as_tensor(pair_index, "pair_index", device=camid.device)
        if pair_index.dim() != 2 or pair_index.size(0) != 2:
            raise ValueError(
                f"'pair_index' must have shape [2, P], got shape {tuple(pair_index.shape)}"
            )
        if pair_index.is_floating_point() or pair_index.dtype == torch.bool:
            raise TypeError(f"'pair_index' must hold node ids, got dtype {pair_index.dtype}")
        pair_index = pair_index.long()
        if pair_index.numel() and (int(pair_index.min()) < 0 or int(pair_index.max()) >= n):
            raise ValueError(
                f"'pair_index' must index nodes 0..{n - 1}, found ids in "
                f"[{int(pair_index.min())}, {int(pair_index.max())}]"
            )
        if not isinstance(symmetric, bool):
            raise TypeError(f"'symmetric' must be a bool, got {type(symmetric).__name__}")
        top = int(camid.max()) + 1 if n else 1
        if num_cameras is None:
            num_cameras = top
        num_cameras = check_int(num_cameras, "num_cameras", min_value=1)
        if num_cameras < top:
            raise ValueError(
                f"'num_cameras' must exceed the largest camera id ({top - 1}), got {num_cameras}"
            )
        if symmetric:
            pair_index = torch.cat([pair_index, pair_index.flip(0)], dim=1)
        i, j = pair_index
        a, b = camid[i], camid[j]
        cross = a != b
        p = (a * num_cameras + b)[cross]
        v = (time[i] - time[j])[cross]
        v, order = v.sort(stable=True)
        p = p[order]
        p, order = p.sort(stable=True)
        v = v[order]
        counts = torch.bincount(p, minlength=num_cameras * num_cameras)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return cls(v, ptr, num_cameras, k_s=k_s)

    @classmethod
    def fit(
        cls,
        data: Data,
        k_s: int = 3,
        *,
        num_cameras: int | None = None,
        symmetric: bool = False,
        weight: str = "gaussian",
        backend: str = "auto",
    ) -> TransitionSet:
        r"""Fits :math:`T(a, b)` from the top-:math:`k_s` visual neighbours of
        every node (G-Fusion Eq. 3, Sec. 3.1).

        Neighbours are ranked by the affinity of Eq. 2 (squared Euclidean
        distance), the node itself counted in :math:`k_s` (Sec. 4.5), so
        :math:`k_s = 3` contributes up to two pairs per node.

        Args:
            data (torch_geometric.data.Data): ``x`` ``[N, d]``, ``camid``
                ``[N]``, ``time`` ``[N]`` (seconds). Usually the training set.
            k_s (int, optional): :math:`k_s`, self included.
                (default: :obj:`3`, Sec. 4.2)
            num_cameras (int, optional): :math:`C` (default: :obj:`None`,
                ``camid.max() + 1``); give it when a test camera may be
                missing from ``data``.
            symmetric (bool, optional): Mirror every pair (see class doc).
                (default: :obj:`False`)
            weight (str, optional): Ranking, ``"gaussian"`` or ``"cosine"``.
                (default: :obj:`"gaussian"`)
            backend (str, optional): :func:`reidgraph.ops.topk` backend.
                (default: :obj:`"auto"`)

        Returns:
            TransitionSet: The fitted sets.

        Example:
            >>> data = Data(x=torch.tensor([[0.0], [0.1], [5.0], [5.2]]),
            ...             camid=torch.tensor([0, 1, 0, 1]),
            ...             time=torch.tensor([10.0, 14.0, 50.0, 52.5]))
            >>> T = TransitionSet.fit(data, k_s=2, backend="torch")
            >>> T.values(0, 1)  # 10 - 14 and 50 - 52.5
            tensor([-4.0000, -2.5000], dtype=torch.float64)
        """
        from reidgraph.graph.knn import _check_data, _check_node_attr, _neighbors

        data = _check_data(data, "TransitionSet.fit")
        x = check_matrix(data.x, "data.x")
        n = x.size(0)
        camid = _check_node_attr(data, "camid", "TransitionSet.fit", n)
        time = _check_node_attr(data, "time", "TransitionSet.fit", n)
        k_s = check_int(
            k_s, "k_s", min_value=1, max_value=n, max_reason=f"k_s counts the node itself; N = {n}"
        )
        _, nbr = _neighbors(x, k_s, weight, backend)
        anchor = torch.arange(n, device=x.device).unsqueeze(1).expand_as(nbr)
        out = cls.from_pairs(
            camid,
            time,
            torch.stack([anchor.reshape(-1), nbr.reshape(-1)]),
            num_cameras=num_cameras,
            symmetric=symmetric,
            k_s=k_s,
        )
        empty = int((out.counts() == 0).sum()) - out.num_cameras
        logger.info(
            "TransitionSet.fit: %d transitions over %d cameras; %d cross-camera pairs empty",
            out.num_transitions,
            out.num_cameras,
            empty,
        )
        return out

    @classmethod
    def from_identities(
        cls,
        data: Data,
        *,
        num_cameras: int | None = None,
        max_pairs: int = 50_000_000,
    ) -> TransitionSet:
        r"""Ground-truth :math:`T(a, b)`: every ordered pair of images of one
        identity (``data.pid``), as in G-Fusion Fig. 5(b).

        Nodes with ``pid < 0`` (unknown) are ignored; remove distractors
        (e.g. Market-1501's ``0``) beforehand. Cost: :math:`\sum_p n_p^2`
        pairs for identities with :math:`n_p` images, checked against
        ``max_pairs``.

        Args:
            data (torch_geometric.data.Data): ``pid``, ``camid``, ``time``.
            num_cameras (int, optional): :math:`C`. (default: :obj:`None`)
            max_pairs (int, optional): Largest number of pairs to enumerate.
                (default: :obj:`50_000_000`)
        """
        from reidgraph.graph.knn import _check_node_attr

        if not isinstance(data, Data):
            raise TypeError(
                "TransitionSet.from_identities expects a torch_geometric.data.Data, "
                f"got {type(data).__name__}"
            )
        if getattr(data, "pid", None) is None:
            raise ValueError("TransitionSet.from_identities needs identities; data.pid is missing")
        pid = check_vector(data.pid, "data.pid").long()
        n = pid.numel()
        camid = _check_node_attr(data, "camid", "TransitionSet.from_identities", n)
        time = _check_node_attr(data, "time", "TransitionSet.from_identities", n)
        max_pairs = check_int(max_pairs, "max_pairs", min_value=1)
        known = (pid >= 0).nonzero().view(-1)
        order = known[pid[known].argsort(stable=True)]
        _, sizes = torch.unique_consecutive(pid[order], return_counts=True)
        total = int((sizes * sizes).sum())
        if total > max_pairs:
            raise ValueError(
                f"from_identities would enumerate {total} pairs, more than max_pairs={max_pairs}; "
                "raise max_pairs or subsample the identities"
            )
        starts = sizes.cumsum(0) - sizes
        size_of = torch.repeat_interleave(sizes, sizes)  # group size per sorted node
        start_of = torch.repeat_interleave(starts, sizes)
        anchor_pos = torch.repeat_interleave(
            torch.arange(order.numel(), device=pid.device), size_of
        )
        block_start = torch.repeat_interleave(size_of.cumsum(0) - size_of, size_of)
        partner_pos = torch.repeat_interleave(start_of, size_of) + (
            torch.arange(anchor_pos.numel(), device=pid.device) - block_start
        )
        pairs = torch.stack([order[anchor_pos], order[partner_pos]])
        return cls.from_pairs(camid, time, pairs, num_cameras=num_cameras)

    # ------------------------------------------------------------------ queries
    @property
    def num_transitions(self) -> int:
        r"""Total number of stored transition times :math:`\sum_{a,b} |T(a, b)|`."""
        return self._values.numel()

    @property
    def device(self) -> torch.device:
        return self._values.device

    @property
    def ptr(self) -> Tensor:
        r"""``[C * C + 1]`` CSR pointers; :math:`T(a, b)` is segment :math:`a C + b`."""
        return self._ptr

    def counts(self) -> Tensor:
        r"""``[C, C]`` matrix of :math:`|T(a, b)|` (row :math:`a`, column :math:`b`)."""
        c = self.num_cameras
        return self._ptr.diff().view(c, c)

    def _check_pair(self, a: Any, b: Any) -> tuple[int, int]:
        a = check_int(
            a,
            "a",
            min_value=0,
            max_value=self.num_cameras - 1,
            max_reason=f"num_cameras={self.num_cameras}",
        )
        b = check_int(
            b,
            "b",
            min_value=0,
            max_value=self.num_cameras - 1,
            max_reason=f"num_cameras={self.num_cameras}",
        )
        return a, b

    def values(self, a: int, b: int) -> Tensor:
        r"""The sorted transition times :math:`T(a, b)` in seconds (float64)."""
        a, b = self._check_pair(a, b)
        p = a * self.num_cameras + b
        return self._values[int(self._ptr[p]) : int(self._ptr[p + 1])].clone()

    def histogram(
        self, a: int, b: int, bins: int = 50, range: tuple[float, float] | None = None
    ) -> tuple[Tensor, Tensor]:
        r"""Histogram of :math:`T(a, b)` (G-Fusion Fig. 5), on the CPU.

        Args:
            a (int): Source camera (the anchor's).
            b (int): Target camera (the neighbour's).
            bins (int, optional): Number of bins. (default: :obj:`50`)
            range (tuple, optional): ``(low, high)`` in seconds. (default:
                :obj:`None`, the values' span, or ``(-1, 1)`` if empty)

        Returns:
            (torch.Tensor, torch.Tensor): ``counts`` ``[bins]`` (int64) and bin
            ``edges`` ``[bins + 1]`` (float64).
        """
        bins = check_int(bins, "bins", min_value=1)
        v = self.values(a, b).cpu()
        if range is None:
            range = (float(v.min()), float(v.max())) if v.numel() else (-1.0, 1.0)
            if range[0] == range[1]:
                range = (range[0] - 0.5, range[1] + 0.5)
        lo, hi = float(range[0]), float(range[1])
        if not lo < hi:
            raise ValueError(f"'range' must be (low, high) with low < high, got {range}")
        counts, edges = torch.histogram(v, bins=bins, range=(lo, hi))
        return counts.long(), edges

    def contains(self, cam_a: Any, cam_b: Any, dt: Any, delta: float = 1.0) -> Tensor:
        r"""The window test of G-Fusion Eq. 4 for many pairs at once.

        .. math::
            \mathrm{out}_e = \Big( [\Delta t_e - \delta,\ \Delta t_e + \delta]
            \cap T(a_e, b_e) \neq \emptyset \Big)

        Args:
            cam_a (torch.Tensor): ``[Q]`` anchor cameras :math:`C(V_i)`.
            cam_b (torch.Tensor): ``[Q]`` neighbour cameras :math:`C(V_j)`.
            dt (torch.Tensor): ``[Q]`` :math:`\Delta t_{ij} = t_i - t_j` in seconds.
            delta (float, optional): Half window :math:`\delta` in seconds;
                the paper's 25 frames at 25 fps is 1.0 s. (default: :obj:`1.0`)

        Returns:
            torch.Tensor: ``[Q]`` bool, on ``dt``'s device. Same-camera pairs
            and pairs with empty :math:`T(a, b)` are :obj:`False`.
        """
        delta = _check_delta(delta)
        cam_a = _check_cameras(cam_a, "cam_a", self.num_cameras)
        cam_b = _check_cameras(cam_b, "cam_b", self.num_cameras)
        dt = as_tensor(dt, "dt")
        if not (cam_a.shape == cam_b.shape == dt.shape) or dt.dim() != 1:
            raise ValueError(
                "'cam_a', 'cam_b' and 'dt' must be 1-D of equal length, got shapes "
                f"{tuple(cam_a.shape)}, {tuple(cam_b.shape)} and {tuple(dt.shape)}"
            )
        if not dt.is_floating_point():
            dt = dt.double()
        if not bool(torch.isfinite(dt).all()):
            raise ValueError("'dt' must be finite seconds, found NaN or infinite entries")
        device = dt.device
        return self._contains(cam_a.to(device), cam_b.to(device), dt.to(torch.float64), delta)

    def _contains(self, cam_a: Tensor, cam_b: Tensor, dt: Tensor, delta: float) -> Tensor:
        r"""Unvalidated core of :meth:`contains`: cameras already checked against
        :attr:`num_cameras`, ``dt`` float64, all on one device."""
        device = dt.device
        values, ptr, srt, keys = (
            t.to(device) for t in (self._values, self._ptr, self._sorted, self._keys)
        )
        if values.numel() == 0 or dt.numel() == 0:
            return torch.zeros(dt.shape, dtype=torch.bool, device=device)
        p = cam_a * self.num_cameras + cam_b
        rank_lo = torch.searchsorted(srt, dt - delta, side="left")
        pos = torch.searchsorted(keys, p * (values.numel() + 1) + rank_lo, side="left")
        inside = pos < ptr[p + 1]
        found = values[pos.clamp(max=values.numel() - 1)]
        return inside & (found <= dt + delta)

    def contains_pairs(self, camid: Any, time: Any, pair_index: Any, delta: float = 1.0) -> Tensor:
        r"""Eq. 4's window test for node pairs ``(i, j) = pair_index[:, e]``,
        anchor :math:`i`, :math:`\Delta t_{ij} = t_i - t_j`.

        Args:
            camid (torch.Tensor): ``[N]`` camera ids.
            time (torch.Tensor): ``[N]`` seconds.
            pair_index (torch.Tensor): ``[2, P]`` node ids.
            delta (float, optional): :math:`\delta` in seconds. (default: :obj:`1.0`)

        Returns:
            torch.Tensor: ``[P]`` bool.
        """
        camid = _check_cameras(camid, "camid", self.num_cameras)
        time = check_vector(time, "time", length=camid.numel(), length_of="entries of 'camid'")
        pair_index = as_tensor(pair_index, "pair_index")
        if pair_index.dim() != 2 or pair_index.size(0) != 2 or pair_index.is_floating_point():
            raise ValueError(
                f"'pair_index' must be integer with shape [2, P], got shape "
                f"{tuple(pair_index.shape)} and dtype {pair_index.dtype}"
            )
        n = camid.numel()
        if pair_index.numel() and (int(pair_index.min()) < 0 or int(pair_index.max()) >= n):
            raise ValueError(f"'pair_index' must index nodes 0..{n - 1}")
        i, j = pair_index.long().to(camid.device)
        time = time.to(device=camid.device, dtype=torch.float64)
        return self.contains(camid[i], camid[j], time[i] - time[j], delta)

    # ------------------------------------------------------------- persistence
    def to(self, device: torch.device | str) -> TransitionSet:
        r"""A copy on ``device``."""
        return TransitionSet(
            self._values.to(device), self._ptr.to(device), self.num_cameras, self.k_s
        )

    def state_dict(self) -> dict[str, Any]:
        r"""Plain tensors and ints (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "values": self._values.cpu(),
            "ptr": self._ptr.cpu(),
            "num_cameras": self.num_cameras,
            "k_s": -1 if self.k_s is None else self.k_s,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TransitionSet:
        r"""Rebuilds a :class:`TransitionSet` from :meth:`state_dict`."""
        if not isinstance(state, dict):
            raise TypeError(f"'state' must be a dict from state_dict(), got {type(state).__name__}")
        missing = sorted({"values", "ptr", "num_cameras", "k_s"} - set(state))
        if missing:
            raise ValueError(f"'state' is missing key(s) {missing}; expected a state_dict()")
        k_s = int(state["k_s"])
        return cls(
            state["values"], state["ptr"], int(state["num_cameras"]), None if k_s < 0 else k_s
        )

    def save(self, path: str | os.PathLike) -> None:
        r"""Writes :meth:`state_dict` with :func:`torch.save`."""
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: Any = "cpu") -> TransitionSet:
        r"""Reads a file written by :meth:`save` (``weights_only=True``)."""
        return cls.from_state_dict(torch.load(path, map_location=map_location, weights_only=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TransitionSet):
            return NotImplemented
        return (
            self.num_cameras == other.num_cameras
            and torch.equal(self._ptr.cpu(), other._ptr.cpu())
            and torch.equal(self._values.cpu(), other._values.cpu())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_cameras={self.num_cameras}, "
            f"num_transitions={self.num_transitions}, k_s={self.k_s})"
        )
