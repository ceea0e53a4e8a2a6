"""Figures of chapters 4 and 5: packing, the schedule, loss curves and the ablation.

All figures take what the runs wrote (``metrics.csv``, ``ablation.json``) or our own settings;
the paper's numbers come from ``phi1lib.paper``. Introduced in chapter 4.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from phi1lib.plotting import OTHER_COLOR, OURS_COLOR, PHI1_COLOR
from phi1lib.training.loop import TrainSettings, learning_rate_factor
from phi1lib.training.packing import PackedSequences

ABLATION_COLORS = ("#95a5a6", "#7f8c8d", OURS_COLOR, PHI1_COLOR)


def plot_packing(data: PackedSequences, sequences: int = 4, ax=None):
    """Which document each token of the first sequences belongs to: packing made visible.

    Each row is one training sequence; a colour is one document; a black tick is an
    ``<|endoftext|>`` token. Chapter 4.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * sequences))
    tokens = np.asarray(data.tokens[: sequences * data.seq_len])
    document = np.concatenate([[0], np.cumsum(tokens[:-1] == data.info.eos_token_id)])
    palette = plt.get_cmap("tab20")
    for row in range(sequences):
        part = document[row * data.seq_len : (row + 1) * data.seq_len]
        ends = np.flatnonzero(
            tokens[row * data.seq_len : (row + 1) * data.seq_len] == data.info.eos_token_id
        )
        for doc in np.unique(part):
            span = np.flatnonzero(part == doc)
            ax.barh(row, len(span), left=span[0], color=palette(doc % 20), height=0.8)
        ax.scatter(ends, [row] * len(ends), marker="|", color="black", s=200, zorder=3)
    ax.set_yticks(range(sequences), [f"sequence {i}" for i in range(sequences)])
    ax.invert_yaxis()
    ax.set_xlim(0, data.seq_len)
    ax.set_xlabel(f"token position (sequence length {data.seq_len})")
    ax.set_title("Packing: documents joined by <|endoftext|> (|) and cut into sequences")
    ax.grid(False)
    return ax


def plot_schedule(settings: TrainSettings, ax=None, label: str = ""):
    """The learning rate at every optimizer step: linear warmup, then linear decay (chapter 4).

    A run that stops before its schedule ends (phi-1 kept step 24k of 36k) shows the rest of the
    planned schedule dashed, with the stop marked.
    """
    if ax is None:
        _, ax = plt.subplots()
    steps = np.arange(settings.planned_steps)
    rates = np.array(
        [
            settings.lr
            * learning_rate_factor(
                int(s),
                warmup=settings.warmup_steps,
                total=settings.planned_steps,
                min_ratio=settings.min_lr_ratio,
            )
            for s in steps
        ]
    )
    trained = steps < settings.steps
    ax.plot(steps[trained], rates[trained], color=OURS_COLOR, label=label or None)
    if settings.planned_steps > settings.steps:
        ax.plot(steps[~trained], rates[~trained], "--", color=OURS_COLOR, alpha=0.5)
        ax.axvline(settings.steps, color=OTHER_COLOR, lw=1)
        ax.annotate(
            f"stop at {settings.steps:,}",
            (settings.steps, settings.lr),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color=OTHER_COLOR,
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    return ax


def plot_loss_curves(frames: Mapping[str, object], ax=None, heldout: bool = True, colors=None):
    """Training loss (thin) and held-out loss (dots) against tokens seen, one colour per run."""
    if ax is None:
        _, ax = plt.subplots()
    colors = colors or {}
    for index, (label, frame) in enumerate(frames.items()):
        color = colors.get(label, plt.get_cmap("tab10")(index))
        ax.plot(frame["tokens"] / 1e6, frame["loss"], color=color, lw=1.2, label=f"{label}: train")
        points = frame.dropna(subset=["heldout_loss"])
        if heldout and len(points):
            ax.plot(
                points["tokens"] / 1e6,
                points["heldout_loss"],
                "o--",
                color=color,
                ms=4,
                label=f"{label}: held out",
            )
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("loss (nats per token)")
    ax.legend(fontsize=8)
    return ax


def plot_speed(frame, ax=None):
    """Tokens per second and MFU over a run (the first interval includes compilation)."""
    if ax is None:
        _, ax = plt.subplots()
    ax.plot(frame["step"], frame["tokens_per_s"], color=OURS_COLOR)
    ax.set_xlabel("step")
    ax.set_ylabel("tokens per second", color=OURS_COLOR)
    twin = ax.twinx()
    twin.plot(frame["step"], 100 * frame["mfu"], color=OTHER_COLOR, alpha=0.6)
    twin.set_ylabel("MFU (%)", color=OTHER_COLOR)
    twin.grid(False)
    return ax
