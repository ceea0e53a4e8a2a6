"""The settings of chapters 4 and 5 besides the training loop's own (``TrainSettings``): the
profile's ``[tokenizer]``, ``[model]``, ``[pretrain]`` and ``[ablation]`` sections. The meaning
of each value is written beside it in ``profiles.toml``. Introduced in chapter 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from phi1lib.training.loop import TrainSettings
from phi1lib.training.packing import LOSS_ON


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
class ExerciseTokenSettings:
    """How CodeExercises are packed for fine-tuning (``[exercise_tokens]``, chapter 5):
    ``packing`` ``whole`` (every exercise inside one row, padded) or ``stream`` (cut every
    ``seq_len`` tokens, as pretraining); ``loss_on`` ``solution`` (the prompt is read, not
    predicted) or ``all`` (only with ``whole``: a stream has no roles)."""

    packing: str
    loss_on: str

    def __post_init__(self) -> None:
        if self.packing not in ("whole", "stream"):
            raise ValueError(f"packing must be 'whole' or 'stream', got {self.packing!r}")
        if self.loss_on not in LOSS_ON:
            raise ValueError(f"loss_on must be one of {LOSS_ON}, got {self.loss_on!r}")
        if self.packing == "stream" and self.loss_on != "all":
            raise ValueError("a stream has no token roles: packing 'stream' needs loss_on 'all'")


@dataclass(frozen=True)
class AblationSettings:
    """How many seeds the ablation trains per arm, and how its models are scored and compared
    (chapters 4 and 5)."""

    seeds: int
    finetune_steps: int
    splits: list[str]
    exercises: int
    heldout_sequences: int
    humaneval_limit: int
    max_new_tokens: int
    batch_size: int
    workers: int
    bootstrap_resamples: int
