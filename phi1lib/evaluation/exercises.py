"""CodeExercises as graded problems: every split of the ``exercises`` stage, run in the sandbox.

A small model's learning shows first on problems like those it trained on, so the book scores
each model on several splits of its own exercises, side by side with HumanEval and MBPP:

``data``       a sample of the training exercises (can the model write what it has seen?)
``infamily``   new instances of trained families: unseen names, wordings and constants
``heldout``    whole families the model never trained on (unseen skills)

Each split is graded by the exercises' own ``assert`` tests. The model sees the exercise's
``prompt`` (signature and docstring, after any imports) and writes the body; the reference is the
rest of the exercise's training ``text``. Introduced in chapter 5 ("Before and after") and used
by chapters 4, 6 and 7.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from phi1lib.evaluation.problems import Problem
from phi1lib.training.heldout import spread_indices

# split of the exercises artifact -> how the chapters name it
SPLIT_LABELS = {
    "data": "training sample",
    "infamily": "in-family held out",
    "heldout": "held-out families",
}


class ExerciseFormatError(ValueError):
    """An exercise that cannot be turned into a graded problem, or a split that is missing."""


def benchmark_name(split: str) -> str:
    """The benchmark name of one split in reports and summaries (``exercises-heldout``)."""
    return f"exercises-{split}"


def split_label(split: str) -> str:
    """The split's name in the chapters' tables."""
    return SPLIT_LABELS.get(split, split)


def _entry_point(prompt: str, where: str) -> str:
    """The name of the last function the prompt starts (the one the model must complete)."""
    names = []
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith("def ") and "(" in stripped:
            names.append(stripped[4 : stripped.index("(")].strip())
    if not names:
        raise ExerciseFormatError(f"{where}: the prompt defines no function")
    return names[-1]


def _tests_text(tests: Any, where: str) -> str:
    if isinstance(tests, str):
        text = tests
    elif isinstance(tests, Sequence) and all(isinstance(t, str) for t in tests):
        text = "\n".join(tests)
    else:
        raise ExerciseFormatError(f"{where}: tests must be text or a list of asserts")
    try:
        ast.parse(text)
    except SyntaxError as error:
        raise ExerciseFormatError(f"{where}: tests do not parse ({error})") from error
    return text


def exercise_problems(
    records: Sequence[Mapping[str, Any]],
    *,
    source: str = "exercises",
    benchmark: str = "exercises-heldout",
    indices: Sequence[int] | None = None,
) -> list[Problem]:
    """Exercises as evaluation ``Problem``s graded by their own asserts.

    ``indices`` are the records' positions in their split (task ids ``exercise/<index>``), so
    that a sample keeps the ids of the records it took.
    """
    indices = list(indices) if indices is not None else list(range(len(records)))
    if len(indices) != len(records):
        raise ValueError(f"{len(records)} records but {len(indices)} indices")
    problems = []
    for index, record in zip(indices, records, strict=True):
        where = f"{source} record {index}"
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ExerciseFormatError(f"{where}: no prompt")
        text = record.get("text") or ""
        entry_point = record.get("entry_point") or _entry_point(prompt, where)
        problems.append(
            Problem(
                benchmark=benchmark,
                task_id=f"exercise/{index}",
                prompt=prompt,
                canonical_solution=text[len(prompt) :] if text.startswith(prompt) else "",
                test=_tests_text(record.get("tests"), where),
                entry_point=entry_point,
                description=str(record.get("docstring") or prompt),
                harness="asserts",
            )
        )
    return problems


def split_problems(artifact, split: str, limit: int) -> list[Problem]:
    """Up to ``limit`` problems of one split of an ``exercises`` artifact, spread evenly over it.

    The training split is stored family by family, so a sample from its start would see a few
    families only; spreading it samples them all. A split the artifact lacks is an error that
    names the artifact and the splits it has.
    """
    available = sorted(p.name for p in artifact.path.iterdir() if p.is_dir())
    if split not in available:
        raise ExerciseFormatError(
            f"the exercises artifact at {artifact.path} has no split {split!r} "
            f"(it has {', '.join(available) or 'none'}); check the profile's exercise_splits"
        )
    records = artifact.dataset(split)
    chosen = spread_indices(len(records), limit)
    return exercise_problems(
        list(records.select(chosen)),
        source=f"exercises {split}",
        benchmark=benchmark_name(split),
        indices=chosen,
    )
