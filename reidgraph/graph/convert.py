r"""Export spine graphs to :mod:`networkx` and back, keeping the re-ID attributes.

:func:`torch_geometric.utils.to_networkx` copies only the attributes it is
told to and collapses parallel edges unless ``to_multi=True``; a re-ID graph
routinely holds a visual and a spatio-temporal edge between the same two
images, so a silent collapse would lose edges. The functions here keep the
spine (:obj:`camid`, :obj:`time`, :obj:`modality`, :obj:`pid`; see
``DESIGN.md``) on the nodes, store :obj:`edge_weight` / :obj:`edge_type` as the
networkx-conventional edge attributes ``weight`` / ``type``, pick a multigraph
when parallel edges exist, and convert back without loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch_geometric.data import Data, HeteroData

from reidgraph.graph.edge_types import EDGE_TYPE_NAMES

__all__ = ["to_networkx", "from_networkx", "SPINE_NODE_ATTRS"]

SPINE_NODE_ATTRS: tuple[str, ...] = ("camid", "time", "modality", "pid")
r"""Node attributes exported by default when present on the :class:`Data`."""

# Data attribute -> networkx edge attribute. 'weight' is the key every weighted
# networkx algorithm reads; 'type' keeps the integer edge type constant.
_EDGE_RENAME: dict[str, str] = {"edge_weight": "weight", "edge_type": "type"}
_EDGE_RENAME_BACK: dict[str, str] = {v: k for k, v in _EDGE_RENAME.items()}
_LONG_NODE_ATTRS = frozenset({"camid", "modality", "pid"})
_FLOAT_NODE_ATTRS = frozenset({"time", "x"})


def _node_attr_names(data: Data, node_attrs: Iterable[str] | None) -> list[str]:
    if node_attrs is None:
        return [k for k in SPINE_NODE_ATTRS if data.get(k) is not None]
    if isinstance(node_attrs, str):
        raise TypeError(
            f"'node_attrs' must be an iterable of attribute names, got the string {node_attrs!r}"
        )
    names = list(node_attrs)
    for name in names:
        value = data.get(name)
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"'node_attrs' names {name!r}, but the Data has no tensor attribute {name!r}"
            )
        if value.dim() == 0 or value.size(0) != data.num_nodes:
            raise ValueError(
                f"node attribute {name!r} must have one row per node ({data.num_nodes}), "
                f"got shape {tuple(value.shape)}"
            )
    return names


def _edge_attr_names(data: Data, edge_attrs: Iterable[str] | None, num_edges: int) -> list[str]:
    if edge_attrs is None:
        return [k for k in _EDGE_RENAME if data.get(k) is not None]
    if isinstance(edge_attrs, str):
        raise TypeError(
            f"'edge_attrs' must be an iterable of attribute names, got the string {edge_attrs!r}"
        )
    names = list(edge_attrs)
    for name in names:
        value = data.get(name)
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"'edge_attrs' names {name!r}, but the Data has no tensor attribute {name!r}"
            )
        if value.dim() == 0 or value.size(0) != num_edges:
            raise ValueError(
                f"edge attribute {name!r} must have one row per edge ({num_edges}), "
                f"got shape {tuple(value.shape)}"
            )
    return names


def _has_parallel_edges(edge_index: torch.Tensor, num_nodes: int) -> bool:
    if edge_index.size(1) < 2:
        return False
    key = edge_index[0] * num_nodes + edge_index[1]
    return torch.unique(key).numel() < key.numel()


def to_networkx(
    data: Data,
    node_attrs: Iterable[str] | None = None,
    edge_attrs: Iterable[str] | None = None,
    *,
    to_multi: bool | None = None,
) -> Any:
    r"""Converts a spine :class:`~torch_geometric.data.Data` to a directed networkx graph.

    Node :math:`i` of the result is the integer ``i`` (the row of :obj:`x`).
    Nodes carry the spine attributes present on :obj:`data` (:obj:`camid`,
    :obj:`time`, :obj:`modality`, :obj:`pid`) as Python scalars; edges carry
    :obj:`edge_weight` as ``weight`` and :obj:`edge_type` as ``type`` (the
    integer constants of :mod:`reidgraph.graph.edge_types`, whose names are
    stored in ``G.graph["edge_type_names"]``). Edge direction follows PyG:
    ``edge_index[0]`` is the source. :func:`from_networkx` inverts it.

    Unlike :func:`torch_geometric.utils.to_networkx`, parallel edges (e.g. a
    visual and a spatio-temporal edge between the same pair) are never dropped:
    with ``to_multi=None`` a :class:`networkx.MultiDiGraph` is returned exactly
    when :obj:`edge_index` holds a repeated ``(source, target)`` pair.

    Cost: :math:`O(N + E)` time and memory (Python objects, as networkx is).

    Args:
        data (torch_geometric.data.Data): The graph. Needs :obj:`edge_index`
            (an empty graph may omit it) and a node count.
        node_attrs (iterable of str, optional): Node-level tensors to copy
            (vectors such as :obj:`x` become lists). (default: :obj:`None`,
            the spine attributes present)
        edge_attrs (iterable of str, optional): Edge-level tensors to copy;
            :obj:`edge_weight` / :obj:`edge_type` are stored as ``weight`` /
            ``type``, others under their own name. (default: :obj:`None`,
            :obj:`edge_weight` and :obj:`edge_type` where present)
        to_multi (bool, optional): :obj:`True` always returns a
            :class:`~networkx.MultiDiGraph`, :obj:`False` a
            :class:`~networkx.DiGraph` (raising if that would merge parallel
            edges), :obj:`None` chooses. (default: :obj:`None`)

    Returns:
        networkx.DiGraph or networkx.MultiDiGraph

    Example:
        >>> data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]),
        ...             edge_weight=torch.tensor([0.5, 0.25]),
        ...             pid=torch.tensor([7, 7, 8]), num_nodes=3)
        >>> G = to_networkx(data)
        >>> G.nodes[0]["pid"], G.edges[0, 1]["weight"]
        (7, 0.5)
    """
    import networkx as nx

    if isinstance(data, HeteroData):
        raise TypeError(
            "to_networkx expects a homogeneous Data; for a HeteroData (e.g. from "
            "cross_modality_graph(output='hetero')) build it with output='data' or call "
            "data.to_homogeneous() first"
        )
    if not isinstance(data, Data):
        raise TypeError(f"'data' must be a torch_geometric Data, got {type(data).__name__}")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValueError("'data' has no node count: set x, num_nodes or a node attribute")
    edge_index = data.get("edge_index")
    if edge_index is None:
        edge_index = torch.empty(2, 0, dtype=torch.long)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"'data.edge_index' must have shape [2, E], got {tuple(edge_index.shape)}")
    num_edges = edge_index.size(1)
    if num_edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"'data.edge_index' must index nodes in [0, {num_nodes - 1}], found values in "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    nodes = _node_attr_names(data, node_attrs)
    edges = _edge_attr_names(data, edge_attrs, num_edges)

    parallel = _has_parallel_edges(edge_index, num_nodes)
    if to_multi is None:
        to_multi = parallel
    elif not to_multi and parallel:
        raise ValueError(
            "'data.edge_index' holds repeated (source, target) pairs, which a DiGraph would "
            "merge; pass to_multi=True (or None) to keep them in a MultiDiGraph"
        )
    G = nx.MultiDiGraph() if to_multi else nx.DiGraph()
    G.graph["edge_type_names"] = dict(EDGE_TYPE_NAMES)

    # One .tolist() per attribute, then zip: no per-element tensor indexing.
    node_cols = [data[k].tolist() for k in nodes]
    if nodes:
        G.add_nodes_from(
            (i, dict(zip(nodes, vals, strict=True)))
            for i, vals in enumerate(zip(*node_cols, strict=True))
        )
    else:
        G.add_nodes_from(range(num_nodes))

    edge_keys = [_EDGE_RENAME.get(k, k) for k in edges]
    edge_cols = [data[k].tolist() for k in edges]
    src, dst = edge_index.tolist()
    if edges:
        G.add_edges_from(
            (u, v, dict(zip(edge_keys, vals, strict=True)))
            for u, v, *vals in zip(src, dst, *edge_cols, strict=True)
        )
    else:
        G.add_edges_from(zip(src, dst, strict=True))
    return G


def _collect(items: Sequence[dict], names: Iterable[str] | None, what: str) -> list[str]:
    r"""Attribute names present on every item; raises on partially present ones."""
    if not items:
        return list(names or [])
    counts: dict[str, int] = {}
    for attrs in items:
        for key in attrs:
            counts[key] = counts.get(key, 0) + 1
    if names is None:
        partial = sorted(k for k, c in counts.items() if c != len(items))
        if partial:
            raise ValueError(
                f"{what} attribute(s) {partial} are set on some {what}s only; "
                f"pass {what}_attrs explicitly to choose what to convert"
            )
        return list(counts)
    if isinstance(names, str):
        raise TypeError(f"'{what}_attrs' must be an iterable of names, got the string {names!r}")
    names = list(names)
    for name in names:
        if counts.get(name, 0) != len(items):
            raise ValueError(
                f"'{what}_attrs' names {name!r}, which is set on {counts.get(name, 0)} of "
                f"{len(items)} {what}s"
            )
    return names


def _to_tensor(name: str, values: list, *, node: bool) -> torch.Tensor:
    if node and name in _LONG_NODE_ATTRS or not node and name == "edge_type":
        return torch.tensor(values, dtype=torch.long)
    if node and name in _FLOAT_NODE_ATTRS or not node and name == "edge_weight":
        return torch.tensor(values, dtype=torch.float)
    return torch.tensor(values)


def from_networkx(
    G: Any,
    node_attrs: Iterable[str] | None = None,
    edge_attrs: Iterable[str] | None = None,
) -> Data:
    r"""Converts a networkx graph back to a spine :class:`~torch_geometric.data.Data`.

    The inverse of :func:`to_networkx`: ``weight`` becomes :obj:`edge_weight`
    (float), ``type`` becomes :obj:`edge_type` (long), :obj:`camid`,
    :obj:`modality`, :obj:`pid` become long tensors, :obj:`time` and :obj:`x`
    float tensors; any other numeric attribute keeps its name and the dtype
    :func:`torch.tensor` infers.

    Node order: if the nodes are exactly the integers :math:`0..N-1` they keep
    their number (so a round trip is exact); otherwise node :math:`i` is the
    :math:`i`-th node of ``G.nodes`` and the original labels are lost. Edges
    come back sorted by (source, target), parallel edges in networkx key order;
    an undirected graph contributes both directions of each edge.

    Cost: :math:`O(N + E \log E)`.

    Args:
        G (networkx.Graph): Any networkx graph (directed, undirected, multi).
        node_attrs (iterable of str, optional): Node attributes to convert;
            each must be set on every node. (default: :obj:`None`, all
            attributes, which must then be set on every node)
        edge_attrs (iterable of str, optional): Edge attributes to convert,
            by their networkx name (``weight``, ``type``, ...). (default:
            :obj:`None`, all, which must then be set on every edge)

    Returns:
        torch_geometric.data.Data

    Example:
        >>> import networkx as nx
        >>> G = nx.DiGraph()
        >>> G.add_node(0, pid=3); G.add_node(1, pid=3)
        >>> G.add_edge(0, 1, weight=0.5, type=0)
        >>> from_networkx(G)
        Data(edge_index=[2, 1], pid=[2], edge_weight=[1], edge_type=[1], num_nodes=2)
    """
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise TypeError(f"'G' must be a networkx graph, got {type(G).__name__}")
    if not G.is_directed():
        G = G.to_directed()

    node_list = list(G.nodes)
    num_nodes = len(node_list)
    if all(isinstance(n, int) and not isinstance(n, bool) for n in node_list) and set(
        node_list
    ) == set(range(num_nodes)):
        node_list = sorted(node_list)
    mapping = {n: i for i, n in enumerate(node_list)}

    node_dicts = [G.nodes[n] for n in node_list]
    nodes = _collect(node_dicts, node_attrs, "node")

    edge_list = list(G.edges(data=True))
    edge_dicts = [d for _, _, d in edge_list]
    edge_names = _collect(edge_dicts, edge_attrs, "edge")

    attrs: dict[str, torch.Tensor] = {}
    if edge_list:
        src = torch.tensor([mapping[u] for u, _, _ in edge_list], dtype=torch.long)
        dst = torch.tensor([mapping[v] for _, v, _ in edge_list], dtype=torch.long)
        # Stable sort by (source, target): deterministic whatever the insertion order.
        order = torch.argsort(dst, stable=True)
        order = order[torch.argsort(src[order], stable=True)]
        attrs["edge_index"] = torch.stack([src[order], dst[order]])
    else:
        order = torch.empty(0, dtype=torch.long)
        attrs["edge_index"] = torch.empty(2, 0, dtype=torch.long)

    for name in nodes:
        attrs[name] = _to_tensor(name, [d[name] for d in node_dicts], node=True)
    for name in edge_names:
        key = _EDGE_RENAME_BACK.get(name, name)
        values = _to_tensor(key, [d[name] for d in edge_dicts], node=False)
        attrs[key] = values[order] if values.numel() else values
    data = Data(**attrs, num_nodes=num_nodes)
    return data
