"""The figures of chapters 7 and 8, drawn from the JSON the ``probes`` and ``diversity`` stages
write, so that a chapter only loads an artifact and calls one function per figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from phi1lib.plotting import OTHER_COLOR, OURS_COLOR, PHI1_COLOR

_MODEL_COLORS = (OTHER_COLOR, OURS_COLOR, PHI1_COLOR, "#27ae60", "#8e44ad")


def plot_rates(rows: Sequence[Mapping[str, Any]], key: str = "category", ax=None):
    """Grouped bars of pass rate per ``key`` value, one bar per model, with 95% Wilson intervals
    as error bars (chapter 7). ``rows`` come from :func:`phi1lib.analysis.probes.report.rates_by`.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    models = list(dict.fromkeys(row["model"] for row in rows))
    values = list(dict.fromkeys(row[key] for row in rows))
    width = 0.8 / max(len(models), 1)
    for number, model in enumerate(models):
        mine = {row[key]: row for row in rows if row["model"] == model}
        xs = np.arange(len(values)) + (number - (len(models) - 1) / 2) * width
        rates = np.array([100 * mine[v]["rate"] if v in mine else np.nan for v in values])
        low = np.array([100 * mine[v]["low"] if v in mine else np.nan for v in values])
        high = np.array([100 * mine[v]["high"] if v in mine else np.nan for v in values])
        ax.bar(
            xs,
            rates,
            width,
            label=model,
            color=_MODEL_COLORS[number % len(_MODEL_COLORS)],
            yerr=[np.clip(rates - low, 0, None), np.clip(high - rates, 0, None)],
            capsize=3,
            error_kw={"elinewidth": 1, "alpha": 0.7},
        )
    ax.set_xticks(np.arange(len(values)), values)
    ax.set_ylim(0, 100)
    ax.set_ylabel("probes passed (%)")
    ax.legend(loc="upper right")
    return ax


def plot_differences(rows: Sequence[Mapping[str, Any]], ax=None):
    """Fine-tuned minus base pass rate per category, with the paired bootstrap 95% interval."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    labels = [row["category"] for row in rows]
    centre = np.array([100 * row["difference"] for row in rows])
    low = np.array([100 * row["low"] for row in rows])
    high = np.array([100 * row["high"] for row in rows])
    ys = np.arange(len(rows))[::-1]
    errors = [np.clip(centre - low, 0, None), np.clip(high - centre, 0, None)]
    ax.errorbar(centre, ys, xerr=errors, fmt="o", color=OURS_COLOR, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, labels)
    ax.set_xlim(-100, 100)
    ax.set_xlabel("fine-tuned minus base (percentage points)")
    return ax


# Chapter 8: one panel per question, one bar per dataset; every value is a share in [0, 1].
DIVERSITY_PANELS = (
    ("duplicate_share", "duplicates (exact + near)", "share of items"),
    ("distinct_3", "distinct-3 (wording)", "distinct / all 3-grams"),
    ("vendi_per_item", "Vendi score / items", "effective share of distinct items"),
    ("cluster_evenness", "k-means cluster evenness", "H / log k"),
    ("similar_effective_share", "program families / functions", "effective families per function"),
    ("topic_coverage", "topic coverage", "share of the topic list"),
)


def plot_diversity_panels(datasets: Mapping[str, Mapping[str, Any]], axes=None):
    """Every dataset side by side on each of chapter 8's metrics (a 2 x 3 grid of bar charts)."""
    if axes is None:
        _, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    names = list(datasets)
    colors = [_MODEL_COLORS[i % len(_MODEL_COLORS)] for i in range(len(names))]
    for ax, (key, title, unit) in zip(np.ravel(axes), DIVERSITY_PANELS, strict=True):
        values = [float(datasets[name].get(key, np.nan)) for name in names]
        ax.bar(range(len(names)), values, color=colors)
        for x, value in enumerate(values):
            ax.annotate(
                f"{value:.2f}",
                (x, value),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_ylim(0, 1.08)
    return axes


def plot_family_sizes(
    families: Mapping[str, Mapping[str, Sequence[int]]], kind: str = "similar", ax=None
):
    """How functions spread over families of variants: for each family size s, the share of all
    functions that sit in a family of size at least s (a survival curve; log-log axes)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for number, (name, sizes_by_kind) in enumerate(families.items()):
        sizes = np.asarray(sizes_by_kind[kind], dtype=np.int64)
        if not len(sizes):
            continue
        grid = np.arange(1, sizes.max() + 1)
        share = [(sizes[sizes >= s]).sum() / sizes.sum() for s in grid]
        ax.step(grid, share, where="post", label=name, color=_MODEL_COLORS[number % 5])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("family size s (functions that are mutual variants)")
    ax.set_ylabel("share of functions in a family of size ≥ s")
    ax.legend()
    return ax


def plot_threshold_sweep(families: Mapping[str, Mapping[str, Any]], ax=None):
    """Families per function at each match-rate threshold τ (1.0 = exact shape), per dataset:
    the lower the curve, the more of a dataset is variants of something else in it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for number, (name, data) in enumerate(families.items()):
        counts = data["by_threshold"]
        functions = max(sum(data["exact"]), 1)
        taus = sorted(counts, key=float, reverse=True)
        ax.plot(
            [float(t) for t in taus],
            [counts[t] / functions for t in taus],
            marker="o",
            label=name,
            color=_MODEL_COLORS[number % len(_MODEL_COLORS)],
        )
    ax.invert_xaxis()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("match rate τ (variants must be at least this similar)")
    ax.set_ylabel("families / functions")
    ax.legend()
    return ax


def plot_topic_spread(datasets: Mapping[str, Mapping[str, Any]], ax=None):
    """Each dataset's topic shares, largest first: a flat line is an even curriculum, a steep
    one a curriculum that a few topics dominate."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for number, (name, data) in enumerate(datasets.items()):
        counts = np.sort(np.asarray(list(data["topic_counts"].values()), dtype=float))[::-1]
        if counts.sum() == 0:
            continue
        how = "labels" if data.get("assigned") == "label" else "nearest topic"
        ax.plot(
            np.arange(1, len(counts) + 1),
            100 * counts / counts.sum(),
            label=f"{name} ({how})",
            color=_MODEL_COLORS[number % len(_MODEL_COLORS)],
        )
    ax.set_xlabel("topic rank")
    ax.set_ylabel("share of items (%)")
    ax.legend()
    return ax
