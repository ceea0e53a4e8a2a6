"""What of the curriculum the offline teacher cannot write.

The curriculum (:mod:`phi1lib.synthesis.curriculum`) is the book's choice of what to ask a
teacher for, made without looking at what this stand-in knows: GPT-4 can write a section on any
topic, the procedural writers only on the topics of their library, in the audiences and styles
they have prose for, and exercises of the families they have templates for. This module lists the
difference, so that a curriculum that outgrows the stand-in says so when the server starts
instead of failing request by request. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

from phi1lib.synthesis.curriculum import Curriculum, load_curriculum
from phi1lib.teacher.offline.content.exercises import exercise_names, infamily_families
from phi1lib.teacher.offline.content.library import load_library, normalise_name, subtopics
from phi1lib.teacher.offline.content.textbook import EXAMPLE_COUNTS, load_phrases


def curriculum_gaps(curriculum: Curriculum | None = None) -> list[str]:
    """One line per item of ``curriculum`` (the package's by default) the procedural writers
    cannot write as asked; empty when they cover it all."""
    curriculum = curriculum or load_curriculum()
    library = load_library()
    gaps = []
    for entry in curriculum.topics:
        topic = library.get(normalise_name(entry["topic"]))
        if topic is None:
            gaps.append(f"topic {entry['topic']!r}: not in the concept library")
            continue
        known = {normalise_name(name) for name in subtopics(topic)}
        for subtopic in entry["subtopics"]:
            if normalise_name(subtopic) not in known:
                gaps.append(f"topic {entry['topic']!r}: no example for subtopic {subtopic!r}")
    phrases = load_phrases()
    for audience in curriculum.audiences:
        if audience not in EXAMPLE_COUNTS or audience not in phrases["openings"]:
            gaps.append(f"audience {audience!r}: no phrases for it")
    for style in curriculum.styles:
        if style not in phrases["headings"]:
            gaps.append(f"style {style!r}: no headings for it")
    families = {entry["function_name"]: entry for entry in exercise_names()}
    for entry in curriculum.exercise_names:
        found = families.get(entry["function_name"])
        if found is None:
            gaps.append(f"exercise name {entry['function_name']!r}: no family answers to it")
        elif found != entry:
            gaps.append(f"exercise name {entry['function_name']!r}: the teacher has {found}")
    reserved = set(infamily_families())
    for family in curriculum.infamily_families:
        if family not in reserved:
            gaps.append(f"family {family!r}: no reserved wording for in-family exercises")
    return gaps
