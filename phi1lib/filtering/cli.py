"""``phi1 filter``: score a reader's own Python files with the trained filter.

    phi1 filter PATH... [--profile P] [--out FILE.jsonl]

Folders are searched for ``*.py`` files at any depth (links to folders are not followed); only
regular files are read, so a FIFO or a link to ``/dev/zero`` among them is reported as binary
instead of being read. Scoring a whole corpus is the ``filtered_code`` stage, which runs
on the profile's datatrove executor (chapter 1, "At The Stack's scale"). Every file gets one JSON
line: ``path`` and ``score`` and ``kept``, or ``path`` and
``skip_reason`` for files that cannot be scored (missing, unreadable, binary, too large, empty,
not Python). A last line ``{"summary": ...}`` counts files by outcome. The profile's trained
classifier is used, and trained first through the run store when it has none. With ``--out``, an
interrupted run resumes: the paths already written are not scored again. The exit status is 0
whenever the run completed, whatever the files held. Introduced in chapter 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from phi1lib.profiles import load_profile


def _previous_rows(out: Path) -> list[dict[str, Any]]:
    """Result lines an interrupted run already wrote (its summary line, if any, dropped)."""
    if not out.exists():
        return []
    rows = []
    for number, line in enumerate(out.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the interruption: score that file again
            print(
                f"{out}:{number}: unreadable line dropped, its file is scored again",
                file=sys.stderr,
            )
            continue
        if "summary" not in row:
            rows.append(row)
    return rows


def _summary(rows: Iterable[dict[str, Any]], threshold: float, profile: str) -> dict[str, Any]:
    outcomes: Counter = Counter()
    for row in rows:
        if "skip_reason" in row:
            outcomes[row["skip_reason"]] += 1
        else:
            outcomes["kept" if row["kept"] else "filtered_out"] += 1
    scored = outcomes["kept"] + outcomes["filtered_out"]
    skipped = {k: v for k, v in sorted(outcomes.items()) if k not in {"kept", "filtered_out"}}
    return {
        "summary": True,
        "profile": profile,
        "threshold": threshold,
        "files": scored + sum(skipped.values()),
        "scored": scored,
        "kept": outcomes["kept"],
        "filtered_out": outcomes["filtered_out"],
        "skipped": skipped,
    }


def _records(args: argparse.Namespace, profile, done: set[str]) -> Iterator[dict[str, Any]]:
    from phi1lib.filtering.corpus import python_files_under
    from phi1lib.filtering.scoring import file_records

    files = [f for f in python_files_under(args.paths) if str(f) not in done]
    return file_records(files, profile.corpus.max_file_bytes)


def run_filter(args: argparse.Namespace, stdout: IO[str] | None = None) -> int:
    """The ``phi1 filter`` command (chapter 1)."""
    from phi1lib.filtering.scoring import QualityFilter, score_records

    stdout = stdout or sys.stdout
    if not args.paths:
        print("phi1 filter: give one or more files or folders", file=sys.stderr)
        return 2
    profile = load_profile(args.profile)
    quality_filter = QualityFilter.from_profile(profile)
    out_path = Path(args.out) if args.out else None
    previous = _previous_rows(out_path) if out_path else []
    done = {row["path"] for row in previous}
    handle = out_path.open("w") if out_path else stdout
    try:
        for row in previous:  # rewritten without the old summary line
            handle.write(json.dumps(row) + "\n")
        rows = list(previous)
        records = _records(args, profile, done)
        for row in score_records(records, quality_filter):
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            rows.append(row)
        summary = _summary(rows, quality_filter.threshold, profile.name)
        handle.write(json.dumps(summary) + "\n")
    finally:
        if out_path:
            handle.close()
    if out_path:
        print(json.dumps(summary), file=stdout)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``phi1 filter`` to the command line."""
    parser = commands.add_parser(
        "filter",
        help="score Python files for educational value with the trained filter (chapter 1)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("paths", nargs="*", help="files or folders (folders: every *.py inside)")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--out", default=None, help="JSON Lines file (default: stdout); resumes")
    parser.set_defaults(handler=run_filter)
