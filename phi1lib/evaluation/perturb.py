"""Prompts with mistakes: typos, grammar errors and rewordings of an exercise's task sentence.

The paper's conclusion names a limitation of phi-1: its performance degrades sharply when a
prompt has grammatical mistakes, and it is sensitive to the wording of the task (paper §6, and
the conclusion). To measure that at our scale, this module writes, for any function prompt,
perturbed versions of the *task description* of its docstring, the prose before any blank line,
example or ``>>>`` line, and leaves everything else alone: the signature, the examples, every
word that names a parameter or the function, and anything with digits, quotes or punctuation
inside. Each perturbation is a pure function of the prompt, the kind, the rate and a seed, so
the clean and perturbed runs see the same problems, and the result still parses.

``typos``      letters swapped, dropped, doubled or replaced by a neighbour key in some words
``grammar``    articles dropped, verbs that no longer agree, a wrong preposition
``reworded``   the same task in other words: synonyms, and a different opening

Introduced in chapter 7 ("Mistakes in the prompt").
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

KINDS = ("typos", "grammar", "reworded")

_WORD = re.compile(r"[A-Za-z]+")
_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")

# grammar: words whose replacement breaks agreement, or a preposition used wrongly
_AGREEMENT = {
    "is": "are",
    "are": "is",
    "has": "have",
    "have": "has",
    "contains": "contain",
    "returns": "return",
    "does": "do",
    "was": "were",
    "appears": "appear",
    "starts": "start",
    "ends": "end",
}
_PREPOSITIONS = {"of": "for", "in": "on", "on": "in", "to": "at", "by": "with", "from": "of"}
_ARTICLES = {"a", "an", "the"}

# reworded: the same meaning in other words (first match per phrase, case kept)
_SYNONYMS = (
    ("check whether", "determine if"),
    ("check if", "determine whether"),
    ("return", "give back"),
    ("find", "locate"),
    ("count", "tally"),
    ("compute", "work out"),
    ("calculate", "work out"),
    ("contains", "includes"),
    ("keep only", "retain just"),
    ("split", "break up"),
    ("list", "sequence"),
    ("integers", "whole numbers"),
    ("number", "value"),
    ("characters", "letters"),
    ("largest", "biggest"),
    ("smallest", "tiniest"),
    ("remove", "drop"),
    ("reverse", "invert the order of"),
    ("first", "earliest"),
    ("each", "every"),
)
_OPENINGS = ("Write code that will", "The task is to", "Your job:")


@dataclass(frozen=True)
class Perturbed:
    """A perturbed prompt, and which words of its task sentence changed."""

    prompt: str
    kind: str
    changed: tuple[str, ...]


class PerturbationError(ValueError):
    """A prompt whose task description cannot be found, or a perturbation that broke it."""


def _rng(prompt: str, kind: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{kind}|{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _parsed(prompt: str) -> ast.Module | None:
    """The prompt's syntax tree, completed with a ``pass`` body when it ends in a docstring."""
    for source in (prompt + "    pass\n", prompt):
        try:
            return ast.parse(source)
        except SyntaxError:
            continue
    return None


def _task_span(prompt: str, where: str) -> tuple[int, int, set[str]]:
    """Character offsets of the docstring's task description in ``prompt``, and the names
    that must stay as they are (the function's and its parameters')."""
    tree = _parsed(prompt)
    if tree is None:
        raise PerturbationError(f"{where}: the prompt does not parse")
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not functions:
        raise PerturbationError(f"{where}: the prompt defines no function")
    function = functions[-1]
    first = function.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        raise PerturbationError(f"{where}: the function {function.name!r} has no docstring")
    if not isinstance(first.value.value, str):
        raise PerturbationError(f"{where}: the function {function.name!r} has no docstring")
    lines = prompt.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: first.lineno - 1]) + first.col_offset
    quote = prompt[start : start + 3]
    if quote not in ('"""', "'''"):
        raise PerturbationError(f"{where}: the docstring is not triple-quoted")
    body_start = start + 3
    rest = prompt[body_start:]
    stop = len(rest)
    for marker in ("\n\n", "\n    >>>", ">>>", "For example", "Example", quote):
        found = rest.find(marker)
        if found != -1:
            stop = min(stop, found)
    protected = {function.name, *(a.arg for a in function.args.args)}
    protected |= {a.arg for a in function.args.kwonlyargs}
    return body_start, body_start + stop, protected


