"""One look for every figure of the book, and the figures drawn from the paper's own tables.

Chapter-specific figures live beside the code of their stage; this module holds the style and the
figures of "The paper at a glance".
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from phi1lib.paper import TABLE1

PHI1_COLOR = "#c0392b"
OTHER_COLOR = "#34495e"
OURS_COLOR = "#2980b9"


def use_book_style() -> None:
    """A quiet, readable style: white background, light grid, no top/right spines."""
    plt.rcParams.update(
        {
            "figure.figsize": (7.0, 4.2),
            "figure.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "legend.frameon": False,
            "font.size": 10,
        }
    )


def plot_humaneval_vs(axis_key: str, ax=None):
    """HumanEval pass@1 of Table 1's models against ``params`` or ``train_tokens`` (log scale).

    Models for which the paper gives no value on that axis are left out (and said so in the
    caption the chapter writes). phi-1 is highlighted.
    """
    if axis_key not in {"params", "train_tokens"}:
        raise ValueError("axis_key must be 'params' or 'train_tokens'")
    if ax is None:
        _, ax = plt.subplots()
    rows = [row for row in TABLE1 if getattr(row, axis_key) is not None]
    for row in rows:
        x = getattr(row, axis_key)
        color = PHI1_COLOR if row.is_phi1 else OTHER_COLOR
        ax.scatter(x, row.humaneval, s=70 if row.is_phi1 else 30, color=color, zorder=3)
        ax.annotate(
            row.model,
            (x, row.humaneval),
            textcoords="offset points",
            xytext=(5, 3),
            fontsize=8 if not row.is_phi1 else 10,
            color=color,
            fontweight="bold" if row.is_phi1 else "normal",
        )
    ax.set_xscale("log")
    label = "parameters" if axis_key == "params" else "training tokens"
    ax.set_xlabel(f"{label} (log scale)")
    ax.set_ylabel("HumanEval pass@1 (%)")
    ax.set_title(f"HumanEval against {label} (Gunasekar et al. 2023, Table 1)")
    return ax
