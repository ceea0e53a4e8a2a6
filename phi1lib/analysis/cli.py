"""``phi1 probes``: run chapter 7's probe suite on any model from the shell.

    phi1 probes runs/tiny/finetune/model                  # a model the pipeline trained
    phi1 probes microsoft/phi-1 --profile gpu             # the released model, on a GPU, online
    phi1 probes DIR --categories gui,chat --out probes.jsonl

Prints the pass rate per category with its 95% Wilson interval (and the judge's mean grade when
the profile's teacher is a real LLM) as JSON; ``--out`` also writes every answer with its
verdict. Settings come from the profile's ``[probes]`` section. Introduced in chapter 7.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from phi1lib.analysis.probes.suite import CATEGORIES


def _categories(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(CATEGORIES))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"--categories takes a comma-separated subset of {', '.join(CATEGORIES)}; got {text!r}"
        )
    return chosen


def _probes(args: argparse.Namespace) -> int:
    from phi1lib.analysis.probes.report import rates_by
    from phi1lib.analysis.probes.runner import run_probe_suite
    from phi1lib.analysis.probes.suite import load_suite
    from phi1lib.analysis.stages import JUDGE_CACHE, judged
    from phi1lib.profiles import load_profile
    from phi1lib.runstore import RunStore

    profile = load_profile(args.profile)
    probes = [p for p in load_suite() if args.categories is None or p.category in args.categories]
    outcomes, costs = run_probe_suite(
        args.model,
        probes,
        args.label or str(args.model),
        profile.probes,
        judge_profile=profile if judged(profile) else None,
        judge_cache=RunStore(profile.name).cache_dir(JUDGE_CACHE),
        progress=sys.stderr.isatty(),
    )
    if args.out is not None:
        with args.out.open("w") as handle:
            for outcome in outcomes:
                handle.write(json.dumps(outcome.to_dict()) + "\n")
    rows = rates_by(outcomes, "category") + rates_by(outcomes, "all")
    print(json.dumps({"by_category": rows, "generation": costs["generation"]}, indent=2))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``phi1 probes`` to the CLI (chapter 7)."""
    parser = commands.add_parser(
        "probes", help="run chapter 7's probe suite on a model folder or hub id"
    )
    parser.add_argument("model", help="a save_pretrained folder or a hub id (online profiles)")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--label", default=None, help="the model's name in the output")
    parser.add_argument("--categories", type=_categories, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write every answer (JSON lines)")
    parser.set_defaults(handler=_probes)
