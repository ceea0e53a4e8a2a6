"""Exercise families: parameterised generators of HumanEval-style exercises.

phi-1's CodeExercises are a function signature, a docstring that states the task, and a
solution; their diversity came mainly from constraints on the function names (paper §2.2).
A family here is one task (count the vowels of a string, merge two sorted lists, ...) written as
data in ``families/*.toml``: the function names it answers to, typed parameters with alternative
names and an input generator each (``inputs.py``), wordings of the task, one or more reference
bodies, local-variable and constant choices, and literal edge cases. ``write_exercise`` turns a
family, a function name and a seed into one concrete exercise; the expected value of every test
and docstring example is computed by running the reference solution, so each exercise is correct
by construction (chapter 2).

Parameter and function names are varied with modifiers (``phi1lib.synthesis.names``). A function name made with
a *reserved* modifier asks for an in-family held-out exercise: a new instance of a family,
written with reserved parameter names, one of the family's ``task_reserved`` wordings and
constants from the values training instances never use (chapter 3).
"""

from __future__ import annotations

import ast
import builtins
import copy
import difflib
import functools
import keyword
import random
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import tomllib

from phi1lib.synthesis.names import RESERVED, TRAIN, strip_modifier, variant
from phi1lib.teacher.offline.content.execution import run_snippet
from phi1lib.teacher.offline.content.inputs import GENERATORS, make_value
from phi1lib.teacher.offline.content.library import find_topic, normalise_name

FAMILIES_DIR = Path(__file__).with_name("families")
DIFFICULTIES = ("easy", "medium", "hard")
RANDOM_CASES = 6
MAX_TESTS = 6  # the code_exercise prompt asks for 3 to 6 asserts
FUZZY_CUTOFF = 0.5
RESERVED_NAMES = set(dir(builtins)) | set(keyword.kwlist)
# Share of a training exercise's parameters named with a modifier (the rest keep a base name).
VARIANT_SHARE = 0.8


@dataclass(frozen=True)
class Param:
    """One parameter: its template key, the names it may take, its type hint and generator."""

    key: str
    names: tuple[str, ...]
    type: str
    gen: tuple[Any, ...]
    doc: str | None


@dataclass(frozen=True)
class Family:
    """One exercise family as read from ``families/*.toml`` (see the module docstring)."""

    id: str
    topic: str
    difficulty: str
    names: tuple[str, ...]
    params: tuple[Param, ...]
    returns: str
    returns_doc: str | None
    task: tuple[str, ...]
    task_reserved: tuple[str, ...]
    body: tuple[str, ...]
    locals: dict[str, tuple[str, ...]]
    consts: dict[str, tuple[Any, ...]]
    edge: tuple[tuple[Any, ...], ...]
    source: str


