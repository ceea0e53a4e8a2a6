"""The benchmarks of chapter 6 behind one call: HumanEval, MBPP, the book's new problems, and
HumanEval+ and MBPP+ (``plus.py``; they are downloaded, so only online profiles run them).

The new problems are 50 functions written for this book in HumanEval format, in the spirit of
the paper's own 50 "unconventional" problems (the paper's §4): each asks for several small steps
in an unusual combination, so that neither HumanEval nor the synthetic exercises contain it.
They live in ``data/new_problems.jsonl`` beside this module. Introduced in chapter 6.
"""

from __future__ import annotations

from pathlib import Path

from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.mbpp import load_mbpp
from phi1lib.evaluation.plus import PLUS_BENCHMARKS, load_plus
from phi1lib.evaluation.problems import (
    Problem,
    ProblemFormatError,
    problem_from_humaneval_record,
    read_jsonl,
)

NEW_PROBLEMS_FILE = Path(__file__).with_name("data") / "new_problems.jsonl"
BENCHMARKS = ("humaneval", "mbpp", "new")  # travel with the book: every profile runs them
ALL_BENCHMARKS = BENCHMARKS + PLUS_BENCHMARKS


def load_new_problems(limit: int | None = None, path: Path | None = None) -> list[Problem]:
    """The book's 50 new problems (or those of another HumanEval-format JSONL file)."""
    path = Path(path) if path is not None else NEW_PROBLEMS_FILE
    problems = [
        problem_from_humaneval_record(record, benchmark="new", where=f"{path}:{line}")
        for line, record in read_jsonl(path)
    ]
    seen: set[str] = set()
    for problem in problems:
        if problem.task_id in seen:
            raise ProblemFormatError(f"{path}: task_id {problem.task_id!r} appears twice")
        seen.add(problem.task_id)
    return problems[:limit] if limit is not None else problems


def load_benchmark(name: str, limit: int | None = None, path: Path | None = None) -> list[Problem]:
    """The problems of ``humaneval``, ``mbpp`` (its test split), ``new``, ``humaneval+`` or
    ``mbpp+`` (chapter 6); ``path``: a local EvalPlus file for the last two."""
    if name in PLUS_BENCHMARKS:
        return load_plus(name, limit, path)
    if name == "humaneval":
        return load_humaneval(limit)
    if name == "mbpp":
        return load_mbpp("test", limit=limit)
    if name == "new":
        return load_new_problems(limit)
    raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(ALL_BENCHMARKS)}")
