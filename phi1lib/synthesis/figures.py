"""The figures of chapters 2 and 3, drawn from the stages' data and reports.

Introduced in chapters 2 ("Synthetic textbooks") and 3 ("CodeExercises").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from phi1lib.paper import PRUNED_EXERCISES
from phi1lib.plotting import OTHER_COLOR, OURS_COLOR, PHI1_COLOR


def plot_topic_balance(balanced: Sequence[str], independent: Sequence[str], topics: Sequence[str]):
    """How many sections each topic gets: balanced rounds against independent draws (ch. 2)."""
    fig, ax = plt.subplots()
    for values, label, color in (
        (independent, "independent random draws", OTHER_COLOR),
        (balanced, "balanced rounds (ours)", OURS_COLOR),
    ):
        counts = Counter(values)
        per_topic = [counts.get(topic, 0) for topic in topics]
        bins = np.arange(0, max(per_topic) + 2) - 0.5
        ax.hist(per_topic, bins=bins, alpha=0.7, label=label, color=color)
    ax.set_xlabel("sections of one topic")
    ax.set_ylabel("topics")
    ax.set_title(f"{len(balanced)} prompts over {len(topics)} topics")
    ax.legend()
    return fig


def plot_audience_style(audiences: Sequence[str], styles: Sequence[str]):
    """Sections per (audience, style) pair, as a heat map (chapter 2)."""
    table = pd.crosstab(pd.Series(audiences, name="audience"), pd.Series(styles, name="style"))
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    image = ax.imshow(table.values, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=20)
    ax.set_yticks(range(len(table.index)), table.index)
    ax.grid(False)
    for (row, column), value in np.ndenumerate(table.values):
        ax.text(column, row, str(value), ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="sections")
    ax.set_title("Kept sections per audience and style")
    return fig


def plot_failure_kinds(failure_kinds: Mapping[str, int], executed: int, mistake_rate: float):
    """The share of executed exercises that failed, by kind, beside the injected rate (ch. 3)."""
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    kinds = list(failure_kinds)
    shares = [failure_kinds.get(kind, 0) / max(executed, 1) for kind in kinds]
    ax.barh(
        ["all failures", *kinds],
        [sum(shares), *shares],
        color=[OTHER_COLOR] + [OURS_COLOR] * len(kinds),
    )
    ax.axvline(mistake_rate, color=PHI1_COLOR, linestyle="--", label="injected mistake rate")
    ax.set_xlabel("share of executed exercises")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title(f"Why exercises failed ({executed} executed)")
    return fig


def plot_imports(counts: pd.Series, top: int = 20):
    """Items importing each package, as the paper's Figure 3.1 (chapter 3)."""
    fig, ax = plt.subplots(figsize=(7.0, 0.25 * max(min(top, len(counts)), 4) + 1.2))
    shown = counts.head(top)
    ax.barh(list(shown.index), list(shown.values), color=OURS_COLOR)
    ax.invert_yaxis()
    ax.set_xlabel("exercises that import it")
    ax.set_title("Imported packages in our exercises")
    return fig


def plot_function_names(names: Sequence[str], families: Sequence[str]):
    """Rank-frequency of function names and of families: how repetitive are the tasks? (ch. 3)"""
    fig, ax = plt.subplots()
    for values, label, color in (
        (names, "function names", OURS_COLOR),
        (families, "task families", OTHER_COLOR),
    ):
        frequencies = sorted(Counter(values).values(), reverse=True)
        ax.plot(range(1, len(frequencies) + 1), frequencies, marker=".", label=label, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("training exercises")
    ax.set_title("How often each name and family occurs")
    ax.legend()
    return fig


def plot_pruning(report: Mapping[str, Any]):
    """Share of exercises the AST check prunes at each τ: ours (HumanEval, MBPP) and the
    paper's two published end points (chapter 3)."""
    fig, ax = plt.subplots()
    for benchmark, color in (("humaneval", OURS_COLOR), ("mbpp", OTHER_COLOR)):
        table = report["ast"][benchmark]["table"]
        ax.plot(
            [row["tau"] for row in table],
            [row["pruned_fraction"] for row in table],
            marker="o",
            color=color,
            label=f"ours, against {benchmark}",
        )
    total = PRUNED_EXERCISES["total"]
    ax.plot(
        [0.95, 0.8],
        [PRUNED_EXERCISES["tau_0.95"] / total, PRUNED_EXERCISES["tau_0.80"] / total],
        marker="s",
        markersize=8,
        linestyle="none",
        color=PHI1_COLOR,
        label="paper, against HumanEval (the two published ends)",
    )
    ax.set_xlabel("AST match rate τ (pruned at or above)")
    ax.set_ylabel("share of exercises pruned")
    ax.invert_xaxis()
    ax.legend()
    return fig