def _identifiers(values: Any, where: str, what: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: {what} must be a non-empty list of names")
    for value in values:
        if not isinstance(value, str) or not value.isidentifier() or value in RESERVED_NAMES:
            raise ValueError(f"{where}: {what} has {value!r}, not a usable Python name")
    return tuple(values)


def _parse_family(table: dict[str, Any], where: str) -> Family:
    for key in ("id", "topic", "difficulty", "names", "params", "returns", "task", "body"):
        if key not in table:
            raise ValueError(f"{where}: missing field {key!r}")
    if table["difficulty"] not in DIFFICULTIES:
        raise ValueError(f"{where}: difficulty {table['difficulty']!r} not in {DIFFICULTIES}")
    try:
        topic = find_topic(table["topic"])["topic"]
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error
    params = []
    for number, spec in enumerate(table["params"], 1):
        names = _identifiers(spec.get("names"), where, f"parameter {number} names")
        gen = spec.get("gen")
        if not isinstance(gen, list) or not gen or gen[0] not in GENERATORS:
            raise ValueError(f"{where}: parameter {names[0]!r} has an unknown generator {gen!r}")
        params.append(Param(names[0], names, spec.get("type", ""), tuple(gen), spec.get("doc")))
    if not params or any(not p.type for p in params):
        raise ValueError(f"{where}: every parameter needs a type")
    locals_ = {
        key: _identifiers(values, where, f"local {key!r}")
        for key, values in table.get("locals", {}).items()
    }
    consts = {}
    for key, spec in table.get("consts", {}).items():
        if not isinstance(spec, list) or not spec or spec[0] not in GENERATORS:
            raise ValueError(f"{where}: constant {key!r} has an unknown generator {spec!r}")
        consts[key] = tuple(spec)
    edge = []
    for literal in table.get("edge", []):
        try:
            args = ast.literal_eval(f"({literal},)")
        except (ValueError, SyntaxError) as error:
            raise ValueError(f"{where}: edge case {literal!r} is not a literal") from error
        if len(args) != len(params):
            raise ValueError(f"{where}: edge case {literal!r} needs {len(params)} arguments")
        edge.append(args)
    return Family(
        id=table["id"],
        topic=topic,
        difficulty=table["difficulty"],
        names=_identifiers(table["names"], where, "names"),
        params=tuple(params),
        returns=table["returns"],
        returns_doc=table.get("returns_doc"),
        task=tuple(table["task"]),
        task_reserved=tuple(table.get("task_reserved", ())),
        body=tuple(textwrap.dedent(body).strip("\n") for body in table["body"]),
        locals=locals_,
        consts=consts,
        edge=tuple(edge),
        source=where,
    )


@functools.cache
def load_families() -> dict[str, Family]:
    """Every family of ``families/*.toml`` keyed by id; names must be unique across families."""
    families: dict[str, Family] = {}
    owners: dict[str, str] = {}
    for path in sorted(FAMILIES_DIR.glob("*.toml")):
        try:
            with path.open("rb") as handle:
                tables = tomllib.load(handle).get("family", [])
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path.name}: not valid TOML: {error}") from error
        for number, table in enumerate(tables, 1):
            where = f"{path.name}: family {number} ({table.get('id', '?')!r})"
            family = _parse_family(table, where)
            if family.id in families:
                raise ValueError(f"{where}: id already used")
            for name in family.names:
                if name in owners:
                    raise ValueError(f"{where}: name {name!r} already belongs to {owners[name]!r}")
                owners[name] = family.id
            families[family.id] = family
    return families


@functools.cache
def _owners() -> dict[str, Family]:
    return {name: family for family in load_families().values() for name in family.names}


def infamily_families() -> list[str]:
    """Families that can be written as in-family held-out exercises: those with reserved
    wordings (chapter 3)."""
    return [f.id for f in load_families().values() if f.task_reserved]


def name_pool(function_name: str) -> str:
    """``reserved`` for a function name made with a reserved modifier, else ``train``."""
    stripped = strip_modifier(function_name, frozenset(_owners()))
    return stripped[1] if stripped and function_name not in _owners() else TRAIN


def exercise_names() -> list[dict[str, str]]:
    """Every function name a family answers to: ``{"function_name", "family", "topic",
    "difficulty"}``; what the stand-in can be asked for (``offline.coverage``, chapter 2)."""
    return [
        {"function_name": name, "family": f.id, "topic": f.topic, "difficulty": f.difficulty}
        for f in load_families().values()
        for name in f.names
    ]


STOPWORDS = {"a", "an", "and", "by", "for", "from", "in", "of", "please", "the", "to", "with"}


