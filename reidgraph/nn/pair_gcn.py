r"""The pair GCN of MPRD (ICCV 2021, Sec. 3.2, Eq. 5, Fig. 2b).

MPRD's GCN reads the pairwise neighbourhood structure :math:`\mathbf{G}_{ij}`
of an image pair (Eq. 4, built by :func:`reidgraph.graph.pair_subgraphs`) and
outputs the likelihood :math:`g_{ij}` that both images show the same person.
It "consists of two graph convolutional layers, one graph aggregation layer
[a max-pooling layer and a 1-D convolutional layer] and one multi-layer
perception [two fully-connected layers]".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import global_max_pool
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import add_self_loops, remove_self_loops

from reidgraph._validation import as_tensor, check_int, check_matrix
from reidgraph.graph.drnl import _check_edge_index, drnl_one_hot

__all__ = ["MeanGraphConv", "PairGCN"]


class MeanGraphConv(MessagePassing):
    r"""The graph convolution of MPRD Eq. 5 (without its activation), the
    DGCNN propagation rule (Zhang et al., AAAI 2018):

    .. math::
        \mathbf{Y}' = \mathbf{D}^{-1}(\mathbf{A} + \mathbf{I})\,\mathbf{Y}\,\Theta
        \;(+\, \mathbf{b}),
        \qquad D_{vv} = 1 + \textstyle\sum_u A_{vu},

    i.e. every node takes the mean of :math:`\mathbf{Y}\Theta` over itself and
    its neighbours (``aggr="mean"`` over the edges plus one self loop).
    (Sec. 3.2 calls :math:`\mathbf{D}` the Laplacian; the formula needs the
    degree matrix of :math:`\mathbf{A} + \mathbf{I}`, as in DGCNN.) Symbols
    → arguments: :math:`\mathbf{Y}` is ``x``, :math:`\mathbf{A}` is
    ``edge_index`` (edge :math:`u \to v` sets :math:`A_{vu} = 1`; Eq. 4's
    :math:`\mathbf{A}_{ij}` is symmetric), :math:`\Theta` is
    ``lin.weight.T``. Self loops already in ``edge_index`` are replaced by
    exactly one, so the diagonal of :math:`\mathbf{A} + \mathbf{I}` is 1.
    Eq. 5 has no bias, hence ``bias=False`` by default.

    Args:
        in_channels (int): Input size :math:`F_{in}`.
        out_channels (int): Output size :math:`F_{out}`.
        bias (bool, optional): Add a learnable bias after aggregating.
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge
          indices :math:`(2, |\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`

    Example:
        >>> conv = MeanGraphConv(1, 1)
        >>> conv
        MeanGraphConv(1, 1)
        >>> _ = conv.lin.weight.data.fill_(1.0)
        >>> # path 0 - 1 - 2: means over {0,1}, {0,1,2}, {1,2}
        >>> e = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> conv(torch.tensor([[1.0], [2.0], [3.0]]), e).view(-1)
        tensor([1.5000, 2.0000, 2.5000], grad_fn=<ViewBackward0>)
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(aggr="mean", flow="source_to_target")
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        self.out_channels = check_int(out_channels, "out_channels", min_value=1)
        self.lin = torch.nn.Linear(self.in_channels, self.out_channels, bias=False)
        if bias:
            self.bias = torch.nn.Parameter(torch.empty(self.out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialises :math:`\Theta` (PyTorch's ``Linear`` default) and
        zeroes the bias."""
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        r"""Runs one propagation step.

        Args:
            x (torch.Tensor): ``[N, in_channels]``.
            edge_index (torch.Tensor): ``[2, E]``.

        Returns:
            torch.Tensor: ``[N, out_channels]``.
        """
        edge_index, _ = remove_self_loops(edge_index)
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        # Theta commutes with the mean, so project first (usually F_out < F_in).
        out = self.propagate(edge_index, x=self.lin(x))
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        bias = ", bias=True" if self.bias is not None else ""
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}{bias})"


class PairGCN(torch.nn.Module):
    r"""MPRD's pair classifier (ICCV 2021, Sec. 3.2, Eq. 5, Fig. 2b):
    likelihood :math:`g_{ij}` that the two target images of a pairwise
    neighbourhood structure :math:`\mathbf{G}_{ij}` share an identity.

    .. math::
        \mathbf{V}_{ij} &= \big[\operatorname{onehot}(\min(z, C-1), C)
            \,\|\, \mathbf{x}\big] \\
        \mathbf{Y}^{(l+1)} &= \operatorname{ReLU}\big(\mathbf{D}^{-1}
            (\mathbf{A}_{ij} + \mathbf{I})\mathbf{Y}^{(l)}\Theta_{g^{(l)}}\big),
            \quad \mathbf{Y}^{(0)} = \mathbf{V}_{ij},\ l = 0, \dots, L-1 \\
        \mathbf{u}_v &= \operatorname{ReLU}\big(\operatorname{Conv1d}_{\Theta_a}
            [\mathbf{Y}^{(1)}_v \| \cdots \| \mathbf{Y}^{(L)}_v]\big),
            \qquad \mathbf{h} = \max_{v \in \mathbf{G}_{ij}} \mathbf{u}_v \\
        g_{ij} &= \operatorname{sigmoid}\big(\mathbf{W}_2 \operatorname{ReLU}
            (\mathbf{W}_1 \mathbf{h} + \mathbf{b}_1) + b_2\big)

    * **Node embedding** :math:`\mathbf{V}_{ij}` (Sec. 3.2, steps 1–2): the
      DRNL labels ``z`` one-hot encoded to :math:`C` = ``num_drnl_labels``
      classes (clipped, MPRD's code: 16) concatenated with the node features
      ``x`` (MPRD: the 2048-d CNN memory features). ``num_drnl_labels=0``
      uses ``x`` as it is (e.g. a batch built with ``concat_drnl``);
      ``in_channels=0`` uses the structure alone (PyG's SEAL example).
    * **Graph convolutions** (Eq. 5): :math:`L` = ``num_layers`` (paper: 2)
      :class:`MeanGraphConv` layers of width ``hidden_channels`` (MPRD's
      code: 512), each followed by ReLU.
    * **Graph aggregation** :math:`\Theta_a` ("a max-pooling layer and a 1-D
      convolutional layer"), arranged as in DGCNN, on which MPRD's code is
      built: the layer outputs are concatenated per node (:math:`L \cdot H`
      values); a ``Conv1d(1, conv_channels, kernel_size=L·H, stride=L·H)``
      reads each node's vector in one step (DGCNN's first readout
      convolution, i.e. a node-wise linear map shared by all nodes) and is
      followed by ReLU; max-pooling over the nodes of each subgraph then
      gives the graph vector :math:`\mathbf{h}`. The max replaces DGCNN's
      SortPooling, which needs a node order and a fixed :math:`k`; it keeps
      the model invariant to the order of the non-target nodes.
    * **MLP** :math:`\Theta_m` (two fully-connected layers):
      ``Linear(conv_channels, mlp_channels)`` → ReLU → dropout →
      ``Linear(mlp_channels, 1)``, then a sigmoid (one logit for BCE, Eq. 6,
      instead of the public code's 2-way softmax).

    Defaults follow MPRD's public code where the paper is silent
    (REFERENCE_NOTES A.4: latent 512, conv channels 1024, MLP hidden 1024).
    Cost per forward: :math:`O(E H + N (F + C) H + N L H \cdot
    \text{conv\_channels})`.

    Args:
        in_channels (int): Node feature size :math:`F` of ``x`` (0: no ``x``).
        hidden_channels (int, optional): :math:`H`, width of every graph
            convolution. (default: :obj:`512`)
        num_layers (int, optional): :math:`L`. (default: :obj:`2`)
        num_drnl_labels (int, optional): :math:`C` one-hot DRNL classes
            (0: ``z`` unused). (default: :obj:`16`)
        conv_channels (int, optional): Output channels of the 1-D
            convolution. (default: :obj:`1024`)
        mlp_channels (int, optional): Hidden width of the MLP.
            (default: :obj:`1024`)
        dropout (float, optional): Dropout before the last layer.
            (default: :obj:`0.0`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)` (or :obj:`None`
          when ``in_channels=0``), edge indices :math:`(2, |\mathcal{E}|)`,
          DRNL labels :math:`(|\mathcal{V}|)`, batch vector
          :math:`(|\mathcal{V}|)`
        - **output:** likelihoods :math:`(B)`, one per subgraph

    Example:
        >>> from torch_geometric.data import Data
        >>> from reidgraph.graph.pair_subgraphs import pair_subgraphs
        >>> data = Data(x=torch.randn(6, 4),
        ...             edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]))
        >>> batch = pair_subgraphs(data, torch.tensor([[0, 2], [3, 5]]), num_hops=2)
        >>> model = PairGCN(4, hidden_channels=8, conv_channels=8, mlp_channels=8)
        >>> model(batch.x, batch.edge_index, batch.z, batch.batch).shape
        torch.Size([2])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 512,
        num_layers: int = 2,
        num_drnl_labels: int = 16,
        conv_channels: int = 1024,
        mlp_channels: int = 1024,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", min_value=0)
        self.hidden_channels = check_int(hidden_channels, "hidden_channels", min_value=1)
        self.num_layers = check_int(num_layers, "num_layers", min_value=1)
        self.num_drnl_labels = check_int(num_drnl_labels, "num_drnl_labels", min_value=0)
        self.conv_channels = check_int(conv_channels, "conv_channels", min_value=1)
        self.mlp_channels = check_int(mlp_channels, "mlp_channels", min_value=1)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TypeError(f"'dropout' must be a float, got {type(dropout).__name__}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        width = self.in_channels + self.num_drnl_labels
        if width == 0:
            raise ValueError(
                "PairGCN needs node input: 'in_channels' and 'num_drnl_labels' are both 0"
            )
        sizes = [width] + [self.hidden_channels] * self.num_layers
        self.convs = torch.nn.ModuleList(
            MeanGraphConv(sizes[k], sizes[k + 1]) for k in range(self.num_layers)
        )
        latent = self.num_layers * self.hidden_channels
        self.agg_conv = torch.nn.Conv1d(1, self.conv_channels, kernel_size=latent, stride=latent)
        self.lin1 = torch.nn.Linear(self.conv_channels, self.mlp_channels)
        self.lin2 = torch.nn.Linear(self.mlp_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Re-initialises every layer (PyTorch defaults)."""
        for conv in self.convs:
            conv.reset_parameters()
        self.agg_conv.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(
        self,
        x: Tensor | None,
        edge_index: Tensor,
        z: Tensor | None = None,
        batch: Tensor | None = None,
        *,
        return_logits: bool = False,
    ) -> Tensor:
        r"""Scores every subgraph of a batch.

        Args:
            x (torch.Tensor, optional): ``[N, in_channels]``; :obj:`None` when
                ``in_channels=0``.
            edge_index (torch.Tensor): ``[2, E]`` (both directions).
            z (torch.Tensor, optional): DRNL labels ``[N]``, required when
                ``num_drnl_labels > 0``. (default: :obj:`None`)
            batch (torch.Tensor, optional): Subgraph id of every node ``[N]``;
                :obj:`None` means one graph. (default: :obj:`None`)
            return_logits (bool, optional): Return the logit before the
                sigmoid (for :func:`~torch.nn.functional.binary_cross_entropy_with_logits`).
                (default: :obj:`False`)

        Returns:
            torch.Tensor: ``[B]``, :math:`g_{ij} \in (0, 1)` (or logits).
        """
        v = self._node_input(x, z)
        num_nodes = v.size(0)
        edge_index = _check_edge_index(edge_index, num_nodes).to(v.device)
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=v.device)
            size = 1
        else:
            batch = as_tensor(batch, "batch", device=v.device).long()
            if batch.dim() != 1 or batch.numel() != num_nodes:
                raise ValueError(
                    f"'batch' must have shape [{num_nodes}] (one graph id per node), got "
                    f"shape {tuple(batch.shape)}"
                )
            size = int(batch.max()) + 1 if num_nodes else 0
        outs = []
        h = v
        for conv in self.convs:
            h = F.relu(conv(h, edge_index))
            outs.append(h)
        h = torch.cat(outs, dim=-1).unsqueeze(1)  # [N, 1, L*H]
        u = F.relu(self.agg_conv(h)).squeeze(-1)  # [N, conv_channels]
        g = global_max_pool(u, batch, size=size)  # [B, conv_channels]
        g = F.relu(self.lin1(g))
        g = F.dropout(g, p=self.dropout, training=self.training)
        logit = self.lin2(g).view(-1)
        return logit if return_logits else torch.sigmoid(logit)

    def _node_input(self, x: Any, z: Any) -> Tensor:
        parts = []
        if self.num_drnl_labels > 0:
            if z is None:
                raise ValueError(
                    f"PairGCN(num_drnl_labels={self.num_drnl_labels}) needs the DRNL labels "
                    "'z' (batch.z from pair_subgraphs)"
                )
            parts.append(drnl_one_hot(z, self.num_drnl_labels))
        if self.in_channels > 0:
            if x is None:
                raise ValueError(
                    f"PairGCN(in_channels={self.in_channels}) needs node features 'x', got None"
                )
            x = check_matrix(x, "x")
            if x.size(1) != self.in_channels:
                raise ValueError(
                    f"'x' must have in_channels={self.in_channels} columns, got shape "
                    f"{tuple(x.shape)}"
                )
            parts.append(x)
        if len(parts) == 2:
            if parts[0].size(0) != parts[1].size(0):
                raise ValueError(
                    f"'z' and 'x' must describe the same nodes, got {parts[0].size(0)} labels "
                    f"and {parts[1].size(0)} feature rows"
                )
            parts[0] = parts[0].to(device=parts[1].device, dtype=parts[1].dtype)
        return torch.cat(parts, dim=1) if len(parts) == 2 else parts[0]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"num_drnl_labels={self.num_drnl_labels}, conv_channels={self.conv_channels}, "
            f"mlp_channels={self.mlp_channels}, dropout={self.dropout})"
        )
