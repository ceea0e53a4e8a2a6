"""The code that runs in the forked program process, from the fork to ``os._exit``.

The zygote forks one process per run, into a new PID namespace where that is available: the
program is its process 1, and when the program exits the kernel kills whatever it left behind
in the namespace, daemons that left the process group included. (Process 1 of a namespace
ignores signals it sends itself with the default action; model-written tests do not do that,
and a crash by a hardware fault, or the limits' ``SIGKILL``, still ends it.)

Before the program's first line the process joins the empty network namespace, starts a new
session, applies the resource limits, drops to a fresh user id, scrubs its environment and
installs the guard; then it runs the source with ``exec`` as ``__main__``. Only when the source
runs to its end does it write the run's random completion token to the report pipe, so
``sys.exit(0)`` or ``os._exit(0)`` before the tests cannot pass for success. (A program could
still find the token in its own memory: the token stops accidents, the operating-system layer
stops damage.) Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass

from phi1lib.sandbox import isolation as iso
from phi1lib.sandbox import syscalls
from phi1lib.sandbox.guard import install_guard
from phi1lib.sandbox.limits import SandboxLimits

PROGRAM_NAME = "program.py"
REPORT_FD = 3
EXIT_SETUP_FAILED = 71
OUTCOMES = ("completed", "exit", "exception", "setup-error")
_MESSAGE_CHARS = 2000
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class RunPlan:
    """Everything the forked process needs, decided by the zygote before it forks."""

    source: str
    limits: SandboxLimits
    token: str
    isolation: iso.Isolation
    home: str | None
    readable_in_home: list[str]  # where the interpreter lives inside the home directory
    uid: int | None  # the fresh user id to drop to, or None to keep the zygote's
    workdir: str  # the scratch directory, holding the program as PROGRAM_NAME
    network_fd: int | None  # an empty network namespace to join, or None to keep the zygote's
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


def program_main(plan: RunPlan) -> None:
    """Set up the sandbox around this freshly forked process, then run the program."""
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        for source_fd, target_fd in (
            (null, 0),
            (plan.stdout_w, 1),
            (plan.stderr_w, 2),
            (plan.report_w, REPORT_FD),
        ):
            os.dup2(source_fd, target_fd)
        if plan.network_fd is not None:
            syscalls.setns(plan.network_fd, syscalls.CLONE_NEWNET)
        _keep_only({0, 1, 2, REPORT_FD})
        os.setsid()  # the run's process group is named by this process's pid
        workdir = plan.workdir
        path = os.path.join(workdir, PROGRAM_NAME)
        os.chdir(workdir)
        iso.apply_resource_limits(plan.limits, iso.other_tasks_charged(plan.isolation))
        if plan.uid is not None:
            iso.drop_privileges(plan.uid)
        # Die with the zygote (set after the uid change, which clears it).
        parent = os.getppid()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(EXIT_SETUP_FAILED)
        os.environ.clear()
        os.environ.update(PATH=_SAFE_PATH, HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
        module = _fresh_main_module(path)
    except BaseException as error:
        _report(plan.token, {"outcome": "setup-error", "message": repr(error)})
        os._exit(EXIT_SETUP_FAILED)
    try:
        code = compile(plan.source, path, "exec")
    except (SyntaxError, ValueError) as error:
        _report_exception(plan.token, error, path)
        os._exit(1)
    _run(plan, code, module, workdir, path)


def _fresh_main_module(path: str) -> types.ModuleType:
    """A clean ``__main__`` for the program, with line-buffered standard streams."""
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
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


def _run(plan: RunPlan, code: types.CodeType, module: types.ModuleType, workdir: str, path: str):
    # Keep our own references: the program may replace os._exit or os.write.
    token, exit_now, write = plan.token, os._exit, os.write
    install_guard(workdir, plan.home, plan.limits.network, plan.readable_in_home)
    try:
        exec(code, module.__dict__)
    except SystemExit as stop:
        _flush_streams()
        _report(token, {"outcome": "exit", "code": _exit_code(stop.code)}, write)
        exit_now(1)
    except BaseException as error:
        _flush_streams()
        _report_exception(token, error, path, write)
        exit_now(1)
    _flush_streams()
    _report(token, {"outcome": "completed"}, write)
    exit_now(0)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _report(token: str, payload: dict[str, object], write: Callable = os.write) -> None:
    with contextlib.suppress(BaseException):
        write(REPORT_FD, f"{token} {json.dumps(payload)}\n".encode())


def _report_exception(
    token: str, error: BaseException, path: str, write: Callable = os.write
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
    _report(token, payload, write)
