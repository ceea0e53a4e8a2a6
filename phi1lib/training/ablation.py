"""The paper's central claim at our scale: the same model and token budget on three datasets.

Figure 2.1 of the paper trains one architecture on (a) unfiltered code ("The Stack+"), on (b)
CodeTextbook, and then fine-tunes (b) on CodeExercises; section 2.1 adds the filtered code alone
(paper §2.1, Figure 2.1). Here the same comparison is made with the profile's model: the stages
``pretrain_unfiltered`` (a), ``pretrain_filtered`` (b), ``pretrain`` (c, CodeTextbook) and
``finetune`` (c + CodeExercises), every pretraining run with the same number of training tokens.

Each model is scored the same four ways: held-out loss on a held-out slice of CodeTextbook and
on the held-out exercises (in nats per token; lower is better), the pass rate of its greedy
completions of held-out exercises run against the exercises' own tests in the project sandbox,
and HumanEval pass@1 through the evaluation chapter's harness. Introduced in chapter 4 ("Does the
data matter? The ablation at our scale") and used again in chapter 5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phi1lib.evaluation.exercises import exercise_problems
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact
from phi1lib.training.heldout import heldout_loss
from phi1lib.training.packing import PackedSequences

# label shown in the chapters -> the stage that trained the model
ABLATION_RUNS = {
    "(a) unfiltered code": "pretrain_unfiltered",
    "(b) filtered code": "pretrain_filtered",
    "(c) CodeTextbook": "pretrain",
    "(c) + CodeExercises": "finetune",
}
RESULTS_FILE = "ablation.json"
COMPLETIONS_FILE = "completions.jsonl"


def evaluate_model_dir(
    model_dir: Path,
    *,
    codetextbook_heldout: PackedSequences,
    exercises_heldout: PackedSequences,
    problems: Sequence,
    humaneval_limit: int,
    heldout_sequences: int,
    max_new_tokens: int,
    batch_size: int,
    workers: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One model's four scores, and its completion of each problem with its verdict (chapter 4)."""
    from phi1lib.evaluation.generation import SamplingSettings, load_model
    from phi1lib.evaluation.harness import evaluate_model

    model, tokenizer = load_model(model_dir)
    device = model.device
    scores: dict[str, Any] = {
        "codetextbook_heldout_loss": heldout_loss(
            model,
            codetextbook_heldout,
            max_sequences=heldout_sequences,
            batch_size=batch_size,
            device=device,
        ),
        "exercises_heldout_loss": heldout_loss(
            model,
            exercises_heldout,
            max_sequences=heldout_sequences,
            batch_size=batch_size,
            device=device,
        ),
    }
    sampling = SamplingSettings(max_new_tokens=max_new_tokens, batch_size=batch_size)
    exercises = evaluate_model(
        (model, tokenizer),
        "codeexercises-heldout",
        problems=problems,
        settings=sampling,
        workers=workers,
    )
    scores["exercises_pass@1"] = exercises.summary["pass@1"]
    scores["exercises_solved"] = exercises.summary["solved_problems"]
    scores["exercises_statuses"] = exercises.summary["statuses"]
    if humaneval_limit > 0:
        humaneval = evaluate_model(
            (model, tokenizer),
            "humaneval",
            limit=humaneval_limit,
            settings=sampling,
            workers=workers,
        )
        scores["humaneval_pass@1"] = humaneval.summary["pass@1"]
        scores["humaneval_problems"] = humaneval.summary["problems"]
    completions = [
        {
            "completion": result.samples[0].completion,
            "passed": result.samples[0].passed,
            "status": result.samples[0].status,
        }
        for result in exercises.results
    ]
    return scores, completions


def _config(profile: Profile) -> dict[str, Any]:
    return {"ablation": profile.section("ablation")}


def _build(ctx: StageContext) -> dict[str, Any]:
    settings = ctx.profile.ablation
    seq_len = ctx.profile.pretrain.seq_len
    codetextbook = PackedSequences(ctx.inputs["tokens_codetextbook"].path / "heldout.bin", seq_len)
    exercise_tokens = PackedSequences(ctx.inputs["tokens_exercises"].path / "heldout.bin", seq_len)
    heldout_records = ctx.inputs["exercises"].dataset("heldout")
    chosen = heldout_records.select(range(min(len(heldout_records), settings.exercises)))
    problems = exercise_problems(list(chosen), source="exercises heldout")
    rows, completions = [], {}
    for label, stage in ABLATION_RUNS.items():
        artifact: Artifact = ctx.inputs[stage]
        scores, texts = evaluate_model_dir(
            artifact.path / "model",
            codetextbook_heldout=codetextbook,
            exercises_heldout=exercise_tokens,
            problems=problems,
            humaneval_limit=settings.humaneval_limit,
            heldout_sequences=settings.heldout_sequences,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            workers=settings.workers,
        )
        training = artifact.json("training.json")
        rows.append(
            {
                "run": label,
                "stage": stage,
                "pretrain_tokens": (
                    training["tokens"]
                    if stage != "finetune"
                    else ctx.inputs["pretrain"].json("training.json")["tokens"]
                ),
                "finetune_tokens": training["tokens"] if stage == "finetune" else 0,
                "epochs": training["epochs"],
                "train_loss": training["final_loss"],
                **scores,
            }
        )
        completions[stage] = texts
    (ctx.out / RESULTS_FILE).write_text(json.dumps(rows, indent=2))
    with (ctx.out / COMPLETIONS_FILE).open("w") as handle:
        for index, problem in enumerate(problems):
            record = {
                "task_id": problem.task_id,
                "prompt": problem.prompt,
                "reference": problem.canonical_solution,
                **{stage: completions[stage][index] for stage in completions},
            }
            handle.write(json.dumps(record) + "\n")
    return {"models": len(rows), "exercises": len(problems)}


TRAINING_ABLATION = Stage(
    name="training_ablation",
    build=_build,
    config=_config,
    needs=(
        *ABLATION_RUNS.values(),
        "tokens_codetextbook",
        "tokens_exercises",
        "exercises",
    ),
    version=2,  # 2: held-out loss on sequences spread over the held-out files
    description="held-out loss and pass rates of the ablation's four models (Figure 2.1's spirit)",
)


def read_ablation(artifact: Artifact) -> list[dict[str, Any]]:
    """The ablation's rows, one per model, as the chapters tabulate them."""
    return artifact.json(RESULTS_FILE)


def read_completions(artifact: Artifact) -> list[dict[str, Any]]:
    """Every held-out exercise with each model's completion (chapter 5's side-by-side)."""
    lines = artifact.file(COMPLETIONS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
