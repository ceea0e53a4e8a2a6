"""``phi1 sandbox run FILE.py``: run one program in the sandbox from the shell.

Prints one JSON line (status, exit code, duration, stderr tail, failed assertion, and the rest
of the result), also when the sandbox refuses or cannot run the program, and exits with status 0 only when the program passed, so shell scripts and CI
can use it directly. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2


def _run(args: argparse.Namespace) -> int:
    from phi1lib.sandbox import SandboxLimits, run_program

    path = Path(args.file)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"phi1 sandbox run: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, UnicodeDecodeError) as error:
        print(f"phi1 sandbox run: {path}: cannot read it as UTF-8 text: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        limits = SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory)
    except ValueError as error:
        print(f"phi1 sandbox run: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_program(source, limits=limits)
    except Exception as error:  # the JSON line is the command's promise, whatever went wrong
        from phi1lib.sandbox.result import unrun_result

        result = unrun_result(f"the sandbox could not run {path}: {error!r}")
    print(result.to_json())
    return 0 if result.passed else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``phi1 sandbox ...`` to the command line."""
    sandbox = subparsers.add_parser("sandbox", help="run untrusted Python in the sandbox")
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    run = commands.add_parser(
        "run", help="run one program; print its result as JSON; exit 0 only if it passed"
    )
    run.add_argument("file", help="a Python file (solution and tests)")
    run.add_argument("--timeout", type=float, default=3.0, help="wall-clock limit in seconds")
    run.add_argument("--memory", type=int, default=512, help="address-space limit in MB")
    run.set_defaults(handler=_run)
