"""The sandbox's behaviour on ordinary programs: verdicts, limits, the pool, the command line.

Hostile programs have their own file (test_sandbox_hostile.py).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from phi1lib import cli
from phi1lib.sandbox import (
    SandboxLimits,
    SandboxPool,
    SandboxResult,
    run_program,
    run_programs,
)
from phi1lib.sandbox.protocol import read_frame, write_frame
from phi1lib.sandbox.result import assertion_source, classify
from phi1lib.sandbox.tail import TailBuffer

REPO = Path(__file__).resolve().parent.parent


# --- pieces that need no process -------------------------------------------------------------


def test_limits_reject_non_positive_values_and_derive_the_cpu_limit():
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="max_processes"):
        SandboxLimits(max_processes=-1)
    assert SandboxLimits(timeout_s=3.0).cpu_seconds == 4
    assert SandboxLimits(timeout_s=3.0, cpu_s=0.2).cpu_seconds == 1
    limits = SandboxLimits(timeout_s=2.5, network=True)
    assert SandboxLimits.from_dict(limits.to_dict()) == limits


def test_tail_buffer_keeps_only_the_end_and_counts_everything():
    tail = TailBuffer(8)
    for chunk in (b"abc", b"defghij", b"k" * 100, "é!".encode()):
        tail.append(chunk)
    assert tail.total == 3 + 7 + 100 + 3
    assert tail.truncated
    assert tail.text() == "kkkkké!"
    small = TailBuffer(8)
    small.append(b"ok")
    assert (small.text(), small.truncated) == ("ok", False)


def test_assertion_source_returns_the_whole_failing_statement():
    source = textwrap.dedent(
        """\
        def check(candidate):
            assert candidate(1) == 2
            assert candidate(
                3
            ) == 4, "three"

        raise AssertionError("by hand")
        """
    )
    assert assertion_source(source, 2) == "assert candidate(1) == 2"
    assert assertion_source(source, 4) == 'assert candidate( 3 ) == 4, "three"'
    assert assertion_source(source, 7) == 'raise AssertionError("by hand")'
    assert assertion_source(source, None) is None
    assert assertion_source("def broken(:\n", 1) == "def broken(:"


def _raw(**overrides):
    raw = {
        "timed_out": False,
        "duration_s": 0.01,
        "program_status": 0,
        "cpu_s": 0.01,
        "report": {"outcome": "completed"},
        "stdout_tail": "",
        "stderr_tail": "",
        "stdout_bytes": 0,
        "stderr_bytes": 0,
        "isolation": ["python-guard"],
    }
    raw.update(overrides)
    return raw


@pytest.mark.parametrize(
    ("overrides", "status", "message_start"),
    [
        ({}, "passed", "ran to the end"),
        ({"timed_out": True, "program_status": None}, "timeout", "wall-clock limit of 3 s"),
        ({"program_status": signal.SIGKILL, "cpu_s": 4.0}, "timeout", "CPU-time limit of 4 s"),
        ({"program_status": signal.SIGXCPU}, "timeout", "CPU-time limit"),
        ({"program_status": signal.SIGSEGV, "report": None}, "crashed", "killed by SIGSEGV"),
        ({"program_status": signal.SIGKILL}, "crashed", "killed by SIGKILL"),
        ({"program_status": 0, "report": None}, "failed", "the program stopped before its end"),
        ({"program_status": 3 << 8, "report": None}, "crashed", "exited with code 3"),
        (
            {"program_status": 1 << 8, "report": {"outcome": "exit", "code": 0}},
            "failed",
            "the program called exit",
        ),
        (
            {"program_status": 71 << 8, "report": {"outcome": "setup-error", "message": "x"}},
            "crashed",
            "the sandbox could not start",
        ),
    ],
)
def test_classify_turns_raw_facts_into_a_verdict(overrides, status, message_start):
    result = classify(_raw(**overrides), "pass\n", SandboxLimits(timeout_s=3.0))
    assert (result.status, result.message[: len(message_start)]) == (status, message_start)
    assert result.passed == (status == "passed")


def test_classify_finds_the_failed_assertion():
    source = "x = 1\nassert x == 2, 'x is not two'\n"
    report = {
        "outcome": "exception",
        "type": "AssertionError",
        "message": "x is not two",
        "line": 2,
    }
    result = classify(_raw(program_status=1 << 8, report=report), source, SandboxLimits())
    assert (result.status, result.exit_code) == ("failed", 1)
    assert result.failed_assertion == "assert x == 2, 'x is not two'"
    assert result.message == "AssertionError: x is not two"
    assert json.loads(result.to_json())["failed_assertion"] == result.failed_assertion


def test_frames_round_trip():
    stream = io.BytesIO()
    write_frame(stream, {"source": "print('é')", "n": [1, 2]})
    write_frame(stream, {"second": True})
    stream.seek(0)
    assert read_frame(stream) == {"source": "print('é')", "n": [1, 2]}
    assert read_frame(stream) == {"second": True}
    assert read_frame(stream) is None


# --- programs in the shared pool -------------------------------------------------------------


def test_a_passing_program():
    result = run_program("import math\nprint('hello', math.pi)\nassert math.isclose(1, 1)\n")
    assert isinstance(result, SandboxResult)
    assert (result.status, result.exit_code, result.passed) == ("passed", 0, True)
    assert result.stdout_tail.startswith("hello 3.14159")
    assert result.failed_assertion is None
    assert 0 < result.duration_s < 3
    assert result.isolation[-1] == "python-guard"


def test_a_failing_humaneval_style_check_names_its_assertion():
    source = textwrap.dedent(
        """\
        def add(a, b):
            return a - b

        def check(candidate):
            assert candidate(0, 0) == 0
            assert candidate(
                2, 3
            ) == 5
            assert candidate(1, 1) == 2

        check(add)
        """
    )
    result = run_program(source)
    assert result.status == "failed"
    assert result.failed_assertion == "assert candidate( 2, 3 ) == 5"
    assert result.message == "AssertionError"
    assert "line 6, in check" in result.stderr_tail


def test_exceptions_and_syntax_errors_fail_with_their_message():
    result = run_program("print('before')\n1 / 0\n")
    assert (result.status, result.failed_assertion) == ("failed", None)
    assert result.message == "ZeroDivisionError: division by zero"
    assert result.stdout_tail == "before\n"
    result = run_program("def broken(:\n    pass\n")
    assert result.status == "failed"
    assert result.message.startswith("SyntaxError")


def test_the_program_runs_as_main_in_a_fresh_scratch_directory_with_a_clean_environment():
    source = textwrap.dedent(
        """\
        import os, sys, sqlite3, json
        assert __name__ == "__main__" and sys.modules["__main__"].__file__ == __file__
        print(json.dumps({"cwd": os.getcwd(), "file": __file__, "env": dict(os.environ),
                          "listing": sorted(os.listdir("."))}))
        with open("left-behind.txt", "w") as handle:
            handle.write("from an earlier run")
        """
    )
    first = json.loads(run_program(source).stdout_tail)
    second = json.loads(run_program(source).stdout_tail)
    assert first["listing"] == second["listing"] == ["program.py"]
    assert first["file"] == os.path.join(first["cwd"], "program.py")
    assert set(first["env"]) == {"PATH", "HOME", "TMPDIR", "LANG"}
    assert first["env"]["HOME"] == first["cwd"]


def test_the_caller_environment_does_not_reach_the_program(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-programs")
    with SandboxPool(1) as pool:
        source = (
            "import os\nprint(os.environ)\n"
            "for pid in ('self', '1'):\n"
            "    try:\n        print(open(f'/proc/{pid}/environ').read())\n"
            "    except OSError as error:\n        print(error)\n"
        )
        result = pool.run(source)
    assert result.passed
    assert "sk-not-for-programs" not in result.stdout_tail


def test_cpu_time_limit_ends_a_busy_program():
    limits = SandboxLimits(timeout_s=20.0, cpu_s=1.0)
    started = time.monotonic()
    result = run_program("while True:\n    pass\n", limits=limits)
    assert result.status == "timeout", result
    assert result.message == "CPU-time limit of 1 s exceeded"
    assert 0.5 <= result.cpu_s <= 2.5  # tick-sampled usage falls short on a loaded machine
    assert time.monotonic() - started < 15


def test_network_is_off_by_default_and_on_when_asked():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
    try:
        assert run_program(source).status == "failed"
        result = run_program(source, limits=SandboxLimits(network=True))
        assert result.passed, result
        connection, _ = server.accept()
        connection.close()
    finally:
        server.close()


def test_run_programs_keeps_input_order_and_at_most_n_at_a_time(capsys):
    # Later programs finish first; each prints when it started and ended.
    sources = [
        f"import time\nstart = time.time()\ntime.sleep({0.05 * (6 - i):.2f})\n"
        f"print({i}, start, time.time())\n"
        for i in range(6)
    ]
    results = run_programs(sources, workers=2, progress=True)
    spans = []
    for index, result in enumerate(results):
        number, start, end = result.stdout_tail.split()
        assert int(number) == index
        spans.append((float(start), float(end)))
    for start, _ in spans:
        running = sum(1 for other_start, other_end in spans if other_start <= start < other_end)
        assert running <= 2
    assert "sandbox" in capsys.readouterr().err  # the tqdm bar


def test_run_programs_rejects_a_non_string_with_its_index():
    with pytest.raises(TypeError, match="program 1"):
        run_programs(["pass", b"pass"])


def test_a_dead_zygote_gives_a_crashed_result_and_is_replaced():
    with SandboxPool(1) as pool:
        pool.start()
        (zygote,) = pool._started
        os.killpg(zygote.process.pid, signal.SIGKILL)  # the zygote and the process above it
        zygote.process.wait()
        result = pool.run("pass")
        assert result.status == "crashed"
        assert "zygote" in result.message
        assert pool.run("assert 2 + 2 == 4").passed


def test_a_forked_caller_gets_zygotes_of_its_own():
    with SandboxPool(1) as pool:
        pool.start()
        (parents_zygote,) = pool._started
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child reports whether it could run a program, then leaves at once
            try:
                ok = pool.run("assert 3 * 3 == 9").passed and pool._started[0] is not parents_zygote
                os.write(write_end, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(write_end)
        assert os.read(read_end, 1) == b"1"
        os.close(read_end)
        os.waitpid(pid, 0)
        assert pool.run("assert 2 ** 5 == 32").passed
        assert pool._started == [parents_zygote]


def test_the_fallback_without_namespaces_still_judges_and_cleans_up():
    with SandboxPool(1, namespaces=False) as pool:
        isolation = pool.isolation()
        assert not isolation["pid_namespace"] and not isolation["mount_namespace"]
        result = pool.run("import os\nprint(os.getcwd())\nassert False, 'nope'\n")
        assert (result.status, result.failed_assertion) == ("failed", "assert False, 'nope'")
        assert not os.path.exists(result.stdout_tail.strip())
        timeout = pool.run("while True: pass\n", SandboxLimits(timeout_s=0.5))
        assert timeout.status == "timeout"


# --- the command line ------------------------------------------------------------------------


def test_cli_runs_a_file_and_exits_zero_only_when_it_passed(tmp_path, capsys):
    passing = tmp_path / "passing.py"
    passing.write_text("assert [1, 2][::-1] == [2, 1]\n")
    failing = tmp_path / "failing.py"
    failing.write_text("assert sorted([2, 1]) == [2, 1]\n")
    assert cli.main(["sandbox", "run", str(passing), "--timeout", "2", "--memory", "256"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["status"] == "passed" and line["exit_code"] == 0
    assert cli.main(["sandbox", "run", str(failing)]) == 1
    line = json.loads(capsys.readouterr().out)
    assert line["failed_assertion"] == "assert sorted([2, 1]) == [2, 1]"
    assert {"status", "exit_code", "duration_s", "stderr_tail", "failed_assertion"} <= set(line)


def test_cli_rejects_missing_or_unreadable_files_with_exit_2(tmp_path, capsys):
    assert cli.main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    assert "missing.py: no such file" in capsys.readouterr().err
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00")
    assert cli.main(["sandbox", "run", str(binary)]) == 2
    assert "binary.py: cannot read it as UTF-8 text" in capsys.readouterr().err
    assert cli.main(["sandbox", "run", str(tmp_path)]) == 2
    assert cli.main(["sandbox", "run", str(binary), "--timeout", "0"]) == 2


# --- an unprivileged user --------------------------------------------------------------------

_AS_NOBODY = """
import json
from phi1lib.sandbox.client import ZygoteProcess
from phi1lib.sandbox.limits import SandboxLimits
from phi1lib.sandbox.result import classify

