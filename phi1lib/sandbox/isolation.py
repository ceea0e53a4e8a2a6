"""The first layer: what the operating system does to contain a program.

The zygote builds the jail once, when it starts, and forks every program into it:

- a user namespace, for an unprivileged zygote only: it gives the zygote the right to build
  the other namespaces without being root on the machine;
- a PID namespace of the zygote's own, and a fresh one per program in which the program is
  process 1: when it exits, the kernel kills whatever it left behind, daemons included;
- a mount namespace: the whole filesystem read-only, private ``tmpfs`` mounts on ``/tmp``
  (where each program's scratch directory lives; wiped after every run), ``/dev/shm`` and
  ``/var/tmp``, an empty ``tmpfs`` over the caller's home directory (with only the
  interpreter's own files put back, where they live there), and a ``/proc`` that shows only
  the zygote's namespace;
- an empty network namespace that programs join (no interface up: no connection can leave,
  not even to 127.0.0.1) unless a run asks for the network;
- a fresh user id per run when the zygote is root, so that ``RLIMIT_NPROC`` (which the kernel
  does not enforce for root) caps a fork bomb, and file permissions protect the rest;
- resource limits (``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC``,
  ``RLIMIT_CORE``) set in the program's process before its code runs.

Each layer is used only where the kernel allows it; :func:`probe` finds out which, trying each
in a throwaway child first. Building the namespaces once instead of per program is what keeps
the sandbox faster than a bare ``fork`` harness (see ``benchmarks/bench_sandbox.py``).
Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from phi1lib.sandbox import syscalls
from phi1lib.sandbox.limits import SandboxLimits

SCRATCH_IN_NAMESPACE = "/tmp/sandbox"
PRIVATE_DIRS = ("/tmp", "/dev/shm", "/var/tmp")
# Fresh user ids are drawn from a range no distribution hands out to real accounts.
_UID_BASE = 3_000_000_000
_UID_SPAN = 1_000_000_000
_MOUNT_FLAGS = syscalls.MS_NOSUID | syscalls.MS_NODEV


@dataclass(frozen=True)
class Isolation:
    """The operating-system layers this machine lets the sandbox use, probed once per zygote.

    ``process_limit`` says how ``RLIMIT_NPROC`` can cap the program's processes:
    ``separate-uid`` (a root zygote runs each program under a fresh user id, so the count starts
    at zero), ``user-namespace`` (the count is kept per user namespace and holds the zygote and
    the process that started it besides the program), ``shared-uid`` (the count holds every
    process of the user, read from ``/proc`` just before the limit is set) or ``none`` (root
    without the right to change user id: the kernel does not enforce the limit for root).
    """

    user_namespace: bool = False
    pid_namespace: bool = False
    network_namespace: bool = False
    mount_namespace: bool = False
    process_limit: str = "none"

    @property
    def separate_uid(self) -> bool:
        return self.process_limit == "separate-uid"

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

    Must run while the process is single-threaded. Returns False where the kernel (or a
    security module such as AppArmor) forbids it.
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


def become_pid_namespace_init() -> bool:
    """Continue as process 1 of a new PID namespace; the original process waits and exits.

    The zygote then sees only its own processes in ``/proc``, and may rejoin its namespace
    after making one per run (:func:`fork_into_new_pid_namespace`); an unprivileged zygote may
    do that only in a namespace its user namespace owns. Returns False where not allowed.
    """
    try:
        syscalls.unshare(syscalls.CLONE_NEWPID)
    except OSError:
        return False
    pid = os.fork()
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    return True


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


def make_empty_network_namespace() -> int:
    """An open file descriptor of a new network namespace with no interface up.

    A helper child creates the namespace and hands back a descriptor of it over a Unix socket,
    then exits; the descriptor keeps the namespace alive for programs to join with ``setns``
    (much cheaper than creating and destroying one per program).
    """
    ours, helpers = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            syscalls.unshare(syscalls.CLONE_NEWNET)
            fd = os.open("/proc/self/ns/net", os.O_RDONLY)
            socket.send_fds(helpers, [b"1"], [fd])
        finally:
            os._exit(0)
    helpers.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    if not fds:
        raise OSError("the helper could not create a network namespace")
    os.set_inheritable(fds[0], False)
    return fds[0]


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


def _hide_home(home: str) -> None:
    """Cover ``home`` with an empty read-only tmpfs, bind-mounting back only the interpreter.

    The new tmpfs is assembled under the private /tmp, while the real home is still visible,
    then moved over it.
    """
    stage = "/tmp/.home"
    os.mkdir(stage)
    syscalls.mount("tmpfs", stage, "tmpfs", _MOUNT_FLAGS, "size=1m,mode=755")
    for path in interpreter_paths_in(home):
        target = stage + path[len(home.rstrip(os.sep)) :]
        os.makedirs(target, mode=0o755)
        syscalls.mount(path, target, None, syscalls.MS_BIND | syscalls.MS_REC, None)
    syscalls.mount(stage, home, None, syscalls.MS_MOVE, None)
    os.rmdir(stage)
    syscalls.make_tree_read_only(home)


def build_private_filesystem(home: str | None, own_proc: bool) -> None:
    """Enter a new mount namespace and set up the sandbox's view of the filesystem.

    Mounts are first made private so that nothing done here propagates back to the machine.
    ``own_proc`` mounts a ``/proc`` for the caller's PID namespace (the caller must be in one
    it made).
    """
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)
    syscalls.make_tree_read_only("/")
    for path in PRIVATE_DIRS:
        if os.path.isdir(path):
            syscalls.mount("tmpfs", path, "tmpfs", _MOUNT_FLAGS, "size=1m,mode=1777")
    hidden_home = home_to_hide(home)
    if hidden_home:
        _hide_home(hidden_home)
    if own_proc:
        syscalls.mount("proc", "/proc", "proc", _MOUNT_FLAGS | syscalls.MS_NOEXEC, None)


def fresh_scratch(size_bytes: int) -> str:
    """The next run's scratch directory on the private /tmp, which may hold ``size_bytes``."""
    size = f"size={max(size_bytes, 4096)}"
    syscalls.mount("tmpfs", "/tmp", None, syscalls.MS_REMOUNT | _MOUNT_FLAGS, size)
    if os.path.lexists(SCRATCH_IN_NAMESPACE):  # a clean-up that failed must not fail this run
        wipe_private_dirs()
    os.mkdir(SCRATCH_IN_NAMESPACE, 0o700)
    return SCRATCH_IN_NAMESPACE


