"""The zygote: a pre-warmed interpreter that forks one sandboxed run at a time and watches it.

Starting ``python`` for every program costs tens of milliseconds before the first line runs;
forking an interpreter that has already imported the modules tests usually need costs a few.
The pool (``pool.py``) starts the zygote with a scrubbed environment; it probes once which
isolation layers the kernel allows, builds the private root, imports the usual modules and
then splits in two processes:

- the *relay* serves the pool's requests (length-prefixed JSON frames, ``protocol.py``): it
  hands each program's source to the run through a pipe, keeps bounded tails of its stdout,
  stderr and report, and answers with the raw facts of the run;
- the *forker*, forked from the relay before any request came, forks each run (``child.py``),
  enforces the wall-clock timeout, and kills and reaps every process the run left behind. It
  never reads a program, its output or its report: each run is a copy of a process that never
  held another run's code or data, so nothing of one run can be found in the next one's memory.

Turning the facts into a verdict is ``result.py``'s job, in the caller's process. The forker is
a child subreaper, so processes that escape their process group (a daemonising double fork) are
re-parented to it, and the clean-up finds them even where no PID namespace is available. If the
forker dies, the relay exits and the pool starts a new zygote. Introduced in chapter 2
("Executing the textbooks").
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import secrets
import select
import selectors
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from phi1lib.sandbox import cgroup, child, rootfs, syscalls
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
_REPORT_BYTES = 16 * 2**20  # a split test's values come back on the report pipe


def _children() -> list[int]:
    with open("/proc/thread-self/children") as handle:
        return [int(word) for word in handle.read().split()]


def _reap_everything() -> None:
    """Kill every child and orphan this subreaper holds, and wait for them all."""
    while True:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


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
    _reap_everything()
    return status, usage


class Forker:
    """Forks and watches runs, one at a time, on the relay's command; see the module docstring."""

    def __init__(
        self, isolation: iso.Isolation, home: str | None, memory: cgroup.MemoryCgroup | None
    ) -> None:
        self.isolation = isolation
        self.home = home
        self.memory = memory
        self._readable_in_home = iso.interpreter_paths_in(home) if home else []
        self._own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self._empty_network = None
        if isolation.network_namespace:
            self._empty_network = iso.make_empty_network_namespace()

    def serve(self, channel: socket.socket) -> None:
        """Run what the relay sends until it hangs up."""
        while True:
            message, fds, _, _ = socket.recv_fds(channel, 65536, 4)
            if not message:
                return
            try:
                request = json.loads(message)
                limits = SandboxLimits.from_dict(request["limits"])
                facts = self.run(limits, request["token"], *fds)
            except Exception as error:  # report, keep serving: one bad run must not end the pool
                facts = {"error": f"{type(error).__name__}: {error}"}
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            channel.send(json.dumps(facts).encode())

    def run(
        self,
        limits: SandboxLimits,
        token: str,
        source_r: int,
        stdout_w: int,
        stderr_w: int,
        report_w: int,
    ) -> dict[str, Any]:
        """Fork one run on the relay's pipes, wait for it (or its timeout), kill and reap
        everything it left; the raw facts of its end, for the relay to complete."""
        uid = iso.fresh_uid() if self.isolation.separate_uid else None
        workdir = None
        if not self.isolation.mount_namespace:
            workdir = tempfile.mkdtemp(prefix="phi1-sandbox-")
            if uid is not None:
                os.chown(workdir, uid, uid)
        oom_kills = 0
        if self.memory is not None:
            self.memory.set_limit(limits.memory_mb * 2**20)
            oom_kills = self.memory.oom_kills()
        plan = child.RunPlan(
            source_fd=source_r,
            limits=limits,
            token=token,
            report_fd=report_w,
            isolation=self.isolation,
            home=self.home,
            readable_in_home=self._readable_in_home,
            uid=uid,
            workdir=workdir,
            network_fd=None if limits.network else self._empty_network,
            memory=self.memory,
            stdout_w=stdout_w,
            stderr_w=stderr_w,
            report_w=report_w,
        )
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
                for fd in (source_r, stdout_w, stderr_w, report_w):
                    os.close(fd)  # the run holds its own copies: EOF comes when it ends
            timed_out = _wait(pid, started + limits.timeout_s)
            duration = time.monotonic() - started
            status, usage = end_run(pid)
        finally:
            if workdir is not None:
                rootfs.remove_tree(workdir)
        return {
            "timed_out": timed_out,
            "duration_s": round(duration, 4),
            "program_status": None if timed_out else status,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
            "memory_killed": self.memory is not None and self.memory.oom_kills() > oom_kills,
        }


