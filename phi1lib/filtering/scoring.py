"""Scoring a reader's own files with the trained filter (``phi1 filter``).

A :class:`QualityFilter` is the profile's embedder plus the trained forest plus the keep
threshold. Its score is the forest's probability that a file is educational; a file is kept when
the score reaches the threshold. A whole corpus is scored by the ``filtered_code`` stage instead,
as datatrove tasks (:class:`~phi1lib.filtering.steps.ScoreFiles`). Introduced in chapter 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from phi1lib.embeddings import Embedder, load_embedder
from phi1lib.filtering.classifier import educational_probability, load_classifier
from phi1lib.filtering.corpus import read_python_file
from phi1lib.filtering.properties import first_code_line

T = TypeVar("T")
MODEL_FILE = "model.pkl"


def embedding_view(text: str) -> str:
    """The part of a file the embedder reads: everything from its first line of code or docstring.

    Leading comment lines (licence headers, shebangs, coding cookies) and blank lines are dropped:
    they say who owns a file, not what it teaches, and a licence header alone can fill the
    embedder's whole window (``embed.max_tokens``) at the small profiles. (chapter 1)
    """
    return "".join(text.splitlines(keepends=True)[first_code_line(text) - 1 :])


@dataclass
class QualityFilter:
    """Embedder + forest + threshold: everything needed to score a file (chapter 1)."""

    embedder: Embedder
    model: Any
    threshold: float

    @classmethod
    def from_profile(cls, profile: Any) -> QualityFilter:
        """The profile's trained filter and its threshold, trained first if the store has none."""
        from phi1lib import pipeline

        artifact = pipeline.run("edu_classifier", profile)
        embed = profile.embed
        embedder = load_embedder(
            embed.model,
            max_tokens=embed.max_tokens,
            max_chunks=embed.max_chunks,
            batch_size=embed.batch_size,
        )
        threshold = artifact.json("metrics.json")["threshold"]
        return cls(embedder, load_classifier(artifact.file(MODEL_FILE)), threshold)

    def score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        return educational_probability(self.model, embeddings)

    def score_texts(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """The educational-value score of each text, from 0 to 1."""
        views = [embedding_view(text) for text in texts]
        return self.score_embeddings(self.embedder.embed(views, progress=progress))


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_records(
    records: Iterable[dict[str, Any]], quality_filter: QualityFilter, *, batch_size: int = 256
) -> Iterator[dict[str, Any]]:
    """One result per record, in order: its score and verdict, or its skip reason.

    Records are embedded ``batch_size`` at a time, so results stream out while many files are
    still being read (chapter 1).
    """
    for batch in _batches(records, batch_size):
        readable = [r for r in batch if r["skip_reason"] is None]
        scores = quality_filter.score_texts([r["text"] for r in readable]) if readable else []
        score_of = {id(r): float(s) for r, s in zip(readable, scores, strict=True)}
        for record in batch:
            row: dict[str, Any] = {"path": record["path"]}
            if record["skip_reason"] is not None:
                row["skip_reason"] = record["skip_reason"]
            else:
                score = score_of[id(record)]
                row.update(score=round(score, 6), kept=score >= quality_filter.threshold)
            yield row


def file_records(paths: Iterable[Path], max_file_bytes: int) -> Iterator[dict[str, Any]]:
    """Corpus-style records for files a reader named (read lazily, bad files flagged)."""
    for path in paths:
        text, size, reason = read_python_file(Path(path), max_file_bytes)
        yield {"text": text, "path": str(path), "size": size, "skip_reason": reason}
