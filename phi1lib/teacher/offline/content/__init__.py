"""The offline teacher's procedural content: what the local teacher server writes.

phi-1's synthetic data was written by GPT-3.5 (paper §2.2). Offline, the project's own
OpenAI-compatible server answers instead, and this package is its "model": a deterministic,
procedural writer that is honest about what it is. Its parts, each in its own module:

* ``library`` (``topics/*.toml``) + ``textbook``: a concept library of Python topics and a writer
  that turns one (topic, subtopic, audience, style, seed) into a markdown textbook section whose
  code examples are executed while it is written (``execution``), with values from ``vocab``;
* ``exercises`` (``families/*.toml``) + ``inputs``: parameterised exercise families (signature,
  docstring, reference solution, tests whose expected values come from running the solution);
* ``mistakes``: plausible bugs injected into a fraction of the answers, as GPT-3.5 made them;
* ``judge``: an additive rubric that scores the educational value of a code file (0-5).

The server calls exactly the names exported here. What it is asked for (topics, audiences,
styles, exercise names) is the curriculum's (:mod:`phi1lib.synthesis.curriculum`), which this
package reads like any other consumer; ``offline.coverage`` lists what of the curriculum it
cannot write. Introduced in chapter 2 (synthetic textbooks and exercises).
"""

from phi1lib.teacher.offline.content.exercises import write_exercise
from phi1lib.teacher.offline.content.judge import judge_code
from phi1lib.teacher.offline.content.mistakes import inject_mistake
from phi1lib.teacher.offline.content.textbook import write_textbook_section

__all__ = [
    "inject_mistake",
    "judge_code",
    "write_exercise",
    "write_textbook_section",
]
