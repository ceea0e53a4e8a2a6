"""Hostile programs: each must be contained, and leave the machine's files and processes as before.

Every test runs against each isolation variant this machine can produce: every layer the
kernel allows (namespaces, a fresh user id when root, a memory cgroup), the same without the
memory cgroup, the layers that need no namespace (the fallback for machines that forbid them),
and those without the cgroup either. A test that needs a layer a variant lacks skips there,
naming the layer: that skip is a finding about the variant (what it cannot promise), never
about the all-layers pool, which must skip nothing. Programs that walk around the Python guard on purpose (ctypes,
``_io``, ``_socket``) test the operating-system layer; they run only where that layer exists
(``os_layer``), since without it nothing is supposed to stop them.

Around each program the ``machine`` fixture snapshots what it could damage: the processes
descending from this test process (the zygotes must end each run with no child), processes
anywhere on the machine carrying the program's tag, a canary directory outside the sandbox, and
a canary secret in the real home directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import socket
import time
from pathlib import Path

import pytest
from sandbox_forgeries import FORGE_PRELUDE, FORGERIES

from phi1lib.sandbox import SandboxLimits, SandboxPool

QUICK = SandboxLimits(timeout_s=1.5, memory_mb=256, file_size_mb=4, max_processes=8)
# Programs use this to name their processes (comm), so a leak is findable anywhere.
TAG_PRELUDE = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def tag(name):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
"""


VARIANTS = {
    "all-layers": {"namespaces": True, "cgroup": True},
    "no-cgroup": {"namespaces": True, "cgroup": False},
    "no-namespaces": {"namespaces": False, "cgroup": True},
    "bare": {"namespaces": False, "cgroup": False},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def pool(request):
    with SandboxPool(2, **VARIANTS[request.param]) as started:
        started.start()
        yield started


def needs(isolation, *layers: str) -> None:
    """Skip where this variant lacks a layer the test relies on (a finding about the variant)."""
    missing = [layer for layer in layers if layer not in isolation]
    if missing:
        pytest.skip(f"finding: this variant lacks {', '.join(missing)} ({', '.join(isolation)})")


@pytest.fixture(scope="module")
def isolation(pool) -> tuple[str, ...]:
    return pool.run("pass").isolation


@pytest.fixture
def os_layer(isolation) -> None:
    """Skip tests of the OS layer where only the guard stands in the way."""
    if not {"private-filesystem", "separate-uid"} & set(isolation):
        pytest.skip(f"no operating-system file isolation here ({', '.join(isolation)})")


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, comm) for every process visible here."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], comm)
    return table


