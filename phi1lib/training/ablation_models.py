"""The ablation's models: every arm pretrained and then fine-tuned, once per seed.

Figure 2.1 of the paper compares pretraining data: (a) unfiltered code, (b) filtered code and
(c) CodeTextbook, each at the same number of training tokens, and the paper's question is whether
better pretraining data makes the *fine-tuned* model better (paper §2.1). One run per arm cannot
answer it at our scale: two seeds of the same arm differ by as much as two arms do. So each arm
is trained ``ablation.seeds`` times, seed ``s`` changing the initial weights and the order of
the data (the same ``s`` gives every arm the same initial weights), and every pretrained model
is then fine-tuned on CodeExercises with the profile's ``[finetune]`` recipe, for
``ablation.finetune_steps`` steps (0: as long as ``[finetune]`` says). A profile whose book
cannot afford nine fine-tunes as long as chapter 5's makes the ablation's shorter; the
ablation at the full length is then a recorded result (``benchmarks/bench_ablation.py``).

The first seed of each arm is the pipeline's own stage (``pretrain_unfiltered``,
``pretrain_filtered``, ``pretrain``, and ``finetune`` when the ablation fine-tunes as long as
it), so nothing is trained twice; the stage
trains the rest in its work folder, one sub-folder per run, so an interrupted build resumes
with the run it stopped in. It writes ``models.json``: for every (arm, seed, phase) the model
folder, as a stage name or a folder inside this artifact. Introduced in chapter 4 ("Does the
data matter? The ablation at our scale").
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact
from phi1lib.training.loop import train
from phi1lib.training.packing import PackedSequences
from phi1lib.training.stages import HELDOUT_FILE, TRAIN_FILE, model_config, tokenizer_of

MODELS_FILE = "models.json"
PHASES = ("base", "finetuned")


@dataclasses.dataclass(frozen=True)
class Arm:
    """One pretraining dataset of the ablation: its label, packed corpus and seed-0 stage."""

    key: str
    label: str
    corpus: str
    first_stage: str


ARMS = (
    Arm("a", "(a) unfiltered code", "tokens_raw_code", "pretrain_unfiltered"),
    Arm("b", "(b) filtered code", "tokens_filtered_code", "pretrain_filtered"),
    Arm("c", "(c) CodeTextbook", "tokens_codetextbook", "pretrain"),
)
FIRST_FINETUNE = {"c": "finetune"}  # the pipeline fine-tunes only (c) itself


def _with_seed(settings, offset: int):
    return dataclasses.replace(settings, seed=settings.seed + offset)


def finetune_steps(profile: Profile) -> int:
    """Fine-tuning steps of every ablation model: ``ablation.finetune_steps``, or ``[finetune]``'s."""
    steps = profile.ablation.finetune_steps
    if steps < 0:
        raise ValueError(f"ablation.finetune_steps must be 0 or more, got {steps}")
    return steps or profile.finetune.steps


def reuses_finetune(profile: Profile) -> bool:
    """Whether arm (c)'s seed-0 fine-tune is the pipeline's own ``finetune`` stage (same length)."""
    return finetune_steps(profile) == profile.finetune.steps


def finetune_settings(profile: Profile, seed: int):
    """The ``[finetune]`` recipe of one ablation model: its seed, and the ablation's length.

    A shorter run keeps the recipe's warm-up when it fits (else a tenth of the run) and shapes
    its learning-rate schedule for its own length.
    """
    settings = _with_seed(profile.settings("finetune"), seed)
    steps = finetune_steps(profile)
    if steps == settings.steps:
        return settings
    warmup = settings.warmup_steps if settings.warmup_steps < steps else steps // 10
    return dataclasses.replace(settings, steps=steps, warmup_steps=warmup, schedule_steps=0)


def seeds(profile: Profile) -> list[int]:
    """The ablation's seed offsets: 0 (the pipeline's own runs), 1, ..., ``ablation.seeds - 1``."""
    count = profile.ablation.seeds
    if count < 1:
        raise ValueError(f"ablation.seeds must be at least 1, got {count}")
    return list(range(count))


def run_name(arm: str, seed: int, phase: str) -> str:
    """The name of one trained model: ``c-s1-finetuned``."""
    return f"{arm}-s{seed}-{phase}"


