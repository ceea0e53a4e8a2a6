"""The settings of chapter 1's stages: the profile's ``[corpus]``, ``[dedup]``, ``[judge]``,
``[classifier]`` and ``[datatrove]`` sections. The meaning of each value is written beside it in ``profiles.toml``;
choices (the corpus source, the threshold rule) are checked by the code that uses them.
Introduced in chapter 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CorpusSettings:
    """Where the real code comes from and how much of it is read."""

    source: str
    max_files: int
    max_file_bytes: int
    seed: int
    token_counter: str
    hub_sources: list[dict[str, Any]]  # the streams read when source = "hub"


@dataclass(frozen=True)
class DedupSettings:
    """Exact, then MinHash-LSH near-duplicate removal (BigCode's parameters)."""

    near: bool
    threshold: float
    num_perm: int
    ngram_size: int


@dataclass(frozen=True)
class JudgeSettings:
    """The sample of files the teacher labels for educational value."""

    sample_size: int
    seed: int
    max_chars: int


@dataclass(frozen=True)
class ClassifierSettings:
    """The random forest on embeddings and the rule that picks its keep threshold."""

    n_estimators: int
    test_fraction: float
    threshold_rule: str
    threshold: float
    seed: int


@dataclass(frozen=True)
class DatatroveSettings:
    """Where chapter 1's datatrove pipelines run (:mod:`phi1lib.filtering.engine`)."""

    tasks: int
    workers: int
    cluster: str  # "" = this machine; else a cluster configuration in configs/
