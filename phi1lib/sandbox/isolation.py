"""The first layer: what the operating system does to contain a program.

The zygote builds the jail once, when it starts, and each run adds its own namespaces:

- a user namespace, for an unprivileged zygote only: it gives the zygote the right to build
  the other namespaces without being root on the machine;
- a PID namespace of the zygote's own, and a fresh one per program in which the program is
  process 1: when it exits, the kernel kills whatever it left behind, daemons included;
- a private root filesystem: an empty read-only ``tmpfs`` into which only what the
  interpreter needs is bind-mounted read-only (``/usr``, ``/lib``, a few files of ``/etc``,
  ``sys.prefix``, ``sys.base_prefix``, the standard library, site-packages and the project's
  package), wherever those live (under ``/tmp``, under a home directory of mode 700), with the
  folders above them created world-traversable so a fresh user id can reach them. Nothing else
  of the machine is there: no home directory, no ``/run`` (no host service's socket), no other
  checkout;
- per run, a fresh mount and IPC namespace: a ``tmpfs`` on ``/tmp`` capped in size and inodes
  (``/dev/shm`` and ``/var/tmp`` live on it), and a ``/proc`` that shows only the run's own
  processes. Everything a run wrote disappears with its namespaces, so the next run cannot see
  it, and no clean-up has to walk what the program left;
- an empty network namespace that programs join (no interface up: no connection can leave,
  not even to 127.0.0.1) unless a run asks for the network;
- a fresh user id per run when the zygote is root, so that ``RLIMIT_NPROC`` (which the kernel
  does not enforce for root) caps a fork bomb, and file permissions protect the rest; no
  capabilities, and ``no_new_privs`` so that no setuid binary gives any back;
- resource limits (``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC``,
  ``RLIMIT_NOFILE``, ``RLIMIT_CORE``) set in the program's process before its code runs, and a
  memory cgroup that counts every process and shared mapping of the run (``cgroup.py``).

Each layer is used only where the kernel allows it; :func:`probe` finds out which, trying each
in a throwaway child first, and :func:`missing_layers` names what a weaker machine lacks.
Building the root once instead of per program is what keeps the sandbox faster than a bare
``fork`` harness (see ``benchmarks/bench_sandbox.py``). Introduced in chapter 2 ("Executing
the textbooks").
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass

from phi1lib.sandbox import rootfs, syscalls
from phi1lib.sandbox.limits import SandboxLimits

# Fresh user ids are drawn from a range no distribution hands out to real accounts.
_UID_BASE = 3_000_000_000
_UID_SPAN = 1_000_000_000


@dataclass(frozen=True)
class Isolation:
    """The operating-system layers this machine lets the sandbox use, probed once per zygote.

    ``process_limit`` says how ``RLIMIT_NPROC`` can cap the program's processes:
    ``separate-uid`` (a root zygote runs each program under a fresh user id, so the count starts
    at zero), ``user-namespace`` (the count is kept per user namespace and holds the zygote and
    the process that started it besides the program), ``shared-uid`` (the count holds every
    process of the user, read from ``/proc`` just before the limit is set) or ``none`` (root
    without the right to change user id: the kernel does not enforce the limit for root).
    ``mount_namespace`` is the private root and per-run scratch of ``rootfs.py``.
    """

    user_namespace: bool = False
    pid_namespace: bool = False
    network_namespace: bool = False
    mount_namespace: bool = False
    ipc_namespace: bool = False
    process_limit: str = "none"
    memory_cgroup: bool = False
    no_new_privs: bool = False

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
            ("private-proc", self.mount_namespace and self.pid_namespace),
            ("ipc-namespace", self.ipc_namespace),
            ("separate-uid", self.separate_uid),
            ("process-limit", self.process_limit != "none"),
            ("memory-cgroup", self.memory_cgroup),
            ("no-new-privileges", self.no_new_privs),
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


def interpreter_paths_in(home: str) -> list[str]:
    """The outermost interpreter paths inside ``home``, which the guard lets a program read.

    (A Python installed by pyenv, or a checkout under the home directory, lives there.)
    """
    home = os.path.realpath(home)
    kept: list[str] = []
    for path in rootfs.interpreter_paths():
        if (
            rootfs.is_within(path, home)
            and path != home
            and not any(rootfs.is_within(path, k) for k in kept)
        ):
            kept.append(path if os.path.isdir(path) else os.path.dirname(path))
    return kept


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
    """Set the program's resource limits (soft = hard, so the program cannot raise them; the
    CPU limit's hard value is a second more, so that a plain program ends by ``SIGXCPU``).

    ``process_baseline`` is what :func:`other_tasks_charged` returned; the program may then run
    ``limits.max_processes`` processes and threads of its own, itself included.
    """
    megabyte = 1024 * 1024
    cpu = limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
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


def _python_can_read_its_files(paths: list[str]) -> None:
    for path in paths:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass
    with open(os.__file__, "rb") as handle:  # a module file, as an import would read it
        handle.read(1)


def _in_a_run(own_proc: bool, ipc: bool, step: Callable[[], None]) -> None:
    """Run ``step`` as a run would: process 1 of a new PID namespace, with its namespaces."""
    with open("/proc/self/ns/pid", "rb") as own:
        pid = fork_into_new_pid_namespace(own.fileno()) if own_proc else os.fork()
        if pid == 0:
            try:
                rootfs.enter_run_namespaces(1 << 20, 64, own_proc, ipc)
                if own_proc and len([n for n in os.listdir("/proc") if n.isdigit()]) != 1:
                    raise OSError("the run's /proc shows other processes")
                step()
            except BaseException:
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("a run's namespaces could not be set up")


def _private_root_works(own_proc: bool, ipc: bool) -> None:
    paths = rootfs.interpreter_paths()
    rootfs.build_private_root()
    _in_a_run(own_proc, ipc, lambda: _python_can_read_its_files(paths))


def _fresh_uid_works(private_root: bool, own_proc: bool, ipc: bool) -> None:
    paths = rootfs.interpreter_paths()

    def as_a_fresh_user() -> None:
        syscalls.drop_bounding_set()
        drop_privileges(fresh_uid())
        syscalls.clear_capabilities()
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        _python_can_read_its_files(paths)

    if private_root:
        rootfs.build_private_root()
        _in_a_run(own_proc, ipc, as_a_fresh_user)
    else:
        as_a_fresh_user()


def _network_namespace_works() -> None:
    os.close(make_empty_network_namespace())


def _ipc_namespace_works() -> None:
    syscalls.unshare(syscalls.CLONE_NEWIPC)


def _no_new_privs_works() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    if syscalls.prctl(syscalls.PR_GET_NO_NEW_PRIVS, 0) != 1:
        raise OSError("no_new_privs did not stick")


def probe(allow_namespaces: bool, memory_cgroup: bool) -> Isolation:
    """Set up the zygote's namespaces, finding out which layers work here.

    An unprivileged caller first enters a user namespace; then the caller becomes process 1
    of a new PID namespace (so this returns in a forked process: call it early, in the
    single-threaded zygote, before it holds anything the original process should keep). The
    private root and the fresh user id are tried in throwaway children first, with Python
    reading its own files from inside, and used only where that works. The caller then builds
    the root and the network namespace with :func:`rootfs.build_private_root` and
    :func:`make_empty_network_namespace`. ``memory_cgroup`` says whether the caller holds one.
    """
    user_ns = allow_namespaces and os.geteuid() != 0 and enter_user_namespace()
    pid_ns = allow_namespaces and become_pid_namespace_init()
    if pid_ns:
        pid_ns = _succeeds_in_child(_pid_namespace_per_run)
    net_ns = allow_namespaces and _succeeds_in_child(_network_namespace_works)
    ipc_ns = allow_namespaces and _succeeds_in_child(_ipc_namespace_works)
    mount_ns = allow_namespaces and _succeeds_in_child(lambda: _private_root_works(pid_ns, ipc_ns))
    ipc_ns = ipc_ns and mount_ns  # a run enters its IPC namespace with its mount namespace
    root = os.geteuid() == 0 and not user_ns
    if root and _succeeds_in_child(lambda: _fresh_uid_works(mount_ns, pid_ns, ipc_ns)):
        process_limit = "separate-uid"
    elif user_ns:
        process_limit = "user-namespace"
    elif os.geteuid() != 0:
        process_limit = "shared-uid"
    else:
        process_limit = "none"
    nnp = _succeeds_in_child(_no_new_privs_works)
    return Isolation(user_ns, pid_ns, net_ns, mount_ns, ipc_ns, process_limit, memory_cgroup, nnp)
