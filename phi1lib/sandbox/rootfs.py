"""The sandbox's filesystem: a private root holding only what Python needs, and per-run scratch.

The zygote enters a mount namespace of its own and replaces its root with an empty ``tmpfs``
into which it bind-mounts, read-only, the system's programs and libraries (``/usr``, ``/lib``,
...), a handful of files from ``/etc``, a few device nodes, and the interpreter: ``sys.prefix``,
``sys.base_prefix`` and every ``sys.path`` entry, the project's package included. Each is opened
*before* anything is mounted and bound from its descriptor, so a venv under ``/tmp`` or under a
home directory of mode 700 is found although both are replaced; the folders above each one are
created in the new root with mode 755, so the run's fresh user id can reach them. What is not
bound does not exist for the program: the home directories, ``/run`` and its sockets, the rest
of the project's checkout, the machine's ``/tmp``.

Each run then gets a mount and IPC namespace of its own, made in the run's process just after
the fork (:func:`enter_run_namespaces`): a ``tmpfs`` on ``/tmp`` with a size and an inode cap,
on which ``/dev/shm`` and ``/var/tmp`` also live, and a ``/proc`` of the run's PID namespace.
When the run's last process ends, its namespaces and everything it wrote are gone.

Where the kernel allows no mount namespace, runs get a scratch folder on the machine's ``/tmp``
instead, removed after each run by :func:`remove_tree`. Introduced in chapter 2 ("Executing the
textbooks").
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from phi1lib.sandbox import syscalls

SCRATCH_IN_NAMESPACE = "/tmp/sandbox"
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What Python and common libraries read from /etc; the rest of /etc stays out of sight.
ETC_PATHS = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/mime.types",
    "/etc/ssl",
)
DEVICES = ("null", "zero", "full", "random", "urandom")
_NEVER_WHOLE = ("/tmp", "/var/tmp", "/dev", "/dev/shm", "/proc", "/sys", "/run", "/root", "/home")
_MOUNT_FLAGS = syscalls.MS_NOSUID | syscalls.MS_NODEV
_STAGE = "/tmp"  # where the new root is assembled (covered in this namespace only)
_RUN_PRIVATE = ("/tmp", "/var/tmp", "/dev/shm")  # each run covers these with its own tmpfs
# Kept paths (a venv) under one of _RUN_PRIVATE: each run binds them back over its tmpfs.
_kept_under_run_private: list[str] = []


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def project_root() -> str:
    """The checkout (or site-packages folder) that holds the ``phi1lib`` package."""
    return str(Path(__file__).resolve().parents[2])


def interpreter_paths() -> list[str]:
    """Where the interpreter and its packages live: these must stay readable in the sandbox.

    The project's own folder is on ``sys.path``; only its package is needed, so only that is
    kept (the rest of the checkout, its ``.git`` and data included, stays out).
    """
    project = project_root()
    roots = {os.path.join(project, "phi1lib")}
    for path in (sys.prefix, sys.base_prefix, *sys.path):
        real = os.path.realpath(path) if path else ""
        if real == project:
            real = os.path.join(project, "phi1lib")
        if real and real != os.sep and os.path.exists(real):
            roots.add(real)
    return sorted(roots)


def paths_to_keep() -> list[str]:
    """The outermost paths the private root holds (never a whole home or temporary folder)."""
    wanted = [p for p in (*SYSTEM_PATHS, *ETC_PATHS) if os.path.lexists(p)]
    too_wide = {*_NEVER_WHOLE, os.path.realpath(os.path.expanduser("~"))}
    wanted += [path for path in interpreter_paths() if path not in too_wide]
    kept: list[str] = []
    for path in sorted(set(wanted), key=len):
        if not any(_is_within(path, outer) and not os.path.islink(outer) for outer in kept):
            kept.append(path)
    return sorted(kept)


def _make_parents(target: str) -> None:
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)


def _bind(fd: int, target: str, is_dir: bool) -> None:
    _make_parents(target)
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    syscalls.mount(f"/proc/self/fd/{fd}", target, None, syscalls.MS_BIND | syscalls.MS_REC, None)


def build_private_root() -> None:
    """Enter a new mount namespace whose root holds only :func:`paths_to_keep`, read-only.

    Mounts are first made private so that nothing done here propagates back to the machine.
    The caller must be in a PID namespace of its own for the ``/proc`` mounted here to show
    only its processes.
    """
    keep = paths_to_keep()
    _kept_under_run_private[:] = [
        path for path in keep if any(_is_within(path, top) for top in _RUN_PRIVATE)
    ]
    links = {path: os.readlink(path) for path in keep if os.path.islink(path)}
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)
    # Opened in the new namespace (a bind mount cannot take its source from another one) and
    # before the stage covers /tmp, where they may live.
    handles = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in keep if path not in links}
    devices = {
        name: os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC)
        for name in DEVICES
        if os.path.exists(f"/dev/{name}")
    }
    try:
        syscalls.mount("tmpfs", _STAGE, "tmpfs", _MOUNT_FLAGS, "size=4m,nr_inodes=4096,mode=755")
        for path, fd in handles.items():
            _bind(fd, _STAGE + path, os.path.isdir(f"/proc/self/fd/{fd}"))
        for path, link in links.items():
            _make_parents(_STAGE + path)
            os.symlink(link, _STAGE + path)
        dev = _STAGE + "/dev"
        os.makedirs(dev, mode=0o755, exist_ok=True)
        syscalls.mount("tmpfs", dev, "tmpfs", syscalls.MS_NOSUID, "size=64k,mode=755")
        for name, fd in devices.items():
            _bind(fd, f"{dev}/{name}", is_dir=False)
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(target, f"{dev}/{name}")
        os.mkdir(f"{dev}/shm", 0o1777)
        for folder, mode in (("/tmp", 0o1777), ("/proc", 0o555), ("/var/tmp", 0o1777)):
            os.makedirs(_STAGE + folder, mode=0o755, exist_ok=True)
            os.chmod(_STAGE + folder, mode)
        # Mounted while the machine's /proc is still in this namespace: a user namespace may
        # mount a proc only where a fully visible one already is.
        syscalls.mount("proc", _STAGE + "/proc", "proc", _MOUNT_FLAGS | syscalls.MS_NOEXEC, None)
        old = f"{_STAGE}/.old-root"
        os.mkdir(old, 0o700)
        syscalls.pivot_root(_STAGE, old)
        os.chdir("/")
        syscalls.umount("/.old-root")
        os.rmdir("/.old-root")
        syscalls.make_tree_read_only("/")
    finally:
        for fd in (*handles.values(), *devices.values()):
            os.close(fd)


def enter_run_namespaces(scratch_bytes: int, max_files: int, own_proc: bool, ipc: bool) -> str:
    """Give this freshly forked run its own mount (and IPC) namespace and scratch space.

    ``scratch_bytes`` and ``max_files`` cap the run's ``tmpfs`` (which also holds ``/dev/shm``
    and ``/var/tmp``); ``own_proc`` mounts a ``/proc`` for the run's PID namespace (the caller
    must be its process 1). Returns the scratch directory, empty and private to this run.
    """
    syscalls.unshare(syscalls.CLONE_NEWNS | (syscalls.CLONE_NEWIPC if ipc else 0))
    covered = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in _kept_under_run_private}
    options = f"size={max(scratch_bytes, 65536)},nr_inodes={max_files + 8},mode=1777"
    syscalls.mount("tmpfs", "/tmp", "tmpfs", _MOUNT_FLAGS, options)
    for folder, target in (("/tmp/.shm", "/dev/shm"), ("/tmp/.var-tmp", "/var/tmp")):
        os.mkdir(folder, 0o1777)
        os.chmod(folder, 0o1777)
        syscalls.mount(folder, target, None, syscalls.MS_BIND, None)
    for path, fd in covered.items():  # a venv under /tmp stays visible, and read-only
        _bind(fd, path, os.path.isdir(f"/proc/self/fd/{fd}"))
        syscalls.make_tree_read_only(path)
        os.close(fd)
    if own_proc:
        flags = _MOUNT_FLAGS | syscalls.MS_NOEXEC | syscalls.MS_RDONLY
        syscalls.mount("proc", "/proc", "proc", flags, None)
    os.mkdir(SCRATCH_IN_NAMESPACE, 0o700)
    return SCRATCH_IN_NAMESPACE


def empty_folder(folder: str) -> None:
    """Delete everything inside ``folder``, however deep, without recursion.

    A program may leave a tree thousands of levels deep (deeper than ``PATH_MAX``, deeper than
    Python's recursion limit) and take away its own permissions on the way. Each subfolder's
    entries are moved up into ``folder`` itself, so that no path used here is longer than two
    names and no call recurses; then the emptied subfolder goes.
    """
    pending = True
    while pending:
        pending = False
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
                continue
            pending = True
            os.chmod(entry.path, 0o700)
            for inner in os.scandir(entry.path):
                if inner.is_dir(follow_symlinks=False):
                    os.chmod(inner.path, 0o700)  # moving a folder rewrites its ".." entry
                os.rename(inner.path, os.path.join(folder, "." + secrets.token_hex(8)))
            os.rmdir(entry.path)


def remove_tree(path: str) -> None:
    """Remove a scratch dir, however deep, even where the program took away its permissions."""
    os.chmod(path, 0o700)
    empty_folder(path)
    os.rmdir(path)
