"""How sure the ablation can be: arms compared over seeds and problems, with intervals.

Each arm of the ablation gives, per metric, a grid of scores: one row per seed, one column per
item (a problem passed or not, a held-out sequence's loss). :func:`compare_arms` turns the grids
of the arms into what chapter 4 reports: every arm's mean with a 95% interval, the difference
between every two arms with its interval and the share of resamples in which it keeps its sign,
and the ordering of the arms, with how often the bootstrap and how many single seeds give the
same ordering. Resampling seeds and items together (``intervals.grid_bootstrap_means``) counts
both sources of noise: a second seed moves our held-out loss as much as a second dataset can.
Introduced in chapter 4 ("Does the data matter? The ablation at our scale").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from phi1lib.analysis.intervals import grid_bootstrap_means, percentile_interval, wilson_interval


def _ordering(means: Mapping[str, float], higher_is_better: bool) -> list[str]:
    """Arms best first; equal means keep the arms' own order."""
    arms = list(means)
    return sorted(arms, key=lambda arm: -means[arm] if higher_is_better else means[arm])


def _holds(order: Sequence[str], values: Mapping[str, np.ndarray], means, higher: bool):
    """Where ``order`` holds: strictly between arms whose means differ, equally between ties."""
    held = np.ones_like(next(iter(values.values())), dtype=bool)
    for better, worse in zip(order, order[1:], strict=False):
        if means[better] == means[worse]:
            held &= values[better] == values[worse]
        else:
            held &= values[better] > values[worse] if higher else values[better] < values[worse]
    return held


def ordering_text(order: Sequence[str], means: Mapping[str, float]) -> str:
    """``c > b > a``, or ``c > b = a`` where two arms tie."""
    text = order[0]
    for previous, arm in zip(order, order[1:], strict=False):
        text += f" {'=' if means[previous] == means[arm] else '>'} {arm}"
    return text


def compare_arms(
    grids: Mapping[str, Sequence[Sequence[float]]],
    *,
    higher_is_better: bool,
    binary: bool = False,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Means, paired differences and the ordering of arms whose ``(seeds, items)`` grids share
    their seeds and items (chapter 4).

    ``better`` is the share of resamples in which the second arm of a pair beats the first
    (a one-sided bootstrap probability, not a p-value); ``ordering_probability`` the share in
    which the whole ordering of the means holds; ``seeds_agreeing`` how many seeds, alone, order
    the arms the same way.

    ``binary`` grids hold passes (0 or 1). A bootstrap of a grid that is all zeros has zero
    width, as if the run had proved a rate of exactly 0; so each binary arm's interval is the
    wider of the bootstrap's and the Wilson interval of its pooled count (``wilson``).
    """
    arrays = {arm: np.asarray(grid, dtype=np.float64) for arm, grid in grids.items()}
    if len(arrays) < 2:
        raise ValueError(f"need two arms or more to compare, got {list(arrays)}")
    boot = grid_bootstrap_means(arrays, resamples=resamples, seed=seed)
    means = {arm: float(grid.mean()) for arm, grid in arrays.items()}
    cells = {}
    for arm, grid in arrays.items():
        interval = percentile_interval(boot[arm])
        cells[arm] = {
            "mean": means[arm],
            "interval": list(interval),
            "per_seed": grid.mean(axis=1).tolist(),
        }
        if binary:
            wilson = wilson_interval(int(grid.sum()), grid.size)
            cells[arm]["bootstrap_interval"] = list(interval)
            cells[arm]["wilson"] = list(wilson)
            cells[arm]["interval"] = [min(interval[0], wilson[0]), max(interval[1], wilson[1])]
    pairs = []
    for first, second in combinations(arrays, 2):
        difference = boot[second] - boot[first]
        wins = difference > 0 if higher_is_better else difference < 0
        pairs.append(
            {
                "first": first,
                "second": second,
                "difference": means[second] - means[first],
                "interval": list(percentile_interval(difference)),
                "second_better": float(wins.mean()),
            }
        )
    order = _ordering(means, higher_is_better)
    per_seed = {arm: arrays[arm].mean(axis=1) for arm in arrays}
    n_seeds = next(iter(arrays.values())).shape[0]
    agreeing = int(_holds(order, per_seed, means, higher_is_better).sum())
    return {
        "higher_is_better": higher_is_better,
        "seeds": n_seeds,
        "items": next(iter(arrays.values())).shape[1],
        "cells": cells,
        "pairs": pairs,
        "ordering": order,
        "ordering_text": ordering_text(order, means),
        "ordering_probability": float(_holds(order, boot, means, higher_is_better).mean()),
        "seeds_agreeing": agreeing,
    }
