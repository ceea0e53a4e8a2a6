"""Prompt constraints: what makes thousands of teacher prompts differ from one another.

The paper obtained diverse synthetic data by putting random constraints into each prompt: the
topic and the target audience of a textbook section, the function name of an exercise
(paper §2.2), an idea taken from TinyStories. The lists the constraints come from are data,
not code: the curriculum (``curriculum/*.toml``): the topics with their subtopics and level, the
audiences and styles, and the exercise function names. The same constraints go to a real LLM
and to the offline procedural teacher.

Sampling is *balanced*, not independent: topics are visited in rounds (every topic once per
round, in a fresh random order), each topic cycles through its own subtopics, and audiences and
styles are dealt from shuffled decks. So 400 sections over 72 topics give every topic 5 or 6
sections instead of the 0 to 12 that independent draws would give. Every stream is generated
item by item from one seeded generator, so the first ``n`` items do not depend on how many are
asked for: raising ``n_sections`` extends a dataset, and the teacher's cache answers the prefix.
Introduced in chapter 2 ("Where diversity comes from").
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, TypeVar

from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.synthesis.names import RESERVED, TRAIN, variant

T = TypeVar("T")


def deck(items: Sequence[T], rng: random.Random) -> Iterator[T]:
    """Deal ``items`` forever, reshuffling the whole deck each time it runs out (chapter 2)."""
    if not items:
        raise ValueError("cannot deal from an empty list")
    while True:
        order = list(items)
        rng.shuffle(order)
        yield from order


def request_seed(kind: str, seed: int, index: int) -> int:
    """The teacher's sampling seed for item ``index``: stable, and different for every item."""
    digest = hashlib.sha256(f"{kind}|{seed}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _check_topics(topics: Sequence[Mapping[str, Any]]) -> None:
    for number, entry in enumerate(topics):
        if not isinstance(entry, Mapping) or not entry.get("topic") or not entry.get("subtopics"):
            raise ValueError(
                f"topic list entry {number} needs a 'topic' and a non-empty 'subtopics': {entry!r}"
            )


def textbook_constraints(
    n: int,
    seed: int,
    *,
    topics: Sequence[Mapping[str, Any]] | None = None,
    audiences: Sequence[str] | None = None,
    styles: Sequence[str] | None = None,
) -> list[dict[str, str]]:
    """``n`` balanced (topic, subtopic, audience, style) constraints for textbook prompts.

    Defaults to the curriculum's lists. Each item also carries the topic's ``level``.
    Introduced in chapter 2.
    """
    curriculum = load_curriculum()
    topics = curriculum.topics if topics is None else topics
    audiences = curriculum.audiences if audiences is None else audiences
    styles = curriculum.styles if styles is None else styles
    _check_topics(topics)
    rng = random.Random(f"textbook-constraints|{seed}")
    subtopic_decks = {entry["topic"]: deck(entry["subtopics"], rng) for entry in topics}
    audience_deck, style_deck = deck(audiences, rng), deck(styles, rng)

    def stream() -> Iterator[dict[str, str]]:
        for entry in deck(topics, rng):
            yield {
                "topic": entry["topic"],
                "subtopic": next(subtopic_decks[entry["topic"]]),
                "audience": next(audience_deck),
                "style": next(style_deck),
                "level": str(entry.get("level", "")),
            }

    return list(islice(stream(), n))


def exercise_constraints(
    n: int, seed: int, *, names: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, str]]:
    """``n`` balanced (function_name, topic, difficulty) constraints for exercise prompts.

    The names come grouped by ``family`` (several names ask for one kind of task); families are
    visited in rounds, each cycling through its own names, so no family dominates. An entry
    without a family is its own family. Defaults to the curriculum's names. Chapter 3.
    """
    names = _default_names(names)
    families: dict[str, list[Mapping[str, Any]]] = {}
    for number, entry in enumerate(names):
        missing = [key for key in ("function_name", "topic", "difficulty") if not entry.get(key)]
        if missing:
            raise ValueError(f"exercise name entry {number} lacks {missing}: {entry!r}")
        families.setdefault(str(entry.get("family") or entry["function_name"]), []).append(entry)
    if not families:
        raise ValueError("the list of exercise names is empty")
    rng = random.Random(f"exercise-constraints|{seed}")
    name_decks = {family: deck(entries, rng) for family, entries in families.items()}

    def stream() -> Iterator[dict[str, str]]:
        for family in deck(sorted(families), rng):
            entry = next(name_decks[family])
            yield {
                "function_name": str(entry["function_name"]),
                "topic": str(entry["topic"]),
                "difficulty": str(entry["difficulty"]),
                "family": family,
            }

    return list(islice(stream(), n))


def vary_function_names(
    constraints: Sequence[dict[str, str]], seed: int, share: float
) -> list[dict[str, str]]:
    """The constraints with a ``share`` of their function names given a training modifier
    (``count_vowels`` -> ``count_vowels_raw``, see ``synthesis.names``), each decided by a seeded
    draw of its own, so that a longer list keeps the first items (chapter 3)."""
    varied = []
    for index, item in enumerate(constraints):
        rng = random.Random(f"name-variant|{seed}|{index}")
        name = item["function_name"]
        varied.append(
            {**item, "function_name": variant(name, TRAIN, rng)}
            if rng.random() < share
            else dict(item)
        )
    return varied


def infamily_constraints(
    n: int, seed: int, families: Sequence[str], *, names: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, str]]:
    """``n`` constraints for in-family held-out exercises: the families dealt in rounds, each
    function name a base name of its family with a *reserved* modifier, which asks the teacher
    for a new instance with unseen names, wording and constants (chapter 3)."""
    if n and not families:
        raise ValueError("in-family exercises were asked for, but no family can have them")
    names = _default_names(names)
    entries = {f: [e for e in names if e.get("family") == f] for f in families}
    if empty := sorted(f for f, found in entries.items() if not found):
        raise ValueError(f"no exercise names for the in-family families {empty}")
    rng = random.Random(f"infamily-constraints|{seed}")
    family_deck = deck(sorted(families), rng)
    items = []
    for _ in range(n):
        entry = rng.choice(entries[next(family_deck)])
        items.append(
            {
                "function_name": variant(str(entry["function_name"]), RESERVED, rng),
                "topic": str(entry["topic"]),
                "difficulty": str(entry["difficulty"]),
                "family": str(entry["family"]),
            }
        )
    return items


def _default_names(names: Sequence[Mapping[str, Any]] | None) -> Sequence[Mapping[str, Any]]:
    return load_curriculum().exercise_names if names is None else names


def coverage(values: Sequence[str], universe: Sequence[str]) -> dict[str, Any]:
    """How evenly ``values`` cover ``universe``: counts, share covered, min and max (chapter 2)."""
    counts = Counter(values)
    per_item = [counts.get(item, 0) for item in universe]
    return {
        "items": len(universe),
        "covered": sum(count > 0 for count in per_item),
        "share_covered": sum(count > 0 for count in per_item) / max(len(universe), 1),
        "min": min(per_item, default=0),
        "max": max(per_item, default=0),
        "outside": sum(count for value, count in counts.items() if value not in set(universe)),
    }
