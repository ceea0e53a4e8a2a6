"""The first layer: what the operating system does to contain a program.

Each sandboxed program runs in a chain of three processes forked from the zygote (see
``child.py``): a short-lived *launcher* that enters new namespaces, an *init* that becomes
process 1 of the new PID namespace and sets up the filesystem, and the *program* itself. This
module holds the steps, each usable only where the kernel allows it:

- a PID namespace: when the init exits, the kernel kills every process left in it, daemons
  that escaped the process group included;
- a network namespace with no interface up: no connection can leave, not even to 127.0.0.1;
- a mount namespace: the whole filesystem read-only, private ``tmpfs`` mounts on ``/tmp``,
  ``/dev/shm`` and ``/var/tmp`` (the scratch directory lives there and vanishes with it), an
  empty ``tmpfs`` over the caller's home directory, and a ``/proc`` showing only the sandbox;
- a fresh user id per run when the zygote runs as root, so that ``RLIMIT_NPROC`` (which the
  kernel does not enforce for root) caps a fork bomb and file permissions protect the rest;
  an unprivileged zygote gets the namespaces through a user namespace of its own instead;
- resource limits (``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC``,
  ``RLIMIT_CORE``) set in the program's process before its code runs.

Introduced in chapter "Running untrusted code".
"""

from __future__ import annotations

import os
import resource
import secrets
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from phi1lib.sandbox import syscalls
from phi1lib.sandbox.limits import SandboxLimits

SCRATCH_IN_NAMESPACE = "/tmp/sandbox"
# Fresh user ids are drawn from a range no distribution hands out to real accounts.
_UID_BASE = 3_000_000_000
_UID_SPAN = 1_000_000_000
_PRIVATE_TMPFS = ("/dev/shm", "/var/tmp")


@dataclass(frozen=True)
class Isolation:
    """The operating-system layers this machine lets the sandbox use, probed once per zygote.

    ``process_limit`` says how ``RLIMIT_NPROC`` can cap the program's processes:
    ``separate-uid`` (a root zygote runs each program under a fresh user id, so the count starts
    at zero), ``user-namespace`` (the count is kept per user namespace and holds the zygote and
    the init besides the program), ``shared-uid`` (the count holds every process of the user,
    read from ``/proc`` just before the limit is set) or ``none`` (root without the right to
    change user id: the kernel does not enforce the limit for root).
    """

    user_namespace: bool = False
    pid_namespace: bool = False
    network_namespace: bool = False
    mount_namespace: bool = False
    process_limit: str = "none"

    @property
    def separate_uid(self) -> bool:
        return self.process_limit == "separate-uid"

    def child_unshare_flags(self, network: bool) -> int:
        """The namespaces the forked program process enters itself (the zygote makes its PID
        namespace, since a process cannot move into a new PID namespace, only its children)."""
        flags = 0
        if self.mount_namespace:
            flags |= syscalls.CLONE_NEWNS
        if self.network_namespace and not network:
            flags |= syscalls.CLONE_NEWNET
        return flags

    def layers(self, network: bool) -> tuple[str, ...]:
        """Short names of the layers a run with these settings gets, for its result."""
        names = [
            ("user-namespace", self.user_namespace),
            ("pid-namespace", self.pid_namespace),
            ("network-namespace", self.network_namespace and not network),
            ("private-filesystem", self.mount_namespace),
            ("separate-uid", self.separate_uid),
            ("process-limit", self.process_limit != "none"),
        ]
        return tuple(name for name, present in names if present) + ("python-guard",)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def enter_user_namespace() -> bool:
    """Make an unprivileged process root of a user namespace of its own (mapping only its ids).

    This gives the zygote the capabilities to create PID, network and mount namespaces for its
    children without being root on the machine. Must run while the process is single-threaded.
    Returns False where the kernel (or a security module) forbids it.
    """
    uid, gid = os.getuid(), os.getgid()
    try:
        syscalls.unshare(syscalls.CLONE_NEWUSER)
    except OSError:
        return False
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)
    return True


def fresh_uid() -> int:
    """A user id that owns no process or file on this machine (for root zygotes)."""
    return _UID_BASE + secrets.randbelow(_UID_SPAN)


