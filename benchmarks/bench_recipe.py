"""The search behind the tiny profile's recipe: which settings make a small CPU model learn (chapter 5).

Each candidate is a set of profile overrides (``section.field=value``, as ``PHI1_SET`` takes
them). For each, the pipeline itself builds what the book builds (exercises, tokenizer, packed
corpora, ``pretrain``, ``finetune``; the run store keeps them, so candidates share what they
have in common), and the fine-tuned and the base model are graded as the evaluation chapter
grades: greedy completions run against each exercise's asserts in the sandbox, pass@1 on the
in-family split (new instances of training families with unseen names), on training exercises
and on held-out families. Training seconds are the loops' own. Every candidate is appended to
``benchmarks/results/recipe_search.json`` with date, machine, command and load average.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_recipe.py \\
        --candidate "finetune.steps=400;finetune.lr=2e-3" --problems 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from phi1lib import pipeline
from phi1lib.evaluation.exercises import split_problems
from phi1lib.profiles import load_profile, parse_overrides
from phi1lib.training.recorded import measured_now

RESULTS = Path(__file__).resolve().parent / "results" / "recipe_search.json"
SPLITS = {"infamily": "infamily", "train": "data", "heldout": "heldout"}


def pass_rates(model_dir: Path, exercises, problems: int, splits) -> dict[str, float]:
    """pass@1 (greedy, sandbox-graded) of one model on ``problems`` spread over each split."""
    from phi1lib.evaluation.generation import SamplingSettings, load_model
    from phi1lib.evaluation.harness import evaluate_model

    model, tokenizer = load_model(model_dir, "cpu")
    rates = {}
    for split in splits:
        # spread over the split, as the book grades it (the training split is stored by family)
        chosen = split_problems(exercises, SPLITS[split], problems)
        report = evaluate_model(
            (model, tokenizer),
            "codeexercises",
            problems=chosen,
            settings=SamplingSettings(max_new_tokens=96, batch_size=50),
            workers=2,
            progress=False,
        )
        rates[split] = report.summary["pass@1"]
        rates[f"{split}_problems"] = len(chosen)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", action="append", required=True, help="PHI1_SET-style")
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    record = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    for candidate in args.candidate:
        profile = load_profile("tiny", parse_overrides(candidate), use_env=False)
        started = time.perf_counter()
        exercises = pipeline.run("exercises", profile)
        base = pipeline.run("pretrain", profile)
        tuned = pipeline.run("finetune", profile)
        base_json, tuned_json = base.json("training.json"), tuned.json("training.json")
        row = {
            **measured_now("benchmarks/bench_recipe.py", sys.argv[1:]),
            "candidate": candidate,
            "problems_chosen": "spread evenly over each split (evaluation.exercises.split_problems)",
            "exercises": exercises.counts,
            "pretrain_seconds": base_json.get("train_seconds"),
            "finetune_seconds": tuned_json.get("train_seconds"),
            "pretrain_tokens_per_s": base_json.get("tokens_per_s"),
            "finetune_tokens_per_s": tuned_json.get("tokens_per_s"),
            "finetune_loss": tuned_json.get("final_loss"),
            "finetuned": pass_rates(tuned.path / "model", exercises, args.problems, SPLITS),
            "base": pass_rates(base.path / "model", exercises, args.problems, ["infamily"]),
        }
        row["wall_s"] = round(time.perf_counter() - started, 1)
        row["load_average"] = os.getloadavg()
        record["rows"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2))
        print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
