"""Plausible bugs: what the procedural teacher does to a fraction of its exercise answers.

The paper's synthetic exercises came from GPT-3.5, whose output "had a high error rate"
(paper §6), and the model still learned from them. The offline teacher reproduces that
condition on purpose: the server passes a ``--mistake-rate`` fraction of its exercises through
``inject_mistake``, so that the synthesis chapter's execution check has real errors to catch.

A mistake is a small edit of the solution's source, located with the ``ast`` module and spliced
into the original text (so comments, the docstring and formatting stay as they were):

* off-by-one: an integer constant, a ``range`` bound or a slice bound moves by one;
* wrong comparison: ``<`` and ``<=``, ``>`` and ``>=``, ``==`` and ``!=`` (and ``in``/``not in``)
  are swapped;
* wrong operator: ``+``/``-``, ``*``/``+``, ``//``/``/``, ``and``/``or``, ``min``/``max``,
  ``any``/``all``, ``sum``/``len``;
* missing edge case: a guard clause (an ``if`` that returns, raises, breaks or continues) is
  deleted, or a normalising call such as ``.lower()`` is forgotten;
* wrong return: the function returns another of its variables;
* missing step: a wrapping call such as ``sorted(...)`` or ``reversed(...)`` is dropped, a
  ``reverse=True`` flag flips, ``split()`` becomes ``split(" ")``;
* wrong constant: a short string constant loses its last character (a vowel list without ``u``);
* swapped arguments: the two arguments of a call are passed in the wrong order.

Candidates are tried in a seeded order until one makes at least one of the exercise's own tests
fail (an assertion, an exception, or a time-out all count), so every injected mistake is a real,
detectable bug. Introduced in chapter 2 (CodeExercises and the execution check).
"""

from __future__ import annotations

import ast
import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from phi1lib.teacher.offline.content.execution import run_snippet

TEST_TIMEOUT_S = 0.25
COMPARISON_SWAPS = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    " in ": " not in ",
    " not in ": " in ",
    " is not ": " is ",
    " is ": " is not ",
}
OPERATOR_SWAPS = {"+": "-", "-": "+", "*": "+", "//": "/", "%": "//"}
AUG_SWAPS = {"+=": "-=", "-=": "+=", "*=": "+=", "//=": "/="}
NORMALISING_METHODS = {"lower", "upper", "strip", "casefold"}
CALL_SWAPS = {
    "min": "max",
    "max": "min",
    "any": "all",
    "all": "any",
    "prod": "sum",
    "sum": "len",
    "fullmatch": "search",
}
WRAPPERS = {"reversed", "sorted", "abs", "set", "list", "int", "str", "tuple", "round", "len"}


@dataclass(frozen=True)
class Mutation:
    """One candidate bug: its kind, a human description, and the byte range it replaces."""

    kind: str
    description: str
    start: int
    end: int
    replacement: str


class _Source:
    """The solution's text with helpers to turn ``ast`` positions into byte offsets."""

    def __init__(self, text: str):
        self.data = text.encode("utf-8")
        self.line_starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def text(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8")

    def lines_of(self, node: ast.stmt) -> tuple[int, int]:
        return self.line_starts[node.lineno - 1], self.line_starts[node.end_lineno]  # type: ignore[index]

    def apply(self, mutation: Mutation) -> str:
        edited = (
            self.data[: mutation.start]
            + mutation.replacement.encode("utf-8")
            + self.data[mutation.end :]
        )
        return edited.decode("utf-8")


def _between(source: _Source, left: ast.AST, right: ast.AST, table: dict[str, str]):
    """The operator token between two operands, and its swapped spelling, if it is in ``table``."""
    start = source.span(left)[1]
    end = source.span(right)[0]
    gap = source.text(start, end)
    for token in sorted(table, key=len, reverse=True):
        position = gap.find(token)
        if position >= 0 and gap[:position].strip(" ()") == "":
            absolute = start + len(gap[:position].encode("utf-8"))
            return absolute, absolute + len(token.encode("utf-8")), token, table[token]
    return None


def _body_statements(function: ast.FunctionDef) -> list[ast.stmt]:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1:]
    return body


def _nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    for statement in _body_statements(function):
        yield from ast.walk(statement)


