"""Shared fixtures: every test runs offline, against its own run store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (runs on a GPU machine)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # the marker, not a test id named gpu
            item.add_marker(skip)


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    """A fresh run-store root for one test, also exported as $PHI1_RUNS."""
    root = tmp_path / "runs"
    monkeypatch.setenv("PHI1_RUNS", str(root))
    return root