def _trained(
    ctx: StageContext, name: str, seed: int, phase: str, init, data: str, heldout: Path
) -> Path:
    """Train one run in its own work sub-folder (resumed if interrupted); its model's folder."""
    if phase == "base":
        settings = _with_seed(ctx.profile.settings("pretrain"), seed)
    else:
        settings = finetune_settings(ctx.profile, seed)
    settings = dataclasses.replace(settings, snapshot_every=0)  # only chapter 5's run is graded
    workdir = ctx.work / name
    train(
        init=init,
        tokenizer=tokenizer_of(ctx.inputs["tokenizer"]),
        train_data=PackedSequences(ctx.inputs[data].path / TRAIN_FILE, settings.seq_len),
        heldout_data=PackedSequences(heldout, settings.seq_len),
        settings=settings,
        workdir=workdir,
        description=f"ablation {name}",
    )
    return workdir / "final"


def _build(ctx: StageContext) -> dict[str, Any]:
    codetextbook_heldout = ctx.inputs["tokens_codetextbook"].path / HELDOUT_FILE
    exercises_heldout = ctx.inputs["tokens_exercises"].path / HELDOUT_FILE
    index: dict[str, dict[str, Any]] = {}
    trained: dict[str, Path] = {}
    for arm in ARMS:
        for seed in seeds(ctx.profile):
            base_name = run_name(arm.key, seed, "base")
            if seed == 0:
                base = ctx.inputs[arm.first_stage].path / "model"
                index[base_name] = {"stage": arm.first_stage}
            else:
                init = model_config(ctx.profile, tokenizer_of(ctx.inputs["tokenizer"]))
                base = _trained(
                    ctx, base_name, seed, "base", init, arm.corpus, codetextbook_heldout
                )
                trained[base_name] = base
            tuned_name = run_name(arm.key, seed, "finetuned")
            if seed == 0 and arm.key in FIRST_FINETUNE and reuses_finetune(ctx.profile):
                index[tuned_name] = {"stage": FIRST_FINETUNE[arm.key]}
            else:
                tuned = _trained(
                    ctx, tuned_name, seed, "finetuned", base, "tokens_exercises", exercises_heldout
                )
                trained[tuned_name] = tuned
    if not ctx.main_process:
        return {}
    for name, final in trained.items():
        shutil.copytree(final, ctx.out / name / "model")
        shutil.copy2(ctx.work / name / "metrics.csv", ctx.out / name / "metrics.csv")
        index[name] = {"folder": name}
    (ctx.out / MODELS_FILE).write_text(json.dumps(index, indent=1, sort_keys=True))
    return {"models": len(index), "trained_here": len(trained), "seeds": len(seeds(ctx.profile))}


def _config(profile: Profile) -> dict[str, Any]:
    return {"seeds": profile.ablation.seeds, "finetune_steps": finetune_steps(profile)}


ABLATION_MODELS = Stage(
    name="ablation_models",
    build=_build,
    config=_config,
    needs=(
        "tokenizer",
        "tokens_raw_code",
        "tokens_filtered_code",
        "tokens_codetextbook",
        "tokens_exercises",
        *(arm.first_stage for arm in ARMS),
        *FIRST_FINETUNE.values(),
    ),
    version=1,
    description="the ablation's arms (a), (b), (c) at every seed, pretrained and fine-tuned",
    collective=True,
)


def model_folders(artifact: Artifact, inputs: Mapping[str, Artifact]) -> dict[str, Path]:
    """Every ablation model's folder, by run name; ``inputs`` holds the seed-0 stages."""
    index = artifact.json(MODELS_FILE)
    folders = {}
    for name, where in index.items():
        if "stage" in where:
            folders[name] = inputs[where["stage"]].path / "model"
        else:
            folders[name] = artifact.path / where["folder"] / "model"
    return folders


def training_summary(artifact: Artifact, inputs: Mapping[str, Artifact], name: str) -> dict:
    """The training summary (tokens, epochs, final loss) of one ablation model."""
    where = artifact.json(MODELS_FILE)[name]
    if "stage" in where:
        return inputs[where["stage"]].json("training.json")
    return json.loads((artifact.path / where["folder"] / "model" / "summary.json").read_text())
