"""The held-out exercises: a deterministic slice of whole task families, never trained on.

The training chapters measure how well a model completes exercises it has not seen. A random
slice of single exercises would not do: the same family of task (``sum_of_squares``,
``count_vowels``...) would be in both halves with other wording and values. So the slice holds
out whole *families* (an exercise without a family is its own), chosen by a hash of the family's
name: the same families whatever the dataset's size or order, at least one of them. Held-out
exercises that near-duplicate a training exercise are dropped as well. Introduced in chapter 3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def unit_position(unit: str) -> float:
    """A stable pseudo-random number in [0, 1) for a family name."""
    digest = hashlib.sha256(f"heldout|{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def heldout_units(units: Sequence[str], fraction: float) -> set[str]:
    """The families held out: those whose position is below ``fraction``, and at least one."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"exercises.heldout_fraction must lie in [0, 1), got {fraction}")
    distinct = sorted(set(units), key=unit_position)
    chosen = {unit for unit in distinct if unit_position(unit) < fraction}
    if not chosen and distinct and fraction > 0:
        chosen = {distinct[0]}
    return chosen
