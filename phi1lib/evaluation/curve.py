"""The ``finetune_curve`` stage: pass@1 of the fine-tuning run at the steps it saved.

A small model does not learn to solve exercises gradually. Long before it passes any, it writes
the right kind of body, and then fails on the one thing a body needs from its prompt: the
parameter's name, which in new exercises it has never seen and must copy from the signature.
Its pass rate stays at zero and then rises within a few hundred steps, once it can copy (a
skill small transformers are known to acquire abruptly, Olsson et al. 2022). One pass rate at
the end of the run cannot show this; the run's snapshots can. The ``finetune`` stage saves the
model every ``finetune.snapshot_every`` steps; this stage grades every snapshot, with the
pretrained model as step 0 and the finished one as the last step, on each split of
``eval.curve_splits`` (``evaluation.exercises``: a training sample, in-family), greedy, in the
sandbox, each pass rate with its Wilson interval. It writes ``curve.json``; a finished point is
kept in the work folder, so an interrupted build resumes with the next. Chapter 5.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from phi1lib.evaluation.exercises import benchmark_name, split_problems
from phi1lib.evaluation.generation import load_model
from phi1lib.evaluation.harness import evaluate_model
from phi1lib.evaluation.stage import sampling_settings
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact
from phi1lib.sandbox import SandboxLimits
from phi1lib.sandbox.layers import require_isolation
from phi1lib.training.loop import SNAPSHOTS, snapshots

CURVE_FILE = "curve.json"


def snapshot_models(pretrain: Artifact, finetune: Artifact) -> list[tuple[int, Path]]:
    """``(step, model folder)`` along the fine-tuning run: the pretrained model at step 0, every
    snapshot the run saved, and the finished model at its last step."""
    steps = finetune.json("training.json")["steps"]
    points = [(0, pretrain.path / "model")]
    points.extend(
        (step, path) for step, path in snapshots(finetune.path / SNAPSHOTS) if 0 < step < steps
    )
    points.append((steps, finetune.path / "model"))
    return points


def failure_kinds(report) -> dict[str, int]:
    """How the failing samples failed, by the exception's name (``NameError``: the body used a
    name the function does not have, as when a parameter's name is not copied right)."""
    kinds = Counter(
        (sample.message.split(":", 1)[0].strip() or sample.status)
        if sample.status != "timeout"
        else "timeout"
        for result in report.results
        for sample in result.samples
        if not sample.passed
    )
    return dict(sorted(kinds.items()))


def _config(profile: Profile) -> dict[str, Any]:
    config = profile.eval
    return {
        "splits": list(config.curve_splits),
        "limit": config.exercise_limit,
        "sampling": asdict(sampling_settings(profile)[0]),
        "timeout_s": config.timeout_s,
    }