def _comparisons(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in zip(operands, operands[1:], strict=False):
                found = _between(source, left, right, COMPARISON_SWAPS)
                if found:
                    start, end, old, new = found
                    yield Mutation(
                        "wrong comparison",
                        f"`{old.strip()}` became `{new.strip()}` on line {left.lineno}",
                        start,
                        end,
                        new,
                    )


def _operators(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        line = getattr(node, "lineno", function.lineno)
        if isinstance(node, ast.BinOp):
            found = _between(source, node.left, node.right, OPERATOR_SWAPS)
        elif isinstance(node, ast.AugAssign):
            found = _between(source, node.target, node.value, AUG_SWAPS)
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            found = _between(source, node.values[0], node.values[1], {"and": "or", "or": "and"})
        elif isinstance(node, ast.Call) and _called_name(node) in CALL_SWAPS:
            name = _called_name(node)
            end = source.span(node.func)[1]
            start = end - len(name)
            found = (start, end, name, CALL_SWAPS[name])
        else:
            continue
        if found:
            start, end, old, new = found
            yield Mutation(
                "wrong operator", f"`{old}` became `{new}` on line {line}", start, end, new
            )


def _called_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def _off_by_one(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    parents = {child: node for node in _nodes(function) for child in ast.iter_child_nodes(node)}
    for node in _nodes(function):
        line = getattr(node, "lineno", function.lineno)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            start, end = source.span(node)
            in_sum = isinstance(parents.get(node), ast.BinOp | ast.UnaryOp)
            for new in (node.value + 1, node.value - 1):
                if new >= 0 and not (in_sum and new == 0):
                    yield Mutation(
                        "off-by-one",
                        f"`{node.value}` became `{new}` on line {line}",
                        start,
                        end,
                        str(new),
                    )
        bounds: list[ast.AST] = []
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
        ):
            bounds = node.args[:2]
        elif isinstance(node, ast.Slice):
            bounds = [bound for bound in (node.lower, node.upper) if bound is not None]
        for bound in bounds:
            if isinstance(bound, ast.Name | ast.Call | ast.Attribute | ast.Subscript):
                start, end = source.span(bound)
                text = source.text(start, end)
                for sign in ("- 1", "+ 1"):
                    yield Mutation(
                        "off-by-one",
                        f"bound `{text}` became `{text} {sign}` on line {line}",
                        start,
                        end,
                        f"{text} {sign}",
                    )


def _missing_edge_cases(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        for field in ("body", "orelse"):
            block = getattr(node, field, None)
            if not isinstance(block, list) or len(block) < 2:
                continue
            for statement in block:
                if (
                    isinstance(statement, ast.If)
                    and not statement.orelse
                    and isinstance(
                        statement.body[-1], ast.Return | ast.Raise | ast.Continue | ast.Break
                    )
                ):
                    start, end = source.lines_of(statement)
                    condition = ast.unparse(statement.test)
                    yield Mutation(
                        "missing edge case",
                        f"the check `if {condition}:` was left out",
                        start,
                        end,
                        "",
                    )
    statements = _body_statements(function)
    if len(statements) >= 2:
        for statement in statements:
            if (
                isinstance(statement, ast.If)
                and not statement.orelse
                and isinstance(statement.body[-1], ast.Return | ast.Raise)
            ):
                start, end = source.lines_of(statement)
                yield Mutation(
                    "missing edge case",
                    f"the guard `if {ast.unparse(statement.test)}:` was left out",
                    start,
                    end,
                    "",
                )
    for node in _nodes(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in NORMALISING_METHODS
            and not node.args
        ):
            start, end = source.span(node)
            value_start, value_end = source.span(node.func.value)
            yield Mutation(
                "missing edge case",
                f"the call `.{node.func.attr}()` was forgotten",
                start,
                end,
                source.text(value_start, value_end),
            )


def _comprehensions(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        if not isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            continue
        targets = [
            name.id
            for generator in node.generators
            for name in ast.walk(generator.target)
            if isinstance(name, ast.Name)
        ]
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for element in parts:
            if not isinstance(element, ast.Name):
                continue
            start, end = source.span(element)
            for other in targets:
                if other != element.id:
                    yield Mutation(
                        "wrong return",
                        f"collects `{other}` instead of `{element.id}`",
                        start,
                        end,
                        other,
                    )
        for generator in node.generators:
            for condition in generator.ifs:
                start = source.span(generator.iter)[1]
                end = source.span(condition)[1]
                yield Mutation(
                    "missing edge case",
                    f"the filter `if {ast.unparse(condition)}` was left out",
                    start,
                    end,
                    "",
                )


def _dropped_ends(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    """Last resort for one-line solutions that return a list or a string: lose one element."""
    returns = ast.unparse(function.returns) if function.returns else ""
    if not returns.startswith(("list", "str")):
        return
    for node in _nodes(function):
        if isinstance(node, ast.Return) and node.value is not None:
            start, end = source.span(node.value)
            text = source.text(start, end)
            for cut in ("[1:]", "[:-1]"):
                yield Mutation(
                    "off-by-one",
                    f"the result lost an element (`{cut}`)",
                    start,
                    end,
                    f"({text}){cut}",
                )


def _wrong_returns(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    names = [arg.arg for arg in function.args.args]
    for node in _nodes(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    for node in _nodes(function):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
            start, end = source.span(node.value)
            for other in names:
                if other != node.value.id and other != "_":
                    yield Mutation(
                        "wrong return",
                        f"returns `{other}` instead of `{node.value.id}`",
                        start,
                        end,
                        other,
                    )


def _missing_steps(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        if not isinstance(node, ast.Call):
            continue
        start, end = source.span(node)
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in WRAPPERS
            and len(node.args) == 1
            and not node.keywords
        ):
            inner = source.text(*source.span(node.args[0]))
            yield Mutation("missing step", f"`{node.func.id}(...)` was left out", start, end, inner)
        if len(node.args) == 2 and all(isinstance(a, ast.Name | ast.Call) for a in node.args):
            first, second = (source.text(*source.span(a)) for a in node.args)
            args_start, args_end = source.span(node.args[0])[0], source.span(node.args[1])[1]
            yield Mutation(
                "swapped arguments",
                f"`{first}` and `{second}` were passed in the wrong order",
                args_start,
                args_end,
                f"{second}, {first}",
            )
        if isinstance(node.func, ast.Attribute) and node.func.attr == "split" and not node.args:
            text = source.text(start, end)
            yield Mutation(
                "missing step", '`split()` became `split(" ")`', start, end, text[:-2] + '(" ")'
            )
        for keyword in node.keywords:
            value = keyword.value
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                flag_start, flag_end = source.span(value)
                yield Mutation(
                    "missing step",
                    f"`{keyword.arg}={value.value}` became `{keyword.arg}={not value.value}`",
                    flag_start,
                    flag_end,
                    str(not value.value),
                )


def _wrong_constants(source: _Source, function: ast.FunctionDef) -> Iterator[Mutation]:
    for node in _nodes(function):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and len(node.value) <= 12
            and getattr(node, "end_lineno", 0) == node.lineno
        ):
            start, end = source.span(node)
            changed = {"": " ", " ": ""}.get(node.value, node.value[:-1])
            double = source.text(start, end).startswith('"')
            yield Mutation(
                "wrong constant",
                f"the string {node.value!r} became {changed!r}",
                start,
                end,
                json.dumps(changed, ensure_ascii=False) if double else repr(changed),
            )


FINDERS = {
    "off-by-one": _off_by_one,
    "wrong comparison": _comparisons,
    "wrong operator": _operators,
    "missing edge case": _missing_edge_cases,
    "wrong return": _wrong_returns,
    "missing step": _missing_steps,
    "wrong constant": _wrong_constants,
    "comprehension": _comprehensions,
    "dropped end": _dropped_ends,
}


def candidate_mistakes(solution: str) -> list[Mutation]:
    """Every mutation the finders propose for ``solution``'s first function, in source order."""
    tree = ast.parse(solution)
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
    source = _Source(solution)
    found: list[Mutation] = []
    for finder in FINDERS.values():
        found.extend(finder(source, function))
    return list({(m.start, m.end, m.replacement): m for m in found}.values())


def fails_a_test(solution: str, tests: list[str]) -> bool:
    """True when ``solution`` does not define cleanly or at least one test does not pass."""
    run = run_snippet(solution, timeout_s=TEST_TIMEOUT_S)
    if not run.ok:
        return True
    namespace = run.namespace
    return any(
        not run_snippet(test, timeout_s=TEST_TIMEOUT_S, namespace=namespace).ok for test in tests
    )


def inject_mistake(exercise: dict[str, Any], seed: int) -> dict[str, Any]:
    """A copy of ``exercise`` whose ``solution`` has one plausible bug that fails a test.

    The copy gains a ``"mistake"`` entry ``{"kind", "description"}``; signature, docstring and
    tests are unchanged. Raises ``ValueError`` naming the exercise when no candidate bug makes a
    test fail. Introduced in chapter 2 (the execution check).
    """
    for key in ("solution", "tests", "function_name"):
        if key not in exercise:
            raise ValueError(f"exercise lacks {key!r}: {sorted(exercise)}")
    solution = exercise["solution"]
    try:
        candidates = candidate_mistakes(solution)
    except (SyntaxError, StopIteration) as error:
        raise ValueError(
            f"exercise {exercise['function_name']!r}: solution has no parsable function"
        ) from error
    rng = random.Random(f"mistake|{exercise.get('family', '')}|{exercise['function_name']}|{seed}")
    kinds = sorted({m.kind for m in candidates})
    rng.shuffle(kinds)
    source = _Source(solution)
    for kind in kinds:
        of_kind = [m for m in candidates if m.kind == kind]
        rng.shuffle(of_kind)
        for mutation in of_kind:
            mutant = source.apply(mutation)
            try:
                ast.parse(mutant)
            except SyntaxError:
                continue
            if fails_a_test(mutant, exercise["tests"]):
                result = copy.deepcopy(exercise)
                result["solution"] = mutant
                result["mistake"] = {"kind": kind, "description": mutation.description}
                return result
    raise ValueError(
        f"exercise {exercise['function_name']!r} ({exercise.get('family', '?')}): "
        f"none of {len(candidates)} candidate mistakes makes a test fail"
    )
