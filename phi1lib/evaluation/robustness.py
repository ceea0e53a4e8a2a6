"""The ``robustness`` stage: the fine-tuned model on clean prompts and on the same prompts with
mistakes in them (the limitation the paper's conclusion states; ``evaluation.perturb``).

It takes ``robustness.problems`` exercises of the split ``robustness.split`` (in-family held-out
exercises where the profile's exercise stage writes them), has the fine-tuned model complete each
one as written and after each perturbation of ``robustness.kinds``, and grades every completion
against the exercise's own tests in the sandbox. It writes ``robustness.json``: per condition
the pass count with its Wilson interval, and per perturbation the paired difference from the
clean prompts with a bootstrap interval over problems, and how many problems it broke or fixed;
and ``prompts.jsonl``, every prompt as perturbed with its verdicts. A finished condition is
kept in the work folder, so an interrupted build resumes with the next. Introduced in chapter 7
("Mistakes in the prompt").
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from phi1lib.analysis.intervals import paired_bootstrap_difference, wilson_interval
from phi1lib.evaluation.exercises import split_problems
from phi1lib.evaluation.perturb import perturb
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile

RESULTS_FILE = "robustness.json"
PROMPTS_FILE = "prompts.jsonl"
CLEAN = "clean"


def _conditions(problems, settings) -> dict[str, list]:
    """The clean problems, and each perturbation's copy of them (same tests, new prompt)."""
    conditions = {CLEAN: list(problems)}
    for kind in settings.kinds:
        conditions[kind] = [
            dataclasses.replace(
                problem,
                prompt=perturb(
                    problem.prompt,
                    kind,
                    rate=settings.rate,
                    seed=settings.seed,
                    where=f"{problem.benchmark} {problem.task_id}",
                ).prompt,
            )
            for problem in problems
        ]
    return conditions


def summarise(passed: dict[str, list[int]], *, resamples: int, seed: int) -> dict[str, Any]:
    """Pass rates with Wilson intervals, and each perturbation's paired change from clean."""
    clean = passed[CLEAN]
    rates = {}
    for condition, values in passed.items():
        low, high = wilson_interval(sum(values), len(values))
        rates[condition] = {
            "passed": sum(values),
            "problems": len(values),
            "pass@1": sum(values) / len(values),
            "interval": [low, high],
        }
    changes = {}
    for condition, values in passed.items():
        if condition == CLEAN:
            continue
        difference, low, high = paired_bootstrap_difference(
            clean, values, resamples=resamples, seed=seed
        )
        changes[condition] = {
            "difference": difference,
            "interval": [low, high],
            "broken": sum(1 for c, p in zip(clean, values, strict=True) if c and not p),
            "fixed": sum(1 for c, p in zip(clean, values, strict=True) if p and not c),
        }
    return {"rates": rates, "changes": changes}


def _build(ctx: StageContext) -> dict[str, Any]:
    from phi1lib.evaluation.generation import SamplingSettings, load_model
    from phi1lib.evaluation.harness import evaluate_model

    settings = ctx.profile.robustness
    problems = split_problems(ctx.inputs["exercises"], settings.split, settings.problems)
    conditions = _conditions(problems, settings)
    sampling = SamplingSettings(
        max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size
    )
    loaded = None
    passed, completions = {}, {}
    for condition, chosen in conditions.items():
        path = ctx.work / f"{condition}.json"
        if not path.exists():  # else finished before an interruption
            loaded = loaded or load_model(ctx.inputs["finetune"].path / "model")
            report = evaluate_model(
                loaded, condition, problems=chosen, settings=sampling, workers=settings.workers
            )
            path.write_text(
                json.dumps(
                    [
                        {"passed": int(r.samples[0].passed), "completion": r.samples[0].completion}
                        for r in report.results
                    ]
                )
            )
        records = json.loads(path.read_text())
        passed[condition] = [record["passed"] for record in records]
        completions[condition] = [record["completion"] for record in records]
    result = {
        "split": settings.split,
        "kinds": list(settings.kinds),
        "rate": settings.rate,
        **summarise(passed, resamples=settings.bootstrap_resamples, seed=settings.seed),
    }
    (ctx.out / RESULTS_FILE).write_text(json.dumps(result, indent=1))
    with (ctx.out / PROMPTS_FILE).open("w") as handle:
        for index, problem in enumerate(problems):
            record = {"task_id": problem.task_id}
            for condition, chosen in conditions.items():
                record[condition] = {
                    "prompt": chosen[index].prompt,
                    "completion": completions[condition][index],
                    "passed": bool(passed[condition][index]),
                }
            handle.write(json.dumps(record) + "\n")
    return {
        "problems": len(problems),
        **{f"{c}/passed": r["passed"] for c, r in result["rates"].items()},
    }


def _config(profile: Profile) -> dict[str, Any]:
    return {"robustness": profile.section("robustness")}


ROBUSTNESS = Stage(
    name="robustness",
    build=_build,
    config=_config,
    needs=("finetune", "exercises"),
    version=1,
    description="the fine-tuned model on clean and perturbed exercise prompts (paper's conclusion)",
)


def read_robustness(artifact) -> dict[str, Any]:
    """The stage's ``robustness.json`` (chapter 7 reads it)."""
    return artifact.json(RESULTS_FILE)


def read_prompts(artifact) -> list[dict[str, Any]]:
    """Every problem's prompt under each condition, with the completion and its verdict."""
    lines = artifact.file(PROMPTS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
