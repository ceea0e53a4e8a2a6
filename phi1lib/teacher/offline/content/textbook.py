"""The textbook writer: one markdown section per (topic, subtopic, audience, style, seed).

The paper's synthetic textbooks are prose with code woven in, and their diversity comes from
prompts that vary the topic and the target audience (paper §2.2). This writer does the same
procedurally: the topic's prose and code templates come from the concept library
(``topics/*.toml``), the connective prose from ``phrases.toml``, the example values from
``vocab.py``. The audience decides how much is said (analogies for young learners, internals for
professionals), the style decides the structure (steps, questions, a worked problem), and the seed
picks the words, the examples and the values. Every code example is executed while the section is
written and its real output is shown, so the examples are correct by construction (chapter 2).
"""

from __future__ import annotations

import builtins
import difflib
import functools
import importlib
import inspect
import random
import re
from pathlib import Path
from string import Template
from typing import Any

import tomllib

from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.teacher.offline.content.execution import run_snippet
from phi1lib.teacher.offline.content.library import find_topic, normalise_name, subtopics
from phi1lib.teacher.offline.content.vocab import sample_slots

PHRASES_FILE = Path(__file__).with_name("phrases.toml")
MAX_REFERENCE_CHARS = 320


@functools.cache
def load_phrases() -> dict[str, Any]:
    """The parsed ``phrases.toml``: headings, openings, leads, closings."""
    with PHRASES_FILE.open("rb") as handle:
        return tomllib.load(handle)


def _resolve(value: Any, options: list[str], kind: str, rng: random.Random) -> str:
    """A requested audience/style matched loosely against ``options``; a seeded pick when absent."""
    if value is None or str(value).strip() == "":
        return rng.choice(options)
    by_key = {normalise_name(option): option for option in options}
    found = by_key.get(normalise_name(value))
    if found is None:
        raise ValueError(f"unknown {kind} {value!r}: expected one of {options}")
    return found


def _pick_subtopic(topic: dict[str, Any], requested: Any, rng: random.Random) -> str:
    names = subtopics(topic)
    if requested is None or str(requested).strip() == "":
        return rng.choice(names)
    by_key = {normalise_name(name): name for name in names}
    key = normalise_name(requested)
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.6)
    if close:
        return by_key[close[0]]
    raise ValueError(
        f"unknown subtopic {requested!r} of topic {topic['topic']!r}: expected one of {names}"
    )


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]


def _reference_text(dotted: str) -> str | None:
    """The first paragraph of the docstring of ``dotted`` (``"str.split"``, ``"collections.deque"``)."""
    head, *rest = dotted.split(".")
    try:
        target = importlib.import_module(head)
    except ImportError:
        target = getattr(builtins, head, None)
    for attribute in rest:
        target = getattr(target, attribute, None)
    if target is None:
        return None
    for block in (inspect.getdoc(target) or "").split("\n\n"):
        paragraph = " ".join(block.split())
        # Signature lines such as "dict() -> new empty dictionary" do not read as prose.
        if (
            len(paragraph) >= 20
            and "->" not in paragraph
            and paragraph[:1].isupper()
            and not paragraph.endswith(":")
        ):
            if len(paragraph) > MAX_REFERENCE_CHARS:
                paragraph = paragraph[:MAX_REFERENCE_CHARS].rsplit(" ", 1)[0] + " ..."
            return paragraph
    return None


class _Example:
    """One library example made concrete: slots filled, code executed, prose filled."""

    def __init__(self, topic: dict[str, Any], example: dict[str, Any], slots: dict[str, str]):
        where = f"topic {topic['topic']!r}, subtopic {example['subtopic']!r}"
        try:
            fill = {key: Template(example[key]).substitute(slots) for key in example}
        except (KeyError, ValueError) as error:
            raise ValueError(f"{where}: bad ${{slot}} in template: {error}") from error
        self.subtopic = example["subtopic"]
        self.question = fill["question"]
        self.intro = fill["intro"]
        self.explain = fill["explain"]
        self.code = fill["code"].strip("\n")
        run = run_snippet(self.code)
        if not run.ok:
            raise RuntimeError(f"{where}: example failed: {run.error!r}\n{self.code}")
        self.output = run.stdout.rstrip("\n")


