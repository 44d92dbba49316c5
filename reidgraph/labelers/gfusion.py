r"""G-Fusion's soft affinity targets (MM 2023, Sec. 3.1–3.3, Eq. 1–10).

Per epoch the training features become a graph (visual top-:math:`k_s`
edges, plus the spatio-temporal edges of Eq. 4 with the transition set of
Eq. 3 fitted on the same features), a random untrained GraphSAGE embeds it
(Eq. 7), the Gaussian of the embeddings gives the affinity :math:`M` on the
graph's edges (Eq. 8), and Eq. 10 turns :math:`M` into camera-grouped
targets :math:`\mathbb{M}^{(c)}` that the CNN distils (Eq. 9–13,
:func:`reidgraph.losses.camera_grouped_distillation`).

The targets are a :class:`~reidgraph.labelers.SoftAffinity` in PyG's
convention: edge ``j -> i`` (``edge_index[0] = j``, ``edge_index[1] = i``)
holds :math:`\mathbb{M}^{(C_j)}_{ij}`, the target of neighbour :math:`j` for
anchor :math:`i`; edges are sorted by anchor and every anchor has its self
edge of target 1.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from reidgraph._validation import as_tensor, check_choice, check_int, check_vector
from reidgraph.labelers.base import PseudoLabeler, SoftAffinity

__all__ = [
    "GFusionAffinity",
    "camera_grouped_targets",
    "propagated_affinity",
    "TARGETS",
    "NoTimestampsError",
]

logger = logging.getLogger(__name__)

#: Values accepted by ``GFusionAffinity(target=...)``.
TARGETS: tuple[str, ...] = ("paper", "propagated")


class NoTimestampsError(ValueError):
    r"""Spatio-temporal G-Fusion was asked for on data without timestamps;
    the message offers the visual-only graph (``spatiotemporal=False``)."""


def _check_graph(edge_index: Any, num_nodes: int, name: str = "edge_index") -> Tensor:
    edge_index = as_tensor(edge_index, name)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'{name}' must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'{name}' must hold node ids, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"'{name}' must index nodes in [0, {num_nodes - 1}], found ids in "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index


def _check_camid(camid: Any, num_nodes: int) -> Tensor:
    camid = check_vector(camid, "camid", length=num_nodes, length_of="nodes")
    if camid.is_floating_point() or camid.dtype == torch.bool:
        raise TypeError(f"'camid' must hold integer camera ids, got dtype {camid.dtype}")
    camid = camid.long()
    if camid.numel() and int(camid.min()) < 0:
        raise ValueError(f"'camid' must be 0-based camera ids (>= 0), found {int(camid.min())}")
    return camid


def camera_grouped_targets(
    edge_index: Tensor, affinity: Tensor, camid: Tensor, num_nodes: int | None = None
) -> SoftAffinity:
    r"""The camera-grouped targets of G-Fusion Eq. 10 on a sparse neighbourhood.

    .. math::
        \mathbb{M}_{ij}^{(c)} =
        \begin{cases}
        M_{ij} \,/\, \max_{k \in \mathbb{N}(i),\, C_k = c} M_{ik}, &
            j \neq i \wedge j \in \mathbb{N}(i),\ C_j = c \\
        0, & j \neq i \wedge j \notin \mathbb{N}(i) \\
        1, & j = i
        \end{cases}

    :math:`\mathbb{N}(i)` is the set of sources of the edges ``j -> i``
    (self loops and duplicates dropped, the duplicate's larger value kept);
    the maximum runs over those neighbours, not over :math:`i` itself (whose
    :math:`M_{ii} = 1` would otherwise cap every same-camera target), so the
    closest neighbour in every camera gets target 1. Entries outside the
    neighbourhood are the implicit zeros of the sparse result.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges ``j -> i`` (:math:`j \in
            \mathbb{N}(i)`), e.g. the graph of Eq. 1–6.
        affinity (torch.Tensor): ``[E]`` :math:`M_{ij} > 0` (Eq. 8).
        camid (torch.Tensor): ``[N]`` 0-based camera ids :math:`C`.
        num_nodes (int, optional): :math:`N`. (default: :obj:`None`,
            ``camid.numel()``)

    Returns:
        SoftAffinity: edges ``j -> i`` sorted by anchor :math:`i` then
        neighbour :math:`j`, one self edge of weight 1 per node, weights
        :math:`\mathbb{M}^{(C_j)}_{ij} \in (0, 1]`.

    Example:
        >>> # anchor 0 (camera 0): neighbours 1 (cam 0, M=.5), 2 and 3 (cam 1, M=.8, .4)
        >>> t = camera_grouped_targets(torch.tensor([[1, 2, 3], [0, 0, 0]]),
        ...                            torch.tensor([0.5, 0.8, 0.4]),
        ...                            torch.tensor([0, 0, 1, 1]))
        >>> t.edge_index[:, :4], t.weight[:4]
        (tensor([[0, 1, 2, 3],
                [0, 0, 0, 0]]), tensor([1.0000, 1.0000, 1.0000, 0.5000]))
    """
    camid = as_tensor(camid, "camid")
    n = camid.numel() if num_nodes is None else check_int(num_nodes, "num_nodes", min_value=1)
    camid = _check_camid(camid, n)
    edge_index = _check_graph(edge_index, n)
    affinity = check_vector(affinity, "affinity", length=edge_index.size(1), length_of="edges")
    if not affinity.is_floating_point():
        raise TypeError(f"'affinity' must be floating point, got dtype {affinity.dtype}")
    if affinity.numel() and not bool((affinity > 0).all() & torch.isfinite(affinity).all()):
        raise ValueError(
            "'affinity' must be finite and > 0 (the Gaussian of Eq. 8), found "
            f"min {float(affinity.min())}, max {float(affinity.max())}"
        )
    dev = edge_index.device
    camid, affinity = camid.to(dev), affinity.to(dev)
    src, dst = edge_index
    keep = src != dst
    src, dst, val = src[keep], dst[keep], affinity[keep].float()
    # Duplicate edges (e.g. a pair in both E_v and E_st before symmetrising):
    # one neighbour, the larger affinity.
    key = dst * n + src
    key, inv = torch.unique(key, return_inverse=True)
    val = scatter(val, inv, dim=0, dim_size=key.numel(), reduce="max")
    dst, src = key // n, key % n
    # Eq. 10: divide by the largest affinity of the anchor's neighbours in that camera.
    num_cams = int(camid.max()) + 1 if n else 1
    group = dst * num_cams + camid[src]
    gmax = scatter(val, group, dim=0, dim_size=n * num_cams, reduce="max")
    val = val / gmax[group]
    loops = torch.arange(n, device=dev)
    src = torch.cat([src, loops])
    dst = torch.cat([dst, loops])
    val = torch.cat([val, val.new_ones(n)])
    order = torch.argsort(dst * n + src)
    return SoftAffinity(torch.stack([src[order], dst[order]]), val[order], n)


def _camera_normalize(src: Tensor, dst: Tensor, weight: Tensor, camid: Tensor, n: int) -> Tensor:
    r"""The public code's camera normalisation of a row: within row :math:`i`
    the weights of camera :math:`c`'s neighbours sum to :math:`n_c / n_i`
    (their share of the row), so every row sums to 1."""
    num_cams = int(camid.max()) + 1
    group = dst * num_cams + camid[src]
    gsum = scatter(weight, group, dim=0, dim_size=n * num_cams, reduce="sum")
    gcount = scatter(torch.ones_like(weight), group, dim=0, dim_size=n * num_cams, reduce="sum")
    rcount = scatter(torch.ones_like(weight), dst, dim=0, dim_size=n, reduce="sum")
    return weight / gsum[group] * gcount[group] / rcount[dst]


def propagated_affinity(
    edge_index: Tensor,
    edge_weight: Tensor,
    camid: Tensor,
    lam: float = 0.99,
    top_k: int = 14,
    *,
    num_nodes: int | None = None,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    r"""Affinity propagated over the whole graph, the public code's target
    (``REFERENCE_NOTES.md`` A.5): camera-normalised adjacency :math:`W`, then

    .. math::
        F = (I - \lambda W)^{-1} W = \sum_{t \ge 0} \lambda^t W^{t+1},

    keeping the top-:math:`k` entries of every row of :math:`F`.

    :math:`W_{ij}` (row :math:`i`, the edges ``j -> i``) is the edge weight
    scaled so that the neighbours of :math:`i` in camera :math:`c` share
    :math:`n_c / n_i` of the row (each row sums to 1). :math:`F` is dense
    (every node reaches every node of its component), so it is never
    formed: :math:`I - \lambda W` is factorised once (sparse LU,
    :func:`scipy.sparse.linalg.splu`) and the rows of :math:`F` are solved for
    ``chunk_size`` anchors at a time, each chunk reduced to its top-:math:`k`
    before the next. Memory :math:`O(\text{chunk\_size} \cdot N)` plus the
    factor.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges ``j -> i``, no self loops
            needed.
        edge_weight (torch.Tensor): ``[E]`` positive weights (Eq. 2's
            :math:`S_{ij}`).
        camid (torch.Tensor): ``[N]`` 0-based camera ids.
        lam (float, optional): :math:`\lambda \in (0, 1)`. (default:
            :obj:`0.99`, the public code's ``--lamd``)
        top_k (int, optional): Entries kept per row, the anchor itself
            excluded. (default: :obj:`14`, ``--k2``)
        num_nodes (int, optional): :math:`N`. (default: :obj:`None`,
            ``camid.numel()``)
        chunk_size (int, optional): Anchors solved at once.
            (default: :obj:`1024`)

    Returns:
        (torch.Tensor, torch.Tensor): ``edge_index`` ``[2, N k]`` (edges
        ``j -> i``, :math:`j` among the top-:math:`k` of row :math:`i`) and
        the values :math:`F_{ij} \ge 0`; rows with fewer than :math:`k`
        reachable nodes keep only those.

    Example:
        >>> # a path 0 - 1 - 2 in one camera: W rows (0: 1), (1: .75, .25), (2: 1)
        >>> ei = torch.tensor([[1, 0, 2, 1], [0, 1, 1, 2]])
        >>> w = torch.tensor([1.0, 3.0, 1.0, 1.0])
        >>> e, f = propagated_affinity(ei, w, torch.zeros(3, dtype=torch.long), lam=0.5, top_k=1)
        >>> e  # the best other node of rows 0, 1, 2
        tensor([[1, 0, 1],
                [0, 1, 2]])
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    camid = as_tensor(camid, "camid")
    n = camid.numel() if num_nodes is None else check_int(num_nodes, "num_nodes", min_value=1)
    camid = _check_camid(camid, n)
    edge_index = _check_graph(edge_index, n)
    weight = check_vector(edge_weight, "edge_weight", length=edge_index.size(1), length_of="edges")
    if not weight.is_floating_point():
        raise TypeError(f"'edge_weight' must be floating point, got dtype {weight.dtype}")
    if weight.numel() and not bool((weight > 0).all() & torch.isfinite(weight).all()):
        raise ValueError("'edge_weight' must be finite positive floats (Eq. 2's affinities)")
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0.0 < float(lam) < 1.0:
        raise ValueError(f"'lam' must be a float in (0, 1), got {lam!r}")
    top_k = check_int(
        top_k, "top_k", min_value=1, max_value=n - 1, max_reason=f"the graph has {n} nodes"
    )
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    dev = edge_index.device
    src, dst = edge_index.cpu()
    keep = src != dst
    src, dst, w = src[keep], dst[keep], weight.detach().cpu().double()[keep]
    w = _camera_normalize(src, dst, w, camid.cpu(), n)
    # W[i, j] = w(j -> i): rows are anchors.
    W = sp.csr_matrix((w.numpy(), (dst.numpy(), src.numpy())), shape=(n, n))
    W.sum_duplicates()
    # Rows of G = (I - lam W)^-1 are the columns of G^T: solve (I - lam W)^T X = E.
    lu = splu(sp.csc_matrix(sp.identity(n, format="csc") - float(lam) * W.T))
    idx_out, val_out = [], []
    for s in range(0, n, chunk_size):
        rows = np.arange(s, min(n, s + chunk_size))
        rhs = np.zeros((n, rows.size))
        rhs[rows, np.arange(rows.size)] = 1.0
        g = lu.solve(rhs).T  # G[rows, :]
        f = torch.from_numpy(np.asarray(W.T.dot(g.T).T))  # F[rows, :] = G[rows, :] W
        f[torch.arange(rows.size), torch.from_numpy(rows)] = -1.0  # the anchor itself
        val, idx = f.topk(top_k, dim=1)
        idx_out.append(idx)
        val_out.append(val)
    idx = torch.cat(idx_out)
    val = torch.cat(val_out)
    anchor = torch.arange(n).unsqueeze(1).expand_as(idx)
    ok = val > 0
    out_index = torch.stack([idx[ok], anchor[ok]]).to(dev)
    return out_index, val[ok].float().to(dev)


class GFusionAffinity(PseudoLabeler):
    r"""G-Fusion's pseudo-labeler: spatio-temporal graph :math:`\to` random
    GraphSAGE :math:`\to` camera-grouped affinity targets (MM 2023,
    Sec. 3.1–3.3).

    ``target="paper"`` (default):

    1. :math:`T(a, b)` from the top-``transition_k`` visual neighbours of
       every node (Eq. 3, :meth:`reidgraph.graph.TransitionSet.fit`), or the
       given ``transitions``;
    2. the graph :math:`E = E_v \cup E_{st}` with weights :math:`S_{ij}`
       (Eq. 1–5, :func:`reidgraph.graph.spatiotemporal_graph`), symmetrised
       (Eq. 6); with ``spatiotemporal=False`` the visual graph :math:`E_v`
       alone (:func:`reidgraph.graph.knn_graph`, Table 2's models 0 and 3);
    3. embeddings :math:`(v_i)^n` of a random, untrained
       :class:`~reidgraph.nn.RandomSAGE` (Eq. 7);
    4. :math:`M_{ij} = \exp(-\lVert (v_i)^n - (v_j)^n \rVert^2 / 2\alpha^2)`
       on the graph's edges (Eq. 8, :func:`reidgraph.nn.gaussian_affinity`);
    5. targets :math:`\mathbb{M}^{(c)}_{ij}` (Eq. 10,
       :func:`camera_grouped_targets`).

    ``target="propagated"``: the public code's targets
    (``REFERENCE_NOTES.md`` A.5) on the same graph: steps 3–4 are replaced
    by :func:`propagated_affinity` (:math:`(I - \lambda W)^{-1} W`, top
    ``top_k`` per row), then Eq. 10's per-camera normalisation.

    Args:
        k_s (int, optional): Visual neighbours, self counted.
            (default: :obj:`3`, Sec. 4.2)
        k_l (int, optional): Candidate list of Eq. 4. (default: :obj:`60`)
        delta (float, optional): Half window :math:`\delta` of Eq. 4 in
            seconds. (default: :obj:`1.0` = 25 frames at 25 fps)
        alpha (float, optional): :math:`\alpha` of Eq. 2 and 8.
            (default: :obj:`1.0`)
        spatiotemporal (bool, optional): Add :math:`E_{st}`; needs ``camid``
            and finite ``time``. (default: :obj:`True`)
        transition_k (int, optional): Neighbours (self counted) that
            :math:`T(a, b)` is fitted from; :obj:`None` uses ``k_s`` as
            Eq. 3 does. (default: :obj:`None`)
        transitions (TransitionSet, optional): Use these :math:`T(a, b)`
            instead of fitting them. (default: :obj:`None`)
        channels (int, optional): Width of the random projections (hidden
            and output); the paper does not give it, see
            :data:`reidgraph.rerank.gfusion.DEFAULT_CHANNELS`.
            (default: :obj:`2048`)
        num_layers (int, optional): GraphSAGE layers :math:`n`.
            (default: :obj:`2`, Sec. 3.2)
        seed (int, optional): Seed of the random projections.
            (default: :obj:`0`)
        target (str, optional): ``"paper"`` or ``"propagated"``.
            (default: :obj:`"paper"`)
        lam (float, optional): :math:`\lambda` of the propagated target.
            (default: :obj:`0.99`)
        top_k (int, optional): Neighbours per anchor of the propagated
            target. (default: :obj:`14`)
        backend (str, optional): :func:`reidgraph.ops.topk` backend.
            (default: :obj:`"auto"`)

    Attributes:
        supervision_ (SoftAffinity): The targets (see the module doc).
        transitions_ (TransitionSet or None): The :math:`T(a, b)` used.
        graph_ (Data): The graph of step 2 (``edge_index``,
            ``edge_weight``, ``edge_type``).

    Example:
        >>> from reidgraph.data import make_world
        >>> world = make_world("tiny", seed=0, verbose=False)
        >>> data = world.to_data("train")
        >>> sup = GFusionAffinity(k_l=20, transition_k=10, channels=64).fit(data).supervision_
        >>> bool((sup.weight[sup.edge_index[0] == sup.edge_index[1]] == 1).all())
        True
    """

    min_samples_required: ClassVar[int] = 2

    def __init__(
        self,
        k_s: int = 3,
        k_l: int = 60,
        delta: float = 1.0,
        alpha: float = 1.0,
        spatiotemporal: bool = True,
        transition_k: int | None = None,
        transitions: Any = None,
        channels: int = 2048,
        num_layers: int = 2,
        seed: int = 0,
        target: str = "paper",
        lam: float = 0.99,
        top_k: int = 14,
        backend: str = "auto",
    ) -> None:
        self.k_s = k_s
        self.k_l = k_l
        self.delta = delta
        self.alpha = alpha
        self.spatiotemporal = spatiotemporal
        self.transition_k = transition_k
        self.transitions = transitions
        self.channels = channels
        self.num_layers = num_layers
        self.seed = seed
        self.target = target
        self.lam = lam
        self.top_k = top_k
        self.backend = backend

    def _min_samples(self) -> int:
        k = self.k_l if isinstance(self.k_l, int) and self.spatiotemporal else self.k_s
        return max(2, k if isinstance(k, int) else 2)

    def _check_st(self, data: Data) -> None:
        name = type(self).__name__
        for key, what in (("camid", "camera ids [N], 0-based"), ("time", "timestamps [N], s")):
            value = getattr(data, key, None)
            if value is None:
                raise NoTimestampsError(
                    f"{name}(spatiotemporal=True) needs 'data.{key}' ({what}); it is missing. "
                    "Pass spatiotemporal=False for the visual-only graph of Table 2's model 0"
                )
        time = as_tensor(data.time, "data.time")
        if time.numel() and not bool(torch.isfinite(time.double()).all()):
            bad = int((~torch.isfinite(time.double())).sum())
            raise NoTimestampsError(
                f"{name}(spatiotemporal=True) needs a finite timestamp on every image, but "
                f"{bad} of {time.numel()} in 'data.time' are NaN/inf (this dataset has no usable "
                "timestamps). Pass spatiotemporal=False for the visual-only graph (Table 2's "
                "model 0), or load the dataset with its time stamps"
            )

    def label(self, data: Data) -> SoftAffinity:
        from reidgraph.graph import TransitionSet, knn_graph, spatiotemporal_graph
        from reidgraph.nn.random_sage import RandomSAGE
        from reidgraph.nn.random_sage import affinity as gaussian_affinity

        target = check_choice(self.target, "target", TARGETS)
        if not isinstance(self.spatiotemporal, bool):
            raise TypeError(
                f"'spatiotemporal' must be a bool, got {type(self.spatiotemporal).__name__}"
            )
        if getattr(data, "camid", None) is None:
            raise ValueError(
                f"{type(self).__name__} needs 'data.camid' (camera ids [N], 0-based) for the "
                "camera-grouped targets of Eq. 10; it is missing"
            )
        if self.transitions is not None and not self.spatiotemporal:
            raise ValueError(
                "'transitions' were given but spatiotemporal=False builds the visual-only graph, "
                "which does not use them; pass one or the other"
            )
        n = data.x.size(0)
        x = data.x.float()
        self.transitions_ = None
        if self.spatiotemporal:
            self._check_st(data)
            transitions = self.transitions
            if transitions is None:
                k_t = self.k_s if self.transition_k is None else self.transition_k
                k_t = check_int(k_t, "transition_k", min_value=1, max_value=n)
                spine = Data(x=x, camid=data.camid, time=data.time)
                transitions = TransitionSet.fit(spine, k_t, backend=self.backend)
            elif not isinstance(transitions, TransitionSet):
                raise TypeError(
                    f"'transitions' must be a TransitionSet or None, got "
                    f"{type(transitions).__name__}"
                )
            self.transitions_ = transitions
            graph = spatiotemporal_graph(
                Data(x=x, camid=data.camid, time=data.time),
                self.k_s,
                self.k_l,
                self.delta,
                self.alpha,
                transitions.to(x.device),
                symmetric=True,
                backend=self.backend,
            )
        else:
            graph = knn_graph(Data(x=x), self.k_s, alpha=self.alpha, symmetric=True,
                              backend=self.backend)  # fmt: skip
        self.graph_ = graph
        camid = data.camid
        if target == "paper":
            sage = RandomSAGE(
                x.size(1),
                hidden_channels=self.channels,
                out_channels=self.channels,
                num_layers=self.num_layers,
                seed=self.seed,
            ).to(x.device)
            h = sage(x, graph.edge_index, graph.edge_weight)
            m = gaussian_affinity(h, graph.edge_index, self.alpha)
            # Gaussian of wide embeddings can underflow to 0; Eq. 10 divides by the max.
            m = m.clamp_min(torch.finfo(m.dtype).tiny)
            sup = camera_grouped_targets(graph.edge_index, m, camid, n)
        else:
            edge_index, f = propagated_affinity(
                graph.edge_index, graph.edge_weight, camid, self.lam, self.top_k, num_nodes=n
            )
            sup = camera_grouped_targets(edge_index, f, camid, n)
        logger.info(
            "GFusionAffinity: %d nodes, %d graph edges (%s), %d target entries",
            n,
            graph.edge_index.size(1),
            "visual + spatio-temporal" if self.spatiotemporal else "visual only",
            sup.num_edges,
        )
        return sup
