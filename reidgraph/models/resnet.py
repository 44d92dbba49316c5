r"""torchvision ResNet backbones with the re-ID head (last stride, GeM, BNNeck).

The head is the "strong baseline" of Luo et al. (Bag of Tricks and a Strong
Baseline for Deep Person Re-identification, CVPR-W 2019), which IICS
(CVPR 2021, Sec. 4.2: "a BN-Neck is added"), MPRD (ICCV 2021, Sec. 4.2:
"a batch normalization layer appended") and the cluster-contrast practice
that GUR builds on all use:

.. code-block:: text

    image -> ResNet conv1..layer4 (last stride 1) -> avg/GeM pool -> [Linear]
          -> feat (triplet) -> BNNeck -> bn_feat (CE, memories, retrieval) -> [FC] -> logits
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch
import torchvision
from torch import Tensor, nn

from reidgraph._validation import check_choice, check_int
from reidgraph.models.weights import load_pretrained

__all__ = ["ReIDNet", "ReIDOutput", "GeneralizedMeanPooling", "DEPTHS", "POOLINGS", "LAYERS"]

logger = logging.getLogger(__name__)

#: ResNet depths available through torchvision.
DEPTHS: tuple[int, ...] = (18, 34, 50, 101, 152)
#: Global pooling choices of :class:`ReIDNet`.
POOLINGS: tuple[str, ...] = ("avg", "gem")
#: Feature maps :meth:`ReIDNet.feature_maps` can return.
LAYERS: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")

_STRIDES: dict[str, int] = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}


class ReIDOutput(NamedTuple):
    r"""What :class:`ReIDNet` returns in training mode.

    Attributes:
        feat (torch.Tensor): Pooled (and embedded) feature before the BNNeck
            ``[B, D]``, for the triplet loss.
        bn_feat (torch.Tensor): Feature after the BNNeck ``[B, D]``, for
            classification, memories and retrieval.
        logits (torch.Tensor, optional): Classifier output
            ``[B, num_classes]``, or :obj:`None` without a classifier.
    """

    feat: Tensor
    bn_feat: Tensor
    logits: Tensor | None


class GeneralizedMeanPooling(nn.Module):
    r"""Generalized-mean (GeM) pooling (Radenović et al., TPAMI 2018, Eq. 2).

    .. math::
        f_c = \Big( \frac{1}{|\mathcal{X}_c|} \sum_{x \in \mathcal{X}_c}
        \max(x, \epsilon)^{p} \Big)^{1/p}

    :math:`p = 1` is average pooling and :math:`p \to \infty` max pooling.
    The defaults (:math:`p = 3`, learnable, :math:`\epsilon = 10^{-6}`) are
    those of the cluster-contrast code GUR is built on (``pooling gem``,
    REFERENCE_NOTES A.2).

    Args:
        p (float, optional): Initial exponent, :math:`> 0`. (default: :obj:`3.0`)
        eps (float, optional): Clamp before the power. (default: :obj:`1e-6`)
        learn_p (bool, optional): Make :math:`p` a trainable parameter.
            (default: :obj:`True`)

    Shapes:
        - **input:** ``[B, C, H, W]``
        - **output:** ``[B, C]``

    Example:
        >>> pool = GeneralizedMeanPooling(p=1.0, learn_p=False)
        >>> pool(torch.tensor([[[[1.0, 3.0]]]]))
        tensor([[2.]])
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learn_p: bool = True) -> None:
        super().__init__()
        if not isinstance(p, int | float) or isinstance(p, bool) or not p > 0:
            raise ValueError(f"'p' must be a number > 0, got {p!r}")
        if not isinstance(eps, int | float) or not eps > 0:
            raise ValueError(f"'eps' must be a number > 0, got {eps!r}")
        self.eps = float(eps)
        self.learn_p = bool(learn_p)
        p_tensor = torch.full((1,), float(p))
        if self.learn_p:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)

    def forward(self, x: Tensor) -> Tensor:
        p = self.p.to(x.dtype)
        return x.clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)

    def extra_repr(self) -> str:
        return f"p={float(self.p.detach()[0]):g}, eps={self.eps:g}, learn_p={self.learn_p}"


