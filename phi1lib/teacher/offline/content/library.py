"""The concept library: Python topics, their subtopics, and the material a section is written from.

Each ``topics/*.toml`` file holds ``[[topic]]`` tables. A topic has a name, a display title, a
level, four pieces of prose (``summary``, ``analogy`` for young readers, ``detail`` for advanced
ones, ``pitfall``), an optional ``reference`` (a dotted name whose docstring the writer may quote,
as Cosmopedia seeds prompts with real text), and ``[[topic.example]]`` tables: one per subtopic,
each with a ``question``, an ``intro``, a ``code`` template with ``${slots}`` (see ``vocab.py``)
and an ``explain`` paragraph. The topics the prompts ask for are the curriculum's
(``phi1lib/synthesis/curriculum/textbooks.toml``); this library is what the stand-in knows of them
(chapter 2).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import tomllib

TOPICS_DIR = Path(__file__).with_name("topics")
LEVELS = ("beginner", "intermediate", "advanced")
TOPIC_FIELDS = ("topic", "title", "level", "summary", "analogy", "detail", "pitfall")
EXAMPLE_FIELDS = ("subtopic", "question", "intro", "code", "explain")


def normalise_name(name: str) -> str:
    """Lower-case, underscores and dashes to spaces, runs of spaces collapsed: the lookup key."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(name))).strip().lower()


def _check_topic(topic: dict[str, Any], where: str) -> None:
    for key in TOPIC_FIELDS:
        if not isinstance(topic.get(key), str) or not topic[key].strip():
            raise ValueError(f"{where}: missing or empty field {key!r}")
    if topic["level"] not in LEVELS:
        raise ValueError(f"{where}: level {topic['level']!r} is not one of {LEVELS}")
    examples = topic.get("example")
    if not isinstance(examples, list) or len(examples) < 2:
        raise ValueError(f"{where}: needs at least two [[topic.example]] tables")
    for number, example in enumerate(examples, 1):
        for key in EXAMPLE_FIELDS:
            if not isinstance(example.get(key), str) or not example[key].strip():
                raise ValueError(f"{where}, example {number}: missing or empty field {key!r}")


@functools.cache
def load_library() -> dict[str, dict[str, Any]]:
    """Every topic of ``topics/*.toml``, keyed by its normalised name, in file order."""
    library: dict[str, dict[str, Any]] = {}
    for path in sorted(TOPICS_DIR.glob("*.toml")):
        try:
            with path.open("rb") as handle:
                tables = tomllib.load(handle).get("topic", [])
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path.name}: not valid TOML: {error}") from error
        for number, topic in enumerate(tables, 1):
            where = f"{path.name}: topic {number} ({topic.get('topic', '?')!r})"
            _check_topic(topic, where)
            key = normalise_name(topic["topic"])
            if key in library:
                raise ValueError(f"{where}: topic name already used in another table")
            library[key] = topic
    return library


def find_topic(name: str) -> dict[str, Any]:
    """The library entry for ``name`` (case and ``_``/``-`` insensitive).

    Raises ``ValueError`` naming the topic when it is not in the library; the teacher server turns
    that into an HTTP 400. Introduced in chapter 2.
    """
    library = load_library()
    topic = library.get(normalise_name(name))
    if topic is None:
        raise ValueError(
            f"unknown topic {name!r}: the procedural teacher knows {len(library)} topics "
            "(see phi1lib.teacher.offline.content.library)"
        )
    return topic


def subtopics(topic: dict[str, Any]) -> list[str]:
    """The subtopics of a library entry, in the order its examples are written."""
    return list(dict.fromkeys(example["subtopic"] for example in topic["example"]))
