"""The profile's ``[eval]`` section: how many problems of each benchmark, how they are sampled,
and how their programs run. The meaning of each value is written beside it in
``profiles.toml``. Introduced in chapter 6.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalSettings:
    """Benchmark limits, sampling for pass@k, batching and the sandbox's limits (chapter 6)."""

    humaneval_limit: int
    mbpp_limit: int
    new_limit: int
    exercise_splits: list[str]
    exercise_limit: int
    curve_splits: list[str]
    n_samples: int
    sample_temperature: float
    top_p: float
    seed: int
    max_new_tokens: int
    batch_size: int
    workers: int
    timeout_s: float
    cpu_threads: int
    plus: bool


@dataclass(frozen=True)
class RobustnessSettings:
    """The ``[robustness]`` section: which exercises the fine-tuned model completes clean and
    perturbed, how they are perturbed, generated and compared (chapter 7)."""

    split: str
    problems: int
    kinds: list[str]
    rate: float
    seed: int
    max_new_tokens: int
    batch_size: int
    workers: int
    bootstrap_resamples: int
