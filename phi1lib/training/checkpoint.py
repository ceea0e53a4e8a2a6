"""Checkpoints that a run killed at any instant can resume from, exactly.

A checkpoint is a folder ``checkpoints/step-00001200`` written by ``accelerate``'s ``save_state``
(model, optimizer, learning-rate schedule, gradient scaler, and the random-number generators of
every process; DeepSpeed and FSDP write their own sharded formats through the same call) plus our
``trainer_state.json`` (the step, which fixes the data position, and the running counters). It is
written under a temporary name and renamed only when complete, so a kill during the write leaves
the previous checkpoint as the newest one. Introduced in chapter 4 ("Checkpoints, exact resume,
and many GPUs").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
PREFIX = "step-"
PARTIAL_SUFFIX = ".partial"


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{PREFIX}{step:08d}"


def partial_dir(root: Path, step: int) -> Path:
    """Where a checkpoint is written before it is complete."""
    return root / f"{PREFIX}{step:08d}{PARTIAL_SUFFIX}"


def complete_checkpoints(root: Path) -> list[Path]:
    """Finished checkpoints, oldest first (a folder counts only once its state file exists)."""
    if not root.exists():
        return []
    found = [
        path
        for path in root.iterdir()
        if path.is_dir()
        and path.name.startswith(PREFIX)
        and not path.name.endswith(PARTIAL_SUFFIX)
        and (path / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda path: int(path.name[len(PREFIX) :]))


def latest_checkpoint(root: Path) -> Path | None:
    found = complete_checkpoints(root)
    return found[-1] if found else None


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {folder} has no readable {STATE_FILE} ({error})") from error


def finish(partial: Path, final: Path, state: dict[str, Any]) -> None:
    """Write the state file into a fully saved checkpoint and give it its final name."""
    (partial / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def remove_partial(root: Path) -> None:
    """Delete checkpoints that a killed run left half-written."""
    if root.exists():
        for path in root.glob(f"{PREFIX}*{PARTIAL_SUFFIX}"):
            shutil.rmtree(path, ignore_errors=True)


def prune(root: Path, keep: int) -> None:
    """Keep only the ``keep`` newest complete checkpoints."""
    for path in complete_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
