"""A memory cgroup per zygote: one cap on everything a run holds in memory, all processes together.

``RLIMIT_AS`` caps each process's address space, but not what lives outside it: System V
shared memory, a ``memfd`` written but not mapped, files on the scratch tmpfs, or six processes
that each stay under the limit. The kernel's memory controller counts all of these against the
cgroup of the process that touched the pages. Each zygote makes a cgroup of its own below its
current one (cgroup v2's ``memory.max``, or v1's ``memory.limit_in_bytes`` where the machine
still mounts the v1 memory controller); every run joins it as its first act and sets nothing,
the zygote sets the limit before each run and reads the count of out-of-memory kills after it.
Where neither hierarchy is writable, :func:`create` returns None and the run's result says the
``memory-cgroup`` layer is missing. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass

_PREFIX = "phi1-sandbox-"
_V1_ROOT = "/sys/fs/cgroup/memory"
_V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


@dataclass
class MemoryCgroup:
    """Open descriptors into one cgroup, usable after the zygote leaves the host's filesystem."""

    parent_fd: int  # the directory holding the cgroup, to remove it at the end
    name: str
    procs_fd: int  # write "0" to move the writing process in
    limit_fds: list[int]  # the files that take the limit in bytes
    events_fd: int  # where the kernel counts out-of-memory kills
    version: int

    def set_limit(self, limit_bytes: int) -> None:
        """Set every limit file; v1 wants memory+swap >= memory, so the order depends on the
        direction of the change: one order fails where the other works."""
        value = str(limit_bytes).encode()
        try:
            for fd in self.limit_fds:
                os.pwrite(fd, value, 0)
        except OSError:
            for fd in reversed(self.limit_fds):
                os.pwrite(fd, value, 0)

    def join(self) -> None:
        """Move the calling process (and so its future children) into the cgroup."""
        os.pwrite(self.procs_fd, b"0", 0)

    def oom_kills(self) -> int:
        text = os.pread(self.events_fd, 4096, 0).decode()
        match = re.search(r"^oom_kill (\d+)", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def remove(self) -> None:
        for fd in (self.procs_fd, self.events_fd, *self.limit_fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(self.name, dir_fd=self.parent_fd)
        with contextlib.suppress(OSError):
            os.close(self.parent_fd)


def _own_cgroup_dirs() -> list[tuple[int, str]]:
    """(version, directory) of this process's memory cgroup in each hierarchy mounted here."""
    found = []
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                found += [(2, root + path) for root in _V2_ROOTS]
            elif "memory" in controllers.split(","):
                found.append((1, _V1_ROOT + path))
    marker = {1: "memory.limit_in_bytes", 2: "cgroup.controllers"}
    return [(v, path) for v, path in found if os.path.exists(os.path.join(path, marker[v]))]


def _remove_stale(directory: str) -> None:
    """Remove the cgroups of zygotes that were killed before they could remove their own."""
    for entry in os.scandir(directory):
        match = re.fullmatch(_PREFIX + r"(\d+)-[0-9a-f]+", entry.name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.rmdir(entry.path)
        except PermissionError:
            pass


def _open_in(version: int, directory: str) -> MemoryCgroup:
    name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    path = os.path.join(directory, name)
    os.mkdir(path)
    try:
        if version == 2:
            limits = ["memory.max"]
            if os.path.exists(os.path.join(path, "memory.swap.max")):
                limits.append("memory.swap.max")
            events = "memory.events"
        else:
            limits = ["memory.limit_in_bytes"]
            if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                limits.append("memory.memsw.limit_in_bytes")
            events = "memory.oom_control"
        group = MemoryCgroup(
            parent_fd=os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
            name=name,
            procs_fd=os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC),
            limit_fds=[os.open(os.path.join(path, f), os.O_WRONLY | os.O_CLOEXEC) for f in limits],
            events_fd=os.open(os.path.join(path, events), os.O_RDONLY | os.O_CLOEXEC),
            version=version,
        )
        group.set_limit(64 * 2**20)  # prove the controller takes a limit here
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        raise
    return group


def create() -> MemoryCgroup | None:
    """A fresh memory cgroup below this process's own, or None where none can be made."""
    try:
        candidates = _own_cgroup_dirs()
    except OSError:
        return None
    for version, directory in candidates:
        try:
            _remove_stale(directory)
            return _open_in(version, directory)
        except OSError:
            continue
    return None
