"""``phi1 eval``: score a model (or the reference solutions) on one benchmark from the shell.

    phi1 eval humaneval --canonical                      # all 164 reference solutions pass
    phi1 eval mbpp --model runs/tiny/finetune/model --limit 50
    phi1 eval humaneval --model microsoft/phi-1          # the paper's 50.6%, on a GPU, online
    phi1 eval new --model DIR --n 20 --k 1,10 --temperature 0.8 --out new.json
    phi1 eval humaneval+ --canonical                     # EvalPlus's tests (downloads them)
    phi1 eval mbpp+ --model DIR --data MbppPlus.jsonl    # or a local copy of its release file

Prints the summary (pass@k, how the samples ended) as JSON; ``--out`` also writes the full
report with every completion. Unset options come from the profile's ``[eval]`` section.
Introduced in chapter 6.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from phi1lib.evaluation.benchmarks import ALL_BENCHMARKS, load_benchmark


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k expects numbers like 1,10; got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"--k values must be positive; got {text!r}")
    return ks


def _eval(args: argparse.Namespace) -> int:
    from phi1lib.evaluation.generation import SamplingSettings
    from phi1lib.evaluation.harness import add_judge_grades, evaluate_canonical, evaluate_model
    from phi1lib.evaluation.judge import judge_available
    from phi1lib.evaluation.plus import PLUS_BENCHMARKS, PlusUnavailable
    from phi1lib.evaluation.stage import JUDGE_CACHE
    from phi1lib.profiles import load_profile
    from phi1lib.runstore import RunStore
    from phi1lib.sandbox import SandboxLimits

    profile = load_profile(args.profile)
    config = profile.eval
    limits = SandboxLimits(timeout_s=config.timeout_s)
    progress = sys.stderr.isatty()
    if args.data and args.benchmark not in PLUS_BENCHMARKS:
        print(f"--data is for {' and '.join(PLUS_BENCHMARKS)} only", file=sys.stderr)
        return 2
    try:
        problems = load_benchmark(
            args.benchmark, args.limit, Path(args.data) if args.data else None
        )
    except PlusUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    if args.canonical:
        report = evaluate_canonical(
            args.benchmark,
            limit=args.limit,
            problems=problems,
            limits=limits,
            workers=config.workers,
            progress=progress,
        )
    else:
        n = args.n or config.n_samples
        ks = args.k or [k for k in (1, 10, 100) if k <= n]
        if ks[-1] > n:
            print(f"pass@{ks[-1]} needs --n {ks[-1]} or more samples per problem", file=sys.stderr)
            return 2
        temperature = args.temperature
        if temperature is None:
            temperature = config.sample_temperature if n > 1 else 0.0
        settings = SamplingSettings(
            n_samples=n,
            temperature=temperature,
            top_p=config.top_p,
            max_new_tokens=args.max_new_tokens or config.max_new_tokens,
            batch_size=config.batch_size,
            seed=config.seed,
            cpu_threads=config.cpu_threads,
        )
        report = evaluate_model(
            args.model,
            args.benchmark,
            limit=args.limit,
            problems=problems,
            settings=settings,
            ks=ks,
            limits=limits,
            workers=config.workers,
            progress=progress,
        )
        if args.judge:
            if not judge_available(profile):
                print(
                    "--judge needs an LLM teacher endpoint; the profile's is the offline one "
                    '(set e.g. PHI1_SET="teacher.endpoint=https://api.openai.com/v1")',
                    file=sys.stderr,
                )
                return 2
            add_judge_grades(
                report,
                problems,
                profile,
                cache_dir=RunStore(profile.name).cache_dir(JUDGE_CACHE),
            )
    if args.out:
        report.write(Path(args.out))
    print(json.dumps({"benchmark": report.benchmark, "model": report.model, **report.summary}))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``phi1 eval`` to the command line (listed in ``phi1lib.cli.COMMAND_MODULES``)."""
    parser = commands.add_parser(
        "eval", help="pass@k of a model, or of the reference solutions, on one benchmark"
    )
    parser.add_argument("benchmark", choices=ALL_BENCHMARKS)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--canonical", action="store_true", help="grade the benchmark's reference solutions"
    )
    source.add_argument("--model", help="a save_pretrained folder or a hub id")
    parser.add_argument("--n", type=int, default=None, help="samples per problem")
    parser.add_argument("--k", type=_ks, default=None, help="pass@k to report, e.g. 1,10")
    parser.add_argument("--limit", type=int, default=None, help="only the first L problems")
    parser.add_argument(
        "--data", help="humaneval+/mbpp+: a local EvalPlus release file instead of the download"
    )
    parser.add_argument("--temperature", type=float, default=None, help="0 = greedy")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--judge", action="store_true", help="also grade with the LLM judge")
    parser.add_argument("--out", help="write the full report (every completion) as JSON")
    parser.add_argument("--profile", default=None)
    parser.set_defaults(handler=_eval)
