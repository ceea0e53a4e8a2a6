"""Cleaning the synthetic datasets: duplicates out, benchmark look-alikes out.

Two passes, both reusing the book's shared tools:

* **Deduplication** (``phi1lib.dedup``, chapter 1): exact copies (SHA-256 of the normalised
  text) and near copies (MinHash LSH on word 5-grams at a Jaccard threshold) within each
  dataset, then exercises that duplicate a textbook section (across the two datasets).
* **Decontamination** (``phi1lib.decontam``, paper §5): the paper's 13-gram overlap between a
  benchmark problem's description and a training item (on the exercises' docstrings, and on the
  textbooks' text), and, for the exercises, the AST match rate τ between the benchmark's
  reference solutions and the exercises' code. The paper counted how many exercises each τ from
  0.95 to 0.8 would prune (42.5K to 354K of 879.5K); we report the same table for HumanEval and
  MBPP and prune at the profile's ``cleaning.prune_tau``.

Introduced in chapter 2 (textbooks) and chapter 3 (exercises).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phi1lib.decontam import TAUS, ast_matches, ngram_overlap
from phi1lib.dedup import deduplicate
from phi1lib.synthesis.records import KEPT, reject

BENCHMARKS = ("humaneval", "mbpp")


@dataclass(frozen=True)
class CleaningSettings:
    """The profile's ``[cleaning]`` section (chapters 2 and 3)."""

    near_threshold: float
    ngram_size: int
    remove_ngram_matches: bool
    prune_tau: float
    workers: int

    def __post_init__(self) -> None:
        if not min(TAUS) <= self.prune_tau <= 1.0:
            raise ValueError(
                f"cleaning.prune_tau must lie in [{min(TAUS)}, 1], got {self.prune_tau}"
            )


def benchmark_problems() -> dict[str, list]:
    """The problems decontamination protects: all of HumanEval and MBPP's test split."""
    from phi1lib.evaluation.benchmarks import load_benchmark

    return {name: load_benchmark(name) for name in BENCHMARKS}


def _kept(records: Sequence[dict[str, Any]]) -> list[int]:
    return [index for index, record in enumerate(records) if record["rejected"] == KEPT]


def remove_duplicates(
    records: list[dict[str, Any]],
    settings: CleaningSettings,
    *,
    against: Sequence[str] = (),
    against_name: str = "reference",
    progress: bool = False,
) -> dict[str, Any]:
    """Reject kept records whose ``text`` copies an earlier one, or a text of ``against``.

    Reasons: ``exact_duplicate``, ``near_duplicate``, ``duplicates_<against_name>``. Returns the
    dedup summary and its parameters for the report (chapters 2 and 3).
    """
    kept = _kept(records)
    result = deduplicate(
        [records[i]["text"] for i in kept],
        against=against,
        threshold=settings.near_threshold,
        progress=progress,
    )
    reasons = {"exact": "exact_duplicate", "near": "near_duplicate"}
    reasons["reference"] = f"duplicates_{against_name}"
    for reason, label in reasons.items():
        reject(records, {kept[i] for i, why in result.removed.items() if why == reason}, label)
    examples = [
        {"removed": records[kept[i]]["id"], "kept": records[kept[j]]["id"]}
        for i, j in list(result.duplicate_of.items())[:5]
    ]
    return {"summary": result.summary(), "params": result.params, "examples": examples}


def ngram_decontamination(
    records: list[dict[str, Any]],
    field: str,
    problems: dict[str, list],
    settings: CleaningSettings,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """The paper's n-gram check between benchmark descriptions and the records' ``field``.

    Matching records are rejected (``ngram_<benchmark>``) when ``remove_ngram_matches``;
    returns, per benchmark, the number of matched problems and records and a few matches.
    """
    kept = _kept(records)
    texts = [records[i][field] for i in kept]
    report: dict[str, Any] = {"n": settings.ngram_size, "field": field, "removed": 0}
    for name, benchmark in problems.items():
        matches = ngram_overlap(
            {problem.task_id: problem.description for problem in benchmark},
            texts,
            n=settings.ngram_size,
            progress=progress,
        )
        report[name] = {
            "problems_matched": len({match.task_id for match in matches}),
            "items_matched": len({match.train_index for match in matches}),
            "examples": [
                {"task_id": m.task_id, "id": records[kept[m.train_index]]["id"], "ngram": m.ngram}
                for m in matches[:5]
            ],
        }
        if settings.remove_ngram_matches:
            hit = {kept[match.train_index] for match in matches}
            report["removed"] += reject(records, hit, f"ngram_{name}")
    return report


def ast_decontamination(
    records: list[dict[str, Any]],
    problems: dict[str, list],
    settings: CleaningSettings,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """The paper's AST match-rate check between benchmark solutions and the exercises' code.

    For each benchmark: the pruning table at the paper's τ values (similar problems and
    exercises that would be pruned), the closest pairs, and the exercises rejected
    (``ast_<benchmark>``) at ``settings.prune_tau``. Introduced in chapter 3.
    """
    kept = _kept(records)
    codes = [records[i]["text"] for i in kept]
    taus = sorted({*TAUS, settings.prune_tau}, reverse=True)
    report: dict[str, Any] = {"prune_tau": settings.prune_tau, "taus": taus, "removed": 0}
    pruned: dict[str, set[int]] = {}
    for name, benchmark in problems.items():
        matches = ast_matches(
            {problem.task_id: problem.reference_code() for problem in benchmark},
            codes,
            min_rate=min(taus),
            workers=settings.workers,
            progress=progress,
        )
        order = sorted(range(len(matches.task_ids)), key=lambda i: -float(matches.best_rate[i]))
        report[name] = {
            "table": matches.pruning_table(taus),
            "closest": [
                {
                    "task_id": matches.task_ids[i],
                    "rate": round(float(matches.best_rate[i]), 4),
                    "id": records[kept[int(matches.best_train_index[i])]]["id"],
                }
                for i in order[:5]
                if matches.best_train_index[i] >= 0
            ],
            "unparsable_benchmark": len(matches.unparsable_benchmark),
            "unparsable_training": matches.unparsable_training,
        }
        pruned[name] = {kept[int(i)] for i in matches.pruned(settings.prune_tau)}
    for name, indices in pruned.items():
        report["removed"] += reject(records, indices, f"ast_{name}")
    return report
