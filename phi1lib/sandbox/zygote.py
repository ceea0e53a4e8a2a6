"""The zygote: a pre-warmed interpreter that forks one sandboxed run at a time and watches it.

Starting ``python`` for every program costs tens of milliseconds before the first line runs;
forking an interpreter that has already imported the modules tests usually need costs a few.
The zygote is that interpreter. The pool (``pool.py``) starts it with a scrubbed environment;
it probes once which isolation layers the kernel allows, then serves requests read from its
stdin (length-prefixed JSON frames, ``protocol.py``). For each it forks the program process
(``child.py``), keeps bounded tails of its stdout and stderr, enforces the wall-clock timeout,
kills and reaps every process the run left behind, and answers with the raw facts of the run.
Turning those facts into a verdict is ``result.py``'s job, in the caller's process.

The zygote is a child subreaper, so processes that escape their process group (a daemonising
double fork) are re-parented to it, and the cleanup finds them even where no PID namespace is
available. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import secrets
import selectors
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from phi1lib.sandbox import child, syscalls
from phi1lib.sandbox import isolation as iso
from phi1lib.sandbox.limits import SandboxLimits
from phi1lib.sandbox.protocol import read_frame, write_frame
from phi1lib.sandbox.tail import TailBuffer

# Imported once here so that sandboxed programs find them loaded (the point of a zygote).
PRELOADED_MODULES = (
    "abc array ast bisect calendar cmath collections copy dataclasses datetime decimal enum "
    "fractions functools hashlib heapq inspect itertools json math numbers operator random re "
    "statistics string textwrap typing unittest"
)
_REPORT_BYTES = 64 * 1024


def _children() -> list[int]:
    with open("/proc/thread-self/children") as handle:
        return [int(word) for word in handle.read().split()]


def end_run(pid: int) -> tuple[int, Any]:
    """Reap the ended program ``pid`` and kill and reap everything it left; return its wait
    status and resource usage.

    The process group is killed while the program is still an unreaped zombie, so its pid
    (which names the group) cannot have been reused. Descendants whose parents die are
    re-parented to the zygote (it is a subreaper), so repeating "kill all children, wait for
    one" then ends with no process left, those that left the group included.
    """
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    while True:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return status, usage


class Zygote:
    """Serves runs one at a time; see the module docstring."""

    def __init__(self, isolation: iso.Isolation, home: str | None) -> None:
        self.isolation = isolation
        self.home = home
        self._readable_in_home = iso.interpreter_paths_in(home) if home else []
        self._own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self._empty_network = None
        if isolation.network_namespace:
            self._empty_network = iso.make_empty_network_namespace()

    def _scratch(self, limits: SandboxLimits, source: str, uid: int | None) -> str:
        """A fresh scratch directory holding the program, owned by the program's user."""
        # The program file is for tracebacks only (``exec`` runs the source string itself), so
        # a character UTF-8 cannot hold (a lone surrogate) is written escaped, not refused.
        program = source.encode("utf-8", "backslashreplace")
        if self.isolation.mount_namespace:
            workdir = iso.fresh_scratch(len(program) + 2 * limits.file_size_mb * 2**20)
        else:
            workdir = tempfile.mkdtemp(prefix="phi1-sandbox-")
        path = os.path.join(workdir, child.PROGRAM_NAME)
        with open(path, "wb") as handle:
            handle.write(program)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(path, uid, uid)
        return workdir

    def _clean_up_scratch(self, workdir: str) -> None:
        if self.isolation.mount_namespace:
            iso.wipe_private_dirs()
        else:
            iso.remove_tree(workdir)

    def run(self, source: str, limits: SandboxLimits) -> dict[str, Any]:
        uid = iso.fresh_uid() if self.isolation.separate_uid else None
        workdir = self._scratch(limits, source, uid)
        token = secrets.token_hex(16)
        pipes = {name: os.pipe() for name in ("stdout", "stderr", "report")}
        plan = child.RunPlan(
            source=source,
            limits=limits,
            token=token,
            isolation=self.isolation,
            home=self.home,
            readable_in_home=self._readable_in_home,
            uid=uid,
            workdir=workdir,
            network_fd=None if limits.network else self._empty_network,
            stdout_w=pipes["stdout"][1],
            stderr_w=pipes["stderr"][1],
            report_w=pipes["report"][1],
        )
        tails = {
            pipes["stdout"][0]: TailBuffer(limits.tail_bytes),
            pipes["stderr"][0]: TailBuffer(limits.tail_bytes),
            pipes["report"][0]: TailBuffer(_REPORT_BYTES),
        }
        try:
            started = time.monotonic()
            try:
                if self.isolation.pid_namespace:
                    pid = iso.fork_into_new_pid_namespace(self._own_pid_namespace)
                else:
                    pid = os.fork()
                if pid == 0:
                    try:
                        child.program_main(plan)
                    finally:
                        os._exit(child.EXIT_SETUP_FAILED)
            finally:
                for _, write_end in pipes.values():
                    os.close(write_end)
            timed_out = self._watch(pid, tails, started + limits.timeout_s)
            duration = time.monotonic() - started
            status, usage = end_run(pid)
            for fd, tail in tails.items():
                _drain(fd, tail)
        finally:
            for fd in tails:
                os.close(fd)
            self._clean_up_scratch(workdir)
        stdout, stderr, report = tails.values()
        return {
            "timed_out": timed_out,
            "duration_s": round(duration, 4),
            "program_status": None if timed_out else status,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
            "report": _completion_report(report.text(), token),
            "stdout_tail": stdout.text(),
            "stderr_tail": stderr.text(),
            "stdout_bytes": stdout.total,
            "stderr_bytes": stderr.total,
            "isolation": list(self.isolation.layers(limits.network)),
        }

    @staticmethod
    def _watch(pid: int, tails: dict[int, TailBuffer], deadline: float) -> bool:
        """Pump output until the program exits or time runs out; True if it ran out."""
        pidfd = os.pidfd_open(pid)
        selector = selectors.DefaultSelector()
        selector.register(pidfd, selectors.EVENT_READ)
        for fd in tails:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    os.kill(pid, signal.SIGKILL)
                    return True
                for key, _ in selector.select(remaining):
                    if key.fd == pidfd:
                        return False
                    data = os.read(key.fd, 65536)
                    if data:
                        tails[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
        finally:
            selector.close()
            os.close(pidfd)


def _drain(fd: int, tail: TailBuffer) -> None:
    """Read what is left in a pipe: every writer is dead now, so it ends in EOF."""
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError):
        while data := os.read(fd, 65536):
            tail.append(data)