class _Writer:
    """Assembles the paragraphs of one section; ``rng`` makes every wording choice."""

    def __init__(self, topic, subtopic, audience, style, examples, slots, rng):
        self.topic, self.subtopic = topic, subtopic
        self.audience, self.style = audience, style
        self.examples: list[_Example] = examples
        self.rng = rng
        self.phrases = load_phrases()
        self.inline_output = rng.random() < 0.5 and style != "tutorial"
        self.fill = {
            "title": topic["title"],
            "topic": topic["topic"],
            "subtopic": subtopic,
            "Subtopic": subtopic[:1].upper() + subtopic[1:],
        }
        self.prose = {
            key: Template(topic[key]).substitute(slots)
            for key in ("summary", "analogy", "detail", "pitfall")
        }

    def pick(self, table: str, key: str = "all") -> str:
        return self.rng.choice(self.phrases[table][key]).format(**self.fill)

    def chance(self, probabilities: dict[str, float]) -> bool:
        return self.rng.random() < probabilities[self.audience]

    def code_blocks(self, example: _Example) -> list[str]:
        if not example.output:
            return [f"```python\n{example.code}\n```"]
        if self.inline_output:
            commented = "\n".join(f"# {line}".rstrip() for line in example.output.splitlines())
            return [f"```python\n{example.code}\n\n# Output:\n{commented}\n```"]
        return [
            f"```python\n{example.code}\n```",
            self.pick("output_leads"),
            f"```text\n{example.output}\n```",
        ]

    def analogy(self) -> list[str]:
        if self.chance(
            {
                "young learner": 1.0,
                "high-school student": 0.8,
                "college student": 0.3,
                "professional developer": 0.15,
            }
        ):
            return [f"{self.pick('analogy_leads', self.audience)} {self.prose['analogy']}"]
        return []

    def detail(self) -> list[str]:
        if self.chance(
            {
                "young learner": 0.15,
                "high-school student": 0.5,
                "college student": 1.0,
                "professional developer": 1.0,
            }
        ):
            return [f"{self.pick('detail_leads', self.audience)} {self.prose['detail']}"]
        return []

    def reference(self) -> list[str]:
        dotted = self.topic.get("reference")
        if not dotted or self.audience not in self.phrases["reference_leads"]:
            return []
        if self.rng.random() >= 0.5:
            return []
        text = _reference_text(dotted)
        if text is None:
            return []
        lead = self.rng.choice(self.phrases["reference_leads"][self.audience])
        return [lead.format(reference=dotted), f"> {text}"]

    def pitfall(self) -> list[str]:
        if self.chance(
            {
                "young learner": 0.5,
                "high-school student": 0.9,
                "college student": 1.0,
                "professional developer": 1.0,
            }
        ):
            return [f"{self.pick('pitfall_leads', self.audience)} {self.prose['pitfall']}"]
        return []

    def encouragement(self) -> list[str]:
        if self.audience == "young learner" and self.rng.random() < 0.6:
            return [self.pick("encouragements", self.audience)]
        return []

    def takeaways(self) -> list[str]:
        points = [_first_sentence(self.prose["summary"])]
        points += [_first_sentence(example.explain) for example in self.examples]
        if self.audience != "young learner":
            points.append(_first_sentence(self.prose["pitfall"]))
        title = self.pick("takeaway_titles")
        return [f"### {title}", "\n".join(f"- {point}" for point in dict.fromkeys(points))]

    def heading(self) -> str:
        return self.pick("headings", self.style)

    def opening(self) -> str:
        return self.pick("openings", self.audience)

    def closing(self) -> str:
        return self.pick("closings", self.audience)

    # One method per style: the structure of the section.

    def textbook(self) -> list[str]:
        parts = [self.heading(), self.opening(), self.prose["summary"]]
        parts += self.analogy() + self.detail() + self.reference()
        for number, example in enumerate(self.examples):
            if number:
                parts.append(self.pick("transitions"))
            parts += [example.intro, *self.code_blocks(example), example.explain]
            parts += self.encouragement()
        parts += self.pitfall()
        if self.rng.random() < 0.6:
            parts += self.takeaways()
        return parts + [self.closing()]

    def tutorial(self) -> list[str]:
        learn = ", ".join(example.subtopic for example in self.examples)
        parts = [self.heading(), self.opening(), f"**What you will learn:** {learn}."]
        parts += [self.prose["summary"], *self.analogy()]
        for number, example in enumerate(self.examples, 1):
            step = example.subtopic[:1].upper() + example.subtopic[1:]
            parts += [f"### Step {number}: {step}", example.intro, *self.code_blocks(example)]
            parts += [example.explain, *self.encouragement()]
        pitfall = self.pitfall()
        if pitfall:
            parts += ["### Troubleshooting", *pitfall]
        parts += self.detail()
        return parts + ["### Try it yourself", self.closing()]

    def lecture_notes(self) -> list[str]:
        overview = [self.prose["summary"], *self.analogy(), *self.detail()]
        parts = [self.heading(), self.opening(), "### Overview"]
        parts.append("\n".join(f"- {point}" for point in overview))
        parts += self.reference()
        parts.append("### Examples")
        for number, example in enumerate(self.examples, 1):
            parts += [f"**Example {number} ({example.subtopic}).** {example.intro}"]
            parts += [*self.code_blocks(example), f"- {example.explain}"]
        pitfall = self.pitfall()
        if pitfall:
            parts += ["### Pitfalls", *pitfall]
        return parts + self.takeaways() + [self.closing()]

    def worked_example(self) -> list[str]:
        first, *others = self.examples
        parts = [self.heading(), self.opening(), "### The problem", first.question]
        parts += ["### Background", self.prose["summary"], *self.analogy(), *self.detail()]
        parts += ["### Solution", first.intro, *self.code_blocks(first)]
        parts += ["### Why it works", first.explain, *self.encouragement()]
        for number, example in enumerate(others, 1):
            label = "A variation" if len(others) == 1 else f"Variation {number}"
            parts += [f"### {label}: {example.subtopic}", example.question, example.intro]
            parts += [*self.code_blocks(example), example.explain]
        pitfall = self.pitfall()
        if pitfall:
            parts += ["### A common mistake", *pitfall]
        return parts + [self.closing()]

    def questions_and_answers(self) -> list[str]:
        questions = self.phrases["qa_questions"]
        parts = [self.heading(), self.opening()]
        summary = " ".join([self.prose["summary"], *self.analogy()])
        parts.append(f"**Q: {self.rng.choice(questions['summary'])}**\n\n**A:** {summary}")
        for example in self.examples:
            parts += [f"**Q: {example.question}**", f"**A:** {example.intro}"]
            parts += [*self.code_blocks(example), example.explain]
        if self.detail():
            answer = self.prose["detail"]
            parts.append(f"**Q: {self.rng.choice(questions['detail'])}**\n\n**A:** {answer}")
        if self.pitfall():
            answer = self.prose["pitfall"]
            parts.append(f"**Q: {self.rng.choice(questions['pitfall'])}**\n\n**A:** {answer}")
        return parts + [self.closing()]

    def write(self) -> str:
        layout = {
            "textbook": self.textbook,
            "tutorial": self.tutorial,
            "lecture notes": self.lecture_notes,
            "worked example": self.worked_example,
            "Q&A": self.questions_and_answers,
        }[self.style]
        return "\n\n".join(part for part in layout() if part) + "\n"


