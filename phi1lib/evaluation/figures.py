"""Chapter 6's figures: the pass@k estimator, our scores beside the paper's, sample outcomes,
and the distribution of AST match rates between HumanEval and our exercises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from phi1lib.decontam import TAUS
from phi1lib.evaluation.passk import pass_at_k
from phi1lib.evaluation.tables import STATUS_ORDER
from phi1lib.paper import PHI1_FAMILY
from phi1lib.plotting import OTHER_COLOR, OURS_COLOR, PHI1_COLOR

_STATUS_COLORS = {
    "passed": "#27ae60",
    "failed": "#e67e22",
    "timeout": "#8e44ad",
    "crashed": "#7f8c8d",
}


def plot_pass_at_k(n: int = 100, correct: Sequence[int] = (1, 5, 20, 50), ax=None):
    """pass@k against k for one problem with ``n`` samples of which ``c`` pass (chapter 6).

    Beside each exact curve, dotted, the naive guess ``1 - (1 - c/n)^k`` (k independent draws
    with replacement), which the unbiased estimator improves on for k close to n.
    """
    if ax is None:
        _, ax = plt.subplots()
    ks = np.arange(1, n + 1)
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(correct)))
    for c, color in zip(correct, colors, strict=True):
        ax.plot(ks, [pass_at_k(n, c, int(k)) for k in ks], color=color, label=f"c = {c}")
        ax.plot(ks, 1 - (1 - c / n) ** ks, color=color, linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("k (samples the user may try)")
    ax.set_ylabel("pass@k")
    ax.set_title(f"pass@k for one problem with n = {n} samples, c of them correct")
    ax.legend(title="solid: unbiased estimator\ndotted: 1 - (1 - c/n)^k", loc="lower right")
    return ax


def plot_scores_vs_paper(summary: Mapping[str, Any], ax=None):
    """Bars: HumanEval and MBPP pass@1 of our two models, beside the paper's (chapter 6)."""
    if ax is None:
        _, ax = plt.subplots()
    models = list(summary["models"])
    groups = [(m, b) for m in models for b in ("humaneval", "mbpp")]
    x = np.arange(len(groups))
    ours = [100 * summary["models"][m]["benchmarks"][b]["pass@1"] for m, b in groups]
    theirs = [PHI1_FAMILY[m][b] for m, b in groups]
    ax.bar(x - 0.2, ours, width=0.4, color=OURS_COLOR, label="ours (this run)")
    ax.bar(
        x + 0.2,
        [t if t is not None else 0 for t in theirs],
        width=0.4,
        color=PHI1_COLOR,
        label="paper",
    )
    for xi, value in zip(x, theirs, strict=True):
        if value is None:
            ax.text(xi + 0.2, 1, "not\nreported", ha="center", fontsize=7, color=OTHER_COLOR)
    for xi, value in zip(x, ours, strict=True):
        ax.text(xi - 0.2, value + 1, f"{value:.1f}", ha="center", fontsize=8, color=OURS_COLOR)
    ax.set_xticks(x, [f"{m}\n{'HumanEval' if b == 'humaneval' else 'MBPP'}" for m, b in groups])
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("pass@1: our models beside the paper's (Gunasekar et al. 2023)")
    ax.legend(loc="upper left")
    return ax


def plot_statuses(summary: Mapping[str, Any], ax=None):
    """Stacked bars: how every sample ended, per model and benchmark (chapter 6)."""
    if ax is None:
        _, ax = plt.subplots()
    labels, counts = [], {status: [] for status in STATUS_ORDER}
    for model, entry in summary["models"].items():
        for benchmark, result in entry["benchmarks"].items():
            labels.append(f"{model}\n{benchmark}")
            total = sum(result["statuses"].values()) or 1
            for status in STATUS_ORDER:
                counts[status].append(100 * result["statuses"].get(status, 0) / total)
    bottom = np.zeros(len(labels))
    for status in STATUS_ORDER:
        ax.bar(labels, counts[status], bottom=bottom, color=_STATUS_COLORS[status], label=status)
        bottom += np.array(counts[status])
    ax.set_ylabel("share of samples (%)")
    ax.set_title("How the samples ended in the sandbox")
    ax.legend(ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.tick_params(axis="x", labelsize=8)
    return ax


def plot_match_rates(best_rates: Sequence[float], ax=None, *, min_rate: float = min(TAUS)):
    """Histogram of each HumanEval problem's best AST match rate, with the paper's τ marked."""
    if ax is None:
        _, ax = plt.subplots()
    rates = np.asarray(best_rates, dtype=float)
    below = int((rates < min_rate).sum())
    ax.hist(rates[rates >= min_rate], bins=np.linspace(min_rate, 1.0, 21), color=OURS_COLOR)
    for tau in TAUS:
        ax.axvline(tau, color=PHI1_COLOR, linestyle="--", linewidth=1)
        ax.text(tau, ax.get_ylim()[1] * 0.95, f"τ={tau}", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("best AST match rate against our exercises")
    ax.set_ylabel("HumanEval problems")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 of a problem
    ax.set_title(f"HumanEval problems with a match rate ≥ {min_rate} ({below} more below it)")
    return ax
