"""Execute generated code in the sandbox and say, for each program, whether and how it failed.

The paper's exercises were never executed: GPT-3.5's output "had a high error rate" and phi-1
learned from it anyway (paper §6). This book goes one step further and runs every
exercise (its solution followed by its tests) and every textbook code block in the project's
sandbox, keeping only what runs. A failure is sorted into one *kind*:

* ``assertion``: a test's ``assert`` failed, the solution computes a wrong answer;
* ``exception``: the program raised something else (``TypeError``, ``IndexError``...);
* ``syntax_error``: the code does not even compile;
* ``exit``: the program called ``exit()`` before its end;
* ``timeout``: it ran past the time or CPU limit (usually an infinite loop);
* ``crashed``: it was killed by a signal (memory limit, segfault...).

Verdicts are appended to a crash-safe cache keyed by the program and its limits, so an
interrupted verification of a large dataset resumes where it stopped. Introduced in chapter 3
("Executing every exercise").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from phi1lib.sandbox import SandboxLimits, SandboxResult, run_programs
from phi1lib.sandbox.split import TestSplit
from phi1lib.teacher.cache import ResponseCache

FAILURE_KINDS = ("assertion", "exception", "syntax_error", "exit", "timeout", "crashed")
_ERROR_TYPE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::|$)")
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Verdict:
    """The outcome of one program: ``passed`` or one of :data:`FAILURE_KINDS` (chapter 3)."""

    kind: str
    error_type: str | None = None
    failed_assertion: str | None = None
    message: str = ""
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.kind == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict_of(result: SandboxResult) -> Verdict:
    """Sort a sandbox result into a :class:`Verdict`."""
    message = result.message[:_MESSAGE_CHARS]
    if result.passed:
        return Verdict("passed", duration_s=result.duration_s)
    if result.status in ("timeout", "crashed"):
        return Verdict(result.status, message=message, duration_s=result.duration_s)
    if "called exit" in result.message or "stopped before its end" in result.message:
        return Verdict("exit", message=message, duration_s=result.duration_s)
    match = _ERROR_TYPE.match(result.message)
    error_type = match.group(1) if match else None
    if error_type == "AssertionError":
        kind = "assertion"
    elif error_type in ("SyntaxError", "IndentationError", "TabError"):
        kind = "syntax_error"
    else:
        kind = "exception"
    return Verdict(
        kind,
        error_type=error_type,
        failed_assertion=result.failed_assertion,
        message=message,
        duration_s=result.duration_s,
    )


def program_key(source: str, limits: SandboxLimits, tests: TestSplit | None = None) -> str:
    """The cache key of a program run under some limits (and split test, whose checks count)."""
    record: dict[str, Any] = {"source": source, "limits": limits.to_dict()}
    if tests is not None:
        record["checks"] = [repr(check) for check in tests.checks]
        record["bindings"] = tests.bindings
    payload = json.dumps(record, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def verify_programs(
    sources: Sequence[str],
    *,
    limits: SandboxLimits,
    workers: int = 2,
    cache_dir: Path | str | None = None,
    chunk_size: int = 512,
    progress: bool = True,
    desc: str = "verify",
    tests: Sequence[TestSplit | None] | None = None,
) -> list[Verdict]:
    """Run every program in the sandbox (at most ``workers`` at a time); verdicts in input order.

    With ``cache_dir``, verdicts already recorded there are reused and new ones are appended
    after each chunk of ``chunk_size`` programs, so a killed run loses at most one chunk.
    Identical programs run once. ``tests[i]`` is program ``i``'s split test (judged outside the
    sandbox, ``phi1lib.sandbox.split``) or None. Introduced in chapter 3.
    """
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    splits = list(tests) if tests is not None else [None] * len(sources)
    keys = [program_key(s, limits, t) for s, t in zip(sources, splits, strict=True)]
    split_of = dict(zip(keys, splits, strict=True))
    known: dict[str, Verdict] = {}
    if cache is not None:
        for key in set(keys):
            record = cache.get(key)
            if record is not None:
                known[key] = Verdict(**record["verdict"])
    todo: dict[str, str] = {}
    for key, source in zip(keys, sources, strict=True):
        if key not in known:
            todo.setdefault(key, source)
    pending = list(todo.items())
    multiplicity = Counter(keys)
    with tqdm(total=len(sources), desc=desc, unit="program", disable=not progress) as bar:
        bar.update(len(sources) - sum(multiplicity[key] for key in todo))
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            results = run_programs(
                [source for _, source in chunk],
                limits=limits,
                workers=workers,
                tests=[split_of[key] for key, _ in chunk],
            )
            verdicts = {
                key: verdict_of(result) for (key, _), result in zip(chunk, results, strict=True)
            }
            known.update(verdicts)
            if cache is not None:
                cache.append_many(
                    {"key": key, "verdict": verdict.to_dict()} for key, verdict in verdicts.items()
                )
            bar.update(sum(multiplicity[key] for key in verdicts))
    return [known[key] for key in keys]
