"""Repository hygiene: notebooks committed without outputs, code and notebooks formatted and
linted by ruff, back-links and sources that a reader can follow."""

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
PYTHON_TREES = ["phi1lib", "tests", "benchmarks", "scripts", "notebooks"]  # as `make lint`


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


def test_every_notebook_installs_phi1lib_with_the_same_cell():
    """One install cell, so a fix to it (a pinned release, another index) reaches every chapter."""
    first_cells = {
        notebook.name: next(
            "".join(c["source"])
            for c in json.loads(notebook.read_text())["cells"]
            if c["cell_type"] == "code"
        )
        for notebook in NOTEBOOKS
    }
    reference = first_cells[NOTEBOOKS[0].name]
    differing = [name for name, cell in first_cells.items() if cell != reference]
    assert not differing, f"install cells differ from {NOTEBOOKS[0].name}'s: {differing}"


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


# A library docstring names the chapter that introduces it, and often the section:
# 'chapter 4 ("The training loop")', '(chapter 2, "How many tokens?")', 'the preface ("Profiles")',
# "the preface's \"How to cite\"", 'the appendix "Reproducibility"', 'the appendix on teacher
# endpoints, "The offline teacher"', 'chapters 2 ("Synthetic textbooks") and 3 ("CodeExercises")'
# (the second chapter's number and heading are caught on their own), and a chapter by its title
# alone, 'chapter "The paper at a glance"'.
BACK_LINK = re.compile(
    r"""(?P<where>chapters?(?:\s+(?P<number>\d+))?|the\s+preface(?:'s)?
            |the\s+appendix(?:\s+on\s+[a-z ]+?)?|\)\s+and\s+(?P<also>\d+))
        \s*,?\s*\(?\s*"(?P<title>[^"]+)\"""",
    re.IGNORECASE | re.VERBOSE,
)


def _headings(path: Path) -> set[str]:
    """Every heading of a notebook or Markdown page (the title too), without Markdown code marks."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    return {
        " ".join(line.lstrip("#").replace("`", "").split())
        for line in text.splitlines()
        if re.match(r"#{1,6} ", line)
    }


def _book_headings() -> dict[str, set[str]]:
    """Headings per part of the book: 'chapter N', 'preface', 'appendix' (all appendices), and
    'chapter' (the chapters' titles, for a back-link that names a chapter by its title)."""
    parts: dict[str, set[str]] = {"preface": _headings(REPO / "book" / "intro.md")}
    appendices = [*(REPO / "book").glob("appendix_*.md"), *(REPO / "notebooks").glob("99_*.ipynb")]
    parts["appendix"] = set().union(*(_headings(path) for path in appendices))
    parts["chapter"] = set()
    for notebook in NOTEBOOKS:
        number = int(notebook.name.split("_", 1)[0])
        if number < 99:
            parts[f"chapter {number}"] = _headings(notebook)
            parts["chapter"].add(_title(notebook))
    return parts


def _title(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "markdown")
    title = next(line for line in "".join(first["source"]).splitlines() if line.startswith("# "))
    return " ".join(title.lstrip("#").replace("`", "").split())


def _part(match: re.Match) -> str:
    """The part of the book a back-link names: 'chapter 4', 'chapter' (by title), 'preface'."""
    number = match["number"] or match["also"]
    if number:
        return f"chapter {number}"
    where = match["where"].lower()
    return "chapter" if where.startswith("chapter") else where.split()[1].removesuffix("'s")


def test_chapter_back_links_name_real_headings():
    """A reader follows a docstring's 'chapter 4 ("Held-out loss")' to that section; it must exist."""
    parts = _book_headings()
    links, broken = 0, []
    for path in sorted((REPO / "phi1lib").rglob("*.py")):
        text = path.read_text()
        for match in BACK_LINK.finditer(text):
            part = _part(match)
            title = " ".join(match["title"].split())
            links += 1
            if title not in parts.get(part, set()):
                line = text[: match.start()].count("\n") + 1
                broken.append(f"{path.relative_to(REPO)}:{line}: {part} has no heading {title!r}")
    assert links > 40, "the back-link pattern no longer finds the library's back-links"
    assert not broken, "\n".join(broken)


def test_the_back_link_pattern_reads_every_form():
    """Each way the library writes a back-link is read as the part and heading it names."""
    forms = {
        'Introduced in chapter 4 ("The training loop").': ("chapter 4", "The training loop"),
        '(chapter 2, "How many tokens?")': ("chapter 2", "How many tokens?"),
        'the preface ("Profiles")': ("preface", "Profiles"),
        'the preface\'s "How to cite" entry': ("preface", "How to cite"),
        'the appendix "Reproducibility"': ("appendix", "Reproducibility"),
        'the appendix on teacher endpoints, "The offline teacher"': (
            "appendix",
            "The offline teacher",
        ),
        'Introduced in chapter "The paper at a glance".': ("chapter", "The paper at a glance"),
    }
    for text, expected in forms.items():
        match = BACK_LINK.search(text)
        assert match and (_part(match), match["title"]) == expected, text
    both = 'chapters 2 ("Synthetic textbooks") and 3 ("CodeExercises")'
    found = [(_part(m), m["title"]) for m in BACK_LINK.finditer(both)]
    assert found == [("chapter 2", "Synthetic textbooks"), ("chapter 3", "CodeExercises")]


# Documents a reader of the repository does not have, whatever the spelling or line break.
OUTSIDE_DOCUMENTS = re.compile(
    r"paper[\s_-]+notes|performance[\s_-]+notes|docs/\w+\.md|\b(?:performance|style)\.md\b",
    re.IGNORECASE,
)


def test_nothing_cites_documents_outside_the_repository():
    """Sources are the paper's sections and the book's chapters; a reader has no 'paper-notes'."""
    texts = [
        *(REPO / "phi1lib").rglob("*.py"),
        *(REPO / "phi1lib").rglob("*.toml"),
        *(REPO / "tests").rglob("*.py"),
        *(REPO / "benchmarks").rglob("*.py"),
        *(REPO / "scripts").rglob("*.py"),
        *(REPO / "book").glob("*.md"),
        *NOTEBOOKS,
        REPO / "README.md",
    ]
    this_test = Path(__file__).resolve()
    hits = []
    for path in texts:
        if path.resolve() == this_test:
            continue
        text = path.read_text()
        for match in OUTSIDE_DOCUMENTS.finditer(text):
            line = text[: match.start()].count("\n") + 1
            hits.append(f"{path.relative_to(REPO)}:{line}: {' '.join(match[0].split())}")
    assert not hits, "\n".join(hits)


def test_the_outside_documents_pattern_finds_what_it_should():
    """The check above must not pass because its pattern went blind."""
    for text in ("see paper-notes §2", "the paper\nnotes", "docs/performance.md", "style.md"):
        assert OUTSIDE_DOCUMENTS.search(text), text
    for text in ("paper §2.3", "chapter 4", "notes.txt", "lecture notes"):
        assert not OUTSIDE_DOCUMENTS.search(text), text