def _descendants(table: dict[int, tuple[int, str, str]], root: int) -> set[tuple[int, bool]]:
    """(pid, is a zombie) for every process below ``root``."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add((child, table[child][1] == "Z"))
            stack.append(child)
    return found


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Machine:
    """What a hostile program could damage, and the tag its processes carry."""

    def __init__(self, tmp_path: Path) -> None:
        self.tag = "sbx" + secrets.token_hex(4)
        self.canary_dir = tmp_path / "canary"
        self.canary_dir.mkdir()
        self.canary = self.canary_dir / "keep.txt"
        self.canary.write_text("must survive\n")
        self.secret = "secret-" + secrets.token_hex(8)
        self.home_canary = Path.home() / f".phi1-sandbox-canary-{self.tag}"
        self.home_canary.write_text(self.secret + "\n")
        self.escapes = [
            Path("/tmp") / f"escape-{self.tag}",
            self.canary_dir / f"escape-{self.tag}",
            Path.home() / f"escape-{self.tag}",
        ]
        self._before = self.snapshot()

    def snapshot(self) -> dict[str, object]:
        table = _processes()
        return {
            "descendants": _descendants(table, os.getpid()),
            "canary": _digest(self.canary_dir),
            "home_canary": self.home_canary.read_text() if self.home_canary.exists() else None,
        }

    def tagged_processes(self) -> list[int]:
        return [pid for pid, (_, _, comm) in _processes().items() if comm == self.tag]

    def assert_unharmed(self, result) -> None:
        assert self.snapshot() == self._before, result
        assert self.tagged_processes() == [], result
        for path in self.escapes:
            assert not path.exists(), (path, result)
        assert self.secret not in result.stdout_tail + result.stderr_tail, result

    def remove(self) -> None:
        self.home_canary.unlink(missing_ok=True)


@pytest.fixture
def machine(tmp_path):
    state = Machine(tmp_path)
    yield state
    state.remove()


def run(pool, machine, body: str, limits: SandboxLimits = QUICK):
    """Run ``body`` (which may use ``TAG``, ``CANARY``, ``HOME_CANARY``, ``ESCAPES``)."""
    header = (
        f"TAG = {machine.tag!r}\nCANARY = {str(machine.canary)!r}\n"
        f"HOME_CANARY = {str(machine.home_canary)!r}\n"
        f"ESCAPES = {[str(path) for path in machine.escapes]!r}\n"
    )
    result = pool.run(TAG_PRELUDE + header + body, limits)
    machine.assert_unharmed(result)
    return result


def test_infinite_loop_times_out(pool, machine):
    result = run(pool, machine, "tag(TAG)\nwhile True:\n    pass\n")
    assert result.status == "timeout"
    assert result.duration_s < QUICK.timeout_s + 1.0


def test_fork_bomb_is_refused_by_the_guard(pool, machine):
    result = run(pool, machine, "while True:\n    os.fork()\n")
    assert result.status == "failed"
    assert "os.fork" in result.message


def test_fork_bomb_behind_the_guard_hits_the_process_limit(pool, machine, isolation):
    if "process-limit" not in isolation:
        pytest.skip("RLIMIT_NPROC cannot apply here (root without the right to change uid)")
    # Exponential: every process keeps forking (2**10 processes if nothing stopped it).
    body = (
        "tag(TAG)\nrefused = 0\n"
        "for _ in range(10):\n"
        "    if libc.fork() < 0:\n"
        "        refused += 1\n"
        "if refused:\n"
        "    print('refused', ctypes.get_errno(), flush=True)\n"
        "time.sleep(0.3)\n"
    )
    result = run(pool, machine, body)
    assert "refused 11" in result.stdout_tail  # EAGAIN: the limit, not an error
    lines = result.stdout_tail.splitlines()
    assert len(lines) <= QUICK.max_processes


def test_memory_bomb_fails_with_memory_error(pool, machine):
    body = "tag(TAG)\nhoard = []\nwhile True:\n    hoard.append(bytearray(16 * 2**20))\n"
    # Zero-filling 256 MB of pages takes a while on a loaded machine: give it time to fail.
    result = run(pool, machine, body, dataclasses.replace(QUICK, timeout_s=10.0))
    assert result.status == "failed"
    assert result.message.startswith("MemoryError")


def test_huge_file_write_is_stopped(pool, machine):
    body = "with open('big.bin', 'wb') as out:\n    for _ in range(64):\n"
    body += "        out.write(bytes(2**20))\n"
    result = run(pool, machine, body)
    assert result.status == "failed"
    assert "File too large" in result.message


def test_filling_the_scratch_space_with_many_files_is_stopped(pool, machine, isolation):
    if "private-filesystem" not in isolation:
        pytest.skip("without a private tmpfs only single files are capped")
    body = "for i in range(64):\n    with open(f'part{i}.bin', 'wb') as out:\n"
    body += "        out.write(bytes(2**20))\n"
    result = run(pool, machine, body)
    assert result.status == "failed"
    assert "No space left" in result.message


def test_deleting_and_writing_outside_is_refused_by_the_guard(pool, machine):
    body = (
        "import shutil\nerrors = 0\n"
        "for attempt in (lambda: os.remove(CANARY),\n"
        "                lambda: shutil.rmtree(os.path.dirname(CANARY)),\n"
        "                lambda: open(CANARY, 'w'), lambda: os.rename(CANARY, ESCAPES[1]),\n"
        "                lambda: open(ESCAPES[0], 'w'), lambda: os.truncate(CANARY, 0)):\n"
        "    try:\n        attempt()\n    except PermissionError:\n        errors += 1\n"
        "assert errors == 6, errors\n"
        "open('inside.txt', 'w').write('fine')\nos.rename('inside.txt', 'moved.txt')\n"
        "os.remove('moved.txt')\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed", result


def test_deleting_and_writing_outside_behind_the_guard(pool, machine, os_layer):
    body = (
        "import _io\n"
        "for path in (CANARY, os.path.dirname(CANARY)):\n"
        "    assert libc.unlink(path.encode()) != 0 and libc.rmdir(path.encode()) != 0\n"
        "for path in (CANARY, ESCAPES[1], ESCAPES[2]):\n"
        "    try:\n        _io.FileIO(path, 'w')\n    except OSError:\n        pass\n"
        "    else:\n        raise SystemExit(f'wrote {path}')\n"
        "try:\n    _io.FileIO(ESCAPES[0], 'w')  # a private /tmp takes it; the host's must not\n"
        "except OSError:\n    pass\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed", result


def test_reading_the_home_directory(pool, machine):
    body = (
        "import pathlib\n"
        "for read in (lambda: open(HOME_CANARY).read(),\n"
        "             lambda: pathlib.Path(HOME_CANARY).read_text(),\n"
        "             lambda: os.read(os.open(HOME_CANARY, os.O_RDONLY), 100).decode()):\n"
        "    try:\n        print(read())\n    except OSError as error:\n"
        "        print(type(error).__name__)\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed"
    assert result.stdout_tail.split() == ["PermissionError"] * 3


def test_reading_the_home_directory_behind_the_guard(pool, machine, os_layer):
    body = (
        "import _io\ntry:\n    print(_io.FileIO(HOME_CANARY).read())\n"
        "except OSError as error:\n    print('refused', error.errno)\n"
        "home = os.path.dirname(HOME_CANARY)\n"
        "print(os.listdir(home) if os.access(home, os.R_OK) else [])\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed"
    assert "refused" in result.stdout_tail
    assert machine.home_canary.name not in result.stdout_tail


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _received_connection(server: socket.socket) -> bool:
    time.sleep(0.05)
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def test_socket_is_refused_by_the_guard(pool, machine, listener):
    port = listener.getsockname()[1]
    body = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
    result = run(pool, machine, body)
    assert result.status == "failed"
    assert "socket" in result.message
    assert not _received_connection(listener)


def test_socket_behind_the_guard_finds_no_network(pool, machine, listener, isolation):
    if "network-namespace" not in isolation:
        pytest.skip("no network namespace here: only the guard blocks sockets")
    port = listener.getsockname()[1]
    body = (
        f"import _socket\ns = _socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', {port}))\n"
    )
    result = run(pool, machine, body)
    assert result.status == "failed"
    assert "unreachable" in result.message
    assert not _received_connection(listener)


def test_os_system_and_subprocess_are_refused(pool, machine):
    body = (
        "import subprocess\nrefused = []\n"
        "for attempt in (lambda: os.system(f'touch {ESCAPES[0]}'),\n"
        "                lambda: subprocess.run(['touch', ESCAPES[0]]),\n"
        "                lambda: os.popen('id').read(),\n"
        "                lambda: os.execv('/bin/sh', ['sh', '-c', f'touch {ESCAPES[0]}'])):\n"
        "    try:\n        attempt()\n    except PermissionError:\n        refused.append(1)\n"
        "assert len(refused) == 4\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed", result


def test_shell_behind_the_guard_cannot_write_outside(pool, machine, os_layer):
    body = "print(libc.system(f'touch {ESCAPES[0]} {ESCAPES[1]} {ESCAPES[2]}'.encode()))\n"
    result = run(pool, machine, body)
    assert result.status == "passed"
    assert result.stdout_tail.strip() != "0"


@pytest.mark.parametrize(
    "early_exit", ["sys.exit(0)", "os._exit(0)", "exit()", "quit()", "raise SystemExit"]
)
def test_exiting_before_the_tests_is_not_a_pass(pool, machine, early_exit):
    result = run(pool, machine, f"{early_exit}\nassert False, 'the tests'\n")
    assert result.status == "failed"
    assert result.failed_assertion is None


def test_closing_the_report_channel_is_not_a_pass(pool, machine):
    # The channel's number is drawn at random (fd 3 is not it); closing every descriptor
    # closes it too, and a run that cannot report does not pass.
    result = run(pool, machine, "os.closerange(3, 4096)\nassert 1 + 1 == 2\n")
    assert result.status == "failed"
    assert "no report" in result.message
    assert run(pool, machine, "import contextlib\nwith contextlib.suppress(OSError):\n"
               "    os.close(3)\nassert 1 + 1 == 2\n").passed  # fmt: skip


def test_signalling_the_parent_is_refused_by_the_guard(pool, machine):
    body = (
        "import signal\nrefused = 0\n"
        "for attempt in (lambda: os.kill(os.getppid(), signal.SIGKILL),\n"
        "                lambda: os.killpg(os.getpgid(0), signal.SIGKILL),\n"
        "                lambda: os.kill(-1, signal.SIGKILL)):\n"
        "    try:\n        attempt()\n    except PermissionError:\n        refused += 1\n"
        "assert refused == 3\n"
    )
    assert run(pool, machine, body).status == "passed"


def test_signalling_everyone_behind_the_guard(pool, machine, isolation):
    if not {"pid-namespace", "separate-uid"} & set(isolation):
        pytest.skip("kill(-1) would reach this user's own processes here")
    body = (
        "tag(TAG)\nlibc.kill(os.getppid(), 9)\nlibc.kill(-1, 9)\nlibc.kill(0, 9)\ntime.sleep(0.2)\n"
    )
    result = run(pool, machine, body)
    assert result.status in ("passed", "crashed")
    assert pool.run("assert True").passed  # the zygote survived
    assert os.getppid() > 1  # and so did we


def test_closing_stdout_and_stderr(pool, machine):
    body = "sys.stdout.close()\nos.close(1)\nos.close(2)\nprint('gone', file=sys.stderr)\n"
    result = run(pool, machine, body)
    assert result.status == "failed"  # printing to the closed stderr raises OSError
    body = "os.close(1)\nos.close(2)\nassert 1 + 1 == 2\n"
    assert run(pool, machine, body).status == "passed"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_is_bounded(pool, machine, stream):
    body = f"chunk = 'x' * 65535 + '\\n'\nwhile True:\n    sys.{stream}.write(chunk)\n"
    result = run(pool, machine, body)
    assert result.status == "timeout"
    assert getattr(result, f"{stream}_bytes") > 256 * QUICK.tail_bytes
    assert len(getattr(result, f"{stream}_tail").encode()) <= QUICK.tail_bytes


def test_recursion_bombs(pool, machine):
    result = run(pool, machine, "def f():\n    return f()\nf()\n")
    assert result.status == "failed"
    assert result.message.startswith("RecursionError")
    # Through C (repr calls __repr__): without Python's limit, the C stack overflows.
    body = (
        "sys.setrecursionlimit(10**8)\nclass Nested:\n    def __repr__(self):\n"
        "        return repr(Nested())\nrepr(Nested())\n"
    )
    result = run(pool, machine, body)
    assert result.status == "crashed"
    assert result.message == "killed by SIGSEGV"


def test_daemon_is_killed_with_the_run(pool, machine):
    # Double fork and setsid, with raw libc calls: the daemon leaves the process group.
    body = (
        "if libc.fork() == 0:\n"
        "    libc.setsid()\n"
        "    if libc.fork() == 0:\n"
        "        tag(TAG)\n"
        "        time.sleep(30)\n"
        "    libc._exit(0)\n"
        "time.sleep(0.2)\n"
    )
    result = run(pool, machine, body)
    assert result.status == "passed"


def test_guard_blocks_fork_and_process_identity_changes(pool, machine):
    body = (
        "refused = 0\n"
        "for attempt in (os.fork, os.setsid, lambda: os.setuid(0), lambda: os.chroot('/')):\n"
        "    try:\n        attempt()\n    except PermissionError:\n        refused += 1\n"
        "assert refused == 4\n"
    )
    assert run(pool, machine, body).status == "passed"


# --- issue 15, point 4: what an independent hostile suite found, and more ------------------

REPO = Path(__file__).resolve().parent.parent


def test_other_processes_environments_are_out_of_reach(pool, machine, isolation, monkeypatch):
    needs(isolation, "private-proc")
    secret = "sk-" + secrets.token_hex(12)
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # this process's environment: /proc shows it
    body = (
        "found = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1'))\n"
        "    except (OSError, ValueError):\n"
        "        pass\n"
        "print(len([n for n in os.listdir('/proc') if n.isdigit()]), 'processes')\n"
        "print('\\n'.join(found))\n"
    )
    result = run(pool, machine, body)
    assert result.passed, result
    assert secret not in result.stdout_tail
    assert result.stdout_tail.startswith("1 processes")  # only the run itself


def test_writes_land_nowhere_outside_the_run(pool, machine, isolation):
    needs(isolation, "private-filesystem")
    targets = [
        f"/tmp/escape-{machine.tag}",
        f"/var/tmp/escape-{machine.tag}",
        f"/dev/shm/escape-{machine.tag}",
        str(Path.home() / f"escape-{machine.tag}"),
        str(REPO / f"escape-{machine.tag}"),
    ]
    body = (
        f"for path in {targets!r}:\n"
        "    fd = libc.open(path.encode(), 0o101, 0o644)  # O_WRONLY | O_CREAT, past the guard\n"
        "    print(path, fd >= 0)\n"
    )
    result = run(pool, machine, body)
    assert result.passed, result
    for path in targets:
        assert not Path(path).exists(), (path, result.stdout_tail)


def test_no_capabilities_and_no_new_privileges(pool, machine, isolation):
    body = (
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l)\n"
        "print(status['CapEff'].strip(), status['CapBnd'].strip(), status['NoNewPrivs'].strip())\n"
    )
    result = run(pool, machine, body)
    effective, bounding, no_new_privs = result.stdout_tail.split()
    assert int(effective, 16) == 0, result.stdout_tail  # in every variant, root or not
    needs(isolation, "no-new-privileges")
    assert no_new_privs == "1"
    if os.geteuid() == 0:
        assert int(bounding, 16) == 0  # no setuid binary can give any back


def test_joining_another_network_namespace_is_refused(pool, machine, isolation, listener):
    needs(isolation, "network-namespace")
    port = listener.getsockname()[1]
    body = (
        "import _socket\njoined = []\n"
        "for pid in ['1', 'self', str(os.getppid())]:\n"
        "    try:\n"
        "        fd = os.open(f'/proc/{pid}/ns/net', os.O_RDONLY)\n"
        "        joined.append(libc.setns(fd, 0x40000000) == 0)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('joined' if any(joined) else 'refused')\n"
        "s = _socket.socket()\ns.settimeout(1)\n"
        f"print(s.connect_ex(('127.0.0.1', {port})))\n"
    )
    result = run(pool, machine, body)
    assert result.stdout_tail.split()[0] == "refused", result
    assert not _received_connection(listener)


def test_no_host_socket_is_reachable(pool, machine, isolation, tmp_path):
    needs(isolation, "private-filesystem")
    folder = Path("/run") if os.access("/run", os.W_OK) else tmp_path
    path = folder / f"phi1-{machine.tag}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.setblocking(False)
    try:
        body = (
            "import _socket\ns = _socket.socket(_socket.AF_UNIX)\n"
            f"print(s.connect_ex({str(path)!r}))\n"
        )
        result = run(pool, machine, body)
        assert result.stdout_tail.strip() != "0", result
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
        path.unlink()


def test_memory_of_all_processes_and_shared_memory_is_capped(pool, machine, isolation):
    needs(isolation, "memory-cgroup")
    # Six children of 100 MB each (each under RLIMIT_AS), a memfd of 600 MB and SysV shared
    # memory: together far over the run's 256 MB; only a cap on the whole run stops them.
    body = (
        "r, w = os.pipe()\n"
        "for _ in range(6):\n"
        "    if libc.fork() == 0:\n"
        "        hoard = bytearray(100 * 2**20)\n"
        "        os.write(w, b'x')\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "memfd = os.memfd_create('hoard')\nwritten = 0\n"
        "try:\n"
        "    for _ in range(600):\n"
        "        written += os.write(memfd, bytes(2**20))\n"
        "except OSError:\n"
        "    pass\n"
        "time.sleep(1)\nos.set_blocking(r, False)\n"
        "try:\n    alive = len(os.read(r, 64))\nexcept BlockingIOError:\n    alive = 0\n"
        "print(alive, written // 2**20, flush=True)\n"
    )
    limits = dataclasses.replace(QUICK, timeout_s=15.0)
    result = run(pool, machine, body, limits)
    if result.passed:  # the children the cgroup killed never reported
        alive, written_mb = map(int, result.stdout_tail.split())
        assert alive * 100 + written_mb < 600, result.stdout_tail
    else:
        assert result.status == "crashed" and "memory" in result.message, result


def test_scratch_space_caps_inodes(pool, machine, isolation):
    needs(isolation, "private-filesystem")
    body = (
        "made = 0\n"
        "try:\n"
        "    for i in range(300_000):\n"
        "        libc.mknod(f'f{i}'.encode(), 0o100644, 0) == 0 or 1 / 0\n"
        "        made += 1\n"
        "except ZeroDivisionError:\n"
        "    pass\n"
        "print(made, ctypes.get_errno())\n"
    )
    result = run(pool, machine, body, dataclasses.replace(QUICK, max_files=500))
    made, errno = map(int, result.stdout_tail.split())
    assert made <= 500 + 8 and errno == 28, result  # ENOSPC: out of inodes (8: the sandbox's own)


def test_nothing_of_one_run_is_visible_to_the_next(pool, machine, isolation):
    needs(isolation, "private-filesystem", "ipc-namespace")
    secret = "PREVIOUS-RUN-SECRET-" + secrets.token_hex(8)
    leave = (
        f"SECRET = {secret!r}\n"
        "for path in ('/tmp/left', '/var/tmp/left', '/dev/shm/left', 'left'):\n"
        "    fd = libc.open(path.encode(), 0o101, 0o644)\n"
        "    fd >= 0 and os.write(fd, SECRET.encode())\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "key = libc.shmget(0x5EC2E7, 4096, 0o1666)\n"
        "ctypes.memmove(libc.shmat(key, None, 0), SECRET.encode(), len(SECRET))\n"
    )
    assert run(pool, machine, leave).passed
    needle = secret[:20]  # joined at run time below, so the reader's constants lack it
    look = (
        "import gc, glob\nfound = []\n"
        f"needle = ''.join([{needle[:10]!r}, {needle[10:]!r}])\n"
        "for path in glob.glob('/tmp/**', recursive=True) + glob.glob('/var/tmp/*') +\\\n"
        "        glob.glob('/dev/shm/*') + glob.glob('*'):\n"
        "    try:\n        found.append(open(path, errors='replace').read())\n"
        "    except OSError:\n        pass\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "key = libc.shmget(0x5EC2E7, 4096, 0o666)\n"
        "if key >= 0:\n"
        "    found.append(ctypes.string_at(libc.shmat(key, None, 0), 64).decode('latin-1'))\n"
        "found += [o for o in gc.get_objects() if isinstance(o, str)]\n"
        "print('FOUND' if any(needle in text for text in found) else 'clean')\n"
    )
    for _ in range(3):  # whichever zygote serves the next runs
        result = run(pool, machine, look)
        assert result.stdout_tail.strip() == "clean", result


def test_a_killed_zygote_is_replaced(pool, machine, isolation):
    # Where the run may signal its parent (no PID namespace, no fresh uid), the forker dies;
    # elsewhere the signal is refused. Either way the pool serves the next program.
    body = "tag(TAG)\nlibc.kill(os.getppid(), 9)\ntime.sleep(0.2)\n"
    result = pool.run(TAG_PRELUDE + f"TAG = {machine.tag!r}\n" + body, QUICK)
    assert result.status in ("passed", "crashed"), result
    for _ in range(3):
        assert pool.run("assert 6 * 7 == 42").passed
    assert machine.tagged_processes() == []


# --- forged verdicts, in every variant ------------------------------------------------------


@pytest.fixture(scope="module")
def graded_problems():
    from phi1lib.evaluation.humaneval import load_humaneval
    from phi1lib.evaluation.mbpp import load_mbpp

    return [load_humaneval()[0], load_mbpp("test")[0]]


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_wrong_completion_cannot_forge_a_pass(pool, graded_problems, forgery):
    from phi1lib.evaluation.grading import graded_program

    for problem in graded_problems:
        if problem.benchmark == "humaneval":
            wrong = f"    return None\n{FORGE_PRELUDE}{FORGERIES[forgery]}"
        else:  # MBPP: the model writes the whole (wrong) function
            wrong = f"\ndef {problem.entry_point}(*args):\n    return None\n"
            wrong += FORGE_PRELUDE + FORGERIES[forgery]
        source, tests = graded_program(problem, wrong)
        assert tests is not None  # both problems' tests are split
        result = pool.run(source, QUICK, tests=tests, as_main=False)
        assert not result.passed, (problem.task_id, forgery, result)
        assert result.verdict == "parent"
        assert "LEAK" not in result.stdout_tail
