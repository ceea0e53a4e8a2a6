"""Thin ctypes wrappers for the Linux calls the sandbox needs and Python 3.11 lacks.

``os.unshare`` arrived in Python 3.12 and ``mount``, ``mount_setattr`` and ``prctl`` are not in
the standard library at all, so the sandbox calls libc directly. Each wrapper raises ``OSError``
with the kernel's errno, like the ``os`` functions do. Introduced in chapter 2 ("Executing the
textbooks").
"""

from __future__ import annotations

import ctypes
import os
import platform

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
# mount_setattr(2) is new enough (Linux 5.12) to have the same number on every architecture.
_SYS_MOUNT_SETATTR = 442

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (see unshare(2))."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace that ``fd`` refers to (see setns(2))."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """Mount a filesystem, or change a mount's propagation (see mount(2))."""
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def make_tree_read_only(path: str) -> None:
    """Make every mount at or below ``path`` read-only and setuid-free, in this
    mount namespace only."""
    if platform.machine() not in ("x86_64", "aarch64", "arm64"):
        raise OSError(38, f"mount_setattr is not wired up for {platform.machine()}")
    attr = _MountAttr(attr_set=_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID)
    result = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(path.encode()),
        ctypes.c_uint(_AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(0 if result == 0 else -1, f"mount_setattr {path}")


def prctl(option: int, value: int) -> int:
    """Set or get a per-process attribute (see prctl(2)): subreaper, death signal,
    no_new_privs, the capability bounding set."""
    result = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0)
    _check(0 if result >= 0 else -1, "prctl")
    return result


def umount(target: str) -> None:
    """Detach a mount and everything below it (see umount2(2) with ``MNT_DETACH``)."""
    _check(_libc.umount2(target.encode(), ctypes.c_int(MNT_DETACH)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """Make ``new_root`` this mount namespace's root, the old root moved to ``put_old``."""
    _SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}.get(platform.machine())
    if _SYS_PIVOT_ROOT is None:
        raise OSError(38, f"pivot_root is not wired up for {platform.machine()}")
    result = _libc.syscall(
        ctypes.c_long(_SYS_PIVOT_ROOT),
        ctypes.c_char_p(new_root.encode()),
        ctypes.c_char_p(put_old.encode()),
    )
    _check(0 if result == 0 else -1, "pivot_root")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_bounding_set() -> None:
    """Empty the capability bounding set, so that no binary the program runs can give a
    capability back (needs ``CAP_SETPCAP``: call it before changing uid)."""
    for capability in range(64):
        if _libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(capability), 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            if errno == 22:  # EINVAL: past the last capability this kernel knows
                return
            raise OSError(errno, f"prctl(PR_CAPBSET_DROP): {os.strerror(errno)}")


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable capability sets for good.

    A process that keeps uid 0 inside a user namespace then has no power over it; one that
    changed uid has lost them already.
    """
    header = _CapHeader(version=0x20080522, pid=0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
