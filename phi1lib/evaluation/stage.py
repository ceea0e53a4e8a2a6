"""The ``evaluate`` stage: phi-1-base and phi-1 on HumanEval, MBPP and the new problems.

It scores the ``pretrain`` model (our phi-1-base) and the ``finetune`` model (our phi-1) on the
three benchmarks (and on HumanEval+ and MBPP+ when ``eval.plus`` is on, which needs the
network) and on the profile's splits of CodeExercises (``eval.exercise_splits``: a training
sample, in-family and held-out-family problems, see ``evaluation.exercises``) at the profile's
``[eval]`` limits, every pass rate with its Wilson interval, grades the new problems with the LLM judge
when the profile's teacher is a real LLM, and runs the paper's decontamination checks between
HumanEval and the exercises the model was fine-tuned on (Table 3 at our scale). It writes

    <model>/<benchmark>.json   every completion and verdict (``EvaluationReport``)
    summary.json               pass@k and statuses per model and benchmark, generation costs
    decontamination.json       13-gram matches, AST match rates, pruning counts, Table 3 rows

Each finished (model, benchmark) report is kept in the stage's work folder until the stage is
stored, so an interrupted build resumes where it stopped. Introduced in chapter 6.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from phi1lib.decontam import TAUS, ast_matches, ngram_overlap, similarity_split_table
from phi1lib.evaluation.benchmarks import load_benchmark
from phi1lib.evaluation.exercises import benchmark_name, split_problems
from phi1lib.evaluation.generation import SamplingSettings, load_model
from phi1lib.evaluation.harness import EvaluationReport, add_judge_grades, evaluate_model
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.judge import judge_available
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.sandbox import SandboxLimits
from phi1lib.sandbox.layers import require_isolation

# Our names for the models, after the paper's, and the stages that train them.
MODELS = {"phi-1-base": "pretrain", "phi-1": "finetune"}
JUDGE_CACHE = "teacher/evaluate"  # the judge's grades of the new problems (the CLI shares them)


def eval_limits(profile: Profile) -> dict[str, int]:
    """How many problems of each benchmark the profile evaluates (HumanEval+ and MBPP+, when
    ``eval.plus`` is on, take HumanEval's and MBPP's limits)."""
    config = profile.eval
    limits = {"humaneval": config.humaneval_limit, "mbpp": config.mbpp_limit}
    limits["new"] = config.new_limit
    if config.plus:
        limits.update({"humaneval+": config.humaneval_limit, "mbpp+": config.mbpp_limit})
    for split in config.exercise_splits:
        limits[benchmark_name(split)] = config.exercise_limit
    return limits


def _problems(ctx: StageContext, benchmark: str) -> list:
    """The problems of one benchmark: a public one, or a split of the book's exercises."""
    limit = eval_limits(ctx.profile)[benchmark]
    split = next(
        (s for s in ctx.profile.eval.exercise_splits if benchmark_name(s) == benchmark), None
    )
    if split is None:
        return load_benchmark(benchmark, limit)
    return split_problems(ctx.inputs["exercises"], split, limit)


def sampling_settings(profile: Profile) -> tuple[SamplingSettings, list[int]]:
    """The profile's sampling settings, and the k of pass@k they allow (1, 10, 100)."""
    config = profile.eval
    n = config.n_samples
    settings = SamplingSettings(
        n_samples=n,
        temperature=config.sample_temperature if n > 1 else 0.0,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        seed=config.seed,
        cpu_threads=config.cpu_threads,
    )
    return settings, [k for k in (1, 10, 100) if k <= n]


def _config(profile: Profile) -> dict[str, Any]:
    teacher = profile.teacher
    judge = (
        {"endpoint": teacher.endpoint, "model": teacher.model} if judge_available(profile) else None
    )
    return {"eval": profile.section("eval"), "judge": judge}


