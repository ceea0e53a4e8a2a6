"""The settings of chapters 4 and 5 besides the training loop's own (``TrainSettings``): the
profile's ``[tokenizer]``, ``[model]``, ``[pretrain]`` and ``[ablation]`` sections. The meaning
of each value is written beside it in ``profiles.toml``. Introduced in chapter 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from phi1lib.training.loop import TrainSettings


@dataclass(frozen=True)
class TokenizerSettings:
    """Where the tokenizer comes from (``train``: a BPE on CodeTextbook, else a hub id)."""

    source: str
    vocab_size: int


@dataclass(frozen=True)
class ModelSettings:
    """The model preset (``presets.py``) and its embedding rows (0: the tokenizer's, padded)."""

    preset: str
    vocab_size: int


@dataclass(frozen=True)
class PretrainSettings(TrainSettings):
    """The ``[pretrain]`` section: a training phase, plus the share of CodeTextbook documents
    held out (by a hash of their text) for the held-out loss, which the tokenizer and the packed
    corpora also respect."""

    heldout_fraction: float


@dataclass(frozen=True)
class AblationSettings:
    """How many seeds the ablation trains per arm, and how its models are scored and compared
    (chapters 4 and 5)."""

    seeds: int
    splits: list[str]
    exercises: int
    heldout_sequences: int
    humaneval_limit: int
    max_new_tokens: int
    batch_size: int
    workers: int
    bootstrap_resamples: int