programs = {
    "passes": "assert sum(range(4)) == 6\\n",
    "fork_bomb": (
        "import ctypes, time\\nlibc = ctypes.CDLL(None, use_errno=True)\\n"
        "for _ in range(10):\\n    if libc.fork() < 0:\\n        print('refused', flush=True)\\n"
        "time.sleep(0.2)\\n"
    ),
    "socket": (
        "import _socket\\ns = _socket.socket()\\ns.settimeout(1)\\n"
        "s.connect(('127.0.0.1', 9))\\n"
    ),
}
zygote = ZygoteProcess()
limits = SandboxLimits(timeout_s=3, max_processes=8)
out = {"isolation": zygote.isolation}
for name, source in programs.items():
    result = classify(zygote.run(source, limits), source, limits)
    out[name] = [result.status, result.message, result.stdout_tail, list(result.isolation)]
zygote.close()
print(json.dumps(out))
"""


def _interpreter_for(uid: int) -> str | None:
    for candidate in (sys.executable, "/usr/bin/python3"):
        check = [candidate, "-c", "import sys; assert sys.version_info >= (3, 10)"]
        try:
            if subprocess.run(check, user=uid, group=uid, capture_output=True).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the whole suite already runs unprivileged")
def test_an_unprivileged_user_gets_a_contained_sandbox_too():
    nobody = 65534
    interpreter = _interpreter_for(nobody)
    if interpreter is None:
        pytest.skip("no Python interpreter here that an unprivileged user may run")
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/nonexistent"}
    completed = subprocess.run(
        [interpreter, "-c", _AS_NOBODY],
        user=nobody,
        group=nobody,
        extra_groups=[],
        env=environment,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout)
    assert out["passes"][0] == "passed"
    assert out["isolation"]["process_limit"] in ("user-namespace", "shared-uid")
    assert "refused" in out["fork_bomb"][2]  # RLIMIT_NPROC holds for the unprivileged user
    if out["isolation"]["network_namespace"]:
        assert out["socket"][:2] == ["failed", "OSError: [Errno 101] Network is unreachable"]