def _decontamination(ctx: StageContext, scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The paper's §5 checks between HumanEval and the fine-tuning exercises, at our scale."""
    exercises = list(ctx.inputs["exercises"].dataset("data")["text"])
    humaneval = load_humaneval()
    workers = ctx.profile.eval.workers
    ngrams = ngram_overlap({p.task_id: p.description for p in humaneval}, exercises)
    matches = ast_matches(
        {p.task_id: p.reference_code() for p in humaneval}, exercises, workers=workers
    )
    evaluated = [t for t in matches.task_ids if all(t in s for s in scores.values())]
    return {
        "training_items": len(exercises),
        "ngram": {
            "n": 13,
            "problems_matched": len({m.task_id for m in ngrams}),
            "matches": [asdict(m) for m in ngrams],
        },
        "ast": {
            "taus": list(TAUS),
            "best": [
                {
                    "task_id": task_id,
                    "rate": round(float(rate), 4),
                    "train_index": int(index),
                }
                for task_id, rate, index in zip(
                    matches.task_ids, matches.best_rate, matches.best_train_index, strict=True
                )
            ],
            "pruning": matches.pruning_table(),
            "unparsable_training": matches.unparsable_training,
        },
        "table3": similarity_split_table(matches, scores, task_ids=evaluated),
        "table3_problems": len(evaluated),
    }


def _build(ctx: StageContext) -> dict[str, Any]:
    profile = ctx.profile
    sandbox = require_isolation(profile.sandbox)
    config = profile.eval
    settings, ks = sampling_settings(profile)
    limits = SandboxLimits(timeout_s=config.timeout_s)
    work = ctx.work
    summary: dict[str, Any] = {"models": {}, "limits": eval_limits(profile), "ks": ks}
    scores: dict[str, dict[str, float]] = {}
    for label, stage_name in MODELS.items():
        model_dir = ctx.inputs[stage_name].path / "model"
        loaded = None
        summary["models"][label] = {"stage": stage_name, "benchmarks": {}}
        for benchmark in eval_limits(profile):
            path = work / label / f"{benchmark}.json"
            if path.exists():  # finished before an interruption
                report = EvaluationReport.read(path)
            else:
                loaded = loaded or load_model(model_dir)
                problems = _problems(ctx, benchmark)
                report = evaluate_model(
                    loaded,
                    benchmark,
                    name=label,
                    problems=problems,
                    settings=settings,
                    ks=ks,
                    limits=limits,
                    workers=config.workers,
                )
                if benchmark == "new" and judge_available(profile):
                    report.summary["judge_job"] = add_judge_grades(
                        report, problems, profile, cache_dir=ctx.cache(JUDGE_CACHE)
                    )
                report.write(path)
            summary["models"][label]["benchmarks"][benchmark] = {
                **report.summary,
                "generation": report.generation,
            }
            if benchmark == "humaneval":
                scores[label] = report.pass_at_1_by_task()
                summary["models"][label]["parameters"] = report.generation["parameters"]
        shutil.copytree(work / label, ctx.out / label)
    decontamination = _decontamination(ctx, scores)
    (ctx.out / "decontamination.json").write_text(json.dumps(decontamination, indent=1))
    (ctx.out / "summary.json").write_text(json.dumps(summary, indent=1))
    counts: dict[str, Any] = {"sandbox": sandbox}
    for label, entry in summary["models"].items():
        for benchmark, result in entry["benchmarks"].items():
            counts[f"{label}/{benchmark}/pass@1"] = round(result["pass@1"], 4)
    counts["humaneval_similar_at_0.8"] = next(
        (
            row["problems"]
            for row in decontamination["table3"]
            if row["subset"] == "similar" and row["tau"] == 0.8
        ),
        0,
    )
    return counts


EVALUATE = Stage(
    name="evaluate",
    build=_build,
    config=_config,
    needs=("pretrain", "finetune", "exercises"),
    version=3,  # 3: the exercise splits, and a Wilson interval on every pass rate
    description="phi-1-base and phi-1 on HumanEval, MBPP, the new problems and the exercise "
    "splits; decontamination",
)


def read_summary(artifact) -> dict[str, Any]:
    """The stage's ``summary.json`` (chapter 6 reads it)."""
    return artifact.json("summary.json")


def read_report(artifact, model: str, benchmark: str) -> EvaluationReport:
    """One model's full report on one benchmark from the stage's artifact (chapter 6)."""
    return EvaluationReport.read(Path(artifact.path) / model / f"{benchmark}.json")