def _tokens(name: str) -> set[str]:
    """Words of an identifier (snake_case or camelCase), lower-cased, plural ``s`` dropped."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = [token for token in re.split(r"[\W_]+", spaced.lower()) if token]
    return {_stem(word) for word in words} - STOPWORDS


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _similarity(requested: str, name: str) -> float:
    """Mostly shared words, partly spelling: ``countVowels`` ~ ``count_vowels``, not ``count_words``."""
    a, b = _tokens(requested), _tokens(name)
    overlap = len(a & b) / len(a | b) if a | b else 0.0
    ratio = difflib.SequenceMatcher(None, requested.lower(), name.lower()).ratio()
    return 0.6 * overlap + 0.4 * ratio


def resolve_family(constraints: dict[str, Any], seed: int) -> tuple[Family, str]:
    """The family and the function name for a request.

    An exact name picks its family. Any other valid name keeps the requested spelling and gets
    the family whose names are most similar to it (ties go to the requested topic); when nothing
    is similar enough, a family of the requested topic and difficulty is drawn by the seed.
    """
    families = load_families()
    owner = _owners()
    requested = str(constraints.get("function_name") or "").strip()
    if requested in owner:
        return owner[requested], requested
    stripped = strip_modifier(requested, frozenset(owner))
    if stripped:
        return owner[stripped[0]], requested
    topic_key = normalise_name(constraints.get("topic") or "")
    difficulty = str(constraints.get("difficulty") or "").strip().lower()
    rng = random.Random(f"resolve|{requested}|{topic_key}|{difficulty}|{seed}")
    usable = requested.isidentifier() and requested not in RESERVED_NAMES
    if usable:
        scored = [
            (max(_similarity(requested, n) for n in f.names) + 0.05 * (f.topic == topic_key), f)
            for f in families.values()
        ]
        best_score, best = max(scored, key=lambda pair: pair[0])
        if best_score >= FUZZY_CUTOFF:
            return best, requested
    pool = [f for f in families.values() if normalise_name(f.topic) == topic_key] or list(
        families.values()
    )
    pool = [f for f in pool if f.difficulty == difficulty] or pool
    family = rng.choice(pool)
    return family, requested if usable else rng.choice(family.names)


def _choose_names(
    family: Family, function_name: str, pool: str, rng: random.Random
) -> dict[str, str]:
    """Parameter names (varied with modifiers of ``pool``) and local names, all distinct."""
    taken = {function_name}
    chosen: dict[str, str] = {}
    for key, options in [(p.key, p.names) for p in family.params] + list(family.locals.items()):
        free = [name for name in options if name not in taken] or [f"{options[0]}_{len(taken)}"]
        name = rng.choice(free)
        if key in {p.key for p in family.params} and (
            pool == RESERVED or rng.random() < VARIANT_SHARE
        ):
            name = next(
                (v for v in (variant(name, pool, rng) for _ in range(20)) if v not in taken), name
            )
        chosen[key] = name
        taken.add(name)
    return chosen


def constant_options(spec: tuple[Any, ...], pool: str) -> list[Any] | None:
    """The values a constant takes in ``pool``: of three or more options (an ``int`` range or a
    ``choice``), every third from the second is reserved for in-family exercises; fewer options
    are shared. ``None`` for other generators (drawn as they are)."""
    if spec[0] == "int":
        options: list[Any] = list(range(spec[1], spec[2] + 1))
    elif spec[0] == "choice":
        options = list(spec[1:])
    else:
        return None
    if len(options) < 3:
        return options
    reserved = options[1::3]
    return reserved if pool == RESERVED else [o for o in options if o not in reserved]


def _constant(spec: tuple[Any, ...], pool: str, rng: random.Random) -> Any:
    options = constant_options(spec, pool)
    return rng.choice(options) if options is not None else make_value(list(spec), rng, {})


def _plain_args(args: tuple[Any, ...]) -> str:
    return ", ".join(repr(arg) for arg in args)


def _check_literal(value: Any, where: str) -> None:
    if isinstance(value, set | frozenset):
        raise ValueError(f"{where}: returns a set, whose printed order is not stable")
    if isinstance(value, list | tuple):
        for item in value:
            _check_literal(item, where)
    if isinstance(value, dict):
        for item in value.values():
            _check_literal(item, where)
    if ast.literal_eval(repr(value)) != value:
        raise ValueError(f"{where}: result {value!r} does not round-trip through repr")


@dataclass
class _Case:
    args: tuple[Any, ...]
    result: Any

    def call(self, function_name: str) -> str:
        return f"{function_name}({_plain_args(self.args)})"

    def assertion(self, function_name: str) -> str:
        if self.result is None:
            return f"assert {self.call(function_name)} is None"
        return f"assert {self.call(function_name)} == {self.result!r}"


def _make_cases(family: Family, function: Any, rng: random.Random) -> list[_Case]:
    seen: set[str] = set()
    cases: list[_Case] = []
    candidates = list(family.edge)
    for _ in range(RANDOM_CASES * 3):
        previous: dict[str, Any] = {}
        for param in family.params:
            previous[param.key] = make_value(list(param.gen), rng, previous)
        candidates.append(tuple(previous.values()))
    for args in candidates:
        key = repr(args)
        if key in seen:
            continue
        seen.add(key)
        where = f"family {family.id!r} ({family.source}) on arguments {key}"
        try:
            result = function(*copy.deepcopy(args))
        except Exception as error:
            raise RuntimeError(f"{where}: the reference solution raised {error!r}") from error
        _check_literal(result, where)
        cases.append(_Case(args, result))
        if len(cases) >= len(family.edge) + RANDOM_CASES:
            break
    return cases


def _docstring(
    family: Family,
    task: str,
    names: dict[str, str],
    examples: list[_Case],
    function_name: str,
    rng: random.Random,
) -> str:
    lines = textwrap.wrap(" ".join(task.split()), width=84)
    styles = ["doctest", "doctest", "for example"]
    if all(p.doc for p in family.params) and family.returns_doc:
        styles.append("google")
    style = rng.choice(styles)
    if style == "google":
        lines += ["", "Args:"]
        lines += [
            f"    {names[p.key]}: {Template(p.doc or '').substitute(names)}" for p in family.params
        ]
        returns_doc = Template(family.returns_doc or "").substitute(names)
        lines += ["", "Returns:", f"    {returns_doc}", "", "Example:"]
        lines += [f"    >>> {examples[0].call(function_name)}", f"    {examples[0].result!r}"]
    elif style == "for example":
        lines += ["", "For example:"]
        lines += [f"    {c.call(function_name)} == {c.result!r}" for c in examples]
    else:
        lines.append("")
        for case in examples:
            lines += [f">>> {case.call(function_name)}", repr(case.result)]
    return "\n".join(lines)


def _pick_examples(cases: list[_Case], difficulty: str, rng: random.Random) -> list[_Case]:
    short = sorted(cases, key=lambda c: len(repr(c.args)) + len(repr(c.result)))
    readable = [c for c in short if len(repr(c.args)) + len(repr(c.result)) <= 70] or short[:1]
    count = 1 if difficulty == "hard" and rng.random() < 0.5 else 2
    chosen = rng.sample(readable[: max(count, 4)], min(count, len(readable)))
    return sorted(chosen, key=cases.index)


def write_exercise(constraints: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write one exercise for ``{"function_name", "topic", "difficulty"}`` (all optional).

    The function is named as requested (see :func:`resolve_family`); the ``topic`` and
    ``difficulty`` of the answer are those of the family actually written. Returns ``{"function_name", "signature", "docstring", "solution", "tests", "topic",
    "difficulty", "family"}``; ``solution`` is the whole function and ``tests`` are assert
    statements that it passes. The same constraints and seed always give the same exercise.
    Introduced in chapter 2 (CodeExercises).
    """
    if not isinstance(constraints, dict):
        raise ValueError(f"exercise constraints must be a dict, got {constraints!r}")
    family, function_name = resolve_family(constraints, seed)
    pool = name_pool(function_name)
    where = f"family {family.id!r} ({family.source})"
    if pool == RESERVED and not family.task_reserved:
        raise ValueError(f"{where}: {function_name!r} asks for reserved wordings; it has none")
    rng = random.Random(f"exercise|{family.id}|{function_name}|{seed}")
    names = _choose_names(family, function_name, pool, rng)
    consts = {key: _constant(spec, pool, rng) for key, spec in family.consts.items()}
    mapping = {**names, **{key: repr(value) for key, value in consts.items()}}
    mapping["fn"] = function_name
    wordings = family.task_reserved if pool == RESERVED else family.task
    try:
        body = Template(rng.choice(family.body)).substitute(mapping)
        task = Template(rng.choice(wordings)).substitute(mapping)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{where}: bad $placeholder: {error}") from error
    arguments = ", ".join(f"{names[p.key]}: {p.type}" for p in family.params)
    signature = f"def {function_name}({arguments}) -> {family.returns}:"
    reference = run_snippet(f"{signature}\n{textwrap.indent(body, '    ')}\n")
    if not reference.ok:
        raise RuntimeError(f"{where}: the reference solution does not run: {reference.error!r}")
    cases = _make_cases(family, reference.namespace[function_name], rng)
    if len(cases) < 3:
        raise RuntimeError(f"{where}: only {len(cases)} distinct test cases could be made")
    examples = _pick_examples(cases, family.difficulty, rng)
    docstring = _docstring(family, task, names, examples, function_name, rng)
    if "\\" in docstring or '"""' in docstring:
        raise ValueError(f"{where}: docstring would need escaping: {docstring!r}")
    solution = f'{signature}\n    """{textwrap.indent(docstring, "    ").lstrip()}\n    """\n'
    solution = re.sub(r"\n[ ]+\n", "\n\n", solution) + textwrap.indent(body, "    ") + "\n"
    tests = [case.assertion(function_name) for case in cases]
    return {
        "function_name": function_name,
        "signature": signature,
        "docstring": docstring,
        "solution": solution,
        "tests": tests[:MAX_TESTS],
        "topic": family.topic,
        "difficulty": family.difficulty,
        "family": family.id,
    }
