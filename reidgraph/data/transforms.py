r"""Image transforms of the re-ID training and test pipelines.

The standard pipeline of the strong baseline (Luo et al., CVPR-W 2019) that
the five papers' codes share: resize to ``height x width`` (256x128 for
IICS, MPRD and the cluster-contrast practice; GUR 288x144, QAConv 384x128),
and for training a random horizontal flip, 10-pixel padding with a random
crop back to size, and random erasing (Zhong et al., AAAI 2020), with
ImageNet normalisation. Random choices come from torch's global generator,
which :class:`torch.utils.data.DataLoader` seeds per worker from its
``generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from reidgraph._validation import check_int

__all__ = ["build_transforms", "IMAGENET_MEAN", "IMAGENET_STD"]

#: Per-channel RGB mean of ImageNet, which torchvision's weights expect.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: Per-channel RGB standard deviation of ImageNet.
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_prob(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"'{name}' must be a probability in [0, 1], got {value!r}")
    return float(value)


def build_transforms(
    height: int = 256,
    width: int = 128,
    *,
    train: bool,
    flip_prob: float = 0.5,
    pad: int = 10,
    erasing_prob: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    r"""The re-ID image pipeline from a PIL image to a normalised tensor.

    .. math::
        \mathbf{y}_c = \frac{\mathbf{x}_c / 255 - \mu_c}{\sigma_c}

    Test (``train=False``): ``Resize((height, width))`` (bicubic) ->
    ``ToTensor`` -> ``Normalize(mean, std)``. Training adds, in this order,
    ``RandomHorizontalFlip(flip_prob)``, ``Pad(pad)`` + ``RandomCrop`` back
    to ``(height, width)`` after the resize, and ``RandomErasing(erasing_prob)``
    after the normalisation; erased pixels are set to 0, i.e. the mean
    colour.

    Args:
        height (int, optional): Output height. (default: :obj:`256`)
        width (int, optional): Output width. (default: :obj:`128`)
        train (bool): Training (random) or test (deterministic) pipeline.
        flip_prob (float, optional): Horizontal flip probability.
            (default: :obj:`0.5`)
        pad (int, optional): Padding before the random crop, ``0`` for none.
            (default: :obj:`10`)
        erasing_prob (float, optional): Random-erasing probability, ``0``
            for none. (default: :obj:`0.5`)
        mean (Sequence[float], optional): Normalisation mean.
            (default: :data:`IMAGENET_MEAN`)
        std (Sequence[float], optional): Normalisation std.
            (default: :data:`IMAGENET_STD`)

    Returns:
        torchvision.transforms.Compose: PIL image -> ``[3, height, width]``
        float tensor.

    Example:
        >>> from PIL import Image
        >>> tf = build_transforms(64, 32, train=False)
        >>> tf(Image.new("RGB", (20, 50), (124, 116, 104))).shape
        torch.Size([3, 64, 32])
    """
    height = check_int(height, "height", min_value=1)
    width = check_int(width, "width", min_value=1)
    if not isinstance(train, bool):
        raise TypeError(f"'train' must be a bool, got {type(train).__name__}")
    flip_prob = _check_prob(flip_prob, "flip_prob")
    erasing_prob = _check_prob(erasing_prob, "erasing_prob")
    pad = check_int(pad, "pad", min_value=0)
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(
            f"'mean' and 'std' must hold 3 values (RGB), std > 0, got mean={mean}, std={std}"
        )
    steps: list = [T.Resize((height, width), interpolation=T.InterpolationMode.BICUBIC)]
    if train:
        if flip_prob > 0:
            steps.append(T.RandomHorizontalFlip(flip_prob))
        if pad > 0:
            steps += [T.Pad(pad), T.RandomCrop((height, width))]
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if train and erasing_prob > 0:
        steps.append(T.RandomErasing(p=erasing_prob, value=0))
    return T.Compose(steps)