def tasks_of_user(uid: int) -> int:
    """How many processes and threads ``uid`` has now, the count ``RLIMIT_NPROC`` compares to."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total


def interpreter_paths() -> list[str]:
    """Where the interpreter and its packages live: these must stay readable in the sandbox."""
    roots = {os.path.realpath(path) for path in (sys.prefix, sys.base_prefix, *sys.path) if path}
    return sorted(path for path in roots if path != os.sep and os.path.exists(path))


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def home_to_hide(home: str | None) -> str | None:
    """The caller's home directory as the sandbox should hide it (None: nothing to hide)."""
    if not home or not os.path.isdir(home):
        return None
    home = os.path.realpath(home)
    if home == os.sep or _is_within(SCRATCH_IN_NAMESPACE, home):
        return None
    if any(_is_within(home, path) for path in interpreter_paths()):
        return None  # home lies inside the interpreter's own tree: hiding it would hide Python
    return home


def interpreter_paths_in(home: str) -> list[str]:
    """The outermost interpreter paths inside ``home``: they stay visible when home is hidden.

    (A Python installed by pyenv, or a checkout under the home directory, lives there.)
    """
    kept: list[str] = []
    for path in interpreter_paths():
        if _is_within(path, home) and path != home and not any(_is_within(path, k) for k in kept):
            kept.append(path if os.path.isdir(path) else os.path.dirname(path))
    return kept


def _hide_home(home: str, flags: int) -> None:
    """Cover ``home`` with an empty read-only tmpfs, bind-mounting back only the interpreter.

    The new tmpfs is assembled under the private /tmp, while the real home is still visible,
    then moved over it.
    """
    stage = "/tmp/.home"
    os.mkdir(stage)
    syscalls.mount("tmpfs", stage, "tmpfs", flags, "size=1m,mode=755")
    for path in interpreter_paths_in(home):
        target = stage + path[len(home.rstrip(os.sep)) :]
        os.makedirs(target, mode=0o755)
        syscalls.mount(path, target, None, syscalls.MS_BIND | syscalls.MS_REC, None)
    syscalls.mount(stage, home, None, syscalls.MS_MOVE, None)
    os.rmdir(stage)
    syscalls.make_tree_read_only(home)


def prepare_filesystem(scratch_mb: int, home: str | None, own_proc: bool) -> str:
    """Set up the private filesystem view (in a fresh mount namespace); return the scratch dir.

    Mounts are first made private so that nothing done here propagates back to the machine.
    """
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)
    syscalls.make_tree_read_only("/")
    flags = syscalls.MS_NOSUID | syscalls.MS_NODEV
    syscalls.mount("tmpfs", "/tmp", "tmpfs", flags, f"size={scratch_mb}m,mode=1777")
    for path in _PRIVATE_TMPFS:
        if os.path.isdir(path):
            syscalls.mount("tmpfs", path, "tmpfs", flags, "size=1m,mode=1777")
    hidden_home = home_to_hide(home)
    if hidden_home:
        _hide_home(hidden_home, flags)
    if own_proc:
        syscalls.mount("proc", "/proc", "proc", flags | syscalls.MS_NOEXEC, None)
    os.mkdir(SCRATCH_IN_NAMESPACE, 0o700)
    return SCRATCH_IN_NAMESPACE


def other_tasks_charged(isolation: Isolation) -> int | None:
    """Tasks besides the program's own that its ``RLIMIT_NPROC`` count already holds.

    Call it in the program's process, before the limit is set; None means no limit applies.
    """
    if isolation.process_limit == "separate-uid":
        return 0
    if isolation.process_limit == "user-namespace":
        return 2  # the zygote and the process that started it in the namespace
    if isolation.process_limit == "shared-uid":
        return tasks_of_user(os.getuid()) - 1
    return None


