"""The training entry point, the same on a laptop, one GPU, or many GPUs and nodes.

    python -m phi1lib.training.run pretrain --profile tiny            # one process (CPU or GPU)
    phi1 train pretrain --profile tiny                                # the same, via the CLI
    accelerate launch --config_file configs/accelerate_ddp.yaml \\
        -m phi1lib.training.run pretrain --profile phi-1-small         # every GPU of a machine
    accelerate launch --config_file configs/accelerate_deepspeed_zero2.yaml --num_machines 2 ... \\
        -m phi1lib.training.run pretrain --profile phi-1               # many machines
    torchrun --nproc_per_node 8 -m phi1lib.training.run pretrain --profile phi-1

Every process simply builds the stage through the run store (``pipeline.run``), upstream stages
first. Launched as many, the processes wait for the upstream data stages (built once, under the
run store's lock); every training stage on the way (``finetune`` needs ``pretrain``) is trained
by all of them together in the stage's work folder and stored by the first process. On several
machines the run store ($PHI1_RUNS) must be a shared filesystem: every process writes its part of
each checkpoint there. Introduced in chapter 4 ("Checkpoints, exact resume, and many GPUs").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from phi1lib import launch, pipeline
from phi1lib.profiles import load_profile, parse_overrides


def run_stage(stage_name: str, profile_name: str | None, overrides: dict, force: bool) -> dict:
    """Build one stage, in every process of a launch, and describe its artifact (chapter 4)."""
    profile = load_profile(profile_name, overrides)
    artifact = pipeline.run(stage_name, profile, force=force)
    return {"stage": artifact.stage, "path": str(artifact.path), "counts": dict(artifact.counts)}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=list(pipeline.STAGES))
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
    if launch.is_main_process():
        print(json.dumps(result))
    return 0


def register(subparsers) -> None:
    """``phi1 train <stage>``: the CLI face of this module."""
    parser = subparsers.add_parser(
        "train",
        help="build a stage; under torchrun or accelerate launch, every process trains it",
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