def _wait(pid: int, deadline: float) -> bool:
    """Wait until the program exits or time runs out (then kill it); True if it ran out."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return True
        return False
    finally:
        os.close(pidfd)


class Relay:
    """The pool's side of the zygote: passes programs in and their output out."""

    def __init__(self, isolation: iso.Isolation, channel: socket.socket) -> None:
        self.isolation = isolation
        self.channel = channel

    def run(
        self,
        source: str,
        limits: SandboxLimits,
        calls: dict[str, Any] | None = None,
        as_main: bool = True,
    ) -> dict[str, Any]:
        token = secrets.token_hex(16)
        pipes = {name: os.pipe() for name in ("source", "stdout", "stderr", "report")}
        request = json.dumps({"limits": limits.to_dict(), "token": token}).encode()
        theirs = [pipes["source"][0]] + [pipes[n][1] for n in ("stdout", "stderr", "report")]
        try:
            socket.send_fds(self.channel, [request], theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        tails = {
            pipes["stdout"][0]: TailBuffer(limits.tail_bytes),
            pipes["stderr"][0]: TailBuffer(limits.tail_bytes),
            pipes["report"][0]: TailBuffer(_REPORT_BYTES),
        }
        try:
            payload = json.dumps({"source": source, "calls": calls, "as_main": as_main}).encode()
            facts = self._pump(payload, pipes["source"][1], tails)
        finally:
            for fd in tails:
                os.close(fd)
        if "error" in facts:
            raise RuntimeError(facts["error"])
        stdout, stderr, report = tails.values()
        text = report.text()
        return {
            **facts,
            "report": _completion_report(text, token),
            "values": _call_values(text, token) if calls is not None else None,
            "stdout_tail": stdout.text(),
            "stderr_tail": stderr.text(),
            "stdout_bytes": stdout.total,
            "stderr_bytes": stderr.total,
            "isolation": list(self.isolation.layers(limits.network)),
        }

    def _pump(self, data: bytes, source_w: int, tails: dict[int, TailBuffer]) -> dict[str, Any]:
        """Feed the source, collect output, until the forker says the run is over."""
        selector = selectors.DefaultSelector()
        os.set_blocking(source_w, False)
        selector.register(source_w, selectors.EVENT_WRITE)
        selector.register(self.channel, selectors.EVENT_READ)
        for fd in tails:
            selector.register(fd, selectors.EVENT_READ)
        sent, source_open = 0, True
        try:
            while True:
                for key, _ in selector.select():
                    if key.fd == source_w:
                        try:
                            sent += os.write(source_w, data[sent : sent + 65536])
                        except (BrokenPipeError, BlockingIOError) as error:
                            sent = len(data) if isinstance(error, BrokenPipeError) else sent
                        if sent >= len(data):
                            selector.unregister(source_w)
                            os.close(source_w)
                            source_open = False
                    elif key.fileobj is self.channel:
                        message = self.channel.recv(65536)
                        if not message:
                            raise ForkerDied("the sandbox's forker process ended")
                        for fd, tail in tails.items():
                            _drain(fd, tail)
                        return json.loads(message)
                    else:
                        data_read = os.read(key.fd, 65536)
                        if data_read:
                            tails[key.fd].append(data_read)
                        else:
                            selector.unregister(key.fd)
        finally:
            selector.close()
            if source_open:
                os.close(source_w)


class ForkerDied(RuntimeError):
    """The forker is gone: the relay cannot run anything any more and exits."""


def _drain(fd: int, tail: TailBuffer) -> None:
    """Read what is left in a pipe: every writer is dead now, so it ends in EOF."""
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError):
        while data := os.read(fd, 65536):
            tail.append(data)


def _call_values(text: str, token: str) -> dict[str, Any]:
    """The last value (or error) reported for each call of a split test, by call number."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.startswith(token + " "):
            continue
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            entry = json.loads(line[len(token) + 1 :])
            if isinstance(entry, dict) and entry.get("outcome") in ("value", "call-error"):
                found[str(entry.get("call"))] = entry
    return found


def _completion_report(text: str, token: str) -> dict[str, Any] | None:
    """The last report line carrying this run's token, or None if the program wrote none.

    A split test's value lines are skipped (``_call_values`` reads them). A line of the wrong
    shape (not an object with a known ``outcome``) becomes a ``malformed`` report, which the
    verdict treats as a crash: the caller never sees a shape it cannot read.
    """
    for line in reversed(text.splitlines()):
        if not line.startswith(token + " "):
            continue
        body = line[len(token) + 1 :]
        try:
            report = json.loads(body)
        except (json.JSONDecodeError, RecursionError):
            return {"outcome": "malformed", "message": "a report line that is not JSON"}
        if isinstance(report, dict) and report.get("outcome") in ("value", "call-error"):
            continue
        if isinstance(report, dict) and report.get("outcome") in child.OUTCOMES:
            return report
        return {"outcome": "malformed", "message": f"a report of the wrong shape: {body[:80]}"}
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
    parser.add_argument("--no-cgroup", action="store_true", help="use no memory cgroup")
    args = parser.parse_args(argv)
    if sys.path and sys.path[0] == os.getcwd():
        del sys.path[0]  # ``-m`` put the zygote's working directory ("/") there
    requests = os.fdopen(os.dup(0), "rb")
    responses = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

    memory = None if args.no_cgroup else cgroup.create()
    isolation = iso.probe(not args.no_namespaces, memory is not None)
    if isolation.mount_namespace:
        rootfs.build_private_root()
    _preload()
    relay_end, forker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    forker = os.fork()
    if forker == 0:
        relay_end.close()
        requests.close()
        responses.close()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        try:
            forker_process = Forker(isolation, args.home, memory)
            forker_end.send(b"ready")  # set up, helpers gone: the pool may take a snapshot now
            forker_process.serve(forker_end)
        finally:
            os._exit(0)
    forker_end.close()
    # Should the forker die mid-run, its runs become the relay's to kill and reap.
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    relay = Relay(isolation, relay_end)
    if relay_end.recv(16) != b"ready":
        return 1  # the forker could not start: the pool reports the zygote failed to start
    write_frame(responses, {"ready": True, "isolation": isolation.to_dict()})
    try:
        while True:
            request = read_frame(requests)
            if request is None:
                return 0
            try:
                limits = SandboxLimits.from_dict(request["limits"])
                run = relay.run(
                    request["source"], limits, request.get("calls"), request.get("as_main", True)
                )
                response = {"ok": True, "run": run}
            except ForkerDied:
                return 1  # the pool sees the zygote end and starts another
            except Exception as error:  # report, keep serving: one bad request must not end it
                response = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            write_frame(responses, response)
    finally:
        relay_end.close()
        _reap_everything()
        if memory is not None:
            memory.remove()


if __name__ == "__main__":
    sys.exit(main())
