r"""A :class:`torch.utils.data.Dataset` over the images of a :class:`ReIDSplit`.

Images come from disk through :func:`~reidgraph.data.images.read_image`
(fully decoded, so a corrupt file raises :class:`ImageReadError` naming it)
or from an in-memory ``uint8`` array ``[N, H, W, 3]``, e.g. the synthetic
world's :meth:`~reidgraph.data.SyntheticWorld.render`. Row ``i`` of every
feature matrix built from the dataset is record ``i`` of the split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from reidgraph.data.images import read_image
from reidgraph.data.records import ReIDSplit

__all__ = ["ImageDataset", "collate_images"]


class ImageDataset(Dataset):
    r"""The images of a split with their identity and camera, one item per
    record, in the split's order.

    Each item is a dict ``{"img": Tensor[3, H, W], "index": int, "pid": int,
    "camid": int, "modality": int}``; ``index`` is the record's position
    (the row of its feature), ``pid`` may be ``-1`` (unknown) or ``0``
    (distractor). Without ``transform`` the image is only converted to a
    float tensor in :math:`[0, 1]` (no resizing, no normalisation); use
    :func:`~reidgraph.data.transforms.build_transforms` for the standard
    pipeline. Grey and infrared files are read as RGB (3 equal channels).

    Args:
        split (ReIDSplit): The records.
        transform (Callable, optional): PIL image -> ``[3, H, W]`` tensor.
            (default: :obj:`None`)
        images (numpy.ndarray or torch.Tensor, optional): All images of the
            split in memory, ``uint8 [len(split), H, W, 3]`` RGB; when given
            the records' paths are not read. (default: :obj:`None`)

    Raises:
        ValueError: ``images`` has the wrong shape or length, or a record
            has no path and no ``images`` were given.
        TypeError: ``split`` is no :class:`ReIDSplit`, ``images`` is not
            ``uint8`` or ``transform`` is not callable.

    Example:
        >>> from reidgraph.data import make_world
        >>> world = make_world("tiny", seed=0)
        >>> ds = ImageDataset(world.train, images=world.render("train"))
        >>> item = ds[0]
        >>> item["img"].shape, item["index"]
        (torch.Size([3, 64, 32]), 0)
    """

    def __init__(
        self,
        split: ReIDSplit,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        *,
        images: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        if not isinstance(split, ReIDSplit):
            raise TypeError(f"'split' must be a ReIDSplit, got {type(split).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"'transform' must be callable, got {type(transform).__name__}")
        self.split = split
        self.transform = transform
        self._pids = split.pids
        self._camids = split.camids
        self._modalities = split.modalities
        if images is not None:
            images = self._check_images(images, len(split), split.name)
        else:
            empty = [i for i, p in enumerate(split.paths) if not p]
            if empty:
                raise ValueError(
                    f"Record {empty[0]} of split '{split.name}' (and {len(empty) - 1} more) has "
                    f"no image path; pass the images in memory, e.g. "
                    f"ImageDataset(split, images=world.render('{split.name}'))"
                )
        self.images = images

    @staticmethod
    def _check_images(images: Any, n: int, name: str) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        if not isinstance(images, np.ndarray):
            raise TypeError(
                f"'images' must be a numpy array or tensor, got {type(images).__name__}"
            )
        if images.dtype != np.uint8:
            raise TypeError(f"'images' must be uint8 RGB, got dtype {images.dtype}")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"'images' must have shape [N, H, W, 3] (RGB), got {tuple(images.shape)}"
            )
        if images.shape[0] != n:
            raise ValueError(
                f"'images' must hold one image per record of split '{name}' ({n}), "
                f"got {images.shape[0]}"
            )
        return images

    def __len__(self) -> int:
        return len(self.split)

    def _load(self, i: int) -> torch.Tensor:
        if self.images is not None:
            if self.transform is None:
                return torch.from_numpy(self.images[i]).permute(2, 0, 1).float().div_(255)
            img = Image.fromarray(self.images[i])
        else:
            img = read_image(self.split[i].path)
            if self.transform is None:
                arr = np.asarray(img, dtype=np.uint8)
                return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)
        out = self.transform(img)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"'transform' must return a tensor [3, H, W], got {type(out).__name__}; end it "
                f"with ToTensor() (build_transforms does)"
            )
        if out.dim() != 3 or out.size(0) != 3:
            raise ValueError(
                f"'transform' must return an RGB tensor [3, H, W], got shape {tuple(out.shape)} "
                f"for record {i} of split '{self.split.name}'"
            )
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        if isinstance(i, torch.Tensor | np.integer):
            i = int(i)
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"Index must be an int, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"Index {i} out of range for a dataset of {n} images")
        i %= n
        return {
            "img": self._load(i),
            "index": i,
            "pid": int(self._pids[i]),
            "camid": int(self._camids[i]),
            "modality": int(self._modalities[i]),
        }

    def __repr__(self) -> str:
        src = "memory" if self.images is not None else "files"
        return f"{type(self).__name__}(split={self.split.name!r}, n={len(self)}, images={src})"


def collate_images(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    r"""Stacks :class:`ImageDataset` items into a batch, failing clearly on
    images of different sizes (instead of ``torch.stack``'s message).

    Args:
        batch (Sequence[dict]): Items of :class:`ImageDataset`.

    Returns:
        dict: ``img`` ``[B, 3, H, W]`` and ``index``, ``pid``, ``camid``,
        ``modality`` as ``[B]`` long tensors.

    Example:
        >>> items = [{"img": torch.zeros(3, 4, 2), "index": i} for i in range(2)]
        >>> collate_images(items)["img"].shape
        torch.Size([2, 3, 4, 2])
    """
    for item in batch:
        if not isinstance(item, Mapping) or not isinstance(item.get("img"), torch.Tensor):
            raise TypeError(
                f"Batch items must be dicts with an 'img' tensor (ImageDataset items), got "
                f"{type(item).__name__}"
            )
    sizes = sorted({tuple(item["img"].shape) for item in batch})
    if len(sizes) > 1:
        raise ValueError(
            f"Images of one batch must share a size, got {len(sizes)} sizes {sizes[:4]}: pass a "
            f"transform that resizes, e.g. build_transforms(height, width, train=...)"
        )
    return default_collate(list(batch))
