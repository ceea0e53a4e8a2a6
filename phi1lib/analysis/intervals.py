"""Confidence intervals for pass rates measured on a few dozen probes.

A probe category holds five to ten prompts, so a pass rate of 2/6 says little on its own: the
interval around it is what a chapter may claim. Two intervals are used in chapter 7:

* the **Wilson score interval** {cite}`wilson1927probable` for one rate: unlike the textbook
  ``p ± z·sqrt(p(1-p)/n)`` it never leaves [0, 1] and does not collapse to a point at 0/n or n/n,
  which is where small models on hard probes live;
* a **paired bootstrap** {cite}`efron1979bootstrap` for the difference between two models on the
  *same* probes: resampling probes (not models) keeps the pairing, so a probe that both models
  pass or both fail adds no spurious noise to the difference.

Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

# The normal quantile for a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``trials`` (95% by default).

    With ``p = successes / trials`` the centre is ``(p + z²/2n) / (1 + z²/n)`` and the half width
    ``z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)``. No trials give the uninformative interval (0, 1).
    """
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Rounding can put an end a hair past p (2.8e-17 for 0/6); the interval always holds p.
    return (min(max(0.0, centre - half), p), max(min(1.0, centre + half), p))


def paired_bootstrap_difference(
    first: Sequence[float],
    second: Sequence[float],
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of ``second - first`` over paired items, with a percentile bootstrap interval.

    Returns ``(difference, low, high)``. Items are resampled with replacement, keeping each
    item's two scores together.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two lists of one length, got {a.shape}, {b.shape}")
    if not len(a):
        raise ValueError("no paired scores to compare")
    differences = b - a
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[picks].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(differences.mean()), float(low), float(high)


def grid_bootstrap_means(
    scores: Mapping[str, Sequence[Sequence[float]]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Resampled grand means of ``(seeds, items)`` score grids, resampling seeds *and* items.

    The ablation's question has two sources of noise: which seed trained the model, and which
    problems (or held-out sequences) scored it. Each resample draws seeds with replacement and
    items with replacement, and uses the *same* draws for every grid, so that differences
    between grids stay paired: seed ``s`` of every arm started from the same weights, and item
    ``i`` is the same problem for every model (chapter 4). Returns, per grid, the ``resamples``
    grand means.
    """
    grids = {name: np.asarray(grid, dtype=np.float64) for name, grid in scores.items()}
    shapes = {grid.shape for grid in grids.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"score grids must all be (seeds, items) of one shape, got {shapes}")
    n_seeds, n_items = next(iter(shapes))
    if not n_seeds or not n_items:
        raise ValueError("no scores to resample")
    rng = np.random.default_rng(seed)
    seed_picks = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    item_picks = rng.integers(0, n_items, size=(resamples, n_items))
    rows, columns = seed_picks[:, :, None], item_picks[:, None, :]
    return {name: grid[rows, columns].mean(axis=(1, 2)) for name, grid in grids.items()}


def percentile_interval(samples: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap samples."""
    tail = (1 - level) / 2
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [tail, 1 - tail])
    return float(low), float(high)
