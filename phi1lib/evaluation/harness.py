"""The evaluation harness: a model (or the reference solutions) on one benchmark, end to end.

Load the problems, generate completions, grade them in the sandbox, optionally have the LLM
judge grade them too, and keep everything in one :class:`EvaluationReport` that is written as
JSON and read back by the chapter. Introduced in chapter 6.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phi1lib.evaluation.benchmarks import load_benchmark
from phi1lib.evaluation.generation import (
    GenerationStats,
    SamplingSettings,
    generate_completions,
    load_model,
)
from phi1lib.evaluation.grading import ProblemResult, grade_completions, summarize
from phi1lib.evaluation.problems import Problem

CANONICAL = "canonical"


@dataclass
class EvaluationReport:
    """One model on one benchmark: the summary (pass@k, statuses) and every sample's verdict."""

    benchmark: str
    model: str
    summary: dict[str, Any]
    results: list[ProblemResult]
    settings: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)

    def pass_at_1_by_task(self) -> dict[str, float]:
        """Per-problem pass@1 (0 or 1 for a single greedy sample), for Table 3's split."""
        return {result.task_id: result.pass_at(1) for result in self.results}

    def per_problem(self) -> list[dict[str, Any]]:
        """One flat row per problem: how many samples passed and how the first one ended."""
        rows = []
        for result in self.results:
            first = result.samples[0]
            rows.append(
                {
                    "task_id": result.task_id,
                    "n": result.n,
                    "c": result.c,
                    "pass@1": result.pass_at(1),
                    "status": first.status,
                    "failed_assertion": first.failed_assertion,
                    "message": first.message,
                    "judge_grade": result.judge_grade,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "summary": self.summary,
            "settings": self.settings,
            "generation": self.generation,
            "results": [result.to_dict() for result in self.results],
        }

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def read(cls, path: Path) -> EvaluationReport:
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                benchmark=data["benchmark"],
                model=data["model"],
                summary=data["summary"],
                results=[ProblemResult.from_dict(r) for r in data["results"]],
                settings=data.get("settings", {}),
                generation=data.get("generation", {}),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not an evaluation report ({error})") from error


def evaluate_canonical(
    benchmark: str,
    *,
    limit: int | None = None,
    problems: Sequence[Problem] | None = None,
    limits=None,
    workers: int = 2,
    progress: bool = True,
) -> EvaluationReport:
    """Grade the benchmark's own reference solutions: every HumanEval one passes (chapter 6).

    This checks the harness rather than a model: a reference that fails points at the
    benchmark (a few MBPP references are known to be wrong) or at the sandbox.
    """
    problems = list(problems) if problems is not None else load_benchmark(benchmark, limit)
    results = grade_completions(
        problems,
        [[problem.canonical_solution] for problem in problems],
        limits=limits,
        workers=workers,
        progress=progress,
    )
    return EvaluationReport(
        benchmark=benchmark,
        model=CANONICAL,
        summary=summarize(results, (1,)),
        results=results,
        settings={"limit": limit, "workers": workers},
    )


def evaluate_model(
    model: str | Path | tuple[Any, Any],
    benchmark: str,
    *,
    name: str | None = None,
    limit: int | None = None,
    problems: Sequence[Problem] | None = None,
    settings: SamplingSettings | None = None,
    ks: Iterable[int] = (1,),
    limits=None,
    workers: int = 2,
    device: str | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Generate completions with ``model`` and grade them: pass@k on one benchmark (chapter 6).

    ``model`` is a ``save_pretrained`` folder, a hub id (``microsoft/phi-1``) or an already
    loaded ``(model, tokenizer)`` pair, so that several benchmarks share one load.
    """
    settings = settings or SamplingSettings()
    ks = sorted(set(ks))
    if ks and ks[-1] > settings.n_samples:
        raise ValueError(f"pass@{ks[-1]} needs at least {ks[-1]} samples per problem")
    problems = list(problems) if problems is not None else load_benchmark(benchmark, limit)
    lm, tokenizer = model if isinstance(model, tuple) else load_model(model, device)
    stats = GenerationStats(extra={"parameters": sum(p.numel() for p in lm.parameters())})
    completions = generate_completions(
        lm,
        tokenizer,
        [problem.prompt for problem in problems],
        [problem.stop_sequences for problem in problems],
        settings,
        progress=progress,
        stats=stats,
    )
    results = grade_completions(
        problems, completions, limits=limits, workers=workers, progress=progress
    )
    return EvaluationReport(
        benchmark=benchmark,
        model=name or (str(model) if not isinstance(model, tuple) else "model"),
        summary=summarize(results, ks),
        results=results,
        settings={
            "limit": limit,
            "n_samples": settings.n_samples,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_new_tokens": settings.max_new_tokens,
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "ks": ks,
        },
        generation=stats.to_dict(),
    )


def add_judge_grades(
    report: EvaluationReport, problems: Sequence[Problem], profile, *, cache_dir: Path
) -> dict[str, Any]:
    """Have the profile's LLM judge grade each problem's first sample; returns the job summary.

    The grades are stored in the report's results and its summary gains ``judge_score``.
    """
    from phi1lib.evaluation.judge import judge_completions

    by_id = {problem.task_id: problem for problem in problems}
    ordered = [by_id[result.task_id] for result in report.results]
    grades, job = judge_completions(
        ordered,
        [result.samples[0].completion for result in report.results],
        profile,
        cache_dir=cache_dir,
    )
    for result, grade in zip(report.results, grades, strict=True):
        if grade is not None:
            result.judge_grade, result.judge_assessment = grade.grade, grade.assessment
    report.summary = summarize(report.results, report.settings.get("ks", (1,)))
    return job.to_dict()
