r"""Feature extraction over an image dataset, sharded over ranks.

The features every pseudo-labeler and every evaluation starts from: the
model in eval mode, batched, the mean of the image's and its mirror image's
feature, L2-normalised (the practice of the papers' codes, e.g. GUR's
``sysu_test.py``, REFERENCE_NOTES A.2), returned in the dataset's order.
Under :mod:`torch.distributed` each rank extracts a strided shard
(``range(rank, N, world_size)``) and all ranks receive the full matrix.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch_geometric.data import Data

from reidgraph._validation import check_finite, check_int
from reidgraph.data.image_dataset import collate_images
from reidgraph.data.records import ReIDSplit
from reidgraph.models.checkpoint import unwrap_model
from reidgraph.train.distributed import gather_strided, get_rank, get_world_size

__all__ = ["extract_features", "extract_data"]

logger = logging.getLogger(__name__)


def _model_device(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    for b in net.buffers():
        return b.device
    return torch.device("cpu")


def _forward(net: nn.Module, images: Tensor, amp: bool) -> Tensor:
    with torch.autocast(images.device.type, dtype=torch.float16, enabled=amp):
        out = net(images)
    if not isinstance(out, Tensor):
        raise TypeError(
            f"'model' must return a feature tensor [B, D] in eval mode, got {type(out).__name__}"
        )
    if out.dim() != 2 or out.size(0) != images.size(0):
        raise ValueError(
            f"'model' must return features [B, D] for a batch of {images.size(0)} images, "
            f"got shape {tuple(out.shape)}"
        )
    return out.float()


def extract_features(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    flip: bool = True,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    verbose: bool = True,
    amp: bool = False,
    out_device: str | torch.device | None = "cpu",
) -> Tensor:
    r"""L2-normalised, flip-averaged features of every image of ``dataset``.

    .. math::
        \mathbf{x}_i = \frac{\mathbf{f}(I_i) + \mathbf{f}(\overleftarrow{I_i})}
        {\lVert \mathbf{f}(I_i) + \mathbf{f}(\overleftarrow{I_i}) \rVert_2}

    where :math:`\mathbf{f}` is the model in eval mode (for
    :class:`~reidgraph.models.ReIDNet` the BNNeck feature) and
    :math:`\overleftarrow{I}` the horizontally mirrored image; the mean of
    the two and their sum have the same direction. The model's training
    mode is restored afterwards; DDP wrappers are unwrapped (a DDP forward
    would synchronise buffers across ranks whose shards differ in size).

    Distributed: when a process group runs, rank :math:`r` of :math:`W`
    extracts items ``r, r + W, ...`` and the shards are all-gathered, so
    every rank returns the same full ``[N, D]`` matrix in dataset order;
    every rank must call this function.

    Cost: :math:`N` (or :math:`2N` with ``flip``) forward passes, split
    over ranks; memory :math:`O(N D)` for the result plus one batch.

    Args:
        model (torch.nn.Module): Maps images ``[B, 3, H, W]`` to ``[B, D]``
            in eval mode.
        dataset (torch.utils.data.Dataset): Items ``{"img": Tensor[3, H, W],
            ...}``, e.g. :class:`~reidgraph.data.ImageDataset`.
        batch_size (int, optional): Images per forward pass. (default: :obj:`64`)
        flip (bool, optional): Average with the mirrored image.
            (default: :obj:`True`)
        device (str or torch.device, optional): Where the forward passes
            run. (default: :obj:`None`, the model's device)
        num_workers (int, optional): Data-loader worker processes.
            (default: :obj:`0`)
        verbose (bool, optional): Progress bar (rank 0 only).
            (default: :obj:`True`)
        amp (bool, optional): float16 autocast on CUDA (ignored on CPU).
            (default: :obj:`False`)
        out_device (str or torch.device, optional): Device of the result;
            :obj:`None` keeps ``device``. (default: :obj:`"cpu"`)

    Returns:
        torch.Tensor: ``[N, D]`` float32, unit rows, row ``i`` = item ``i``.

    Raises:
        ValueError: An empty dataset, a model output that is not ``[B, D]``,
            or non-finite features (a diverged model).
        TypeError: A model that is no module or returns no tensor.

    Example:
        >>> from reidgraph.data import make_world
        >>> from reidgraph.data.image_dataset import ImageDataset
        >>> from reidgraph.models import ReIDNet
        >>> world = make_world("tiny", seed=0)
        >>> ds = ImageDataset(world.query, images=world.render("query"))
        >>> x = extract_features(ReIDNet(18), ds, verbose=False)
        >>> x.shape, bool(torch.allclose(x.norm(dim=1), torch.ones(len(ds))))
        (torch.Size([49, 512]), True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module, got {type(model).__name__}")
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"'dataset' must be a map-style dataset (len and indexing), got "
            f"{type(dataset).__name__}"
        )
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    num_workers = check_int(num_workers, "num_workers", min_value=0)
    n = len(dataset)
    if n == 0:
        raise ValueError("'dataset' is empty: there are no images to extract features from")
    net = unwrap_model(model)
    device = torch.device(device) if device is not None else _model_device(net)
    out_device = torch.device(out_device) if out_device is not None else device
    amp = bool(amp) and device.type == "cuda"
    rank, world = get_rank(), get_world_size()
    shard = dataset if world == 1 else Subset(dataset, range(rank, n, world))
    loader = DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_images,
        pin_memory=device.type == "cuda",
    )
    from tqdm.auto import tqdm

    bar = tqdm(loader, desc="extract", unit="batch", disable=not verbose or rank != 0)
    was_training = net.training
    net.eval()
    feats: list[Tensor] = []
    start = time.perf_counter()
    try:
        # no_grad, not inference_mode: the features may later seed memories
        # that take part in autograd, which inference tensors cannot.
        with torch.no_grad():
            for batch in bar:
                images = batch["img"] if isinstance(batch, dict) else batch
                images = images.to(device, non_blocking=True)
                f = _forward(net, images, amp)
                if flip:
                    f = f + _forward(net, images.flip(3), amp)
                feats.append(F.normalize(f, dim=1).to(out_device))
    finally:
        net.train(was_training)
        bar.close()
    if feats:
        local = torch.cat(feats)
    else:  # more ranks than images: this rank's shard is empty
        dim = getattr(net, "out_dim", None)
        if dim is None:
            raise ValueError(
                f"'dataset' has {n} images, fewer than the {world} ranks, and the model has "
                f"no 'out_dim' to size an empty shard"
            )
        local = torch.empty(0, int(dim), device=out_device)
    try:
        check_finite(local, "features")
    except ValueError as exc:
        raise ValueError(
            f"The model produced non-finite features ({exc}); it has diverged: lower the "
            f"learning rate, enable gradient clipping, or resume from an earlier checkpoint"
        ) from None
    out = gather_strided(local, n)
    logger.debug(
        "extracted %d x %d features in %.2f s (rank %d of %d)",
        n,
        out.size(1),
        time.perf_counter() - start,
        rank,
        world,
    )
    return out


