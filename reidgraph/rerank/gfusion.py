r"""Graph-based multi-modal re-ranking of G-Fusion (MM 2023, Sec. 3.4, Eq. 15–16).

The gallery becomes a graph (visual top-:math:`k_s` edges plus, with a
transition set, the spatio-temporal edges of Eq. 4), the queries are attached
as new nodes that only *receive* messages from the gallery (Eq. 16), an
untrained two-layer GraphSAGE with random projections embeds every node
(Eq. 15), and queries are ranked against the gallery by the Euclidean
distance of the embeddings.

Every step reuses the graph library: :func:`~reidgraph.graph.knn_graph` /
:func:`~reidgraph.graph.spatiotemporal_graph` build :math:`(A^g)^*`,
:func:`~reidgraph.graph.attach_nodes` the query rows :math:`A^{qg}`, and
:class:`~reidgraph.nn.RandomSAGE` the embeddings (``docs/graph_gfusion.md``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from reidgraph._validation import as_tensor, check_choice, check_int, check_matrix
from reidgraph.graph.knn import knn_graph
from reidgraph.graph.spatiotemporal import attach_nodes, spatiotemporal_graph
from reidgraph.graph.transitions import TransitionSet
from reidgraph.nn.random_sage import RandomSAGE

__all__ = ["gfusion", "gfusion_embeddings", "OUTPUTS", "DEFAULT_CHANNELS"]

logger = logging.getLogger(__name__)

#: Values accepted by ``gfusion(output=...)``.
OUTPUTS: tuple[str, ...] = ("distance", "affinity")

#: Default width of the random projections (hidden and output); see :func:`gfusion`.
DEFAULT_CHANNELS: int = 2048

_DEFAULT_MAX_MEMORY = 256 * 2**20


def _spine(data: Any, name: str, with_st: bool) -> Data:
    r"""A fresh ``Data`` holding only what the builders need (``x``, and
    ``camid`` / ``time`` for the spatio-temporal graph), validated and named
    after the caller's argument."""
    if not isinstance(data, Data):
        raise TypeError(
            f"'{name}' must be a torch_geometric.data.Data with 'x' (and 'camid', 'time' for "
            f"the spatio-temporal graph), got {type(data).__name__}"
        )
    if getattr(data, "x", None) is None:
        raise ValueError(f"'{name}' needs node features '{name}.x' [N, d]; it is missing")
    x = check_matrix(data.x, f"{name}.x")
    out = Data(x=x)
    if with_st:
        for key, what in (("camid", "camera ids [N], 0-based"), ("time", "timestamps [N], s")):
            if getattr(data, key, None) is None:
                raise ValueError(
                    f"spatio-temporal G-Fusion (transitions given) needs '{name}.{key}' ({what}); "
                    f"it is missing. Pass transitions=None for the visual-only graph"
                )
            out[key] = as_tensor(data[key], f"{name}.{key}", device=x.device)
    return out


def _check_model_args(model: Any, **given: Any) -> dict[str, Any]:
    if model is not None:
        if not callable(model):
            raise TypeError(
                "'model' must be a module called as model(x, edge_index, edge_weight), e.g. a "
                f"RandomSAGE, got {type(model).__name__}"
            )
        clash = sorted(k for k, v in given.items() if v is not None)
        if clash:
            raise TypeError(
                f"pass either 'model' or the projection settings {clash}, not both: a given "
                "model already fixes its width, depth, initialisation and seed"
            )
        return {}
    defaults = {
        "hidden_channels": DEFAULT_CHANNELS,
        "out_channels": DEFAULT_CHANNELS,
        "num_layers": 2,
        "init": "xavier_uniform",
        "seed": 0,
    }
    return {k: defaults[k] if v is None else v for k, v in given.items()}


