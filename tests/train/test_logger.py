"""CSV / TensorBoard logging of the training loop."""

import csv

import pytest
import torch

from reidgraph.train.logger import MetricLogger, read_csv, tensorboard_available


def _raw(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_columns_widen_and_values_are_plain(tmp_path):
    log = MetricLogger(tmp_path, tensorboard=False)
    log.log_epoch(0, {"loss": torch.tensor(1.5), "images_per_s": 10})
    log.log_epoch(1, {"loss": 1.25, "mAP": 0.5})
    rows = _raw(log.epochs_csv)
    # Header is the union in first-seen order; epoch 0 has no mAP.
    assert rows == [
        ["epoch", "loss", "images_per_s", "mAP"],
        ["0", "1.5", "10", ""],
        ["1", "1.25", "", "0.5"],
    ]
    log.log_step(20, 0, {"loss": 2.0})
    log.log_step(40, 1, {"loss": 1.0})
    assert _raw(log.steps_csv) == [["step", "epoch", "loss"], ["20", "0", "2"], ["40", "1", "1"]]
    log.close()


def test_resume_drops_rows_of_unfinished_epochs(tmp_path):
    log = MetricLogger(tmp_path, tensorboard=False)
    for e in range(3):
        log.log_epoch(e, {"loss": float(e)})
        log.log_step(e * 10, e, {"loss": float(e)})
    # The checkpoint of epoch 1 resumes at epoch 2: epoch 2's rows go away.
    log2 = MetricLogger(tmp_path, tensorboard=False, resume_epoch=2)
    assert [r["epoch"] for r in read_csv(log2.epochs_csv)] == ["0", "1"]
    assert [r["step"] for r in read_csv(log2.steps_csv)] == ["0", "10"]
    log2.log_epoch(2, {"loss": 9.0})
    assert [r["loss"] for r in read_csv(log2.epochs_csv)] == ["0", "1", "9"]


def test_overwrite_starts_fresh(tmp_path):
    MetricLogger(tmp_path, tensorboard=False).log_epoch(0, {"loss": 1.0})
    log = MetricLogger(tmp_path, tensorboard=False, overwrite=True)
    log.log_epoch(0, {"mAP": 0.3})
    assert _raw(log.epochs_csv) == [["epoch", "mAP"], ["0", "0.3"]]


def test_tensorboard_argument_checked(tmp_path):
    with pytest.raises(TypeError, match="'tensorboard' must be a bool or None"):
        MetricLogger(tmp_path, tensorboard="yes")


@pytest.mark.skipif(tensorboard_available(), reason="tensorboard is installed")
def test_tensorboard_required_but_missing(tmp_path):
    with pytest.raises(ImportError, match="pip install tensorboard"):
        MetricLogger(tmp_path, tensorboard=True)
    # None means "when installed": no error, CSV only.
    assert not MetricLogger(tmp_path, tensorboard=None).uses_tensorboard


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "nope.csv")
