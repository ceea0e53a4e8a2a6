"""The training entry point, the same on a laptop, one GPU, or many GPUs and nodes.

    python -m phi1lib.training.run pretrain --profile tiny            # one process (CPU or GPU)
    phi1 train pretrain --profile tiny                                # the same, via the CLI
    accelerate launch --config_file configs/accelerate_ddp.yaml \\
        -m phi1lib.training.run pretrain --profile phi-1-small         # every GPU of a machine
    accelerate launch --config_file configs/accelerate_deepspeed_zero2.yaml --num_machines 2 ... \\
        -m phi1lib.training.run pretrain --profile phi-1               # many machines
    torchrun --nproc_per_node 8 -m phi1lib.training.run pretrain --profile phi-1

Launched as one process, a stage is simply built through the run store (upstream stages first).
Launched as many, every process first waits for the upstream data stages (built once, under the
run store's lock), then all of them train together in the stage's work folder, and the first
process finally stores the finished model as the stage's artifact. Training stages that another
training stage needs (``finetune`` needs ``pretrain``) are launched one after the other. On
several machines the run store ($PHI1_RUNS) must be a shared filesystem: every process writes its
part of each checkpoint there. Introduced in chapter 4 ("Checkpoints, exact resume, and many
GPUs").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from phi1lib.profiles import load_profile, parse_overrides

# Named here rather than imported, so that `phi1 --help` does not import torch.
TRAINING_STAGES = ("pretrain", "pretrain_filtered", "pretrain_unfiltered", "finetune")
STAGE_CHOICES = (
    "tokenizer",
    "tokens_codetextbook",
    "tokens_filtered_code",
    "tokens_raw_code",
    "tokens_exercises",
    *TRAINING_STAGES,
    "training_ablation",
)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def run_stage(stage_name: str, profile_name: str | None, overrides: dict, force: bool) -> dict:
    """Build one stage; under a multi-process launch, train it with every process (chapter 4)."""
    from phi1lib import pipeline
    from phi1lib.runstore import RunStore
    from phi1lib.training.stages import run_training

    profile = load_profile(profile_name, overrides)
    if _world_size() == 1 or stage_name not in TRAINING_STAGES:
        artifact = pipeline.run(stage_name, profile, force=force)
        return {
            "stage": artifact.stage,
            "path": str(artifact.path),
            "counts": dict(artifact.counts),
        }

    store = RunStore(profile.name)
    stage = pipeline.get_stage(stage_name)
    missing = [need for need in stage.needs if need in TRAINING_STAGES and store.load(need) is None]
    if missing:
        raise SystemExit(
            f"{stage_name} needs {', '.join(missing)}: train it first with the same launcher"
        )
    inputs = {need: pipeline.run(need, profile, store=store) for need in stage.needs}
    expected = pipeline.stage_fingerprint(stage, profile, inputs)
    if force or store.load(stage_name, expected) is None:
        run_training(stage, profile, inputs, store.root)
    if _rank() != 0:
        return {}
    artifact = pipeline.run(stage_name, profile, store=store)
    return {"stage": artifact.stage, "path": str(artifact.path), "counts": dict(artifact.counts)}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGE_CHOICES)
    parser.add_argument("--profile", default=None, help="profile name (default: $PHI1_PROFILE)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one profile field (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="train again even when up to date")


def _handle(args: argparse.Namespace) -> int:
    overrides = parse_overrides(";".join(args.set))
    result = run_stage(args.stage, args.profile, overrides, args.force)
    if result:
        print(json.dumps(result))
    return 0


def register(subparsers) -> None:
    """``phi1 train <stage>``: the CLI face of this module."""
    parser = subparsers.add_parser(
        "train", help="build a training stage (tokenizer, pretrain, finetune, ablation runs)"
    )
    _add_arguments(parser)
    parser.set_defaults(handler=_handle)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phi1lib.training.run", description=__doc__.splitlines()[0]
    )
    _add_arguments(parser)
    return _handle(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
