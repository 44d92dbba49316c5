r"""Loading backbone weights from a local file (no downloads).

ImageNet-pretrained weights cannot be downloaded by the library: the user
fetches torchvision's file once (e.g. ``resnet50-0676ba61.pth``, the URLs are
in :data:`TORCHVISION_URLS`) and passes its path. The file is read with
``torch.load(weights_only=True)`` and must fit the backbone exactly: every
missing key, unexpected key and shape mismatch is named in the error, and a
file holding another ResNet depth says which one it holds.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "TORCHVISION_URLS",
    "read_state_dict",
    "state_dict_mismatch",
    "describe_mismatch",
    "load_pretrained",
    "guess_resnet_depth",
]

logger = logging.getLogger(__name__)

#: torchvision's ImageNet-1k (V1) file of each ResNet depth: download it on a
#: machine with internet access and pass the local path as ``pretrained``.
TORCHVISION_URLS: dict[int, str] = {
    18: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    34: "https://download.pytorch.org/models/resnet34-b627a593.pth",
    50: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    101: "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    152: "https://download.pytorch.org/models/resnet152-394f9c45.pth",
}

# Blocks per stage (layer1..layer4) and block type of each torchvision ResNet.
_RESNET_LAYOUT: dict[tuple[bool, tuple[int, ...]], int] = {
    (False, (2, 2, 2, 2)): 18,
    (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50,
    (True, (3, 4, 23, 3)): 101,
    (True, (3, 8, 36, 3)): 152,
}
_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")
_MAX_LISTED = 8


def read_state_dict(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    r"""Reads a state dict (torchvision's file format) from a local file.

    Accepts a plain ``{name: tensor}`` file as torchvision publishes it, a
    ``{"state_dict": {...}}`` or ``{"model": {...}}`` wrapper (torchreid,
    reidgraph checkpoints) and ``module.`` prefixes left by
    :class:`~torch.nn.parallel.DistributedDataParallel`. Read with
    ``weights_only=True``: no code in the file is executed.

    Args:
        source (str or os.PathLike or Mapping): The file, or an already
            loaded mapping.

    Returns:
        dict[str, torch.Tensor]: Parameter and buffer tensors by name.

    Raises:
        FileNotFoundError: If the file does not exist (the message says
            where torchvision's files come from).
        ValueError: If the file cannot be read safely or holds no tensors.

    Example:
        >>> import torchvision, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "resnet18.pth")
        >>> torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
        >>> len(read_state_dict(path))
        122
    """
    if isinstance(source, Mapping):
        obj: Any = source
        where = "the given mapping"
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        where = f"'{path}'"
        if not os.path.isfile(path):
            urls = ", ".join(f"{d}: {u}" for d, u in TORCHVISION_URLS.items())
            raise FileNotFoundError(
                f"Pretrained weights file '{path}' does not exist. ImageNet weights cannot be "
                f"downloaded by the library: download torchvision's file on a machine with "
                f"internet access ({urls}) and pass its local path, or pass pretrained=None "
                f"for a random initialisation"
            )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling errors have no common base class
            raise ValueError(
                f"Could not read weights file {where} with torch.load(weights_only=True): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    else:
        raise TypeError(
            f"'pretrained' must be a file path or a mapping of tensors, got {type(source).__name__}"
        )
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"Weights in {where} must be a state dict {{name: tensor}}, got {type(obj).__name__}"
        )
    out = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"Weights in {where} must map names to tensors, found entry {name!r} of type "
                f"{type(value).__name__}"
            )
        out[name.removeprefix("module.")] = value
    if not out:
        raise ValueError(f"Weights in {where} hold no tensors")
    return out


def guess_resnet_depth(keys: Iterable[str]) -> int | None:
    r"""The torchvision ResNet depth whose state-dict keys these are, if any.

    Counts the blocks of ``layer1`` .. ``layer4`` and checks for the
    bottleneck's ``conv3`` (He et al., CVPR 2016, Table 1).

    Example:
        >>> import torchvision
        >>> guess_resnet_depth(torchvision.models.resnet34(weights=None).state_dict())
        34
    """
    blocks = [0, 0, 0, 0]
    bottleneck = False
    for key in keys:
        m = _BLOCK_KEY.match(key)
        if m is not None:
            stage, block = int(m.group(1)) - 1, int(m.group(2))
            blocks[stage] = max(blocks[stage], block + 1)
            bottleneck |= key.endswith(".conv3.weight")
    return _RESNET_LAYOUT.get((bottleneck, tuple(blocks)))


def state_dict_mismatch(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    r"""Keys missing from ``given``, keys ``given`` has in excess, and shape
    mismatches (``"name: file (a, b) vs model (c, d)"``), all sorted."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(given)
        if tuple(given[k].shape) != tuple(expected[k].shape)
    )
    return missing, unexpected, shapes


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"{len(items)} {label} [{shown}{more}]"


