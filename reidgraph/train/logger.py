r"""Training logs: CSV files always, TensorBoard when installed.

:class:`MetricLogger` writes one CSV row per call: ``epochs.csv`` holds one
row per epoch (loss, learning rate, images/s, seconds of graph work, mAP,
...), ``steps.csv`` one row every few steps. Columns are the union of the
keys seen so far; when a new key appears the (small) file is rewritten with
the wider header, so a column added by a recipe in epoch 3 is simply empty
before. TensorBoard (``torch.utils.tensorboard``, which needs the
``tensorboard`` package) is imported only when asked for or, with
``tensorboard=None``, when installed.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["MetricLogger", "read_csv", "tensorboard_available"]

logger = logging.getLogger(__name__)


def tensorboard_available() -> bool:
    r"""Whether the ``tensorboard`` package (needed by
    ``torch.utils.tensorboard``) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def _cell(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return value


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    r"""Rows of a CSV written by :class:`MetricLogger` (strings; empty cells
    are ``""``).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class _CsvTable:
    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        if os.path.exists(path):
            self.rows = read_csv(path)
            for row in self.rows:
                self._add_columns(row)

    def _add_columns(self, row: Mapping[str, Any]) -> bool:
        new = [k for k in row if k not in self.columns]
        self.columns.extend(new)
        return bool(new)

    def append(self, row: Mapping[str, Any]) -> None:
        row = {k: _cell(v) for k, v in row.items()}
        widened = self._add_columns(row)
        self.rows.append(row)
        if widened or len(self.rows) == 1:
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as fh:
                csv.DictWriter(fh, self.columns).writerow(row)

    def truncate(self, key: str, keep_below: int) -> None:
        kept = [r for r in self.rows if r.get(key, "") != "" and int(float(r[key])) < keep_below]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


class MetricLogger:
    r"""Appends metrics to CSV files (and TensorBoard) in ``output_dir``.

    Only the main process should log; the training loop creates a logger on
    rank 0 alone.

    Args:
        output_dir (str): Folder for ``epochs.csv``, ``steps.csv`` and the
            TensorBoard event files (``tb/``); created if missing.
        tensorboard (bool, optional): :obj:`True` requires TensorBoard,
            :obj:`False` never uses it, :obj:`None` uses it when installed.
            (default: :obj:`None`)
        resume_epoch (int, optional): When resuming at this epoch, rows of
            epochs ``>=`` it (written by the interrupted run after its last
            checkpoint) are dropped. (default: :obj:`None`, keep everything)
        overwrite (bool, optional): Start new CSV files, deleting the logs
            of an earlier run in ``output_dir``. (default: :obj:`False`)

    Raises:
        ImportError: ``tensorboard=True`` without the ``tensorboard``
            package (the message names the pip command).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     log = MetricLogger(d, tensorboard=False)
        ...     log.log_epoch(0, {"loss": 1.5})
        ...     log.log_epoch(1, {"loss": 1.2, "mAP": 0.4})
        ...     [r["mAP"] for r in read_csv(log.epochs_csv)]
        ['', '0.4']
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        *,
        tensorboard: bool | None = None,
        resume_epoch: int | None = None,
        overwrite: bool = False,
    ) -> None:
        self.output_dir = os.fspath(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        self.epochs_csv = os.path.join(self.output_dir, "epochs.csv")
        self.steps_csv = os.path.join(self.output_dir, "steps.csv")
        if overwrite:
            for path in (self.epochs_csv, self.steps_csv):
                if os.path.exists(path):
                    os.remove(path)
        self._epochs = _CsvTable(self.epochs_csv)
        self._steps = _CsvTable(self.steps_csv)
        if resume_epoch is not None:
            self._epochs.truncate("epoch", resume_epoch)
            self._steps.truncate("epoch", resume_epoch)
        self._writer = None
        if tensorboard is None:
            tensorboard = tensorboard_available()
        elif not isinstance(tensorboard, bool):
            raise TypeError(
                f"'tensorboard' must be a bool or None, got {type(tensorboard).__name__}"
            )
        if tensorboard:
            if not tensorboard_available():
                raise ImportError(
                    "TensorBoard logging was requested but the 'tensorboard' package is not "
                    "installed: pip install tensorboard (or pass tensorboard=False)"
                )
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=os.path.join(self.output_dir, "tb"))

    @property
    def uses_tensorboard(self) -> bool:
        return self._writer is not None

    def _scalars(self, prefix: str, values: Mapping[str, Any], step: int) -> None:
        if self._writer is None:
            return
        for k, v in values.items():
            v = v.item() if hasattr(v, "item") else v
            if isinstance(v, int | float) and not isinstance(v, bool):
                self._writer.add_scalar(f"{prefix}/{k}", v, step)

    def log_epoch(self, epoch: int, values: Mapping[str, Any]) -> None:
        r"""Writes one row ``epoch, **values`` to ``epochs.csv``."""
        self._epochs.append({"epoch": epoch, **values})
        self._scalars("epoch", values, epoch)

    def log_step(self, step: int, epoch: int, values: Mapping[str, Any]) -> None:
        r"""Writes one row ``step, epoch, **values`` to ``steps.csv``."""
        self._steps.append({"step": step, "epoch": epoch, **values})
        self._scalars("step", values, step)

    def close(self) -> None:
        r"""Flushes and closes the TensorBoard writer, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
