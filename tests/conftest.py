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


@pytest.fixture
def deep_folders(tmp_path):
    """Make ``depth`` nested folders under a base folder, and remove them again after the test.

    Python 3.11's ``shutil.rmtree`` recurses, so a tree this deep left in pytest's temporary
    folder makes a later session's clean-up of old temporary folders fail with RecursionError.
    """
    made: list[Path] = []

    def make(base: Path, depth: int, name: str = "d") -> Path:
        made.append(base / name)
        deep = base
        for _ in range(depth):
            deep = deep / name
            deep.mkdir()
        return deep

    yield make
    for top in made:
        # Delete bottom-up with no recursion: the deepest folder first.
        chain = [top]
        while chain:
            folder = chain[-1]
            children = (
                [p for p in folder.iterdir()] if folder.is_dir() and not folder.is_symlink() else []
            )
            subfolders = [p for p in children if p.is_dir() and not p.is_symlink()]
            if subfolders:
                chain.append(subfolders[0])
                continue
            for child in children:
                child.unlink()
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.exists():
                folder.rmdir()
            chain.pop()