EXAMPLE_COUNTS = {
    "young learner": (1, 2),
    "high-school student": (2, 2),
    "college student": (2, 3),
    "professional developer": (2, 3),
}


def write_textbook_section(constraints: dict[str, Any], seed: int) -> str:
    """Write one markdown textbook section for ``{"topic", "subtopic", "audience", "style"}``.

    Only ``topic`` is required; a missing subtopic, audience or style is picked by the seed.
    Unknown values raise ``ValueError`` naming them. The same constraints and seed always give the
    same text. Introduced in chapter 2 (synthetic textbooks).
    """
    if not isinstance(constraints, dict) or "topic" not in constraints:
        raise ValueError(f"textbook constraints need a 'topic', got {constraints!r}")
    topic = find_topic(constraints["topic"])
    curriculum = load_curriculum()
    chooser = random.Random(f"choices|{topic['topic']}|{seed}")
    subtopic = _pick_subtopic(topic, constraints.get("subtopic"), chooser)
    audience = _resolve(
        constraints.get("audience"), list(curriculum.audiences), "audience", chooser
    )
    style = _resolve(constraints.get("style"), list(curriculum.styles), "style", chooser)
    rng = random.Random(f"section|{topic['topic']}|{subtopic}|{audience}|{style}|{seed}")
    slots = sample_slots(rng)
    primary = [ex for ex in topic["example"] if ex["subtopic"] == subtopic]
    others = [ex for ex in topic["example"] if ex["subtopic"] != subtopic]
    rng.shuffle(others)
    low, high = EXAMPLE_COUNTS[audience]
    chosen = (primary + others)[: rng.randint(low, high)]
    examples = [_Example(topic, example, slots) for example in chosen]
    return _Writer(topic, subtopic, audience, style, examples, slots, rng).write()