def describe_mismatch(
    missing: list[str], unexpected: list[str], shapes: list[str], given_keys: Iterable[str] = ()
) -> str:
    r"""One readable sentence naming missing / unexpected keys and shape mismatches."""
    parts = [
        _listing(label, items)
        for label, items in (
            ("missing key(s)", missing),
            ("unexpected key(s)", unexpected),
            ("shape mismatch(es)", shapes),
        )
        if items
    ]
    text = "; ".join(parts)
    depth = guess_resnet_depth(given_keys)
    if depth is not None:
        text += f" (the file holds torchvision ResNet-{depth} weights)"
    return text


def load_pretrained(
    module: nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    *,
    ignore_prefixes: tuple[str, ...] = ("fc.",),
) -> None:
    r"""Copies a local state dict into ``module``, which it must fit exactly.

    Entries whose name starts with one of ``ignore_prefixes`` are dropped
    from the file first (torchvision's ImageNet classifier ``fc.*``, which a
    re-ID backbone does not have). Every other key of the module must be in
    the file with the same shape, and the file must have no other key.

    Args:
        module (torch.nn.Module): The module to fill, e.g. a torchvision
            ResNet without its ``fc``.
        source (str or os.PathLike or Mapping): The weights file
            (:func:`read_state_dict`) or a loaded mapping.
        ignore_prefixes (tuple[str, ...], optional): Name prefixes dropped
            from the file. (default: :obj:`("fc.",)`)

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file does not fit ``module``; the message lists the
            missing and unexpected keys and the shape mismatches, and which
            ResNet depth the file holds when it is one.

    Example:
        >>> import torchvision
        >>> src = torchvision.models.resnet18(weights=None)
        >>> dst = torchvision.models.resnet18(weights=None)
        >>> load_pretrained(dst, src.state_dict())
        >>> bool(torch.equal(dst.conv1.weight, src.conv1.weight))
        True
    """
    state = read_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore_prefixes))}
    expected = {
        k: v for k, v in module.state_dict().items() if not k.startswith(tuple(ignore_prefixes))
    }
    missing, unexpected, shapes = state_dict_mismatch(expected, state)
    if missing or unexpected or shapes:
        where = f"'{os.fspath(source)}'" if not isinstance(source, Mapping) else "the mapping"
        ours = guess_resnet_depth(expected)
        model = f"ResNet-{ours}" if ours is not None else type(module).__name__
        raise ValueError(
            f"Pretrained weights {where} do not fit the {model} backbone: "
            f"{describe_mismatch(missing, unexpected, shapes, state)}. Pass a torchvision "
            f"state dict of the same depth ({TORCHVISION_URLS.get(ours, 'see TORCHVISION_URLS')})"
        )
    module.load_state_dict(state, strict=False)
    logger.info("Loaded %d pretrained tensors from %s", len(state), _name_of(source))


def _name_of(source: Any) -> str:
    return os.fspath(source) if isinstance(source, str | os.PathLike) else "a mapping"
