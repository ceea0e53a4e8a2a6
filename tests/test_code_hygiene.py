"""Repository hygiene: notebooks committed without outputs, code formatted and linted by ruff."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PYTHON_TREES = ["phi1lib", "tests", "benchmarks", "scripts"]


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapter notebooks found"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    dirty = [
        i for i, cell in enumerate(cells) if cell.get("outputs") or cell.get("execution_count")
    ]
    assert not dirty, f"{notebook.name}: cells {dirty} carry outputs; run scripts/nbtool.py strip"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_setup_and_parameters(notebook):
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells[:3]]
    assert 'find_spec("phi1lib")' in sources[0], "first code cell must install phi1lib when missing"
    assert "parameters" in cells[1].get("metadata", {}).get("tags", []), (
        "second code cell: parameters"
    )
    assert "setup(" in sources[2], "third code cell must call phi1lib.notebook.setup"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_listed_in_the_toc(notebook):
    toc = (REPO / "_toc.yml").read_text()
    assert f"notebooks/{notebook.stem}" in toc


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed; `make install` installs it")
    return [found]


def test_ruff_lint():
    trees = [t for t in PYTHON_TREES if (REPO / t).exists()]
    result = subprocess.run(_ruff() + ["check", *trees], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    trees = [t for t in PYTHON_TREES if (REPO / t).exists()]
    result = subprocess.run(
        _ruff() + ["format", "--check", *trees], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_unfinished_code():
    hits = []
    for path in (REPO / "phi1lib").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(mark in line for mark in ("NotImplementedError", "TODO", "FIXME", "XXX")):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_every_mentioned_config_file_exists():
    """Readers copy launch commands from docstrings and pages; a renamed config must not linger."""
    pattern = re.compile(r"\bconfigs/[\w.-]+\.(?:yaml|json)\b")
    texts = [*(REPO / "phi1lib").rglob("*.py"), *(REPO / "book").glob("*.md"), *NOTEBOOKS]
    texts += [REPO / "README.md"]
    missing = {
        f"{path.relative_to(REPO)}: {name}"
        for path in texts
        for name in pattern.findall(path.read_text())
        if not (REPO / name).is_file()
    }
    assert not missing, "\n".join(sorted(missing))


def test_nothing_reads_outside_the_checkout():
    """A reader clones this repository alone: no code, test or page may reach for a folder beside
    it (such as a ``shared`` data folder next to the checkout)."""
    pattern = re.compile(
        r"""\.\./shared|parent\s*/\s*["']shared["']|["']shared["']\s*/\s*["']data"""
    )
    texts = [
        *(REPO / "phi1lib").rglob("*.py"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "benchmarks").rglob("*.py"),
        *(REPO / "book").glob("*.md"),
        *NOTEBOOKS,
        REPO / "Makefile",
        REPO / "_config.yml",
    ]
    this_test = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(REPO)}:{number}"
        for path in texts
        if path.resolve() != this_test
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "\n".join(hits)
