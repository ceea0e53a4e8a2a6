"""The curriculum: its files load, bad files are refused by name, and nothing reads it from the
offline teacher (chapters 2 and 3)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from phi1lib.synthesis.curriculum import (
    CURRICULUM_DIR,
    EXERCISES_FILE,
    TEXTBOOKS_FILE,
    CurriculumError,
    load_curriculum,
)

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = "phi1lib.teacher.offline"
# The places that start the local server: the client's LocalTeacherServer, `phi1 teacher serve`
# and the benchmark of the offline server.
STARTS_THE_SERVER = {
    "phi1lib/teacher/endpoint.py",
    "phi1lib/teacher/cli.py",
    "benchmarks/bench_teacher.py",
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package's curriculum to break."""
    for name in (TEXTBOOKS_FILE, EXERCISES_FILE):
        shutil.copy(CURRICULUM_DIR / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_the_package_curriculum_loads_in_file_order():
    curriculum = load_curriculum()
    assert curriculum.topics[0] == {
        "topic": "variables and types",
        "subtopics": ["assigning variables", "checking types", "converting between types"],
        "level": "beginner",
    }
    assert curriculum.audiences[0] == "young learner" and "Q&A" in curriculum.styles
    first = curriculum.exercise_names[:4]
    assert [entry["function_name"] for entry in first] == [
        "count_vowels",
        "vowel_count",
        "num_vowels",
        "count_vowel_letters",
    ]
    assert {entry["family"] for entry in first} == {"count_vowels"}
    assert curriculum.infamily_families[0] == "count_vowels"
    assert set(curriculum.infamily_families) < {e["family"] for e in curriculum.exercise_names}
    assert len(curriculum.modifiers) >= 60 and 0 < curriculum.reserved_share < 1


def test_a_copy_loads_the_same(copy: Path):
    assert load_curriculum(copy) == load_curriculum()


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        (TEXTBOOKS_FILE, "version = 1", "version = 2", "version is 2"),
        (TEXTBOOKS_FILE, 'level = "beginner"', 'level = "expert"', "topic 1's level is 'expert'"),
        (TEXTBOOKS_FILE, 'styles = ["textbook"', 'styles = ["tutorial"', "styles repeats"),
        (TEXTBOOKS_FILE, 'level = "beginner"', 'level = "beginner"\nprose = 1', "unknown keys"),
        (TEXTBOOKS_FILE, "audiences = [", "audiences = [[", "not valid TOML"),
        (EXERCISES_FILE, 'topic = "strings"', 'topic = "knitting"', "topic is 'knitting'"),
        (EXERCISES_FILE, '"vowel_count"', '"count_vowels"', "repeats ['count_vowels']"),
        (EXERCISES_FILE, "infamily = true", 'infamily = "yes"', "infamily must be true or false"),
        (EXERCISES_FILE, "reserved_share = 0.2", "reserved_share = 2.0", "reserved_share is 2.0"),
        (EXERCISES_FILE, '"raw",', '"raw-ish",', "not a Python name"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_problem(copy, name, old, new, problem):
    edit(copy / name, old, new)
    with pytest.raises(CurriculumError) as caught:
        load_curriculum(copy)
    assert str(caught.value).startswith(f"{copy / name}: ")
    assert problem in str(caught.value)


def test_a_missing_file_is_named(copy: Path):
    (copy / EXERCISES_FILE).unlink()
    with pytest.raises(CurriculumError, match=f"{EXERCISES_FILE}: the curriculum file is missing"):
        load_curriculum(copy)


def source_of(path: Path) -> str:
    """A module's text, or a notebook's code cells (shell and magic lines left out)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    lines = [
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(source_of(path), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_server_starters_import_the_offline_teacher():
    sources = [
        path
        for folder, pattern in (
            ("phi1lib", "*.py"),
            ("benchmarks", "*.py"),
            ("scripts", "*.py"),
            ("notebooks", "*.ipynb"),
        )
        for path in sorted((ROOT / folder).rglob(pattern))
        if "offline" not in path.relative_to(ROOT).parts
    ]
    assert len(sources) > 100
    importers = {
        path.relative_to(ROOT).as_posix()
        for path in sources
        if any(m == OFFLINE or m.startswith(f"{OFFLINE}.") for m in imported_modules(path))
    }
    assert importers - STARTS_THE_SERVER == set()
    assert importers >= STARTS_THE_SERVER  # the check sees the imports it allows


def test_the_import_check_sees_lazy_and_dotted_imports(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from phi1lib.teacher import offline\n")
    assert f"{OFFLINE}" in imported_modules(module)
    module.write_text("import phi1lib.teacher.offline.content as c\n")
    assert f"{OFFLINE}.content" in imported_modules(module)