def wipe_private_dirs() -> None:
    """Delete everything a run left in the private tmpfs mounts (all its processes are dead)."""
    for path in PRIVATE_DIRS:
        if os.path.isdir(path):
            empty_folder(path)


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
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files,) * 2)
    if process_baseline is not None:
        nproc = process_baseline + limits.max_processes
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_privileges(uid: int) -> None:
    """Become ``uid`` (group ``uid``, no supplementary groups) for good."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


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


def _set_up_like_a_zygote(home: str | None, private_filesystem: bool, own_proc: bool) -> None:
    paths = interpreter_paths()
    if private_filesystem:
        build_private_filesystem(home, own_proc)
        fresh_scratch(1 << 20)
    for path in paths:  # Python must still find its own files
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass


def _set_up_like_a_run(home: str | None, private_filesystem: bool, own_proc: bool) -> None:
    paths = interpreter_paths()
    if private_filesystem:
        build_private_filesystem(home, own_proc)
    drop_privileges(fresh_uid())
    for path in paths:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass


def _network_namespace_works() -> None:
    os.close(make_empty_network_namespace())


def probe(allow_namespaces: bool, home: str | None) -> Isolation:
    """Set up the zygote's namespaces, finding out which layers work here.

    An unprivileged caller first enters a user namespace; then the caller becomes process 1
    of a new PID namespace (so this returns in a forked process: call it early, in the
    single-threaded zygote, before it holds anything the original process should keep). The
    private filesystem and the fresh user id are tried in throwaway children first, and used
    only where Python stays importable (an interpreter in root's private home is, once the
    private filesystem puts it back). The caller then builds the filesystem and the network
    namespace with :func:`build_private_filesystem` and :func:`make_empty_network_namespace`.
    """
    user_ns = allow_namespaces and os.geteuid() != 0 and enter_user_namespace()
    pid_ns = allow_namespaces and become_pid_namespace_init()
    if pid_ns:
        pid_ns = _succeeds_in_child(_pid_namespace_per_run)
    net_ns = allow_namespaces and _succeeds_in_child(_network_namespace_works)
    mount_ns = allow_namespaces and _succeeds_in_child(
        lambda: _set_up_like_a_zygote(home, True, pid_ns)
    )
    root = os.geteuid() == 0 and not user_ns
    if root and _succeeds_in_child(lambda: _set_up_like_a_run(home, mount_ns, pid_ns)):
        process_limit = "separate-uid"
    elif user_ns:
        process_limit = "user-namespace"
    elif os.geteuid() != 0:
        process_limit = "shared-uid"
    else:
        process_limit = "none"
    return Isolation(user_ns, pid_ns, net_ns, mount_ns, process_limit)
