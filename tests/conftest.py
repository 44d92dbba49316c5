"""Shared test configuration: marker gating and small fixtures."""

from __future__ import annotations

import os

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("RUN_SLOW", "0") == "1"
    has_cuda = torch.cuda.is_available()
    has_data = bool(os.environ.get("REIDGRAPH_DATA"))
    skip_slow = pytest.mark.skip(reason="slow test: set RUN_SLOW=1 to run")
    skip_gpu = pytest.mark.skip(reason="needs CUDA; no GPU present")
    skip_data = pytest.mark.skip(reason="needs REIDGRAPH_DATA pointing at a dataset root")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "dataset" in item.keywords and not has_data:
            item.add_marker(skip_data)
