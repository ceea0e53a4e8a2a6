"""Full isolation wherever the interpreter lives: a venv under /tmp, or under a home of mode 700.

A venv under ``/tmp`` used to be hidden by the sandbox's private ``/tmp``, and one under a
home directory of mode 700 unreadable to the run's fresh user id: the sandbox then fell back,
silently, to the Python guard alone, with the program running as root. Each test here builds
such a venv (``python -m venv --system-site-packages``: its ``sys.prefix`` is the new folder),
runs ``phi1 sandbox run`` with its interpreter, and checks the run got a private filesystem
and a fresh user id, and saw nothing next to the venv. The hostile suite then runs there too,
and must skip nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROGRAM = """
import json, os, sys
neighbour = {neighbour!r}
print(json.dumps({{"uid": os.getuid(), "prefix": sys.prefix, "root": sorted(os.listdir("/")),
                  "neighbour_visible": os.path.exists(neighbour)}}))
"""


def _make_venv(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(folder)],
        check=True,
        capture_output=True,
    )
    return folder / "bin" / "python"


def _environment(home: Path) -> dict[str, str]:
    # The new venv sees the project and this venv's packages (pytest, tqdm) through PYTHONPATH.
    packages = [REPO, *site.getsitepackages()]
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join(str(path) for path in packages),
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture(params=["under-tmp", "under-a-0700-home"])
def place(request, tmp_path):
    """(venv folder, home folder, a secret file beside the venv) for each place."""
    if request.param == "under-tmp":
        base = tmp_path / "checkout"
        base.mkdir()
        home = tmp_path / "home"
        home.mkdir()
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to make a home of mode 700 beside /root (finding if run so)")
        base = Path.home() / f".phi1-home-{secrets.token_hex(4)}"
        base.mkdir(mode=0o700)
        home = base
    secret = base / "secret.txt"
    secret.write_text("beside the venv\n")
    yield base / "venv", home, secret
    if request.param != "under-tmp":
        shutil.rmtree(base)


def test_phi1_sandbox_run_gets_every_layer_wherever_the_venv_lives(place, tmp_path):
    venv, home, secret = place
    python = _make_venv(venv)
    program = tmp_path / "program.py"
    program.write_text(PROGRAM.format(neighbour=str(secret)))
    completed = subprocess.run(
        [str(python), "-m", "phi1lib.cli", "sandbox", "run", str(program)],
        env=_environment(home),
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(completed.stdout)
    assert result["status"] == "passed", (result, completed.stderr)
    assert {"private-filesystem", "separate-uid", "private-proc"} <= set(result["isolation"])
    seen = json.loads(result["stdout_tail"])
    assert seen["prefix"] == str(venv)  # the interpreter of the venv in that place ran it
    assert seen["uid"] != 0
    assert not seen["neighbour_visible"]
    assert "run" not in seen["root"] and "home" not in seen["root"]


@pytest.mark.slow
def test_the_hostile_suite_runs_and_skips_nothing_there(place, tmp_path):
    venv, home, _ = place
    python = _make_venv(venv)
    completed = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            str(REPO / "tests" / "test_sandbox_hostile.py"),
            "-q",
            "-rs",
            "-k",
            "all-layers",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "pt"),
        ],
        env=_environment(home),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "skipped" not in completed.stdout.splitlines()[-1], completed.stdout[-3000:]
