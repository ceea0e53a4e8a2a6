"""The curriculum: what the synthesis prompts ask a teacher for, as versioned data files.

phi-1's synthetic data owed its diversity to the constraints put into each prompt: topics and
audiences for the textbooks, function names for the exercises (paper §2.2). Those lists are the
book's own choice, not the teacher's, so they live here, beside the code that builds the
prompts: ``textbooks.toml`` (topics with their level and subtopics, audiences, styles) and
``exercises.toml`` (exercise families with their function names, topic and difficulty, which of
them get in-family held-out exercises, and the name modifiers that make reserved names).
The synthesis and analysis stages read them from here, and so does the offline teacher
(:mod:`phi1lib.teacher.offline`): a real LLM is asked for the same curriculum, and is not limited
to what the procedural stand-in can write. The prompt templates themselves belong to the teacher
client (``phi1lib/teacher/prompts/``), which every task shares, judging included; the curriculum
is synthesis data, so it sits with synthesis. Introduced in chapters 2 and 3.

Every file carries ``version = 1``; a file that breaks the format raises
:class:`CurriculumError` naming the file and the problem.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

CURRICULUM_DIR = Path(__file__).parent
TEXTBOOKS_FILE, EXERCISES_FILE = "textbooks.toml", "exercises.toml"
VERSION = 1
LEVELS = ("beginner", "intermediate", "advanced")
DIFFICULTIES = ("easy", "medium", "hard")


class CurriculumError(ValueError):
    """A curriculum file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Curriculum:
    """The lists the prompts are built from, in file order (the seeded sampling depends on it).

    ``topics``: ``{"topic", "subtopics", "level"}`` per topic; ``exercise_names``:
    ``{"function_name", "family", "topic", "difficulty"}`` per function name;
    ``infamily_families``: the family ids that get in-family held-out exercises;
    ``modifiers`` and ``reserved_share``: how names are varied and reserved (``synthesis.names``).
    """

    topics: tuple[dict[str, Any], ...]
    audiences: tuple[str, ...]
    styles: tuple[str, ...]
    exercise_names: tuple[dict[str, str], ...]
    infamily_families: tuple[str, ...]
    modifiers: tuple[str, ...]
    reserved_share: float


class _File:
    """One parsed file and the checks on its values, each error naming the file."""

    def __init__(self, path: Path, keys: set[str]):
        self.path = path
        try:
            with path.open("rb") as handle:
                self.data = tomllib.load(handle)
        except FileNotFoundError as error:
            raise CurriculumError(f"{path}: the curriculum file is missing") from error
        except tomllib.TOMLDecodeError as error:
            raise CurriculumError(f"{path}: not valid TOML: {error}") from error
        if self.data.get("version") != VERSION:
            self.fail(f"version is {self.data.get('version')!r}; this code reads version {VERSION}")
        self.keys(self.data, keys | {"version"}, "the file")

    def fail(self, problem: str) -> None:
        raise CurriculumError(f"{self.path}: {problem}")

    def keys(self, table: Any, allowed: set[str], where: str) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.fail(f"{where} must be a table")
        if missing := sorted(allowed - set(table)):
            self.fail(f"{where} lacks {missing}")
        if unknown := sorted(set(table) - allowed):
            self.fail(f"{where} has unknown keys {unknown}")
        return table

    def names(self, values: Any, where: str, *, identifiers: bool = False) -> tuple[str, ...]:
        """A non-empty list of distinct, non-empty strings (Python names if ``identifiers``)."""
        if not isinstance(values, list) or not values:
            self.fail(f"{where} must be a non-empty list")
        for value in values:
            if not isinstance(value, str) or not value.strip():
                self.fail(f"{where} has {value!r}, not a non-empty string")
            if identifiers and not value.isidentifier():
                self.fail(f"{where} has {value!r}, not a Python name")
        if len(set(values)) != len(values):
            self.fail(f"{where} repeats {sorted({v for v in values if values.count(v) > 1})}")
        return tuple(values)

    def tables(self, key: str) -> list[dict[str, Any]]:
        """The ``[[key]]`` tables of the file, at least one."""
        tables = self.data[key]
        if not isinstance(tables, list) or not tables or not isinstance(tables[0], dict):
            self.fail(f"{key!r} must be one or more [[{key}]] tables")
        return tables

    def choice(self, value: Any, options: tuple[str, ...], where: str) -> str:
        if value not in options:
            self.fail(f"{where} is {value!r}, not one of {list(options)}")
        return value


def _topics(file: _File) -> tuple[dict[str, Any], ...]:
    topics = []
    for number, table in enumerate(file.tables("topic"), 1):
        where = f"topic {number}"
        file.keys(table, {"topic", "level", "subtopics"}, where)
        name = file.names([table["topic"]], f"{where}'s name")[0]
        topics.append(
            {
                "topic": name,
                "subtopics": list(file.names(table["subtopics"], f"{where}'s subtopics")),
                "level": file.choice(table["level"], LEVELS, f"{where}'s level"),
            }
        )
    file.names([topic["topic"] for topic in topics], "the topic names")
    return tuple(topics)


def _families(file: _File, topics: set[str]) -> tuple[tuple[dict[str, str], ...], tuple[str, ...]]:
    names, infamily = [], []
    for number, table in enumerate(file.tables("family"), 1):
        where = f"family {number} ({table.get('id', '?')!r})"
        file.keys(table, {"id", "topic", "difficulty", "names", "infamily"}, where)
        family = file.names([table["id"]], f"{where}'s id", identifiers=True)[0]
        topic = file.choice(table["topic"], tuple(sorted(topics)), f"{where}'s topic")
        difficulty = file.choice(table["difficulty"], DIFFICULTIES, f"{where}'s difficulty")
        if not isinstance(table["infamily"], bool):
            file.fail(f"{where}'s infamily must be true or false")
        if table["infamily"]:
            infamily.append(family)
        for name in file.names(table["names"], f"{where}'s names", identifiers=True):
            names.append(
                {"function_name": name, "family": family, "topic": topic, "difficulty": difficulty}
            )
    file.names([entry["function_name"] for entry in names], "the function names of all families")
    file.names([table["id"] for table in file.tables("family")], "the family ids")
    return tuple(names), tuple(infamily)


@functools.cache
def load_curriculum(directory: Path = CURRICULUM_DIR) -> Curriculum:
    """The curriculum of ``directory`` (the package's own by default), checked; read once per
    process. Raises :class:`CurriculumError` naming the file and the problem."""
    textbooks = _File(directory / TEXTBOOKS_FILE, {"audiences", "styles", "topic"})
    exercises = _File(directory / EXERCISES_FILE, {"naming", "family"})
    topics = _topics(textbooks)
    names, infamily = _families(exercises, {topic["topic"] for topic in topics})
    naming = exercises.keys(exercises.data["naming"], {"modifiers", "reserved_share"}, "[naming]")
    share = naming["reserved_share"]
    if not isinstance(share, float) or not 0.0 < share < 1.0:
        exercises.fail(f"[naming] reserved_share is {share!r}, not a number in (0, 1)")
    return Curriculum(
        topics=topics,
        audiences=textbooks.names(textbooks.data["audiences"], "audiences"),
        styles=textbooks.names(textbooks.data["styles"], "styles"),
        exercise_names=names,
        infamily_families=infamily,
        modifiers=exercises.names(naming["modifiers"], "[naming] modifiers", identifiers=True),
        reserved_share=share,
    )
