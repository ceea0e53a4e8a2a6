"""No program can stop the pool: refused, crashed and malformed runs become results.

Each program of issue 15's point 5 runs followed by a good program, with one and with two
workers, under a time limit: the good program must pass every time (a zygote that was never
given back would make it wait forever, which the timeout turns into a failure).
"""

from __future__ import annotations

import json
import os

import pytest

from phi1lib import cli
from phi1lib.sandbox import SandboxLimits, SandboxPool, rootfs

GOOD = "assert sorted([3, 1, 2]) == [1, 2, 3]\n"
# Finds the completion token in the harness's frame and writes a report of the wrong shape.
WRONG_SHAPE_REPORT = """
import os, sys
frame, token = sys._getframe(), None
while frame is not None:
    token = frame.f_locals.get("token", token)
    frame = frame.f_back
if token is None:  # no token in reach: write junk on the report channel instead
    os.write(3, b"[]\\n")
else:
    os.write(3, (str(token) + " []\\n").encode())
os._exit(0)
"""
DEEP_TREE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(2500):  # deeper than PATH_MAX and than Python's recursion limit
    assert libc.mkdir(b"d", 0o700) == 0 and libc.chdir(b"d") == 0
libc.chmod(b".", 0)
"""
OPEN_EVERYTHING = """
import os
opened = []
try:
    while True:
        opened.append(os.open("/dev/null", os.O_RDONLY))
except OSError as error:
    print(len(opened), error.errno)
"""
PROGRAMS = {
    "lone-surrogate": ("x = '\\ud800'\nassert len(x) == 1\n", SandboxLimits()),
    "3MB-source-1MB-files": ("x = 1\n#" + "#" * 3_000_000 + "\n", SandboxLimits(file_size_mb=1)),
    "40MB-source": ("x = 1\n#" + "#" * 40_000_000 + "\n", SandboxLimits(timeout_s=20)),
    "2500-deep-tree": (DEEP_TREE, SandboxLimits(timeout_s=20)),
    "wrong-shape-report": (WRONG_SHAPE_REPORT, SandboxLimits()),
    "open-every-descriptor": (OPEN_EVERYTHING, SandboxLimits(max_open_files=64)),
}


def _check_bad_result(name, result):
    assert result.status in ("failed", "crashed", "timeout", "passed"), result
    assert result.message, result  # every result says why
    if name == "wrong-shape-report":
        assert not result.passed, result
    if name == "open-every-descriptor":
        count, errno = result.stdout_tail.split()
        assert int(count) <= 64 and int(errno) == 24, result  # EMFILE at the cap
    if name == "3MB-source-1MB-files":
        assert result.passed, result  # the program itself may be larger than its file limit


@pytest.mark.timeout(300)
@pytest.mark.parametrize("namespaces", [True, False], ids=["all-layers", "no-namespaces"])
@pytest.mark.parametrize("workers", [1, 2])
def test_every_point_5_program_is_followed_by_a_passing_one(workers, namespaces):
    with SandboxPool(workers, namespaces=namespaces) as pool:
        for name, (source, limits) in PROGRAMS.items():
            if workers == 1:
                results = [pool.run(source, limits), pool.run(GOOD)]
            else:  # two bad programs at once, then a good one on each worker
                results = pool.run_many([source, source], limits) + pool.run_many([GOOD, GOOD])
            for bad in results[:-workers]:
                _check_bad_result(name, bad)
            for good in results[-workers:]:
                assert good.passed, (name, good)


@pytest.mark.timeout(120)
def test_a_refused_run_is_a_result_and_the_zygote_serves_on(monkeypatch):
    with SandboxPool(1) as pool:
        pool.start()
        (zygote,) = pool._started
        # A limit the zygote cannot apply: it refuses the run but keeps serving.
        monkeypatch.setattr(SandboxLimits, "to_dict", lambda self: {"no-such-limit": 1})
        refused = pool.run(GOOD)
        monkeypatch.undo()
        assert refused.status == "crashed"
        assert refused.message.startswith("the sandbox refused the program"), refused
        assert pool.run(GOOD).passed
        assert pool._started == [zygote]


def test_remove_tree_removes_a_tree_deeper_than_path_max_without_permissions(tmp_path):
    top = tmp_path / "scratch"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(2500):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.mkdir("locked", dir_fd=fd)
    os.close(fd)
    os.chmod(top / "d", 0)
    rootfs.remove_tree(str(top))
    assert not top.exists()


def test_wrong_shaped_reports_are_malformed_not_errors():
    from phi1lib.sandbox.zygote import _completion_report

    for line in ("[]", "3", '{"outcome": "flying"}', "not json"):
        report = _completion_report(f"tok {line}\n", "tok")
        assert report["outcome"] == "malformed", line
    assert _completion_report('tok {"outcome": "completed"}\n', "tok") == {"outcome": "completed"}
    assert _completion_report("other {}\n", "tok") is None


def test_cli_prints_its_json_when_the_sandbox_cannot_run(tmp_path, capsys, monkeypatch):
    program = tmp_path / "p.py"
    program.write_text(GOOD)

    def broken(*args, **kwargs):
        raise RuntimeError("no zygote today")

    monkeypatch.setattr("phi1lib.sandbox.pool.run_program", broken)
    assert cli.main(["sandbox", "run", str(program)]) == 1
    line = json.loads(capsys.readouterr().out)
    assert line["status"] == "crashed" and "no zygote today" in line["message"]


def test_nofile_is_capped_in_the_limits():
    assert SandboxLimits().max_open_files == 256
    with pytest.raises(ValueError, match="max_open_files"):
        SandboxLimits(max_open_files=0)
