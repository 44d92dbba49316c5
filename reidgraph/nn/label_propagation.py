r"""Cross-modality label unification of GUR (ICCV 2023, Sec. 3.4, Eq. 9–13) as label propagation.

GUR rewrites the pseudo-labels of one modality (visible) from the clusters of
the other (infrared) in two weighted votes:

1. *heterogeneous transfer* (Eq. 11): :math:`Y_v^* = P^{heter} Y_i`, then
   one-hot by the row argmax;
2. *homogeneous structure smooth* (Eq. 13): :math:`Y_v^{**} = P^{homo} Y_v^*`,
   whose row argmax is the new label.

:math:`P^{heter}` and :math:`P^{homo}` come from
:func:`reidgraph.graph.cross_modality.cross_modality_graph`. A vote only ever
touches the :math:`k` edges into each node: it is a scatter-add over the edge
list keyed by (node, class), so neither an :math:`M \times N` affinity nor an
:math:`M \times C` label matrix is ever allocated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from reidgraph._validation import as_tensor, check_finite, check_int, check_vector
from reidgraph.graph.cross_modality import (
    MODALITY_NAMES,
    _build,
    _split_modalities,
)
from reidgraph.ops import DEFAULT_BLOCK_BYTES

__all__ = ["label_vote", "cross_modality_label_propagation", "CrossModalityLabelPropagation"]


def _check_labels(labels: Any, name: str, length: int | None = None) -> Tensor:
    labels = check_vector(labels, name, length=length, length_of="source nodes")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"'{name}' must be integer pseudo-labels (-1 outlier), got {labels.dtype}")
    labels = labels.long()
    if labels.numel() and int(labels.min()) < -1:
        raise ValueError(f"'{name}' must be >= -1 (-1 = outlier), found {int(labels.min())}")
    return labels


@torch.no_grad()
def label_vote(
    edge_index: Any,
    edge_weight: Any,
    labels: Any,
    num_targets: int,
) -> Tensor:
    r"""One weighted label vote along edges: a product :math:`P Y` and its row argmax.

    .. math::
        y'_t = \operatorname*{arg\,max}_{c \in \{-1, 0, \dots, C-1\}}
            \sum_{(s \to t) \in E} w_{st}\, [\, y_s = c \,]

    i.e. row :math:`t` of :math:`P Y` with :math:`P_{ts} = w_{st}` and
    :math:`Y` the one-hot label matrix, then the argmax (GUR Eq. 11 and 13).
    Outliers are handled as in GUR's code: the labels are one-hot encoded as
    ``onehot(labels + 1)``, so :math:`-1` is an ordinary class (column 0)
    that can win the vote, and the winner's column minus 1 is returned.

    Ties are broken towards the **smallest** label (the outlier :math:`-1`
    first): the first maximal column, as :func:`torch.argmax` does on GUR's
    dense ``W @ onehot`` matrix. Sums are accumulated in float64, where the
    few float32 weights of one node add up exactly, so the result does not
    depend on the order of summation (CPU or CUDA). A target with no incoming
    edge, or whose weights sum to 0, gets :math:`-1` (GUR's code: an all-zero
    row gives column 0).

    **Cost**: :math:`O(E \log E)` time (one sort of the (target, class)
    keys), :math:`O(E)` memory; no :math:`N \times C` matrix.

    Args:
        edge_index (torch.Tensor): ``[2, E]``; row 0 indexes ``labels``
            (sources), row 1 the targets :math:`0..` ``num_targets`` :math:`-1`
            (the two sets may differ, as in a bipartite graph).
        edge_weight (torch.Tensor): ``[E]`` non-negative weights :math:`w_{st}`.
        labels (torch.Tensor): ``[N_s]`` source labels :math:`y_s`,
            :math:`-1` outlier.
        num_targets (int): Number of target nodes.

    Returns:
        torch.Tensor: ``[num_targets]`` labels (long, :math:`-1` outlier).

    Example:
        >>> # target 0 hears 0.5 for label 3 and 0.25 + 0.5 for label 4
        >>> label_vote(torch.tensor([[0, 1, 2], [0, 0, 0]]),
        ...            torch.tensor([0.5, 0.25, 0.5]), torch.tensor([3, 4, 4]), 1)
        tensor([4])
    """
    num_targets = check_int(num_targets, "num_targets", min_value=0)
    labels = _check_labels(labels, "labels")
    edge_index = as_tensor(edge_index, "edge_index")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'edge_index' must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"'edge_index' must hold integer node ids, got {edge_index.dtype}")
    edge_index = edge_index.long().to(labels.device)
    num_edges = edge_index.size(1)
    edge_weight = check_vector(edge_weight, "edge_weight", length=num_edges, length_of="edges")
    edge_weight = check_finite(edge_weight.to(labels.device, torch.float64), "edge_weight")
    if num_edges:
        src, dst = edge_index
        if int(src.min()) < 0 or int(src.max()) >= labels.numel():
            raise ValueError(
                f"'edge_index[0]' must index 'labels' in [0, {labels.numel() - 1}], found "
                f"[{int(src.min())}, {int(src.max())}]"
            )
        if int(dst.min()) < 0 or int(dst.max()) >= num_targets:
            raise ValueError(
                f"'edge_index[1]' must index targets in [0, {num_targets - 1}], found "
                f"[{int(dst.min())}, {int(dst.max())}]"
            )
        if bool((edge_weight < 0).any()):
            raise ValueError(
                f"'edge_weight' must be non-negative (a vote), found {float(edge_weight.min())}"
            )
    out = torch.full((num_targets,), -1, dtype=torch.long, device=labels.device)
    if num_edges == 0:
        return out
    src, dst = edge_index
    width = int(labels.max()) + 2  # classes -1..C-1 -> columns 0..C
    key = dst * width + (labels[src] + 1)
    uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
    score = torch.zeros(uniq.numel(), dtype=torch.float64, device=labels.device)
    score.index_add_(0, inverse, edge_weight)
    node, column = uniq // width, uniq % width
    best = torch.full((num_targets,), -1.0, dtype=torch.float64, device=labels.device)
    best.scatter_reduce_(0, node, score, reduce="amax")
    # Smallest column among the maxima of each node = first maximal column.
    candidate = torch.where(score == best[node], column, width)
    winner = torch.full((num_targets,), width, dtype=torch.long, device=labels.device)
    winner.scatter_reduce_(0, node, candidate, reduce="amin")
    voted = (winner < width) & (best > 0)
    out[voted] = winner[voted] - 1
    return out


def _edge_types(graph: HeteroData) -> tuple[str, str]:
    r"""``(source, target)`` node types of the CLU graph from its edge types."""
    cross = [et for et in graph.edge_types if et[0] != et[2]]
    if len(cross) != 1:
        raise ValueError(
            "'graph' must hold exactly one cross-modality edge type (source, 'to', target), "
            f"as cross_modality_graph(output='hetero') builds; found {graph.edge_types}"
        )
    return cross[0][0], cross[0][2]


@torch.no_grad()
def cross_modality_label_propagation(
    graph: HeteroData,
    labels: Any,
    *,
    smooth: bool = True,
) -> Tensor:
    r"""GUR's cross-modality label unification (ICCV 2023, Sec. 3.4, Eq. 11 and 13).

    .. math::
        Y_v^* = \operatorname{onehot}\!\left(\operatorname*{arg\,max}_{row}
            P^{heter} Y_i\right) \quad \text{(Eq. 11)}, \qquad
        y_v = \operatorname*{arg\,max}_{row} P^{homo} Y_v^* \quad \text{(Eq. 13)}

    Symbols → arguments: :math:`P^{heter}` (``[M, N]``, Eq. 10) is the edge
    type ``(source, "to", target)`` of ``graph`` and :math:`P^{homo}`
    (``[M, M]``, Eq. 12) the edge type ``(target, "to", target)``, both from
    :func:`~reidgraph.graph.cross_modality.cross_modality_graph`
    (``output="hetero"``); :math:`Y_i` is the one-hot form of ``labels``
    (the source modality's pseudo-labels, infrared in the paper); the result
    is :math:`y_v`, the target modality's new labels. Each vote is
    :func:`label_vote` (outliers as class :math:`-1`, ties to the smallest
    label). With ``smooth=False`` only Eq. 11 runs (GUR's code skips the
    smoothing during the first 10 CLU epochs on SYSU-MM01).

    **Cost**: :math:`O(M (k + k_{homo}) \log(M k))`, memory :math:`O(M k)`.

    Args:
        graph (torch_geometric.data.HeteroData): The CLU graph.
        labels (torch.Tensor): ``[N]`` pseudo-labels of the source node type,
            in its local order, :math:`-1` outlier.
        smooth (bool, optional): Apply the homogeneous smoothing of Eq. 13.
            (default: :obj:`True`)

    Returns:
        torch.Tensor: ``[M]`` labels of the target node type (long).

    Example:
        >>> from reidgraph.graph.cross_modality import cross_modality_graph
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
        >>> data = Data(x=x, modality=torch.tensor([0, 0, 1, 1]))
        >>> g = cross_modality_graph(data, k=1, k_homo=1, backend="torch")
        >>> cross_modality_label_propagation(g, torch.tensor([7, -1]))
        tensor([ 7, -1])
    """
    if not isinstance(graph, HeteroData):
        raise TypeError(
            "'graph' must be the HeteroData of cross_modality_graph(output='hetero'), got "
            f"{type(graph).__name__}"
        )
    if not isinstance(smooth, bool):
        raise TypeError(f"'smooth' must be a bool, got {type(smooth).__name__}")
    source, target = _edge_types(graph)
    n_source, n_target = graph[source].num_nodes, graph[target].num_nodes
    labels = _check_labels(labels, "labels", length=n_source)
    het = graph[source, "to", target]
    if het.get("edge_weight") is None:
        raise ValueError(f"edge type ({source!r}, 'to', {target!r}) has no 'edge_weight'")
    labels = labels.to(het.edge_index.device)
    out = label_vote(het.edge_index, het.edge_weight, labels, n_target)
    if not smooth:
        return out
    if (target, "to", target) not in graph.edge_types:
        raise ValueError(
            f"smooth=True needs the homogeneous edges ({target!r}, 'to', {target!r}) of Eq. 12; "
            "build the graph with homogeneous=True or pass smooth=False"
        )
    hom = graph[target, "to", target]
    if hom.get("edge_weight") is None:
        raise ValueError(f"edge type ({target!r}, 'to', {target!r}) has no 'edge_weight'")
    return label_vote(hom.edge_index, hom.edge_weight, out, n_target)


class CrossModalityLabelPropagation(torch.nn.Module):
    r"""GUR's cross-modality label unification (ICCV 2023, Sec. 3.4, Eq. 9–13) on a spine graph.

    Builds :math:`P^{heter}` (Eq. 10) and :math:`P^{homo}` (Eq. 12) with
    :func:`~reidgraph.graph.cross_modality.cross_modality_graph` and runs
    :func:`cross_modality_label_propagation`:

    .. math::
        Y_v^* = \operatorname{onehot}\!\left(\operatorname*{arg\,max}_{row}
            P^{heter} Y_i\right), \qquad
        y_v = \operatorname*{arg\,max}_{row} P^{homo} Y_v^*

    Symbols → arguments: :math:`v` is the modality ``target`` (visible in the
    paper), :math:`i` the other one; :math:`Y_i` is ``labels`` restricted to
    the source nodes; :math:`k` / :math:`k_{homo}` are ``k`` / ``k_homo``;
    the cosine features of Eq. 9 are ``data.x``. The labels of the source
    nodes pass through unchanged and those of the target nodes are replaced,
    which is how GUR's code assembles the labels of the next epoch
    (``np.hstack((pseudo_labels_rgb_cm, pseudo_labels_ir))``).

    The row denominators of Eq. 10 and 12 are a positive factor per row,
    which no row argmax sees, so the module normalises over the kept entries
    only (``softmax="topk"`` of the builder): the labels are those of the
    full-row softmax (tested against a dense evaluation of Eq. 10–13) without
    the extra pass over all pairs that the full denominators cost. Build the
    graph with :func:`~reidgraph.graph.cross_modality.cross_modality_graph`
    and call :func:`cross_modality_label_propagation` to keep the exact
    weights. ``homogeneous_weight="binary"`` reproduces GUR's code, which
    smooths with an unweighted top-k mask; the default follows Eq. 12.

    **Cost**: two top-k searches (:math:`O((MN + M^2) d)` time, one score
    block of memory) and two votes (:math:`O(M k \log(M k))`); never an
    :math:`M \times N`, :math:`M \times M` or :math:`M \times C` matrix.

    Args:
        k (int, optional): Kept entries per row of :math:`P^{heter}`.
            (default: :obj:`20`, GUR on SYSU-MM01; 10 on RegDB)
        k_homo (int, optional): Kept entries per row of :math:`P^{homo}`
            (self included). (default: :obj:`None`, same as ``k``)
        target (str, optional): Modality whose labels are rewritten:
            ``"visible"`` (infrared → visible, the paper) or ``"infrared"``.
            (default: ``"visible"``)
        smooth (bool, optional): Apply Eq. 13. (default: :obj:`True`)
        homogeneous_weight (str, optional): ``"softmax"`` (Eq. 12) or
            ``"binary"`` (GUR's code). (default: ``"softmax"``)
        backend (str, optional): Neighbour search of :func:`reidgraph.ops.topk`.
            (default: ``"auto"``)
        chunk_size (int, optional): Most rows per score block.
            (default: :obj:`None`)
        max_block_bytes (int, optional): Memory budget of one score block.
            (default: 256 MiB)

    Shapes:
        - **input:** ``data`` with ``x`` :math:`(N, d)` and ``modality``
          :math:`(N)`; ``labels`` :math:`(N)` (values at target nodes ignored)
        - **output:** labels :math:`(N)`, long, :math:`-1` outlier

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
        >>> data = Data(x=x, modality=torch.tensor([0, 0, 1, 1]))
        >>> clu = CrossModalityLabelPropagation(k=1, k_homo=1, backend="torch")
        >>> clu(data, torch.tensor([-1, -1, 5, 6]))
        tensor([5, 6, 5, 6])
    """

    def __init__(
        self,
        k: int = 20,
        k_homo: int | None = None,
        target: str = "visible",
        smooth: bool = True,
        homogeneous_weight: str = "softmax",
        backend: str = "auto",
        chunk_size: int | None = None,
        max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    ) -> None:
        super().__init__()
        self.k = k
        self.k_homo = k_homo
        self.target = target
        self.smooth = smooth
        self.homogeneous_weight = homogeneous_weight
        self.backend = backend
        self.chunk_size = chunk_size
        self.max_block_bytes = max_block_bytes

    def reset_parameters(self) -> None:
        r"""No learnable parameters (a propagator); present for the layer protocol."""

    @torch.no_grad()
    def forward(self, data: Data, labels: Any) -> Tensor:
        r"""Returns ``labels`` with the target modality's entries unified (Eq. 11–13)."""
        if not isinstance(self.smooth, bool):
            raise TypeError(f"'smooth' must be a bool, got {type(self.smooth).__name__}")
        x, vis_id, ir_id = _split_modalities(data, self.__class__.__name__)
        labels = _check_labels(labels, "labels", length=x.size(0)).to(x.device)
        graph = _build(
            data,
            x,
            vis_id,
            ir_id,
            k=self.k,
            k_homo=self.k_homo,
            target=self.target,
            softmax="topk",
            homogeneous=self.smooth,
            homogeneous_weight=self.homogeneous_weight,
            output="hetero",
            backend=self.backend,
            chunk_size=self.chunk_size,
            max_block_bytes=self.max_block_bytes,
        )
        target = self.target.lower()
        source = MODALITY_NAMES[1 - MODALITY_NAMES.index(target)]
        t_id, s_id = graph[target].n_id, graph[source].n_id
        new = cross_modality_label_propagation(graph, labels[s_id], smooth=self.smooth)
        out = labels.clone()
        out[t_id] = new
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(k={self.k}, k_homo={self.k_homo}, target={self.target}, "
            f"smooth={self.smooth}, homogeneous_weight={self.homogeneous_weight})"
        )
