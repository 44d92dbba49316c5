r"""Visible ↔ infrared affinity graph of GUR's label unification (ICCV 2023, Sec. 3.4).

GUR's cross-modality label unification (CLU) propagates pseudo-labels over two
sparse row-stochastic-then-truncated matrices built from cosine similarities
(Eq. 9): the heterogeneous affinity :math:`P^{heter}` between the *target*
modality (whose labels are rewritten; visible in the paper) and the *source*
modality (infrared), Eq. 10, and the homogeneous structure :math:`P^{homo}`
inside the target modality, Eq. 12. Both keep the :math:`k` largest entries of
each row. :func:`cross_modality_graph` builds them without ever forming a dense
:math:`M \times N` or :math:`M \times M` matrix.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.transforms import BaseTransform

from reidgraph._validation import check_choice, check_int, check_matrix, check_vector
from reidgraph.graph.edge_types import CROSS_MODALITY, VISUAL
from reidgraph.ops import DEFAULT_BLOCK_BYTES, iter_similarity_blocks, topk

__all__ = [
    "cross_modality_graph",
    "CrossModalityGraph",
    "CrossModalityMatrices",
    "MODALITY_NAMES",
    "SOFTMAX",
    "HOMOGENEOUS_WEIGHTS",
    "OUTPUTS",
]

#: Node-type names of the two modalities (``data.modality`` 0 and 1).
MODALITY_NAMES: tuple[str, str] = ("visible", "infrared")
#: Where the row softmax of Eq. 10 / 12 is taken (see :func:`cross_modality_graph`).
SOFTMAX: tuple[str, ...] = ("full", "topk")
#: Weights of the homogeneous structure edges.
HOMOGENEOUS_WEIGHTS: tuple[str, ...] = ("softmax", "binary")
#: Output forms of :func:`cross_modality_graph`.
OUTPUTS: tuple[str, ...] = ("hetero", "data", "coo", "csr")

# Node-level spine attributes carried over to the node stores of the HeteroData.
_NODE_ATTRS = ("x", "camid", "time", "pid")


class CrossModalityMatrices(NamedTuple):
    r"""Sparse-matrix form of the CLU graph (``output="coo"`` / ``"csr"``).

    Attributes:
        heter (torch.Tensor): :math:`P^{heter}` ``[M, N]``, rows = target
            nodes, columns = source nodes, :math:`k` entries per row (Eq. 10).
        homo (torch.Tensor or None): :math:`P^{homo}` ``[M, M]``,
            :math:`k_{homo}` entries per row (Eq. 12); :obj:`None` when
            ``homogeneous=False``.
        target_id (torch.Tensor): ``[M]`` node ids (into the input ``Data``)
            of the rows.
        source_id (torch.Tensor): ``[N]`` node ids of the columns of ``heter``.
    """

    heter: Tensor
    homo: Tensor | None
    target_id: Tensor
    source_id: Tensor


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"'{name}' must be a bool, got {type(value).__name__} ({value!r})")
    return value


def _split_modalities(data: Any, builder: str) -> tuple[Tensor, Tensor, Tensor]:
    r"""Validates ``data`` and returns ``(x, visible_id, infrared_id)``."""
    if not isinstance(data, Data):
        raise TypeError(f"{builder} expects a torch_geometric.data.Data, got {type(data).__name__}")
    if data.get("x") is None:
        raise ValueError(f"{builder} needs node features 'x' [N, d]; data.x is missing")
    if data.get("modality") is None:
        raise ValueError(
            f"{builder} needs 'modality' [N] (0 visible, 1 infrared); data.modality is missing"
        )
    x = check_matrix(data.x, "data.x")
    modality = check_vector(data.modality, "data.modality", length=x.size(0), length_of="nodes")
    if modality.is_floating_point() or modality.dtype == torch.bool:
        raise TypeError(
            f"'data.modality' must be integer (0 visible, 1 infrared), got dtype {modality.dtype}"
        )
    modality = modality.to(x.device)
    bad = (modality != 0) & (modality != 1)
    if bool(bad.any()):
        raise ValueError(
            "'data.modality' must be 0 (visible) or 1 (infrared), found "
            f"{sorted(set(modality[bad].tolist()))}"
        )
    ids = [torch.nonzero(modality == m).view(-1) for m in (0, 1)]
    for m, idx in enumerate(ids):
        if idx.numel() == 0:
            raise ValueError(
                f"{builder} needs nodes of both modalities, but there is no "
                f"{MODALITY_NAMES[m]} node (modality == {m}) among the {x.size(0)} nodes"
            )
    return x, ids[0], ids[1]


def _row_exp_sum(
    x_t: Tensor, x_s: Tensor | None, chunk_size: int | None, max_block_bytes: int
) -> Tensor:
    r""":math:`\sum_l \exp(\mathrm{sim}(t_m, s_l))` per target row, block by block
    (the denominator of Eq. 10 / 12). Cosine scores lie in :math:`[-1, 1]`, so
    the exponentials cannot overflow; the sum is accumulated in float64."""
    total = torch.zeros(x_t.size(0), dtype=torch.float64, device=x_t.device)
    for rows, _, block in iter_similarity_blocks(
        x_t, x_s, "cosine", chunk_size=chunk_size, max_block_bytes=max_block_bytes
    ):
        total[rows] += block.exp_().sum(dim=1, dtype=torch.float64)
    return total


def _affinity(
    x_t: Tensor,
    x_s: Tensor | None,
    k: int,
    softmax: str,
    backend: str,
    chunk_size: int | None,
    max_block_bytes: int,
) -> tuple[Tensor, Tensor]:
    r"""Top-``k`` columns of each row of the row-softmax of cosine similarities.

    Returns ``(weight [M, k], column index [M, k])``, best first."""
    score, index = topk(
        x_t,
        k,
        database=x_s,
        metric="cosine",
        backend=backend,
        chunk_size=chunk_size,
        max_block_bytes=max_block_bytes,
    )
    if softmax == "topk":
        return torch.softmax(score, dim=1), index
    denom = _row_exp_sum(x_t, x_s, chunk_size, max_block_bytes)
    weight = (score.to(torch.float64).exp() / denom.unsqueeze(1)).to(score.dtype)
    return weight, index


def cross_modality_graph(
    data: Data,
    k: int = 20,
    *,
    k_homo: int | None = None,
    target: str = "visible",
    softmax: str = "full",
    homogeneous: bool = True,
    homogeneous_weight: str = "softmax",
    output: str = "hetero",
    backend: str = "auto",
    chunk_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> HeteroData | Data | CrossModalityMatrices:
    r"""The heterogeneous affinity and homogeneous structure of GUR (ICCV 2023, Eq. 9–12).

    With cosine similarities :math:`\mathrm{sim}` (Eq. 9), target nodes
    :math:`x^v_m` (:math:`m \le M`, the modality named by ``target``;
    visible in the paper) and source nodes :math:`x^i_n` (:math:`n \le N`,
    the other modality):

    .. math::
        P^{heter}_{m,n} = \frac{\exp(\mathrm{sim}(x^v_m, x^i_n))}
            {\sum_{l=1}^{N} \exp(\mathrm{sim}(x^v_m, x^i_l))}
        \quad \text{(Eq. 10)}, \qquad
        P^{homo}_{m,n} = \frac{\exp(\mathrm{sim}(x^v_m, x^v_n))}
            {\sum_{l=1}^{M} \exp(\mathrm{sim}(x^v_m, x^v_l))}
        \quad \text{(Eq. 12)},

    each truncated to its :math:`k` largest entries per row ("we only keep
    the k-max values in each row", Sec. 3.4) **without renormalising** the
    kept ones: the paper's definition and what GUR's code does
    (``softmax(f_rgb f_ir^T)`` then a top-k mask). ``softmax="topk"`` takes the
    softmax over the kept :math:`k` entries instead (rows sum to 1). Both
    differ only by a positive factor per row, so the label propagation of
    Eq. 11 / 13 (:mod:`reidgraph.nn.label_propagation`) gives the same labels
    either way; ``"topk"`` skips the extra pass over all pairs that the full
    denominator costs. The :math:`\sum_{l=1}^{N}` printed in Eq. 12 runs over
    the :math:`M` target nodes; the target node itself is included there and
    is its own first neighbour (similarity 1), as in GUR's code.

    GUR's code and the paper differ in one place, the homogeneous weights:
    the code smooths with a **binary** top-k mask (each of the :math:`k`
    nearest target nodes votes 1), the paper with the softmax weights of
    Eq. 12. ``homogeneous_weight="softmax"`` (default) follows the paper,
    ``"binary"`` the code. GUR uses :math:`k = 20` on SYSU-MM01 and
    :math:`k = 10` on RegDB for both matrices (``sysu_train.py`` /
    ``regdb_train.py``; the paper gives no value), with infrared → visible
    transfer (``target="visible"``; confirmed in yangbincv/GUR#2).

    Edges follow PyG (source → target), so messages flow into the target
    node: :math:`P_{m,n}` is the edge ``n -> m``.

    **Cost**: two top-k searches with :func:`reidgraph.ops.topk`
    (:math:`O(MNd + M^2 d)` time) and, for ``softmax="full"``, one more pass
    over the same pairs for the denominators; memory one score block of at
    most ``max_block_bytes`` plus :math:`O(M (k + k_{homo}))` for the edges.
    No :math:`M \times N` or :math:`M \times M` matrix is ever allocated.

    Args:
        data (torch_geometric.data.Data): Spine graph with ``x`` ``[N_all, d]``
            and ``modality`` ``[N_all]`` (0 visible, 1 infrared); both
            modalities must be present.
        k (int, optional): Entries kept per row of :math:`P^{heter}`,
            :math:`1 \le k \le N`. (default: :obj:`20`, GUR on SYSU-MM01; use
            10 for RegDB)
        k_homo (int, optional): Entries kept per row of :math:`P^{homo}`
            (self included), :math:`1 \le k_{homo} \le M`. (default:
            :obj:`None`, same as ``k``)
        target (str, optional): Modality whose rows are built and whose labels
            CLU rewrites: ``"visible"`` (paper: infrared → visible) or
            ``"infrared"`` (the other direction). (default: ``"visible"``)
        softmax (str, optional): ``"full"`` (Eq. 10 / 12 and GUR's code:
            softmax over the whole row, then truncate) or ``"topk"``
            (softmax over the kept entries). (default: ``"full"``)
        homogeneous (bool, optional): Also build :math:`P^{homo}`.
            (default: :obj:`True`)
        homogeneous_weight (str, optional): ``"softmax"`` (Eq. 12) or
            ``"binary"`` (GUR's code: weight 1). (default: ``"softmax"``)
        output (str, optional): ``"hetero"`` (:class:`HeteroData`), ``"data"``
            (a shallow copy of ``data`` with the edges), ``"coo"`` / ``"csr"``
            (:class:`CrossModalityMatrices` of :mod:`torch.sparse` tensors).
            (default: ``"hetero"``)
        backend (str, optional): Neighbour-search backend of
            :func:`reidgraph.ops.topk`. (default: ``"auto"``)
        chunk_size (int, optional): Most target rows per score block.
            (default: :obj:`None`, from ``max_block_bytes``)
        max_block_bytes (int, optional): Memory budget of one score block.
            (default: 256 MiB)

    Returns:
        * ``"hetero"``: :class:`~torch_geometric.data.HeteroData` with node
          types ``"visible"`` and ``"infrared"`` (``x``, and ``camid``,
          ``time``, ``pid`` where present, plus ``n_id``: the node ids in
          ``data``) and edge types ``(source, "to", target)`` (:math:`k`
          edges into every target node, weight :math:`P^{heter}`) and
          ``(target, "to", target)`` (:math:`k_{homo}` edges, weight
          :math:`P^{homo}`, including the self loop ``m -> m``), each with
          ``edge_index`` (local ids) and ``edge_weight``, grouped by target
          node, best first.
        * ``"data"``: a shallow copy of ``data`` whose ``edge_index``,
          ``edge_weight``, ``edge_type`` are replaced by the same edges in
          global ids, typed :obj:`~reidgraph.graph.edge_types.CROSS_MODALITY`
          (heterogeneous) and :obj:`~reidgraph.graph.edge_types.VISUAL`
          (homogeneous); a previous ``edge_attr`` is cleared.
        * ``"coo"`` / ``"csr"``: :class:`CrossModalityMatrices`.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
        >>> data = Data(x=x, modality=torch.tensor([0, 0, 1, 1]))
        >>> g = cross_modality_graph(data, k=1, backend="torch")
        >>> g["infrared", "to", "visible"].edge_index  # infrared 0 -> visible 0, 1 -> 1
        tensor([[0, 1],
                [0, 1]])
    """
    x, vis_id, ir_id = _split_modalities(data, "cross_modality_graph")
    return _build(
        data,
        x,
        vis_id,
        ir_id,
        k=k,
        k_homo=k_homo,
        target=target,
        softmax=softmax,
        homogeneous=homogeneous,
        homogeneous_weight=homogeneous_weight,
        output=output,
        backend=backend,
        chunk_size=chunk_size,
        max_block_bytes=max_block_bytes,
    )


def _build(
    data: Data,
    x: Tensor,
    vis_id: Tensor,
    ir_id: Tensor,
    *,
    k: int,
    k_homo: int | None,
    target: str,
    softmax: str,
    homogeneous: bool,
    homogeneous_weight: str,
    output: str,
    backend: str,
    chunk_size: int | None,
    max_block_bytes: int,
) -> HeteroData | Data | CrossModalityMatrices:
    r""":func:`cross_modality_graph` after :func:`_split_modalities` validated ``data``
    (callers that validated it already skip the second pass over ``x``)."""
    target = check_choice(target, "target", MODALITY_NAMES)
    softmax = check_choice(softmax, "softmax", SOFTMAX)
    homogeneous_weight = check_choice(homogeneous_weight, "homogeneous_weight", HOMOGENEOUS_WEIGHTS)
    output = check_choice(output, "output", OUTPUTS)
    homogeneous = _check_bool(homogeneous, "homogeneous")
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", min_value=1)
    t_id, s_id = (vis_id, ir_id) if target == "visible" else (ir_id, vis_id)
    source = MODALITY_NAMES[1 - MODALITY_NAMES.index(target)]
    m, n = t_id.numel(), s_id.numel()
    k = check_int(
        k,
        "k",
        min_value=1,
        max_value=n,
        max_reason=f"k cannot exceed the number of {source} (source) nodes, {n}",
    )
    if homogeneous:
        if k_homo is None:
            if k > m:
                raise ValueError(
                    f"'k_homo' defaults to k = {k}, which exceeds the {m} {target} (target) "
                    f"nodes; pass k_homo <= {m}"
                )
            k_homo = k
        k_homo = check_int(
            k_homo,
            "k_homo",
            min_value=1,
            max_value=m,
            max_reason=f"k_homo counts the node itself and cannot exceed the {m} {target} nodes",
        )

    x_t, x_s = x[t_id], x[s_id]
    w_het, col_het = _affinity(x_t, x_s, k, softmax, backend, chunk_size, max_block_bytes)
    row_het = torch.arange(m, device=x.device).unsqueeze(1).expand_as(col_het)
    w_hom = col_hom = row_hom = None
    if homogeneous:
        # Binary weights discard the softmax: skip the pass for its denominator.
        norm = "topk" if homogeneous_weight == "binary" else softmax
        w_hom, col_hom = _affinity(x_t, None, k_homo, norm, backend, chunk_size, max_block_bytes)
        if homogeneous_weight == "binary":
            w_hom = torch.ones_like(w_hom)
        row_hom = torch.arange(m, device=x.device).unsqueeze(1).expand_as(col_hom)

    if output in ("coo", "csr"):

        def sparse(rows: Tensor, cols: Tensor, w: Tensor, shape: tuple[int, int]) -> Tensor:
            mat = torch.sparse_coo_tensor(
                torch.stack([rows.reshape(-1), cols.reshape(-1)]),
                w.reshape(-1),
                shape,
                check_invariants=False,  # indices are in range by construction
            ).coalesce()
            if output == "coo":
                return mat
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                return mat.to_sparse_csr()

        heter = sparse(row_het, col_het, w_het, (m, n))
        homo = sparse(row_hom, col_hom, w_hom, (m, m)) if homogeneous else None
        return CrossModalityMatrices(heter, homo, t_id, s_id)

    if output == "hetero":
        out = HeteroData()
        for name, ids in ((target, t_id), (source, s_id)):
            store = out[name]
            for key in _NODE_ATTRS:
                value = data.get(key)
                if isinstance(value, Tensor) and value.dim() >= 1 and value.size(0) == x.size(0):
                    store[key] = value[ids.to(value.device)]
            store.n_id = ids
            store.num_nodes = ids.numel()
        het = out[source, "to", target]
        het.edge_index = torch.stack([col_het.reshape(-1), row_het.reshape(-1)])
        het.edge_weight = w_het.reshape(-1)
        if homogeneous:
            hom = out[target, "to", target]
            hom.edge_index = torch.stack([col_hom.reshape(-1), row_hom.reshape(-1)])
            hom.edge_weight = w_hom.reshape(-1)
        return out

    src = [s_id[col_het].reshape(-1)]
    dst = [t_id[row_het].reshape(-1)]
    weights = [w_het.reshape(-1)]
    types = [torch.full((m * k,), CROSS_MODALITY, dtype=torch.long, device=x.device)]
    if homogeneous:
        src.append(t_id[col_hom].reshape(-1))
        dst.append(t_id[row_hom].reshape(-1))
        weights.append(w_hom.reshape(-1))
        types.append(torch.full((m * k_homo,), VISUAL, dtype=torch.long, device=x.device))
    out = copy.copy(data)
    out.edge_index = torch.stack([torch.cat(src), torch.cat(dst)])
    out.edge_weight = torch.cat(weights)
    out.edge_type = torch.cat(types)
    if "edge_attr" in out:
        out.edge_attr = None
    return out


class CrossModalityGraph(BaseTransform):
    r"""Transform wrapper of :func:`cross_modality_graph` (GUR Eq. 9–12).

    Args:
        k (int, optional): Kept entries per row of :math:`P^{heter}`.
            (default: :obj:`20`, SYSU-MM01; 10 for RegDB)
        k_homo (int, optional): Kept entries per row of :math:`P^{homo}`.
            (default: :obj:`None`, same as ``k``)
        target (str, optional): ``"visible"`` or ``"infrared"``.
            (default: ``"visible"``)
        softmax (str, optional): ``"full"`` or ``"topk"``. (default: ``"full"``)
        homogeneous (bool, optional): Build :math:`P^{homo}`. (default: :obj:`True`)
        homogeneous_weight (str, optional): ``"softmax"`` or ``"binary"``.
            (default: ``"softmax"``)
        output (str, optional): ``"hetero"`` or ``"data"`` (a transform
            returns a graph object). (default: ``"hetero"``)
        backend (str, optional): Neighbour-search backend. (default: ``"auto"``)

    Example:
        >>> CrossModalityGraph(k=10)
        CrossModalityGraph(k=10, k_homo=None, target=visible, softmax=full, homogeneous=True, homogeneous_weight=softmax, output=hetero)
    """  # noqa: E501

    def __init__(
        self,
        k: int = 20,
        k_homo: int | None = None,
        target: str = "visible",
        softmax: str = "full",
        homogeneous: bool = True,
        homogeneous_weight: str = "softmax",
        output: str = "hetero",
        backend: str = "auto",
    ) -> None:
        if output not in ("hetero", "data"):
            raise ValueError(
                f"CrossModalityGraph returns a graph: output must be 'hetero' or 'data', "
                f"got {output!r} (call cross_modality_graph for sparse matrices)"
            )
        self.k = k
        self.k_homo = k_homo
        self.target = target
        self.softmax = softmax
        self.homogeneous = homogeneous
        self.homogeneous_weight = homogeneous_weight
        self.output = output
        self.backend = backend

    def forward(self, data: Data) -> HeteroData | Data:
        return cross_modality_graph(
            data,
            self.k,
            k_homo=self.k_homo,
            target=self.target,
            softmax=self.softmax,
            homogeneous=self.homogeneous,
            homogeneous_weight=self.homogeneous_weight,
            output=self.output,
            backend=self.backend,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(k={self.k}, k_homo={self.k_homo}, target={self.target}, "
            f"softmax={self.softmax}, homogeneous={self.homogeneous}, "
            f"homogeneous_weight={self.homogeneous_weight}, output={self.output})"
        )
