r"""Randomly initialised, untrained GraphSAGE of G-Fusion (MM 2023, Sec. 3.2, Eq. 7–8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import spmm

from reidgraph._validation import check_choice, check_int, check_matrix
from reidgraph.graph.utils import (
    _check_alpha,
    check_edge_index,
    gaussian_kernel,
    gfusion_norm,
    to_sparse_adjacency,
)

__all__ = ["RandomSAGE", "affinity", "INITS"]

#: Initialisations accepted by :class:`RandomSAGE` (``init=``).
INITS: tuple[str, ...] = (
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "normal",
    "orthogonal",
)


class RandomSAGE(MessagePassing):
    r"""The random two-layer GraphSAGE of G-Fusion (MM 2023, Sec. 3.2, Eq. 7;
    Eq. 15–16 at test time).

    .. math::
        \mathbf{h}_i^{(k)} = \sigma\Big( W^{(k)} \sum_{j \in \mathbb{N}(i) \cup i}
        \big( (D)^{-1} A^{*} \big)_{ij}\, \mathbf{h}_j^{(k-1)} \Big),
        \qquad \mathbf{h}^{(0)} = \mathbf{x},\ k = 1, \dots, n

    Symbols → arguments: :math:`\mathbf{h}^{(0)} = v^t` is ``x``;
    :math:`A^{*}` (Eq. 6, the symmetrised Eq. 5 adjacency) is
    ``edge_index`` / ``edge_weight`` (edge ``j -> i`` holds :math:`A^*_{ij}`);
    :math:`\mathbb{N}(i) \cup i` adds a self loop of weight
    ``self_loop_weight`` (:math:`S_{ii} = 1` by Eq. 2) where none exists;
    :math:`D` is the row sum ("row normalization", Sec. 3.2), so the
    aggregation is a weighted mean (GCN form); :math:`W^{(k)}` are the
    frozen random projections ``weight0``, ``weight1``, … (buffers, never
    trained); :math:`\sigma` is ReLU after every layer; :math:`n` is
    ``num_layers``. Symmetrise the graph yourself (builders'
    ``symmetric=True`` or :func:`~reidgraph.graph.utils.symmetrize`): the
    layer does not, so that nodes attached with
    :func:`~reidgraph.graph.spatiotemporal.attach_nodes` only *receive*
    messages (Eq. 16).

    What the paper fixes: two layers, GCN-form aggregation over
    :math:`D^{-1}A^*`, ReLU, randomly initialised and untrained projections.
    It gives neither the width nor the initial distribution; the defaults
    (``hidden_channels = out_channels = 128``, Xavier-uniform, no bias) are
    those of the public code (REFERENCE_NOTES A.5).

    Runs under :func:`torch.no_grad` (a fixed propagator). Aggregation is one
    sparse-dense product per layer (:math:`O(E c)` time, :math:`O(N c)`
    memory; never :math:`E \times c` messages); the projection is applied
    before aggregating when that is cheaper (it commutes with it).

    Args:
        in_channels (int): Input feature size :math:`d`.
        hidden_channels (int, optional): Width of the inner layers.
            (default: :obj:`128`)
        out_channels (int, optional): Output size. (default: :obj:`128`)
        num_layers (int, optional): :math:`n`. (default: :obj:`2`)
        init (str, optional): One of :data:`INITS`.
            (default: :obj:`"xavier_uniform"`)
        normalize (bool, optional): Add self loops and row-normalise; with
            :obj:`False` the given weights are used as they are.
            (default: :obj:`True`)
        self_loop_weight (float, optional): Weight of the added self loops.
            (default: :obj:`1.0`)
        seed (int, optional): Seed of the projections; the same seed gives the
            same weights. (default: :obj:`0`)
        generator (torch.Generator, optional): Draw from this CPU generator
            instead of ``seed``. (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge
          indices :math:`(2, |\mathcal{E}|)`, edge weights :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`

    Example:
        >>> conv = RandomSAGE(4, 8, 8, seed=0)
        >>> conv
        RandomSAGE(4, 8, 8, num_layers=2, init=xavier_uniform, seed=0)
        >>> h = conv(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]))
        >>> h.shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 128,
        out_channels: int = 128,
        num_layers: int = 2,
        init: str = "xavier_uniform",
        normalize: bool = True,
        self_loop_weight: float = 1.0,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(aggr="add", flow="source_to_target")
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        self.hidden_channels = check_int(hidden_channels, "hidden_channels", min_value=1)
        self.out_channels = check_int(out_channels, "out_channels", min_value=1)
        self.num_layers = check_int(num_layers, "num_layers", min_value=1)
        self.init = check_choice(init, "init", INITS)
        if not isinstance(normalize, bool):
            raise TypeError(f"'normalize' must be a bool, got {type(normalize).__name__}")
        self.normalize = normalize
        if isinstance(self_loop_weight, bool) or not isinstance(self_loop_weight, int | float):
            raise TypeError(
                f"'self_loop_weight' must be a float, got {type(self_loop_weight).__name__}"
            )
        if not 0.0 <= float(self_loop_weight) < float("inf"):
            raise ValueError(f"'self_loop_weight' must be finite and >= 0, got {self_loop_weight}")
        self.self_loop_weight = float(self_loop_weight)
        if seed is None and generator is None:
            raise ValueError(
                "RandomSAGE needs 'seed' (int) or 'generator' (torch.Generator): the random "
                "projections must be reproducible"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"'generator' must be a torch.Generator, got {type(generator).__name__}"
            )
        self.seed = None if seed is None else check_int(seed, "seed", min_value=0)
        self.generator = generator
        sizes = self.channel_sizes
        for k in range(self.num_layers):
            self.register_buffer(f"weight{k}", torch.empty(sizes[k + 1], sizes[k]))
        self.reset_parameters()

    @property
    def channel_sizes(self) -> list[int]:
        r"""``[in, hidden, ..., hidden, out]`` (length ``num_layers + 1``)."""
        return (
            [self.in_channels]
            + [self.hidden_channels] * (self.num_layers - 1)
            + [self.out_channels]
        )

    def weights(self) -> list[Tensor]:
        r"""The projections :math:`W^{(1)}, \dots, W^{(n)}` (``[out, in]`` each)."""
        return [getattr(self, f"weight{k}") for k in range(self.num_layers)]

    def reset_parameters(self) -> None:
        r"""Redraws the projections: from ``seed`` (identical every time) or
        from the next draws of ``generator``."""
        super().reset_parameters()
        gen = self.generator
        if gen is None:
            gen = torch.Generator().manual_seed(self.seed)
        for w in self.weights():
            cpu = torch.empty(w.shape, dtype=w.dtype)
            if self.init == "xavier_uniform":
                torch.nn.init.xavier_uniform_(cpu, generator=gen)
            elif self.init == "xavier_normal":
                torch.nn.init.xavier_normal_(cpu, generator=gen)
            elif self.init == "kaiming_uniform":
                torch.nn.init.kaiming_uniform_(cpu, nonlinearity="relu", generator=gen)
            elif self.init == "normal":
                torch.nn.init.normal_(cpu, std=cpu.size(1) ** -0.5, generator=gen)
            else:
                torch.nn.init.orthogonal_(cpu, generator=gen)
            w.copy_(cpu)

    @torch.no_grad()
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        r"""Embeds every node.

        Args:
            x (torch.Tensor): ``[N, in_channels]``.
            edge_index (torch.Tensor): ``[2, E]``, edge ``j -> i`` for
                :math:`A^*_{ij}`.
            edge_weight (torch.Tensor, optional): ``[E]`` non-negative;
                :obj:`None` means all ones. (default: :obj:`None`)

        Returns:
            torch.Tensor: ``[N, out_channels]``, the last layer's embeddings.
        """
        x = check_matrix(x, "x")
        if x.size(1) != self.in_channels:
            raise ValueError(
                f"'x' must have in_channels={self.in_channels} columns, got shape {tuple(x.shape)}"
            )
        n = x.size(0)
        edge_index, _ = check_edge_index(edge_index, n)
        edge_index = edge_index.to(x.device)
        if edge_weight is not None:
            edge_weight = torch.as_tensor(edge_weight, device=x.device)
            if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
                raise ValueError(
                    f"'edge_weight' must have shape [E] = [{edge_index.size(1)}], got shape "
                    f"{tuple(edge_weight.shape)}"
                )
        else:
            edge_weight = torch.ones(edge_index.size(1), device=x.device)
        edge_weight = edge_weight.to(x.dtype)
        if self.normalize:
            edge_index, edge_weight = gfusion_norm(
                edge_index, edge_weight, n, self_loop_weight=self.self_loop_weight
            )
        adj_t = to_sparse_adjacency(edge_index, edge_weight, n, layout="csr")
        h = x
        for w in self.weights():
            w = w.to(device=x.device, dtype=x.dtype)
            if w.size(0) < w.size(1):  # project first: fewer columns to aggregate
                h = self.propagate(adj_t, x=h @ w.T)
            else:
                h = self.propagate(adj_t, x=h) @ w.T
            h = h.relu()
        return h

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:  # pragma: no cover - fused
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        src = f"seed={self.seed}" if self.generator is None else "generator"
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"{self.out_channels}, num_layers={self.num_layers}, init={self.init}, {src})"
        )


@torch.no_grad()
def affinity(
    h: Tensor,
    pair_index: Any,
    alpha: float = 1.0,
    *,
    h_dst: Tensor | None = None,
    chunk_size: int = 4096,
) -> Tensor:
    r"""The Gaussian affinity :math:`M` of G-Fusion Eq. 8, only on the given pairs.

    .. math::
        M_{ij} = \exp\left(-\left\lVert h_i^{(n)} - h_j^{(n)} \right\rVert^2
        / 2\alpha^2\right)

    Symbols → arguments: :math:`h^{(n)}` is ``h`` (the output of
    :class:`RandomSAGE`); :math:`(i, j)` runs over the columns of
    ``pair_index`` (graph edges, or query–gallery candidates with ``h_dst``);
    :math:`\alpha` is ``alpha`` (1 in Sec. 4.2). Never forms the
    :math:`N \times N` matrix: :math:`O(P c)` time, memory
    :math:`O(\text{chunk\_size} \cdot c)`.

    Args:
        h (torch.Tensor): ``[N, c]`` embeddings (rows indexed by ``pair_index[0]``).
        pair_index (torch.Tensor): ``[2, P]`` pairs ``(i, j)``.
        alpha (float, optional): :math:`\alpha`. (default: :obj:`1.0`)
        h_dst (torch.Tensor, optional): ``[N', c]`` embeddings indexed by
            ``pair_index[1]`` (bipartite, e.g. gallery); :obj:`None` means ``h``.
            (default: :obj:`None`)
        chunk_size (int, optional): Pairs per chunk; small chunks keep the
            gathered rows in cache (3x faster than 65,536 at 48k pairs of
            2048-d embeddings on the CPU). (default: :obj:`4096`)

    Returns:
        torch.Tensor: ``[P]`` affinities in :math:`(0, 1]`.

    Example:
        >>> h = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        >>> affinity(h, torch.tensor([[0, 0], [0, 1]]))  # exp(0), exp(-2/2)
        tensor([1.0000, 0.3679])
    """
    alpha = _check_alpha(alpha)
    h = check_matrix(h, "h")
    dst = h if h_dst is None else check_matrix(h_dst, "h_dst")
    if dst.size(1) != h.size(1) or dst.device != h.device:
        raise ValueError(
            f"'h_dst' must match 'h' in width and device, got {tuple(dst.shape)} on {dst.device} "
            f"and {tuple(h.shape)} on {h.device}"
        )
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    pair_index = torch.as_tensor(pair_index)
    if pair_index.dim() != 2 or pair_index.size(0) != 2:
        raise ValueError(
            f"'pair_index' must have shape [2, P], got shape {tuple(pair_index.shape)}"
        )
    if pair_index.is_floating_point() or pair_index.dtype == torch.bool:
        raise TypeError(f"'pair_index' must hold node ids, got dtype {pair_index.dtype}")
    pair_index = pair_index.long().to(h.device)
    for row, size, name in (
        (0, h.size(0), "h"),
        (1, dst.size(0), "h_dst" if h_dst is not None else "h"),
    ):
        ids = pair_index[row]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
            raise ValueError(
                f"'pair_index[{row}]' must index the {size} rows of '{name}', found ids in "
                f"[{int(ids.min())}, {int(ids.max())}]"
            )
    out = h.new_empty(pair_index.size(1))
    for s in range(0, pair_index.size(1), chunk_size):
        i, j = pair_index[:, s : s + chunk_size]
        out[s : s + chunk_size] = (h[i] - dst[j]).pow(2).sum(1)
    return gaussian_kernel(out, alpha)