class ReIDNet(nn.Module):
    r"""A torchvision ResNet with the re-ID head: last stride, global pooling,
    optional embedding, BNNeck and an optional classifier.

    .. math::
        \mathbf{f} = W_e\, \mathrm{pool}\big(\mathrm{ResNet}(I)\big), \qquad
        \mathbf{f}_{bn} = \gamma \odot \frac{\mathbf{f} - \mu}{\sqrt{\sigma^2 + \epsilon}},
        \qquad \mathbf{z} = W_c\, \mathbf{f}_{bn}

    :math:`\mathbf{f}` (``feat``) feeds the triplet loss, :math:`\mathbf{f}_{bn}`
    (``bn_feat``) the classifier, memories and retrieval (BNNeck; Luo et al.,
    CVPR-W 2019, Sec. 3.2). The BN shift :math:`\beta` is zero and frozen
    (Luo et al.), the classifier :math:`W_c` has no bias and starts from
    :math:`\mathcal{N}(0, 0.001^2)` (IICS code, REFERENCE_NOTES A.3).
    :math:`W_e` exists only with ``feat_dim`` (Linear, Kaiming init).
    ``last_stride=1`` keeps layer4 at 1/16 resolution (Luo et al.; IICS
    ``--stride 1``). Recipes add or resize the classifier with
    :meth:`reset_classifier`, since the number of pseudo-classes changes.

    Weights: ImageNet weights cannot be downloaded here. ``pretrained``
    takes a local torchvision state-dict file (e.g. ``resnet50-0676ba61.pth``,
    URLs in :data:`~reidgraph.models.weights.TORCHVISION_URLS`); a file that
    is missing or does not fit raises. The default is a random
    initialisation, which is logged as a warning.

    Cost: one ResNet forward; at 256x128 input ResNet-50 needs about 4 GFLOPs
    per image (with last stride 1, about 5).

    Args:
        depth (int, optional): ResNet depth, one of :data:`DEPTHS`.
            (default: :obj:`50`)
        last_stride (int, optional): Stride of layer4, ``1`` or ``2``.
            (default: :obj:`1`)
        pooling (str, optional): ``"avg"`` or ``"gem"``
            (:class:`GeneralizedMeanPooling`). (default: :obj:`"avg"`)
        bnneck (bool, optional): Add the BNNeck; without it ``bn_feat`` is
            ``feat``. (default: :obj:`True`)
        feat_dim (int, optional): Size of a linear embedding after pooling;
            :obj:`None` keeps the backbone's width (512 for depth 18/34,
            2048 otherwise). (default: :obj:`None`)
        pretrained (str or os.PathLike or Mapping, optional): Local
            torchvision state dict for the backbone. (default: :obj:`None`,
            random init)
        num_classes (int, optional): Classifier outputs, ``0`` for none.
            (default: :obj:`0`)

    Shapes:
        - **input:** images ``[B, 3, H, W]`` float, :math:`H, W \geq`
          :attr:`min_input_size` (``B >= 2`` in training mode).
        - **output:** training mode: :class:`ReIDOutput`
          (``[B, D]``, ``[B, D]``, ``[B, num_classes]`` or :obj:`None`);
          eval mode: ``bn_feat`` ``[B, D]`` (not normalised).

    Example:
        >>> model = ReIDNet(18, num_classes=10).eval()
        >>> model(torch.rand(2, 3, 64, 32)).shape
        torch.Size([2, 512])
        >>> out = model.train()(torch.rand(2, 3, 64, 32))
        >>> out.feat.shape, out.logits.shape
        (torch.Size([2, 512]), torch.Size([2, 10]))
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        last_stride: int = 1,
        pooling: str = "avg",
        bnneck: bool = True,
        feat_dim: int | None = None,
        pretrained: str | os.PathLike | Mapping[str, Any] | None = None,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        depth = check_int(depth, "depth")
        if depth not in DEPTHS:
            raise ValueError(f"Could not resolve depth={depth} among choices {list(DEPTHS)}")
        last_stride = check_int(last_stride, "last_stride")
        if last_stride not in (1, 2):
            raise ValueError(f"'last_stride' must be 1 or 2, got {last_stride}")
        pooling = check_choice(pooling, "pooling", POOLINGS)
        if not isinstance(bnneck, bool):
            raise TypeError(f"'bnneck' must be a bool, got {type(bnneck).__name__}")
        if feat_dim is not None:
            feat_dim = check_int(feat_dim, "feat_dim", min_value=1)
        num_classes = check_int(num_classes, "num_classes", min_value=0)
        self.depth, self.last_stride, self.pooling = depth, last_stride, pooling
        self.bnneck, self.feat_dim = bnneck, feat_dim

        backbone = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        # The ImageNet head is not part of a re-ID backbone.
        del backbone.fc, backbone.avgpool
        if last_stride == 1:
            block = backbone.layer4[0]
            # torchvision puts the stride on conv2 of a bottleneck (ResNet v1.5)
            # and on conv1 of a basic block; the shortcut strides alike.
            conv = block.conv2 if hasattr(block, "conv3") else block.conv1
            conv.stride = (1, 1)
            block.downsample[0].stride = (1, 1)
        if pretrained is not None:
            load_pretrained(backbone, pretrained)
        else:
            logger.warning(
                "ReIDNet(depth=%d): backbone randomly initialised (pretrained=None); pass a "
                "local torchvision state-dict file as 'pretrained' for ImageNet weights",
                depth,
            )
        self.backbone = backbone
        channels = backbone.layer4[-1].conv3.out_channels if depth >= 50 else 512
        self.pool: nn.Module = (
            GeneralizedMeanPooling() if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        )
        if feat_dim is not None:
            self.embedding: nn.Module = nn.Linear(channels, feat_dim)
            nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")
            nn.init.zeros_(self.embedding.bias)
        else:
            self.embedding = nn.Identity()
        #: Feature size :math:`D` of ``feat`` and ``bn_feat``.
        self.out_dim: int = feat_dim if feat_dim is not None else channels
        if bnneck:
            self.bn: nn.Module = nn.BatchNorm1d(self.out_dim)
            nn.init.ones_(self.bn.weight)
            nn.init.zeros_(self.bn.bias)
            self.bn.bias.requires_grad_(False)
        else:
            self.bn = nn.Identity()
        self.classifier: nn.Linear | None = None
        self.reset_classifier(num_classes)

    # ---------------------------------------------------------------- settings
    @property
    def num_classes(self) -> int:
        r"""Classifier outputs (``0`` without a classifier)."""
        return 0 if self.classifier is None else self.classifier.out_features

    @property
    def arch_config(self) -> dict[str, Any]:
        r"""The constructor arguments that fix the weights' layout (without
        ``num_classes``, which recipes change); checkpoints compare it."""
        return {
            "depth": self.depth,
            "last_stride": self.last_stride,
            "pooling": self.pooling,
            "bnneck": self.bnneck,
            "feat_dim": self.feat_dim,
        }

    @property
    def min_input_size(self) -> int:
        r"""Smallest image height and width: the total stride of layer4
        (16 with ``last_stride=1``, 32 otherwise), below which its feature
        map is made mostly of padding."""
        return 16 if self.last_stride == 1 else 32

    def reset_classifier(self, num_classes: int) -> None:
        r"""Replaces the classifier by a fresh one with ``num_classes``
        outputs (``0`` removes it), on the model's device and dtype.

        Weights :math:`\sim \mathcal{N}(0, 0.001^2)`, no bias (IICS code,
        REFERENCE_NOTES A.3). Rebuild the optimiser afterwards: the old
        classifier's parameters are gone.
        """
        num_classes = check_int(num_classes, "num_classes", min_value=0)
        if num_classes == 0:
            self.classifier = None
            return
        ref = self.backbone.conv1.weight
        fc = nn.Linear(self.out_dim, num_classes, bias=False, device=ref.device, dtype=ref.dtype)
        nn.init.normal_(fc.weight, std=0.001)
        self.classifier = fc

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        r"""Parameters of the (pretrainable) ResNet, for an optimiser group
        with its own learning rate (e.g. QAConv: 0.1x, Sec. 4.1)."""
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        r"""Parameters of the new layers (GeM :math:`p`, embedding, BNNeck,
        classifier); together with :meth:`backbone_parameters` these are all
        parameters, each once."""
        for name, module in self.named_children():
            if name != "backbone":
                yield from module.parameters()

    # ----------------------------------------------------------------- forward
    def _check_images(self, images: Tensor) -> None:
        if not isinstance(images, Tensor):
            raise TypeError(f"'images' must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(
                f"'images' must be RGB batches [B, 3, H, W], got shape {tuple(images.shape)} "
                f"(grey or infrared images: repeat the channel, as read_image(mode='RGB') does)"
            )
        if not images.is_floating_point():
            raise TypeError(
                f"'images' must be floating point (normalised), got {images.dtype}; apply "
                f"reidgraph.data.transforms.build_transforms"
            )
        h, w = images.shape[-2:]
        m = self.min_input_size
        if h < m or w < m:
            raise ValueError(
                f"'images' of {h}x{w} pixels are smaller than this network's minimum {m}x{m} "
                f"(total stride of ResNet-{self.depth} with last_stride={self.last_stride}); "
                f"resize them, e.g. build_transforms(height=256, width=128)"
            )

    def _stem(self, images: Tensor) -> Tensor:
        b = self.backbone
        return b.maxpool(b.relu(b.bn1(b.conv1(images))))

    def feature_maps(self, images: Tensor, layer: str = "layer3") -> Tensor:
        r"""The backbone's feature map after ``layer`` (QAConv matches on
        ``layer3``, ECCV 2020 Sec. 4.1, "since the size of the layer4 feature
        map is too small").

        Args:
            images (torch.Tensor): ``[B, 3, H, W]``.
            layer (str, optional): One of :data:`LAYERS`. (default: :obj:`"layer3"`)

        Returns:
            torch.Tensor: ``[B, C, H/s, W/s]`` with :math:`s` = 4, 8, 16,
            32 (16 for ``layer4`` with ``last_stride=1``), sizes rounded up;
            :math:`C` = 64, 128, 256, 512 (depth 18/34) or 4x that.
        """
        layer = check_choice(layer, "layer", LAYERS)
        self._check_images(images)
        x = self._stem(images)
        for name in LAYERS:
            x = getattr(self.backbone, name)(x)
            if name == layer:
                return x
        raise AssertionError("unreachable")  # pragma: no cover

    def forward(self, images: Tensor) -> ReIDOutput | Tensor:
        self._check_images(images)
        if self.training and images.size(0) < 2 and self.bnneck:
            raise ValueError(
                f"'images' must hold at least 2 images in training mode (BatchNorm statistics), "
                f"got a batch of {images.size(0)}; use model.eval() for single images"
            )
        x = self._stem(images)
        for name in LAYERS:
            x = getattr(self.backbone, name)(x)
        feat = self.embedding(self.pool(x).flatten(1))
        bn_feat = self.bn(feat)
        if not self.training:
            return bn_feat
        logits = self.classifier(bn_feat) if self.classifier is not None else None
        return ReIDOutput(feat, bn_feat, logits)

    def extra_repr(self) -> str:
        return (
            f"depth={self.depth}, last_stride={self.last_stride}, pooling={self.pooling!r}, "
            f"bnneck={self.bnneck}, feat_dim={self.feat_dim}, out_dim={self.out_dim}, "
            f"num_classes={self.num_classes}"
        )
