"""The offline teacher's procedural content: what the local teacher server writes.

phi-1's synthetic data was written by GPT-3.5 (paper-notes §1). Offline, the project's own
OpenAI-compatible server answers instead, and this package is its "model": a deterministic,
procedural writer that is honest about what it is. It has four parts, each in its own module:

* ``library`` + ``textbook``: a concept library of Python topics and a writer that turns one
  (topic, subtopic, audience, style, seed) into a markdown textbook section with executed examples;
* ``exercises``: parameterised exercise families (signature, docstring, solution, tests);
* ``mistakes``: plausible bugs injected into a fraction of the answers, as GPT-3.5 made them;
* ``judge``: an additive rubric that scores the educational value of a code file (0-5).

The server calls exactly the names exported here. Introduced in chapter 2 (synthetic textbooks).
"""

from phi1lib.teacher.content.library import topic_list
from phi1lib.teacher.content.textbook import load_phrases, write_textbook_section

TOPICS = topic_list()
AUDIENCES: list[str] = list(load_phrases()["audiences"])
STYLES: list[str] = list(load_phrases()["styles"])

__all__ = [
    "AUDIENCES",
    "STYLES",
    "TOPICS",
    "write_textbook_section",
]
