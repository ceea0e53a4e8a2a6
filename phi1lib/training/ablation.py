"""The paper's central claim at our scale: the same model and token budget on three datasets.

Figure 2.1 of the paper trains one architecture on (a) unfiltered code ("The Stack+") and on
(c) CodeTextbook, and fine-tunes on CodeExercises; section 2.1 adds (b), the filtered code alone
(paper §2.1, Figure 2.1). Here every arm is pretrained at the same number of tokens and then
fine-tuned, at several seeds (the ``ablation_models`` stage), and every model is scored the
same ways:

* held-out loss on a held-out slice of CodeTextbook and on the held-out exercises, in nats per
  token and in bits per byte of text (lower is better);
* pass@1 of its greedy completions on each exercise split of ``ablation.splits`` (a training
  sample, in-family, held-out families; ``evaluation.exercises``) and on HumanEval, run in the
  project sandbox.

The stage writes ``scores.json`` (every model's score of every item), ``ablation.json`` (one
row per model, and the arms compared over seeds and items, ``ablation_stats.compare_arms``)
and ``completions.jsonl`` (the seed-0 models' completions, for chapter 5's side-by-side). A
model's scores are kept in the work folder as soon as they are computed, so an interrupted
build resumes with the next model. Introduced in chapter 4 ("Does the data matter? The
ablation at our scale") and used again in chapter 5.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from phi1lib.evaluation.exercises import split_problems
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact
from phi1lib.training.ablation_models import (
    ARMS,
    FIRST_FINETUNE,
    PHASES,
    model_folders,
    run_name,
    seeds,
    training_summary,
)
from phi1lib.training.ablation_stats import compare_arms
from phi1lib.training.heldout import sequence_losses, spread_indices
from phi1lib.training.packing import PackedSequences
from phi1lib.training.stages import HELDOUT_FILE

RESULTS_FILE = "ablation.json"
SCORES_FILE = "scores.json"
COMPLETIONS_FILE = "completions.jsonl"
HUMANEVAL = "humaneval"
# held-out loss sets: name -> the packed corpus whose held-out file is scored
LOSS_SETS = {"codetextbook": "tokens_codetextbook", "exercises": "tokens_exercises"}


def score_model(
    model_dir: Path,
    *,
    heldout: Mapping[str, PackedSequences],
    sequences: int,
    problems: Mapping[str, Sequence],
    max_new_tokens: int,
    batch_size: int,
    workers: int,
) -> dict[str, Any]:
    """One model's score of every item: each held-out sequence's loss (nats per token) and
    whether each problem of each split passed, with the completions (chapter 4)."""
    from phi1lib.evaluation.generation import SamplingSettings, load_model
    from phi1lib.evaluation.harness import evaluate_model

    model, tokenizer = load_model(model_dir)
    losses = {}
    for name, data in heldout.items():
        nats, tokens = sequence_losses(
            model,
            data,
            spread_indices(len(data), sequences),
            batch_size=batch_size,
            device=model.device,
        )
        scored = tokens > 0  # the same sequences for every model: a stream's 1-token tail has none
        if not scored.any():
            raise ValueError(f"{data.path}: no held-out tokens to score")
        losses[name] = (nats[scored] / tokens[scored]).tolist()
    sampling = SamplingSettings(max_new_tokens=max_new_tokens, batch_size=batch_size)
    passed, completions = {}, {}
    for split, chosen in problems.items():
        report = evaluate_model(
            (model, tokenizer), split, problems=chosen, settings=sampling, workers=workers
        )
        passed[split] = [int(result.samples[0].passed) for result in report.results]
        completions[split] = [
            {
                "completion": result.samples[0].completion,
                "passed": result.samples[0].passed,
                "status": result.samples[0].status,
            }
            for result in report.results
        ]
    return {"losses": losses, "passed": passed, "completions": completions}


def _problems(ctx: StageContext) -> dict[str, list]:
    from phi1lib.evaluation.benchmarks import load_benchmark

    settings = ctx.profile.ablation
    problems = {
        split: split_problems(ctx.inputs["exercises"], split, settings.exercises)
        for split in settings.splits
    }
    if settings.humaneval_limit > 0:
        problems[HUMANEVAL] = load_benchmark(HUMANEVAL, settings.humaneval_limit)
    return problems


def bytes_per_token(artifact: Artifact) -> float:
    """Bytes of text per token of a packed corpus's held-out file (bits per byte = nats per
    token / ln 2 / this). The scored sequences are spread over the file, so its ratio holds."""
    counts = artifact.counts
    return counts["heldout_text_bytes"] / counts["heldout_tokens"]


def _row(name: str, arm, seed: int, phase: str, scores, ctx: StageContext) -> dict[str, Any]:
    from phi1lib.analysis.intervals import wilson_interval

    ablation_models = ctx.inputs["ablation_models"]
    summary = training_summary(ablation_models, ctx.inputs, name)
    base = training_summary(ablation_models, ctx.inputs, run_name(arm.key, seed, "base"))
    row: dict[str, Any] = {
        "model": name,
        "arm": arm.key,
        "run": arm.label,
        "seed": seed,
        "phase": phase,
        "pretrain_tokens": base["tokens"],
        "finetune_tokens": summary["tokens"] if phase == "finetuned" else 0,
        "pretrain_epochs": base["epochs"],
        "train_loss": summary["final_loss"],
    }
    for loss_set, corpus in LOSS_SETS.items():
        loss = sum(scores["losses"][loss_set]) / len(scores["losses"][loss_set])
        row[f"{loss_set}_loss"] = loss
        row[f"{loss_set}_bits_per_byte"] = loss / math.log(2) / bytes_per_token(ctx.inputs[corpus])
    for split, passed in scores["passed"].items():
        row[f"{split}_passed"] = sum(passed)
        row[f"{split}_problems"] = len(passed)
        row[f"{split}_pass@1"] = sum(passed) / len(passed)
        row[f"{split}_interval"] = list(wilson_interval(sum(passed), len(passed)))
    return row


def metrics(splits: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """Every compared metric: key of the scores -> (what it scores, higher is better)."""
    chosen = {f"loss:{name}": (name, False) for name in LOSS_SETS}
    chosen.update({f"pass:{split}": (split, True) for split in splits})
    return chosen


def compare(
    scores: Mapping[str, Mapping[str, Any]],
    arms: Sequence[str],
    seed_list: Sequence[int],
    splits: Sequence[str],
    *,
    resamples: int,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The arms compared at each phase on each metric, and each arm's fine-tuning effect."""

    def grid(arm: str, phase: str, metric: str) -> list[list[float]]:
        kind, name = metric.split(":")
        field = "losses" if kind == "loss" else "passed"
        return [scores[run_name(arm, s, phase)][field][name] for s in seed_list]

    comparisons = []
    for metric, (_, higher) in metrics(splits).items():
        options = {
            "higher_is_better": higher,
            "binary": metric.startswith("pass:"),
            "resamples": resamples,
            "seed": seed,
        }
        for phase in PHASES:
            result = compare_arms({arm: grid(arm, phase, metric) for arm in arms}, **options)
            comparisons.append({"metric": metric, "phase": phase, "between": "arms", **result})
        for arm in arms:
            result = compare_arms({p: grid(arm, p, metric) for p in PHASES}, **options)
            comparisons.append({"metric": metric, "arm": arm, "between": "phases", **result})
    return comparisons


