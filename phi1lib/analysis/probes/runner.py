"""Run the probe suite on a model: generate, check, and (with a real teacher) grade.

Generation is chapter 6's (:mod:`phi1lib.evaluation.generation`: batched, greedy, cut at stop
sequences), execution is the sandbox's, and grading is chapter 6's LLM judge
(:mod:`phi1lib.evaluation.judge`, the paper's GPT-4 grading of §4: an assessment, then a grade
from 0 to 10 against a correct answer): this module only wires them to the probes. Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phi1lib.analysis.probes.checks import check_structure, program_with_tests
from phi1lib.analysis.probes.report import ProbeOutcome
from phi1lib.analysis.probes.suite import Probe

# A chat answer ends where the next speaker would begin.
CHAT_STOPS = ("\nStudent:", "\nSTUDENT:", "\nQuestion:")


@dataclass(frozen=True)
class ProbeSettings:
    """The profile's ``[probes]`` section: how the suite is answered and checked, whether the
    answers are graded, how differences are resampled, which other sizes join (chapter 7)."""

    max_new_tokens: int
    batch_size: int
    workers: int
    timeout_s: float
    judge: bool
    bootstrap_resamples: int
    compare_profiles: list[str]
    seed: int


def stops_for(probe: Probe) -> tuple[str, ...]:
    """Where a completion of this probe ends: the end of the function, or of the chat turn."""
    from phi1lib.evaluation.problems import FUNCTION_BODY_STOPS

    return CHAT_STOPS if probe.format == "chat" else FUNCTION_BODY_STOPS


def complete_probes(
    model: str | Path, probes: Sequence[Probe], settings: ProbeSettings, *, progress: bool = True
) -> tuple[list[str], dict]:
    """One greedy completion per probe from a model folder (or hub id), and generation stats."""
    from phi1lib.evaluation.generation import (
        GenerationStats,
        SamplingSettings,
        generate_completions,
        load_model,
    )

    lm, tokenizer = load_model(model)
    stats = GenerationStats(extra={"parameters": sum(p.numel() for p in lm.parameters())})
    sampling = SamplingSettings(
        max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size
    )
    completions = generate_completions(
        lm,
        tokenizer,
        [probe.prompt for probe in probes],
        [stops_for(probe) for probe in probes],
        sampling,
        progress=progress,
        stats=stats,
    )
    return [samples[0] for samples in completions], stats.to_dict()


def check_completions(
    probes: Sequence[Probe], completions: Sequence[str], settings: ProbeSettings
) -> list[tuple[bool, str]]:
    """``(passed, status)`` per probe: tests run in the sandbox, structure checked statically."""
    from phi1lib.sandbox import SandboxLimits, run_programs

    verdicts: list[tuple[bool, str] | None] = [None] * len(probes)
    executed = [i for i, probe in enumerate(probes) if probe.check == "tests"]
    results = run_programs(
        [program_with_tests(probes[i], completions[i]) for i in executed],
        limits=SandboxLimits(timeout_s=settings.timeout_s),
        workers=settings.workers,
    )
    for index, result in zip(executed, results, strict=True):
        verdicts[index] = (bool(result.passed), str(result.status))
    for index, probe in enumerate(probes):
        if probe.check == "structure":
            verdicts[index] = check_structure(probe, completions[index])
    return [verdict for verdict in verdicts if verdict is not None]


def as_problem(probe: Probe):
    """The probe in chapter 6's problem shape, which is what the LLM judge grades."""
    from phi1lib.evaluation.problems import Problem

    return Problem(
        benchmark="probes",
        task_id=probe.id,
        prompt=probe.prompt,
        canonical_solution=probe.reference,
        test=probe.tests,
        entry_point=probe.entry_point,
        description=probe.prompt,
        harness="asserts",
        stop_sequences=stops_for(probe),
    )


def grade_completions(
    profile, probes: Sequence[Probe], completions: Sequence[str], cache_dir: Path | None
) -> tuple[list[float | None], dict]:
    """The judge's 0-10 grade per probe (None where it gave none), and the job's report."""
    from phi1lib.evaluation.judge import judge_completions

    grades, report = judge_completions(
        [as_problem(probe) for probe in probes], completions, profile, cache_dir=cache_dir
    )
    return [None if g is None else float(g.grade) for g in grades], report.to_dict()


def run_probe_suite(
    model: str | Path,
    probes: Sequence[Probe],
    label: str,
    settings: ProbeSettings,
    *,
    judge_profile=None,
    judge_cache: Path | None = None,
    progress: bool = True,
) -> tuple[list[ProbeOutcome], dict]:
    """Every probe answered by ``model`` and checked; graded too when ``judge_profile`` is given
    (its teacher must be a real LLM endpoint).

    Returns the outcomes (in probe order) and a dict of what it cost (generation stats, and the
    judge's job report when there was one).
    """
    completions, stats = complete_probes(model, probes, settings, progress=progress)
    verdicts = check_completions(probes, completions, settings)
    grades: list[float | None] = [None] * len(probes)
    costs: dict = {"generation": stats}
    if judge_profile is not None:
        grades, costs["judge"] = grade_completions(judge_profile, probes, completions, judge_cache)
    outcomes = [
        ProbeOutcome(
            model=label,
            probe_id=probe.id,
            category=probe.category,
            completion=completion,
            passed=passed,
            status=status,
            group=probe.group,
            perturbation=probe.perturbation,
            grade=grade,
        )
        for probe, completion, (passed, status), grade in zip(
            probes, completions, verdicts, grades, strict=True
        )
    ]
    return outcomes, costs
