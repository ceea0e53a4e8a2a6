"""The caller's end of one zygote: start it, send it programs, read back the raw facts.

Used by the pool (``pool.py``), one thread per zygote. Introduced in chapter 2 ("Executing the
textbooks").
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from phi1lib.sandbox.isolation import Isolation
from phi1lib.sandbox.layers import warn_if_weaker
from phi1lib.sandbox.limits import SandboxLimits
from phi1lib.sandbox.protocol import read_frame, write_frame

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_ZYGOTE_PATH = "/usr/local/bin:/usr/bin:/bin"


class ZygoteDied(RuntimeError):
    """The zygote process ended while serving a run (it was killed, or it crashed)."""


class RunRefused(RuntimeError):
    """The zygote could not run a program (and keeps serving): the reason is the message."""


class ZygoteProcess:
    """One zygote and the pipe protocol to it; used by one thread at a time."""

    def __init__(self, namespaces: bool = True, cgroup: bool = True) -> None:
        command = [sys.executable, "-s", "-m", "phi1lib.sandbox.zygote"]
        command += ["--home", os.path.expanduser("~")]
        if not namespaces:
            command.append("--no-namespaces")
        if not cgroup:
            command.append("--no-cgroup")
        # The zygote (and so every program) sees none of the caller's environment: no API
        # keys, no tokens, nothing but what Python needs to start.
        environment = {
            "PATH": _ZYGOTE_PATH,
            "LANG": "C.UTF-8",
            "PYTHONPATH": _PACKAGE_ROOT,
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": tempfile.gettempdir(),
        }
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            cwd="/",
            start_new_session=True,
        )
        ready = read_frame(self.process.stdout)
        if not ready or not ready.get("ready"):
            self.close()
            raise ZygoteDied(
                f"the sandbox zygote failed to start (exit code {self.process.returncode})"
            )
        self.isolation: dict[str, Any] = ready["isolation"]
        self.layers: tuple[str, ...] = Isolation(**self.isolation).layers(network=False)
        warn_if_weaker(self.layers)

    def run(
        self,
        source: str,
        limits: SandboxLimits,
        calls: dict[str, Any] | None = None,
        as_main: bool = True,
    ) -> dict[str, Any]:
        request = {"source": source, "limits": limits.to_dict(), "calls": calls, "as_main": as_main}
        try:
            write_frame(self.process.stdin, request)
            response = read_frame(self.process.stdout)
        except (BrokenPipeError, OSError) as error:
            raise ZygoteDied(f"the sandbox zygote is gone: {error}") from error
        if response is None:
            raise ZygoteDied(f"the sandbox zygote ended (exit code {self.process.poll()})")
        if not response["ok"]:
            raise RunRefused(f"the sandbox refused the program: {response['error']}")
        return response["run"]

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
