"""The training log: one CSV row per logged step, mirrored to TensorBoard.

The CSV is what the chapters plot (it needs nothing but pandas to read); TensorBoard is what a
reader watching a long GPU run opens in a browser (``tensorboard --logdir runs/``). A resumed run
first cuts both back to the checkpoint it resumes from, so the log never holds the steps the
killed run did after its last checkpoint twice. Introduced in chapter 4 ("Pretraining phi-1-base").
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

COLUMNS = (
    "step",
    "tokens",
    "epoch",
    "loss",
    "heldout_loss",
    "lr",
    "grad_norm",
    "tokens_per_s",
    "mfu",
    "pad_fraction",
    "elapsed_s",
)


class MetricsLog:
    """Append rows to ``metrics.csv`` and scalars to TensorBoard under ``folder`` (chapter 4)."""

    def __init__(self, folder: Path, *, resume_after_step: int = 0, tensorboard: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "metrics.csv"
        truncate_metrics(self.path, resume_after_step)
        new_file = not self.path.exists()
        self._handle = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=COLUMNS)
        if new_file:
            self._writer.writeheader()
        self._tensorboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(
                str(self.folder / "tensorboard"), purge_step=resume_after_step + 1
            )

    def log(self, row: Mapping[str, float]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric columns: {sorted(unknown)}")
        self._writer.writerow({key: _format(row.get(key)) for key in COLUMNS})
        self._handle.flush()
        if self._tensorboard is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step" and value is not None and not _is_nan(value):
                    self._tensorboard.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        self._handle.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _is_nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _format(value) -> str:
    if value is None or _is_nan(value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def truncate_metrics(path: Path, keep_through_step: int) -> None:
    """Drop rows after ``keep_through_step`` (what a killed run logged past its last checkpoint)."""
    if not path.exists():
        return
    rows = _read_rows(path)
    kept = [row for row in rows if int(row["step"]) <= keep_through_step]
    if len(kept) != len(rows):
        _write_rows(path, kept)


def recompute_mfu(path: Path, flops_per_token: float, peak_flops: float) -> None:
    """Rewrite the MFU column from each row's tokens/s against the final ceiling ``peak_flops``.

    On a CPU the ceiling is measured, and a burst of other work during the measurement before
    training would lower it and inflate every MFU logged live. The loop measures again after
    training and keeps the better figure; this makes the CSV agree with it (rows of a resumed
    run included, whose live figures used another run's ceiling). TensorBoard keeps the live
    estimates. ``peak_flops`` is the ceiling of all processes together.
    """
    rows = _read_rows(path)
    for row in rows:
        speed = row["tokens_per_s"]
        row["mfu"] = _format(float(speed) * flops_per_token / peak_flops) if speed else ""
    _write_rows(path, rows)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def read_metrics(path: Path | str):
    """The log as a ``pandas.DataFrame`` (empty cells become NaN); what the chapters plot."""
    import pandas as pd

    return pd.read_csv(path)