def _build(ctx: StageContext) -> dict[str, Any]:
    profile = ctx.profile
    sandbox = require_isolation(profile.sandbox)
    config = profile.eval
    settings, _ = sampling_settings(profile)
    tokens_per_step = profile.settings("finetune").tokens_per_step
    problems = {
        split: split_problems(ctx.inputs["exercises"], split, config.exercise_limit)
        for split in config.curve_splits
    }
    rows = []
    for step, model_dir in snapshot_models(ctx.inputs["pretrain"], ctx.inputs["finetune"]):
        done = ctx.work / f"step-{step:06d}.json"
        if not done.exists():
            loaded = load_model(model_dir)
            point = []
            for split, chosen in problems.items():
                report = evaluate_model(
                    loaded,
                    benchmark_name(split),
                    name=f"step {step}",
                    problems=chosen,
                    settings=settings,
                    limits=SandboxLimits(timeout_s=config.timeout_s),
                    workers=config.workers,
                    progress=False,
                )
                summary = report.summary
                point.append(
                    {
                        "step": step,
                        "tokens": step * tokens_per_step,
                        "split": split,
                        "problems": len(chosen),
                        "passed": sum(r.c for r in report.results),
                        "pass@1": summary["pass@1"],
                        "pass@1_interval": summary["pass@1_interval"],
                        "failures": failure_kinds(report),
                    }
                )
            done.write_text(json.dumps(point))
        rows.extend(json.loads(done.read_text()))
    (ctx.out / CURVE_FILE).write_text(json.dumps({"rows": rows}, indent=1))
    last = max(row["step"] for row in rows)
    counts: dict[str, Any] = {"points": len(rows) // max(1, len(problems)), "sandbox": sandbox}
    for row in rows:
        if row["step"] in (0, last):
            counts[f"{row['split']}/step-{row['step']}/pass@1"] = round(row["pass@1"], 4)
    return counts


FINETUNE_CURVE = Stage(
    name="finetune_curve",
    build=_build,
    config=_config,
    needs=("pretrain", "finetune", "exercises"),
    version=1,
    description="pass@1 on the exercise splits at every saved step of the fine-tuning run",
)


def curve_frame(artifact: Artifact) -> pd.DataFrame:
    """One row per (step, split): pass@1 and its Wilson interval, in percent."""
    frame = pd.DataFrame(artifact.json(CURVE_FILE)["rows"])
    frame["pass@1 (%)"] = 100 * frame["pass@1"]
    frame["low (%)"] = [100 * low for low, _ in frame["pass@1_interval"]]
    frame["high (%)"] = [100 * high for _, high in frame["pass@1_interval"]]
    return frame


def curve_table(artifact: Artifact) -> pd.DataFrame:
    """The learning curve as the chapter prints it: steps down, splits across, each cell
    ``passed/problems = rate [low, high]``."""
    frame = curve_frame(artifact)
    cells = {
        (row["step"], row["split"]): f"{row['passed']}/{row['problems']} = "
        f"{row['pass@1 (%)']:.0f}% [{row['low (%)']:.0f}, {row['high (%)']:.0f}]"
        for _, row in frame.iterrows()
    }
    steps = sorted(frame["step"].unique())
    splits = list(dict.fromkeys(frame["split"]))
    tokens = dict(zip(frame["step"], frame["tokens"], strict=False))
    table = pd.DataFrame(
        {split: [cells[(step, split)] for step in steps] for split in splits},
        index=pd.Index(steps, name="fine-tuning step"),
    )
    table.insert(0, "tokens seen", [f"{tokens[step]:,}" for step in steps])
    return table


def curve_findings(artifact: Artifact, split: str = "infamily") -> list[str]:
    """Sentences the chapter prints about one split's curve, every number from ``curve.json``."""
    rows = [row for row in artifact.json(CURVE_FILE)["rows"] if row["split"] == split]
    if not rows:
        return [f"the curve has no {split!r} split"]
    first, last = rows[0], rows[-1]

    def rate(row) -> str:
        low, high = row["pass@1_interval"]
        return (
            f"{row['passed']}/{row['problems']} ({100 * row['pass@1']:.0f}%, "
            f"95% interval {100 * low:.0f}-{100 * high:.0f}%)"
        )

    lines = [
        f"{split}: phi-1-base (step 0) passes {rate(first)}; after {last['step']:,} steps "
        f"({last['tokens']:,} tokens) the fine-tuned model passes {rate(last)}."
    ]
    above = next((r for r in rows if r["pass@1_interval"][0] > first["pass@1_interval"][1]), None)
    if above is not None:
        lines.append(
            f"The first saved step whose interval lies wholly above the base model's: {above['step']:,}."
        )
    else:
        lines.append("No saved step's interval lies wholly above the base model's.")
    shares = [
        f"step {row['step']:,}: {row.get('failures', {}).get('NameError', 0)}"
        f"/{row['problems'] - row['passed']}"
        for row in rows
    ]
    lines.append(
        "Failures that are NameErrors (the body uses a name the function does not define), by "
        "step: " + ", ".join(shares) + "."
    )
    return lines


def plot_curve(artifact: Artifact, ax) -> None:
    """pass@1 against fine-tuning step, one line per split, the Wilson interval shaded."""
    frame = curve_frame(artifact)
    for split, rows in frame.groupby("split", sort=False):
        ax.plot(rows["step"], rows["pass@1 (%)"], marker="o", label=split)
        ax.fill_between(rows["step"], rows["low (%)"], rows["high (%)"], alpha=0.2)
    ax.set_xlabel("fine-tuning step (0 = phi-1-base)")
    ax.set_ylabel("pass@1 (%), greedy")
    ax.set_ylim(0, 100)
    ax.legend(title="exercise split")
