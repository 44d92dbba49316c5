r"""The record type every dataset (real or synthetic) produces.

One :class:`ImageRecord` per detection keeps the *original* image path and
the metadata the graph spine needs (identity, camera, time, frame,
modality). A :class:`ReIDSplit` is an ordered collection of records with
column views for analysis (:meth:`ReIDSplit.to_frame`) and a bridge to the
spine :class:`torch_geometric.data.Data` (:meth:`ReIDSplit.to_data`). A
:class:`ReIDDataset` groups the ``train`` / ``query`` / ``gallery`` splits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from reidgraph._validation import check_matrix

__all__ = ["VISIBLE", "INFRARED", "ImageRecord", "ReIDSplit", "ReIDDataset"]

VISIBLE: int = 0
INFRARED: int = 1


@dataclass(frozen=True)
class ImageRecord:
    r"""One detection.

    Args:
        path (str): The image path exactly as found on disk (never renamed);
            empty for feature-only synthetic records.
        pid (int): Identity; ``0`` distractor where a dataset has them,
            ``-1`` unknown.
        camid (int): Camera index, 0-based.
        time (float): Seconds on one clock per camera network
            (``nan`` where the dataset has no timestamps).
        frame (int): Frame number as parsed from the file name (``-1`` if none).
        modality (int): ``0`` visible, ``1`` infrared.
        split (str): ``"train"``, ``"query"`` or ``"gallery"``.
    """

    path: str
    pid: int
    camid: int
    time: float = float("nan")
    frame: int = -1
    modality: int = VISIBLE
    split: str = "train"


_COLUMNS = tuple(f.name for f in fields(ImageRecord))


@dataclass
class ReIDSplit(Sequence):
    r"""An ordered list of :class:`ImageRecord` with column accessors.

    Args:
        records (list[ImageRecord]): The detections, in a fixed order (the
            row order of every feature matrix built from this split).
        name (str): The split's name. (default: :obj:`"train"`)
    """

    records: list[ImageRecord] = field(default_factory=list)
    name: str = "train"

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx):  # type: ignore[override]
        if isinstance(idx, slice):
            return ReIDSplit(self.records[idx], self.name)
        return self.records[idx]

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def column(self, name: str) -> np.ndarray:
        r"""One attribute of all records as a numpy array."""
        if name not in _COLUMNS:
            raise ValueError(f"Could not resolve column {name!r} among choices {list(_COLUMNS)}")
        return np.asarray([getattr(r, name) for r in self.records])

    @property
    def pids(self) -> np.ndarray:
        return self.column("pid").astype(np.int64, copy=False)

    @property
    def camids(self) -> np.ndarray:
        return self.column("camid").astype(np.int64, copy=False)

    @property
    def times(self) -> np.ndarray:
        return self.column("time").astype(np.float64, copy=False)

    @property
    def modalities(self) -> np.ndarray:
        return self.column("modality").astype(np.int64, copy=False)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.records]

    def to_frame(self):
        r"""A :class:`pandas.DataFrame` with one row per record and columns
        ``path, pid, camid, time, frame, modality, split``."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records], columns=list(_COLUMNS))

    @property
    def frame(self):
        r"""Alias of :meth:`to_frame`."""
        return self.to_frame()

    def to_data(self, x: Any) -> Data:
        r"""The spine graph (no edges yet) for features ``x`` of this split.

        Args:
            x (torch.Tensor): Features ``[len(self), d]``, one row per record.

        Returns:
            :class:`~torch_geometric.data.Data` with ``x``, ``camid``,
            ``time``, ``modality`` and ``pid``.
        """
        x = check_matrix(x, "x")
        if x.size(0) != len(self):
            raise ValueError(
                f"'x' must have one row per record of split '{self.name}' "
                f"({len(self)} rows), got {x.size(0)} rows"
            )
        dev = x.device
        return Data(
            x=x,
            camid=torch.as_tensor(self.camids, device=dev),
            time=torch.as_tensor(self.times, dtype=torch.float64, device=dev),
            modality=torch.as_tensor(self.modalities, device=dev),
            pid=torch.as_tensor(self.pids, device=dev),
            num_nodes=x.size(0),
        )


@dataclass
class ReIDDataset:
    r"""A re-ID dataset: ``train``, ``query`` and ``gallery`` splits.

    Args:
        name (str): Dataset name (``"market1501"``, ``"synthetic"``, ...).
        train (ReIDSplit): Training records.
        query (ReIDSplit): Query records.
        gallery (ReIDSplit): Gallery records.
        root (str, optional): Where the data lives on disk.
        has_time (bool): Whether ``time`` is meaningful across a camera's
            records (TLift, G-Fusion need it).
    """

    name: str
    train: ReIDSplit
    query: ReIDSplit
    gallery: ReIDSplit
    root: str | None = None
    has_time: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_cameras(self) -> int:
        cams = [s.camids for s in (self.train, self.query, self.gallery) if len(s)]
        return int(np.concatenate(cams).max()) + 1 if cams else 0

    def splits(self) -> Iterable[ReIDSplit]:
        return (self.train, self.query, self.gallery)

    def __repr__(self) -> str:
        def ids(s: ReIDSplit) -> int:
            return len(np.unique(s.pids)) if len(s) else 0

        return (
            f"{type(self).__name__}(name={self.name!r}, train={len(self.train)} images/"
            f"{ids(self.train)} ids, query={len(self.query)}/{ids(self.query)}, "
            f"gallery={len(self.gallery)}/{ids(self.gallery)}, cameras={self.num_cameras})"
        )
