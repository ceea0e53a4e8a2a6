"""Hostile programs: each must be contained, and leave the machine's files and processes as before.

Every test runs against two pools: one with every layer this kernel allows (namespaces, a fresh
user id when root) and one restricted to the layers that need no namespace, the fallback for
machines that forbid them. Programs that walk around the Python guard on purpose (ctypes,
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

from phi1lib.sandbox import SandboxLimits, SandboxPool

QUICK = SandboxLimits(timeout_s=1.5, memory_mb=256, file_size_mb=4, max_processes=8)
# Programs use this to name their processes (comm), so a leak is findable anywhere.
TAG_PRELUDE = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def tag(name):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
"""


@pytest.fixture(scope="module", params=["all-layers", "no-namespaces"])
def pool(request):
    with SandboxPool(2, namespaces=request.param == "all-layers") as started:
        started.start()
        yield started


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