def _completion_report(text: str, token: str) -> dict[str, Any] | None:
    """The last report line carrying this run's token, or None if the program wrote none.

    A line of the wrong shape (not an object with a known ``outcome``) becomes a ``malformed``
    report, which the verdict treats as a crash: the caller never sees a shape it cannot read.
    """
    for line in reversed(text.splitlines()):
        if line.startswith(token + " "):
            try:
                report = json.loads(line[len(token) + 1 :])
            except (json.JSONDecodeError, RecursionError):
                return {"outcome": "malformed", "message": "a report line that is not JSON"}
            if isinstance(report, dict) and report.get("outcome") in child.OUTCOMES:
                return report
            text = line[len(token) + 1 :][:80]
            return {"outcome": "malformed", "message": f"a report of the wrong shape: {text}"}
    return None


def _preload() -> None:
    for name in PRELOADED_MODULES.split():
        __import__(name)
    gc.freeze()  # forked children then leave the preloaded objects' pages shared


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The sandbox's zygote (started by the pool).")
    parser.add_argument("--home", default=None, help="the caller's home directory, to hide")
    parser.add_argument(
        "--no-namespaces", action="store_true", help="use only the layers that need no namespace"
    )
    args = parser.parse_args(argv)
    if sys.path and sys.path[0] == os.getcwd():
        del sys.path[0]  # ``-m`` put the zygote's working directory ("/") there
    requests = os.fdopen(os.dup(0), "rb")
    responses = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

    isolation = iso.probe(not args.no_namespaces, args.home)
    if isolation.mount_namespace:
        iso.build_private_filesystem(args.home, own_proc=isolation.pid_namespace)
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    _preload()
    zygote = Zygote(isolation, args.home)
    write_frame(responses, {"ready": True, "isolation": isolation.to_dict()})
    while True:
        request = read_frame(requests)
        if request is None:
            return 0
        try:
            limits = SandboxLimits.from_dict(request["limits"])
            response = {"ok": True, "run": zygote.run(request["source"], limits)}
        except Exception as error:  # report, keep serving: one bad request must not end the pool
            response = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        write_frame(responses, response)


if __name__ == "__main__":
    sys.exit(main())