def extract_data(
    model: nn.Module,
    dataset: Dataset,
    split: ReIDSplit | None = None,
    **kwargs: Any,
) -> Data:
    r"""The spine :class:`~torch_geometric.data.Data` of a split: features of
    :func:`extract_features` as ``x`` with ``camid``, ``time``, ``modality``
    and ``pid`` (:meth:`ReIDSplit.to_data`).

    Args:
        model (torch.nn.Module): The feature extractor.
        dataset (torch.utils.data.Dataset): The split's images in split order.
        split (ReIDSplit, optional): The records; :obj:`None` takes
            ``dataset.split`` (:class:`~reidgraph.data.ImageDataset`).
            (default: :obj:`None`)
        **kwargs: Passed to :func:`extract_features`.

    Returns:
        torch_geometric.data.Data: ``x [N, D]`` (unit rows), ``camid``,
        ``time``, ``modality``, ``pid`` ``[N]``; no edges.

    Raises:
        ValueError: ``split`` and ``dataset`` differ in length, or no split
            was given for a dataset without one.

    Example:
        >>> from reidgraph.data import make_world
        >>> from reidgraph.data.image_dataset import ImageDataset
        >>> from reidgraph.models import ReIDNet
        >>> world = make_world("tiny", seed=0)
        >>> ds = ImageDataset(world.query, images=world.render("query"))
        >>> data = extract_data(ReIDNet(18), ds, verbose=False)
        >>> data.num_nodes, data.camid.shape
        (49, torch.Size([49]))
    """
    if split is None:
        split = getattr(dataset, "split", None)
        if not isinstance(split, ReIDSplit):
            raise ValueError(
                f"'split' is required: {type(dataset).__name__} has no ReIDSplit 'split' attribute"
            )
    if not isinstance(split, ReIDSplit):
        raise TypeError(f"'split' must be a ReIDSplit, got {type(split).__name__}")
    if len(split) != len(dataset):
        raise ValueError(
            f"'split' has {len(split)} records but 'dataset' {len(dataset)} images; they must "
            f"match one to one, in order"
        )
    return split.to_data(extract_features(model, dataset, **kwargs))