def apply_resource_limits(limits: SandboxLimits, process_baseline: int | None) -> None:
    """Set the program's resource limits (soft = hard, so the program cannot raise them).

    ``process_baseline`` is what :func:`other_tasks_charged` returned; the program may then run
    ``limits.max_processes`` processes and threads of its own, itself included.
    """
    megabyte = 1024 * 1024
    cpu = limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if process_baseline is not None:
        nproc = process_baseline + limits.max_processes
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_privileges(uid: int) -> None:
    """Become ``uid`` (group ``uid``, no supplementary groups) for good."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def become_pid_namespace_init() -> None:
    """Continue as process 1 of a new PID namespace; the original process waits and exits.

    An unprivileged zygote needs this once: it may rejoin its own PID namespace after making
    one for each run (see :func:`fork_into_new_pid_namespace`) only if its user namespace owns
    that namespace, which the machine's initial one is not.
    """
    syscalls.unshare(syscalls.CLONE_NEWPID)
    pid = os.fork()
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def fork_into_new_pid_namespace(own_namespace_fd: int) -> int:
    """``os.fork`` whose child is process 1 of a new PID namespace; the caller stays where it was.

    ``own_namespace_fd`` is an open ``/proc/self/ns/pid`` of the caller, used to point its
    later children back at its own namespace.
    """
    syscalls.unshare(syscalls.CLONE_NEWPID)
    try:
        pid = os.fork()
    except BaseException:
        syscalls.setns(own_namespace_fd, syscalls.CLONE_NEWPID)
        raise
    if pid != 0:
        syscalls.setns(own_namespace_fd, syscalls.CLONE_NEWPID)
    return pid


def _succeeds_in_child(step: Callable[[], None]) -> bool:
    """Whether ``step`` runs without error in a throwaway child (so nothing here changes)."""
    pid = os.fork()
    if pid == 0:
        try:
            step()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _pid_namespace_per_run() -> None:
    with open("/proc/self/ns/pid", "rb") as own:
        for _ in range(2):  # twice: the second fork proves the caller is back home
            pid = fork_into_new_pid_namespace(own.fileno())
            if pid == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise OSError("the child was not process 1 of a new PID namespace")


def _in_new_pid_namespace(step: Callable[[], None]) -> None:
    syscalls.unshare(syscalls.CLONE_NEWPID)
    if not _succeeds_in_child(step):
        raise OSError("the step failed as process 1 of a new PID namespace")


def _set_up_like_a_run(home: str | None, private_filesystem: bool, separate_uid: bool) -> None:
    """The program process's setup, ending with a check that Python can still import."""
    paths = interpreter_paths()
    if private_filesystem:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        prepare_filesystem(1, home, own_proc=True)
    if separate_uid:
        drop_privileges(fresh_uid())
    for path in paths:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass


def probe(allow_namespaces: bool, user_namespace: bool, home: str | None) -> Isolation:
    """Find out which layers work here, trying each in a throwaway child.

    ``user_namespace`` says whether the (unprivileged) caller already entered one with
    :func:`enter_user_namespace` and :func:`become_pid_namespace_init`. A fresh user id is used
    only where Python stays importable under it (an interpreter in root's private home is not,
    unless the private filesystem can expose it). Call it once, in the single-threaded zygote,
    before it serves any run.
    """
    root = os.geteuid() == 0 and not user_namespace
    pid_ns = net_ns = mount_ns = False
    if allow_namespaces:
        pid_ns = _succeeds_in_child(_pid_namespace_per_run)
        net_ns = _succeeds_in_child(lambda: syscalls.unshare(syscalls.CLONE_NEWNET))
        mount_ns = pid_ns and _succeeds_in_child(
            lambda: _in_new_pid_namespace(lambda: _set_up_like_a_run(home, True, False))
        )

    def run_under_fresh_uid() -> None:
        if pid_ns:
            _in_new_pid_namespace(lambda: _set_up_like_a_run(home, mount_ns, True))
        else:
            _set_up_like_a_run(home, False, True)

    if root and _succeeds_in_child(run_under_fresh_uid):
        process_limit = "separate-uid"
    elif user_namespace:
        process_limit = "user-namespace"
    elif os.geteuid() != 0:
        process_limit = "shared-uid"
    else:
        process_limit = "none"
    return Isolation(user_namespace, pid_ns, net_ns, mount_ns, process_limit)