def _config(profile: Profile) -> dict[str, Any]:
    return {"ablation": profile.section("ablation")}


def _build(ctx: StageContext) -> dict[str, Any]:
    settings = ctx.profile.ablation
    seq_len = ctx.profile.pretrain.seq_len
    heldout = {
        name: PackedSequences(ctx.inputs[corpus].path / HELDOUT_FILE, seq_len)
        for name, corpus in LOSS_SETS.items()
    }
    problems = _problems(ctx)
    folders = model_folders(ctx.inputs["ablation_models"], ctx.inputs)
    seed_list = seeds(ctx.profile)
    names = [run_name(a.key, s, p) for a in ARMS for s in seed_list for p in PHASES]
    missing = sorted(set(names) - set(folders))
    if missing:
        raise ValueError(f"the ablation_models artifact lacks the models {missing}")
    done = ctx.work / "scores"
    done.mkdir(exist_ok=True)
    scores: dict[str, Any] = {}
    for name in tqdm(names, desc="ablation: scoring models", unit="model"):
        path = done / f"{name}.json"
        if not path.exists():  # finished before an interruption otherwise
            result = score_model(
                folders[name],
                heldout=heldout,
                sequences=settings.heldout_sequences,
                problems=problems,
                max_new_tokens=settings.max_new_tokens,
                batch_size=settings.batch_size,
                workers=settings.workers,
            )
            path.write_text(json.dumps(result))
        scores[name] = json.loads(path.read_text())
    rows = [
        _row(run_name(a.key, s, p), a, s, p, scores[run_name(a.key, s, p)], ctx)
        for a in ARMS
        for s in seed_list
        for p in PHASES
    ]
    splits = list(problems)
    comparisons = compare(
        scores,
        [a.key for a in ARMS],
        seed_list,
        splits,
        resamples=settings.bootstrap_resamples,
    )
    results = {
        "arms": {a.key: a.label for a in ARMS},
        "seeds": seed_list,
        "splits": splits,
        "problems": {split: len(chosen) for split, chosen in problems.items()},
        "heldout_sequences": {name: len(scores[names[0]]["losses"][name]) for name in LOSS_SETS},
        "bytes_per_token": {
            name: bytes_per_token(ctx.inputs[corpus]) for name, corpus in LOSS_SETS.items()
        },
        "bootstrap_resamples": settings.bootstrap_resamples,
        "rows": rows,
        "comparisons": comparisons,
    }
    (ctx.out / RESULTS_FILE).write_text(json.dumps(results, indent=1))
    (ctx.out / SCORES_FILE).write_text(
        json.dumps(
            {name: {k: v for k, v in s.items() if k != "completions"} for name, s in scores.items()}
        )
    )
    _write_completions(ctx.out / COMPLETIONS_FILE, problems, scores)
    return {
        "models": len(rows),
        "seeds": len(seed_list),
        **{f"{s}_problems": len(p) for s, p in problems.items()},
    }


