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
    within each connected component (every node reaches every node of its
    component) and zero between components, so it is never formed for the
    whole graph: the components (:func:`scipy.sparse.csgraph.connected_components`)
    are solved on their own — those of up to 2,048 nodes as batched dense
    systems (:func:`torch.linalg.solve`, grouped by size), larger ones by one
    sparse LU factorisation (:func:`scipy.sparse.linalg.splu`) with their rows
    solved ``chunk_size`` anchors at a time — and every row is reduced to its
    top-:math:`k` at once. Memory: 256 MiB per dense batch, or
    :math:`O(\text{chunk\_size} \cdot N_c)` plus the factor.

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
    from scipy.sparse.csgraph import connected_components

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
    # F has no entry between components: solve each on its own.
    _, comp = connected_components(W, directed=True, connection="weak")
    comp = torch.from_numpy(comp).long()
    sizes = torch.bincount(comp)
    order = torch.argsort(comp, stable=True)  # nodes grouped by component
    starts = torch.cumsum(sizes, 0) - sizes
    idx = torch.full((n, top_k), -1, dtype=torch.long)
    val = torch.zeros(n, top_k, dtype=torch.float64)
    small = sizes <= _DENSE_COMPONENT
    # Small components: one batched dense solve per size bucket (powers of two).
    bucket = torch.ceil(torch.log2(sizes.clamp_min(1).double())).long()
    for b in torch.unique(bucket[small]).tolist():
        comps = ((bucket == b) & small).nonzero().flatten()
        width = int(sizes[comps].max())
        per_batch = max(1, _DENSE_BYTES // (3 * 8 * width * width))
        for s0 in range(0, comps.numel(), per_batch):
            _solve_dense(W, comps[s0 : s0 + per_batch], sizes, starts, order, lam, idx, val)
    # Large components: sparse LU of (I - lam W)^T restricted to the component.
    for c in (~small).nonzero().flatten().tolist():
        nodes = order[starts[c] : starts[c] + sizes[c]]
        _solve_sparse(W, nodes, lam, chunk_size, idx, val)
    anchor = torch.arange(n).unsqueeze(1).expand_as(idx)
    ok = (val > 0) & (idx >= 0)
    out_index = torch.stack([idx[ok], anchor[ok]]).to(dev)
    return out_index, val[ok].float().to(dev)


#: Components up to this size are solved densely (batched); larger ones by sparse LU.
_DENSE_COMPONENT = 2048
#: Memory for one batch of dense component solves.
_DENSE_BYTES = 256 * 2**20


def _solve_dense(W, comps, sizes, starts, order, lam, idx, val) -> None:
    r"""Rows of :math:`F = (I - \lambda W)^{-1} W` for a batch of small
    components, padded to the largest (padding rows/columns are zero, so
    they stay zero in :math:`F`); writes each row's top-:math:`k` into
    ``idx`` / ``val``."""
    top_k = idx.size(1)
    cs = sizes[comps]
    width = int(cs.max())
    # Local position of every node of these components, and its batch row.
    local = torch.arange(width).unsqueeze(0)
    valid = local < cs.unsqueeze(1)  # [c, width]
    nodes = torch.full((comps.numel(), width), -1, dtype=torch.long)
    nodes[valid] = order[(starts[comps].unsqueeze(1) + local)[valid]]
    flat = nodes[valid]
    sub = W[flat.numpy()][:, flat.numpy()].tocoo()  # block diagonal over the batch
    batch_of = torch.arange(comps.numel()).unsqueeze(1).expand_as(nodes)[valid]
    pos_of = local.expand_as(nodes)[valid]
    r, c = torch.from_numpy(sub.row).long(), torch.from_numpy(sub.col).long()
    Wb = torch.zeros(comps.numel(), width, width, dtype=torch.float64)
    Wb[batch_of[r], pos_of[r], pos_of[c]] = torch.from_numpy(sub.data)
    eye = torch.eye(width, dtype=torch.float64)
    F = torch.linalg.solve(eye - float(lam) * Wb, Wb)  # [c, width, width], rows = anchors
    F[:, torch.arange(width), torch.arange(width)] = -1.0  # the anchor itself
    F[~valid.unsqueeze(1).expand_as(F)] = -1.0  # padding columns
    k = min(top_k, width)
    v, j = F[valid].topk(k, dim=1)  # [nodes, k] local columns
    cols = nodes[batch_of].gather(1, j)
    idx[flat, :k] = torch.where(v > 0, cols, -1)
    val[flat, :k] = v.clamp_min(0)


def _solve_sparse(W, nodes, lam, chunk_size, idx, val) -> None:
    r"""Rows of :math:`F` for one large component: factorise
    :math:`(I - \lambda W)^\top` once (sparse LU) and solve ``chunk_size``
    anchors at a time (:math:`G^\top e_i`, then :math:`F_{i\cdot} =
    G_{i\cdot} W`), each chunk reduced to its top-:math:`k` at once."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    top_k = idx.size(1)
    m = nodes.numel()
    sub = W[nodes.numpy()][:, nodes.numpy()].tocsr()
    lu = splu(sp.csc_matrix(sp.identity(m, format="csc") - float(lam) * sub.T))
    k = min(top_k, m - 1)
    for s0 in range(0, m, chunk_size):
        rows = np.arange(s0, min(m, s0 + chunk_size))
        rhs = np.zeros((m, rows.size))
        rhs[rows, np.arange(rows.size)] = 1.0
        g = lu.solve(rhs).T  # G[rows, :]
        f = torch.from_numpy(np.asarray(sub.T.dot(g.T).T))  # F[rows, :] = G[rows, :] W
        f[torch.arange(rows.size), torch.from_numpy(rows)] = -1.0  # the anchor itself
        v, j = f.topk(k, dim=1)
        anchors = nodes[torch.from_numpy(rows)]
        idx[anchors, :k] = torch.where(v > 0, nodes[j], -1)
        val[anchors, :k] = v.clamp_min(0)


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
            :math:`T(a, b)` is fitted from, :math:`\le k_l` (the same
            neighbour search serves both); :obj:`None` uses ``k_s`` as Eq. 3
            does. (default: :obj:`None`)
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
            if transitions is not None:
                if not isinstance(transitions, TransitionSet):
                    raise TypeError(
                        f"'transitions' must be a TransitionSet or None, got "
                        f"{type(transitions).__name__}"
                    )
                if transitions.device != x.device:
                    transitions = transitions.to(x.device)
            # One neighbour search serves Eq. 3 (top transition_k) and Eq. 4 (top k_l).
            graph, self.transitions_ = spatiotemporal_graph(
                Data(x=x, camid=data.camid, time=data.time),
                self.k_s,
                self.k_l,
                self.delta,
                self.alpha,
                transitions,
                transition_k=self.transition_k,
                symmetric=True,
                backend=self.backend,
                return_transitions=True,
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