def _eligible(text: str, protected: set[str]) -> list[re.Match]:
    """Plain words of three letters or more: not a name, not touching digits, quotes or
    underscores (``'abc'``, ``x_1``, ``2nd`` stay as they are)."""
    chosen = []
    for match in _WORD.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if match.group() in protected or before in "'\"`_0123456789" or after in "'\"`_0123456789(":
            continue
        chosen.append(match)
    return chosen


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1) if len(word) > 2 else 0
    kind = rng.choice(("swap", "drop", "double", "neighbour"))
    if kind == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    row = next((r for r in _KEYBOARD if word[i].lower() in r), None)
    if row is None:
        return word[:i] + word[i + 1 :]
    j = row.index(word[i].lower())
    neighbour = row[j + 1] if j + 1 < len(row) else row[j - 1]
    return word[:i] + (neighbour.upper() if word[i].isupper() else neighbour) + word[i + 1 :]


def _replace(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _same_case(new: str, old: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _typos(text: str, protected: set[str], rate: float, rng: random.Random):
    words = [m for m in _eligible(text, protected) if len(m.group()) >= 3]
    if not words:
        return text, ()
    count = max(1, round(rate * len(words)))
    chosen = sorted(rng.sample(words, min(count, len(words))), key=lambda m: m.start())
    spans = [(m.start(), m.end(), _typo(m.group(), rng)) for m in chosen]
    return _replace(text, spans), tuple(m.group() for m in chosen)


def _grammar(text: str, protected: set[str], rate: float, rng: random.Random):
    words = [m for m in _WORD.finditer(text) if m.group() not in protected]
    candidates = [
        m
        for m in words
        if m.group().lower() in _AGREEMENT | _PREPOSITIONS or m.group().lower() in _ARTICLES
    ]
    spans = []
    if candidates:
        count = max(1, round(rate * len(candidates)))
        for m in rng.sample(candidates, min(count, len(candidates))):
            word = m.group().lower()
            if word in _ARTICLES:  # dropped, with the space after it
                end = m.end() + 1 if text[m.end() : m.end() + 1] == " " else m.end()
                spans.append((m.start(), end, ""))
            else:
                new = _AGREEMENT.get(word) or _PREPOSITIONS[word]
                spans.append((m.start(), m.end(), _same_case(new, m.group())))
    else:  # no rule applies: two neighbouring words change places
        plain = _eligible(text, protected)
        if len(plain) < 2:
            return text, ()
        i = rng.randrange(len(plain) - 1)
        first, second = plain[i], plain[i + 1]
        swapped = text[first.start() : second.end()]
        middle = swapped[len(first.group()) : len(swapped) - len(second.group())]
        return (
            text[: first.start()] + second.group() + middle + first.group() + text[second.end() :],
            (first.group(), second.group()),
        )
    return _replace(text, spans), tuple(text[s:e] for s, e, _ in spans)


def _reworded(text: str, protected: set[str], rate: float, rng: random.Random):
    changed, out = [], text
    for old, new in _SYNONYMS:
        pattern = re.compile(rf"\b{re.escape(old)}\b", re.IGNORECASE)
        match = pattern.search(out)
        if match and not any(name in match.group().split() for name in protected):
            out = out[: match.start()] + _same_case(new, match.group()) + out[match.end() :]
            changed.append(match.group())
    lead = len(out) - len(out.lstrip())
    sentence = out[lead:]
    if sentence:
        opening = rng.choice(_OPENINGS)
        first_word = _WORD.match(sentence)
        if first_word and first_word.group() not in protected:
            sentence = sentence[0].lower() + sentence[1:]
        out = out[:lead] + f"{opening} {sentence}"
        changed.append("(opening)")
    return out, tuple(changed)


PERTURBATIONS: dict[str, Callable] = {
    "typos": _typos,
    "grammar": _grammar,
    "reworded": _reworded,
}


def perturb(prompt: str, kind: str, *, rate: float = 0.3, seed: int = 0, where: str = "prompt"):
    """``prompt`` with its task description perturbed by ``kind`` (deterministic).

    ``rate`` is the share of eligible words changed (at least one), for typos and grammar.
    Raises :class:`PerturbationError` when the prompt has no docstring to perturb, or when the
    result would no longer parse.
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must lie in (0, 1], got {rate}")
    start, end, protected = _task_span(prompt, where)
    rng = _rng(prompt, kind, seed)
    text, changed = PERTURBATIONS[kind](prompt[start:end], protected, rate, rng)
    result = prompt[:start] + text + prompt[end:]
    if _parsed(result) is None:  # a safety net: the rules touch only plain words
        raise PerturbationError(f"{where}: the {kind} perturbation broke the prompt")
    return Perturbed(prompt=result, kind=kind, changed=changed)
