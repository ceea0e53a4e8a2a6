"""Run a small snippet of Python in-process, capture what it prints, and stop it if it runs away.

The procedural teacher never writes an output by hand: every code example in a textbook section
and every expected value in an exercise test comes from executing the code (the appendix on
teacher endpoints, "The offline teacher"). Snippets here are our own curated templates or their deliberately broken mutants,
so an in-process run is enough; the sandbox for untrusted model output lives elsewhere.

Two choices keep this safe to call from many server threads at once:

* ``print`` is rebound inside the snippet's namespace to write into a private buffer, instead of
  redirecting the process-wide ``sys.stdout``;
* the time limit is a per-thread trace function that checks a deadline on every executed line of
  the snippet (``sys.settrace`` is per-thread), so an infinite loop in a mutant raises
  :class:`SnippetTimeout` instead of hanging the server;
* snippets that seed the shared ``random`` module (the "random numbers with seeds" examples) run
  one at a time under a lock, and the module's state is restored afterwards, so that outputs stay
  deterministic and the host process's own random stream is not disturbed.
"""

from __future__ import annotations

import builtins
import functools
import io
import itertools
import random
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

SNIPPET_FILENAME = "<teacher-snippet>"
_module_numbers = itertools.count()
_RUN_LOCK = threading.Lock()


class SnippetTimeout(Exception):
    """A snippet ran longer than its time limit (usually a mutant stuck in a loop)."""


@dataclass
class SnippetRun:
    """What one execution produced: printed text, the namespace it left, and any error."""

    stdout: str
    namespace: dict[str, Any] = field(repr=False)
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _deadline_tracer(deadline: float):
    def trace_lines(frame, event, arg):
        if event == "line" and time.monotonic() > deadline:
            raise SnippetTimeout(f"snippet ran past its time limit at line {frame.f_lineno}")
        return trace_lines

    def trace_calls(frame, event, arg):
        # Only frames of the snippet itself are traced line by line; library code runs untraced.
        if frame.f_code.co_filename == SNIPPET_FILENAME:
            return trace_lines(frame, event, arg)
        return None

    return trace_calls


class _ScopeModule:
    """Stands in ``sys.modules`` for a snippet while it runs; ``dataclasses`` looks it up there."""

    def __init__(self, scope: dict[str, Any]):
        self.__dict__ = scope


def run_snippet(
    code: str, timeout_s: float = 2.0, namespace: dict[str, Any] | None = None
) -> SnippetRun:
    """Execute ``code`` and return its printed output; errors are caught and returned, not raised.

    ``namespace`` lets a caller run a second snippet (tests) against what a first one (a
    solution) defined. Introduced in chapter 2 (synthetic textbooks).
    """
    buffer = io.StringIO()
    scope = namespace if namespace is not None else {}
    scope.setdefault("__name__", f"_teacher_snippet_{next(_module_numbers)}")
    scope["print"] = functools.partial(builtins.print, file=buffer)
    previous = sys.gettrace()
    error: BaseException | None = None
    try:
        with _RUN_LOCK:
            # A deliberately broken mutant may draw a SyntaxWarning at compile time; it is data
            # (the run reports the error), not a message for the server's log. Under the lock,
            # because the warning filters are process-wide.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                compiled = compile(code, SNIPPET_FILENAME, "exec")
            random_state = random.getstate()
            sys.modules[scope["__name__"]] = _ScopeModule(scope)  # type: ignore[assignment]
            sys.settrace(_deadline_tracer(time.monotonic() + timeout_s))
            try:
                exec(compiled, scope)
            finally:
                sys.settrace(previous)
                sys.modules.pop(scope["__name__"], None)
                random.setstate(random_state)
    except Exception as caught:  # a snippet's failure (SnippetTimeout included) is data
        error = caught
    return SnippetRun(stdout=buffer.getvalue(), namespace=scope, error=error)