def _write_completions(path: Path, problems: Mapping[str, Sequence], scores) -> None:
    """Every problem with the seed-0 models' completions, keyed by model name."""
    with path.open("w") as handle:
        for split, chosen in problems.items():
            for index, problem in enumerate(chosen):
                record = {
                    "split": split,
                    "task_id": problem.task_id,
                    "prompt": problem.prompt,
                    "reference": problem.canonical_solution,
                }
                for arm in ARMS:
                    for phase in PHASES:
                        name = run_name(arm.key, 0, phase)
                        record[name] = scores[name]["completions"][split][index]
                handle.write(json.dumps(record) + "\n")


TRAINING_ABLATION = Stage(
    name="training_ablation",
    build=_build,
    config=_config,
    needs=(
        "ablation_models",
        *(arm.first_stage for arm in ARMS),
        *FIRST_FINETUNE.values(),
        *LOSS_SETS.values(),
        "exercises",
    ),
    version=3,  # 3: every arm fine-tuned, at several seeds, compared with intervals
    description="the ablation's models scored and compared over seeds and problems (Figure 2.1)",
)


def read_ablation(artifact: Artifact) -> dict[str, Any]:
    """The ablation's rows (one per model) and comparisons, as the chapters tabulate them."""
    return artifact.json(RESULTS_FILE)


def read_completions(artifact: Artifact) -> list[dict[str, Any]]:
    """Every scored problem with each seed-0 model's completion (chapter 5's side-by-side)."""
    lines = artifact.file(COMPLETIONS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
