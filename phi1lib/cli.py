"""The ``phi1`` command line: a thin layer over the stages and foundations.

Each area of the library that offers commands has a ``register(subparsers)`` function; the
modules are listed in ``COMMAND_MODULES`` and imported when the parser is built.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence

from phi1lib import __version__
from phi1lib.profiles import available_profiles, load_profile

COMMAND_MODULES: list[str] = [
    "phi1lib.teacher.cli",
    "phi1lib.filtering.cli",
    "phi1lib.evaluation.cli",
    "phi1lib.sandbox.cli",
    "phi1lib.training.run",
    "phi1lib.analysis.cli",
]


def _profiles(args: argparse.Namespace) -> int:
    if args.name:
        print(json.dumps(load_profile(args.name).to_dict(), indent=2))
        return 0
    for name in available_profiles():
        print(f"{name:12s} {load_profile(name, use_env=False).description}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from phi1lib import pipeline

    profile = load_profile(args.profile)
    print(profile.summary())
    rows = pipeline.status(profile, deep=args.deep)
    if not rows:
        print("no stages are registered")
    for row in rows:
        built = f"built {row['built']} in {row['wall_time_s']}s" if row["built"] else ""
        print(f"  {row['stage']:16s} {row['state']:8s} {built}")
        for problem in row["problems"][:3]:
            print(f"      {problem}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from phi1lib import pipeline

    profile = load_profile(args.profile)
    artifact = pipeline.run(args.stage, profile, force=args.force)
    print(
        json.dumps(
            {"stage": artifact.stage, "path": str(artifact.path), "counts": dict(artifact.counts)}
        )
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from phi1lib import pipeline

    report = pipeline.verify(args.stage, load_profile(args.profile))
    print(json.dumps(report))
    return 0 if report["reproduced"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phi1", description="The phi-1 book's pipeline, from the shell."
    )
    parser.add_argument("--version", action="version", version=f"phi1lib {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    profiles = commands.add_parser("profiles", help="list the profiles, or print one in full")
    profiles.add_argument("name", nargs="?")
    profiles.set_defaults(handler=_profiles)

    status = commands.add_parser(
        "status", help="list the stages of a profile and whether each is done"
    )
    status.add_argument("--profile", default=None)
    status.add_argument(
        "--deep",
        action="store_true",
        help="hash every file instead of trusting the sizes and times the manifests recorded",
    )
    status.set_defaults(handler=_status)

    run = commands.add_parser("run", help="run one stage (and what it needs) through the run store")
    run.add_argument("stage")
    run.add_argument("--profile", default=None)
    run.add_argument("--force", action="store_true", help="rebuild even when up to date")
    run.set_defaults(handler=_run)

    verify = commands.add_parser(
        "verify", help="rebuild a stage from its stored inputs and compare its files byte for byte"
    )
    verify.add_argument("stage")
    verify.add_argument("--profile", default=None)
    verify.set_defaults(handler=_verify)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