def gfusion_embeddings(
    query: Data,
    gallery: Data,
    transitions: TransitionSet | None = None,
    k_s: int = 3,
    k_l: int = 60,
    delta: float = 1.0,
    alpha: float = 1.0,
    *,
    model: torch.nn.Module | None = None,
    hidden_channels: int | None = None,
    out_channels: int | None = None,
    num_layers: int | None = None,
    init: str | None = None,
    seed: int | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""The node embeddings of G-Fusion's test-time graph (Sec. 3.4, Eq. 15–16).

    .. math::
        \left(v_i^g\right)^n = \sigma\left(W^n \cdot
        \left((D^g)^{-1} (A^g)^*\right)_{ij} \left(v_j^g\right)^{n-1}\right),
        \quad
        \left(v_i^q\right)^n = \sigma\left(W^n \cdot
        \left((D^{qg})^{-1} (A^{qg})^*\right)_{ij} \left(v_j^g\right)^{n-1}\right)

    for :math:`j \in \mathbb{N}(i) \cup i`. :math:`(A^g)^*` is the
    symmetrised (Eq. 6) gallery adjacency with weights
    :math:`S_{ij} = \exp(-\lVert v_i - v_j\rVert^2 / 2\alpha^2)` (Eq. 2, 5);
    the query rows :math:`A^{qg}` hold the query's top-:math:`k_s` gallery
    images and, with ``transitions``, those of its top-:math:`k_l` that pass
    the window test of Eq. 4. Queries receive messages from the gallery and
    from themselves only, so they never change the gallery embeddings or
    each other's (the conventions are those of
    :func:`~reidgraph.graph.attach_nodes` and ``docs/graph_gfusion.md``).

    See :func:`gfusion` for the arguments. **Cost**: the neighbour searches
    (:math:`O(N_g^2 d + N_q N_g d)` time, bounded memory), then
    :math:`O(E\,w + (N_q + N_g)(d\,w + w^2))` for the two layers of width
    :math:`w`; memory :math:`O((N_q + N_g)(k_l + w))`, never
    :math:`N \times N`.

    Returns:
        (torch.Tensor, torch.Tensor): ``(h_query [N_q, w], h_gallery [N_g, w])``
        on the features' device.

    Example:
        >>> g = Data(x=torch.tensor([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0]]))
        >>> q = Data(x=torch.tensor([[0.05, 1.0]]))
        >>> hq, hg = gfusion_embeddings(q, g, k_s=2, k_l=2, hidden_channels=8,
        ...                             out_channels=4, backend="torch")
        >>> hq.shape, hg.shape
        (torch.Size([1, 4]), torch.Size([3, 4]))
    """
    if transitions is not None and not isinstance(transitions, TransitionSet):
        raise TypeError(
            "'transitions' must be a TransitionSet fitted on the training split (e.g. "
            f"TransitionSet.fit(train, k_s=3)) or None for the visual-only graph, got "
            f"{type(transitions).__name__}"
        )
    with_st = transitions is not None
    q = _spine(query, "query", with_st)
    g = _spine(gallery, "gallery", with_st)
    if q.x.size(1) != g.x.size(1):
        raise ValueError(
            f"'query.x' and 'gallery.x' must have the same feature dimension, got "
            f"{q.x.size(1)} and {g.x.size(1)}"
        )
    if q.x.device != g.x.device:
        raise ValueError(f"'query.x' is on {q.x.device} but 'gallery.x' is on {g.x.device}")
    settings = _check_model_args(
        model,
        hidden_channels=hidden_channels,
        out_channels=out_channels,
        num_layers=num_layers,
        init=init,
        seed=seed,
    )
    if with_st and transitions.device != g.x.device:
        transitions = transitions.to(g.x.device)  # a few KiB: move it rather than refuse
    n_g = g.x.size(0)
    # k_s / k_l / delta / alpha are validated by the builders, which name them.
    if with_st:
        graph = spatiotemporal_graph(
            g, k_s, k_l, delta, alpha, transitions, symmetric=True, backend=backend
        )
    else:
        graph = knn_graph(g, k_s, alpha=alpha, symmetric=True, backend=backend)
    full = attach_nodes(graph, q, k_s, k_l, delta, alpha, transitions=transitions, backend=backend)
    if model is None:
        model = RandomSAGE(g.x.size(1), **settings).to(g.x.device)
    h = model(full.x, full.edge_index, full.edge_weight)
    if not isinstance(h, Tensor) or h.dim() != 2 or h.size(0) != full.x.size(0):
        raise ValueError(
            f"'model' must return node embeddings [N, w] with N = {full.x.size(0)}, got "
            f"{type(h).__name__} {tuple(h.shape) if isinstance(h, Tensor) else ''}"
        )
    logger.info(
        "gfusion: %d gallery + %d query nodes, %d edges (%s), embeddings of width %d",
        n_g,
        q.x.size(0),
        full.edge_index.size(1),
        "visual + spatio-temporal" if with_st else "visual only",
        h.size(1),
    )
    return h[n_g:], h[:n_g]


def gfusion(
    query: Data,
    gallery: Data,
    transitions: TransitionSet | None = None,
    k_s: int = 3,
    k_l: int = 60,
    delta: float = 1.0,
    alpha: float = 1.0,
    *,
    output: str = "distance",
    model: torch.nn.Module | None = None,
    hidden_channels: int | None = None,
    out_channels: int | None = None,
    num_layers: int | None = None,
    init: str | None = None,
    seed: int | None = None,
    backend: str = "auto",
    chunk_size: int | None = None,
    max_memory: int = _DEFAULT_MAX_MEMORY,
    verbose: bool = False,
) -> Tensor:
    r"""G-Fusion graph re-ranking: query × gallery distances of the graph
    embeddings (MM 2023, Sec. 3.4, Eq. 15–16).

    .. math::
        d(q_i, g_j) = \left\lVert \left(v_i^q\right)^n - \left(v_j^g\right)^n
        \right\rVert_2, \qquad
        M_{ij} = \exp\!\left(-d(q_i, g_j)^2 / 2\alpha^2\right)\ \text{(Eq. 8)}

    with the embeddings of :func:`gfusion_embeddings`: the gallery graph of
    Sec. 3.1 (visual top-:math:`k_s` edges; with ``transitions`` also the
    spatio-temporal edges of Eq. 4 among each node's top-:math:`k_l`),
    symmetrised (Eq. 6), queries attached as receive-only nodes (Eq. 16), a
    random untrained GraphSAGE of ``num_layers`` layers (Eq. 15). The
    ranking distance is the Euclidean distance of the embeddings, as in the
    authors' public code (``REFERENCE_NOTES.md`` A.5); ``output="affinity"``
    returns the Gaussian :math:`M` of Eq. 8 instead, a similarity in
    :math:`(0, 1]` (e.g. for :func:`~reidgraph.rerank.tlift`).

    **Visual-only mode** (``transitions=None``): the gallery graph has only
    the visual edges and queries attach to their top-:math:`k_s` gallery
    images — the ablation "re-ranking without :math:`ST_{test}`" (Table 2,
    row 3). With a :class:`~reidgraph.graph.TransitionSet` fitted on the
    **training** split (``TransitionSet.fit(train, k_s)``, Eq. 3) it is the
    full spatio-temporal re-ranking (row 4).

    **Width of the projections.** The paper fixes two layers, GCN-form
    aggregation, ReLU and untrained random projections, but not their width;
    the public code uses 128 on 2048-d ResNet features. Random ReLU
    projections preserve distances only up to an error that shrinks like
    :math:`1/\sqrt{w}`, and at :math:`w = 128` on 128-d features that error
    reorders close candidates (measured on the synthetic ``market-like``
    world, visual-only mode: mAP 37.8 at :math:`w = 128`, 78.4 at 1024, 81.8
    at 2048, against 83.4 without re-ranking). The default
    :data:`DEFAULT_CHANNELS` = 2048, the backbone width of Sec. 4.2, keeps
    visual-only re-ranking close to the baseline, as Table 2 (rows 0, 3)
    reports.

    **Cost**: that of :func:`gfusion_embeddings`, plus :math:`O(N_q N_g w)`
    time for the distances, computed in chunks of queries whose
    intermediates stay within ``max_memory``; the output itself is the dense
    ``[N_q, N_g]`` float matrix (:math:`4 N_q N_g` bytes: 214 MB for
    Market-1501's 3,368 × 15,913). For top-:math:`k` lists without the dense
    matrix, call :func:`gfusion_embeddings` and
    :func:`reidgraph.ops.topk` (``metric="euclidean"``).

    Args:
        query (torch_geometric.data.Data): Queries: ``x`` ``[N_q, d]``; with
            ``transitions`` also ``camid`` ``[N_q]`` (0-based) and ``time``
            ``[N_q]`` (seconds). Other attributes are ignored.
        gallery (torch_geometric.data.Data): Gallery, the same attributes,
            :math:`N_g \ge k_l`.
        transitions (TransitionSet, optional): :math:`T(a, b)` fitted on the
            training split; :obj:`None` for the visual-only graph.
            (default: :obj:`None`)
        k_s (int, optional): Visual neighbours, the node itself counted in the
            gallery graph (Sec. 4.5). (default: :obj:`3`, Sec. 4.2)
        k_l (int, optional): Candidate list of Eq. 4, :math:`k_s \le k_l \le
            N_g`. (default: :obj:`60`, Sec. 4.2)
        delta (float, optional): Half window :math:`\delta` of Eq. 4 in
            seconds. (default: :obj:`1.0` = 25 frames at 25 fps, Sec. 4.2)
        alpha (float, optional): Bandwidth :math:`\alpha` of Eq. 2 and 8.
            (default: :obj:`1.0`, Sec. 4.2)
        output (str, optional): ``"distance"`` (Euclidean, smaller is more
            similar) or ``"affinity"`` (Eq. 8). (default: :obj:`"distance"`)
        model (torch.nn.Module, optional): Use this embedding module, called
            as ``model(x, edge_index, edge_weight)``, instead of a new
            :class:`~reidgraph.nn.RandomSAGE`; then leave the five settings
            below unset. (default: :obj:`None`)
        hidden_channels (int, optional): Width of the inner layer.
            (default: :obj:`None` = :data:`DEFAULT_CHANNELS`)
        out_channels (int, optional): Width of the embeddings.
            (default: :obj:`None` = :data:`DEFAULT_CHANNELS`)
        num_layers (int, optional): Layers :math:`n`. (default: :obj:`None`
            = 2, Sec. 3.2)
        init (str, optional): Initialisation of the projections, one of
            :data:`reidgraph.nn.random_sage.INITS`. (default: :obj:`None` =
            ``"xavier_uniform"``, the public code's)
        seed (int, optional): Seed of the projections; the same seed gives
            the same result. (default: :obj:`None` = 0)
        backend (str, optional): Neighbour-search backend of
            :func:`reidgraph.ops.topk`. (default: :obj:`"auto"`)
        chunk_size (int, optional): Queries per distance chunk.
            (default: :obj:`None`, from ``max_memory``)
        max_memory (int, optional): Bytes for one chunk's intermediates.
            (default: 256 MiB)
        verbose (bool, optional): tqdm bar over the distance chunks.
            (default: :obj:`False`)

    Returns:
        torch.Tensor: ``[N_q, N_g]`` float distances (or affinities) on the
        features' device.

    Example:
        >>> from reidgraph.data.synthetic import make_world
        >>> from reidgraph.graph import TransitionSet
        >>> world = make_world("tiny", seed=0)
        >>> train, q, g = (world.to_data(s) for s in ("train", "query", "gallery"))
        >>> T = TransitionSet.fit(train, k_s=10)
        >>> dist = gfusion(q, g, T, k_l=20, hidden_channels=256, out_channels=256)
        >>> dist.shape == (q.num_nodes, g.num_nodes)
        True
    """
    output = check_choice(output, "output", OUTPUTS)
    max_memory = check_int(max_memory, "max_memory", min_value=1)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    if not isinstance(verbose, bool):
        raise TypeError(f"'verbose' must be a bool, got {type(verbose).__name__}")
    hq, hg = gfusion_embeddings(
        query,
        gallery,
        transitions,
        k_s,
        k_l,
        delta,
        alpha,
        model=model,
        hidden_channels=hidden_channels,
        out_channels=out_channels,
        num_layers=num_layers,
        init=init,
        seed=seed,
        backend=backend,
    )
    n_q, n_g = hq.size(0), hg.size(0)
    if chunk_size is None:
        # One chunk holds the [rows, N_g] product and its squared-norm terms.
        per_row = 3 * n_g * hq.element_size() + hq.size(1) * hq.element_size()
        chunk_size = max(1, max_memory // max(per_row, 1))
    # Distances are translation-invariant; centring on the gallery mean shrinks the norms
    # in ||a||^2 + ||b||^2 - 2ab (post-ReLU embeddings share a large positive mean), and
    # with them the float cancellation error of the expansion.
    centre = hg.mean(0, keepdim=True)
    hq, hg = hq - centre, hg - centre
    g_sq = hg.pow(2).sum(1)
    out = hq.new_empty(n_q, n_g)
    two_alpha_sq = 2.0 * float(alpha) ** 2
    starts = range(0, n_q, chunk_size)
    for s in tqdm(starts, desc="gfusion distances", disable=not verbose, leave=False):
        a = hq[s : s + chunk_size]
        # ||a||^2 + ||b||^2 - 2ab: one GEMM per chunk; clamp the rounding below 0.
        d2 = torch.addmm(g_sq.unsqueeze(0), a, hg.T, alpha=-2.0)
        d2.add_(a.pow(2).sum(1, keepdim=True)).clamp_(min=0.0)
        if output == "distance":
            out[s : s + chunk_size] = d2.sqrt_()
        else:
            out[s : s + chunk_size] = d2.div_(-two_alpha_sq).exp_()
    return out
