"""Split a test into calls the sandbox evaluates and comparisons the trusted parent makes.

A test such as ``assert candidate([1, 2]) == 3`` normally runs inside the program's own
process, where the program can reach everything that decides its verdict: the expected value,
the report channel, the harness's frames. Here the test is parsed (``ast``) in the parent: the
*call* side (``candidate([1, 2])``) is sent into the sandbox, which sends back its value as
data (``values.py``); the *expected* side (``3``) and the comparison stay outside. A program
that writes fake reports, exits early, walks frames, patches the harness or traces its own
lines can still only produce values; it cannot know what they will be compared with.

Split are HumanEval's ``def check(candidate)`` (called on the entry point) and top-level
``assert`` lists (MBPP, the exercises), when every assertion has one of these shapes, with
``E`` computable without the program (``values.expected_value``) and ``F`` holding no
comparison of its own:

- ``assert F == E`` (and ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``is``,
  ``is not``), either side first;
- ``assert abs(F - E) < t`` (or ``<=``, or ``math.fabs``), and ``assert math.isclose(F, E,
  rel_tol=..., abs_tol=...)``: the tolerance the test uses;
- ``assert candidate(...)`` and ``assert not candidate(...)``: truthiness of a direct call.

Anything else (loops, helper statements between assertions, both sides computed) makes the
test *unsplittable*; it then runs in-process as before, and the caller counts it. Introduced
in chapter 6 ("Why code must be sandboxed").
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phi1lib.sandbox.values import NotEvaluable, expected_value

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_SINGLETONS = (None, True, False)  # the only values ``is`` may compare outside the program
_SETUP = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.ClassDef)


class Unsplittable(ValueError):
    """A test the parser cannot split; it runs in-process (the message says why)."""


@dataclass(frozen=True)
class Check:
    """One assertion: ``call`` is evaluated in the sandbox, the rest only in the parent."""

    call: str
    source: str  # the whole assert statement, for the result's failed_assertion
    kind: str  # "compare", "close", "truthy", "falsy"
    op: str = "Eq"  # the ast comparison operator's name, for "compare"
    expected: Any = None
    call_first: bool = True  # the call is the comparison's left operand
    rel_tol: float = 1e-9
    abs_tol: float = 0.0
    strict: bool = True  # for abs(F - E) < t: "<" (True) or "<=" (False)

    def holds(self, value: Any) -> bool:
        """Whether the assertion holds for the call's ``value`` (decoded in the parent)."""
        if self.kind == "truthy":
            return bool(value)
        if self.kind == "falsy":
            return not value
        if self.kind == "close":
            if self.op == "isclose":
                return math.isclose(
                    value, self.expected, rel_tol=self.rel_tol, abs_tol=self.abs_tol
                )
            difference = abs(value - self.expected)
            return difference < self.abs_tol if self.strict else difference <= self.abs_tol
        compare = _COMPARE[getattr(ast, self.op)]
        if self.call_first:
            return bool(compare(value, self.expected))
        return bool(compare(self.expected, value))


@dataclass(frozen=True)
class TestSplit:
    """A test split in three: ``setup`` (runs in the program after its code, as before),
    ``bindings`` (names the calls use, such as ``candidate``, each an expression evaluated in
    the program) and the ``checks``."""

    setup: str
    checks: tuple[Check, ...]
    bindings: dict[str, str] = field(default_factory=dict)

    def calls(self) -> dict[str, Any]:
        """What the sandbox receives: the calls and bindings, never an expected value."""
        return {"bindings": dict(self.bindings), "calls": [check.call for check in self.checks]}


def _has_compare(node: ast.AST) -> bool:
    return any(isinstance(inner, ast.Compare | ast.BoolOp) for inner in ast.walk(node))


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    return " ".join(part.strip() for part in text.splitlines())


def _computed(node: ast.expr) -> str:
    """The sandbox side of a comparison, refused if it compares anything itself."""
    if _has_compare(node):
        raise Unsplittable(f"the computed side compares inside the program: {ast.unparse(node)}")
    return ast.unparse(node)


def _try_expected(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, expected_value(node)
    except NotEvaluable:
        return False, None


def _tolerance(node: ast.expr) -> float:
    ok, value = _try_expected(node)
    if not ok or not isinstance(value, int | float) or isinstance(value, bool):
        raise Unsplittable(f"the tolerance is not a number: {ast.unparse(node)}")
    return float(value)


def _abs_difference(node: ast.expr) -> tuple[str, Any] | None:
    """(call, expected) of ``abs(F - E)`` / ``math.fabs(E - F)``, or None for another shape."""
    if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
        return None
    if ast.unparse(node.func) not in ("abs", "math.fabs", "fabs"):
        return None
    inner = node.args[0]
    if not (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Sub)):
        return None
    for computed, other in ((inner.left, inner.right), (inner.right, inner.left)):
        ok, value = _try_expected(other)
        if ok and isinstance(value, int | float | complex):
            return _computed(computed), value
    return None


def _check(source: str, statement: ast.Assert, candidate_names: set[str]) -> Check:
    test = statement.test
    text = _segment(source, statement)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], type(test.ops[0])
        if op in (ast.Lt, ast.LtE) and (pair := _abs_difference(left)):
            call, expected = pair
            tolerance = _tolerance(right)
            return Check(call, text, "close", "abs", expected, abs_tol=tolerance,
                         strict=op is ast.Lt)  # fmt: skip
        left_ok, left_value = _try_expected(left)
        right_ok, right_value = _try_expected(right)
        if right_ok and not left_ok:
            call, expected, call_first = _computed(left), right_value, True
        elif left_ok and not right_ok:
            call, expected, call_first = _computed(right), left_value, False
        else:
            raise Unsplittable(f"no side of the comparison is computable alone: {text}")
        if op in (ast.Is, ast.IsNot) and not any(expected is s for s in _SINGLETONS):
            raise Unsplittable(f"'is' with a value other than None/True/False: {text}")
        return Check(call, text, "compare", op.__name__, expected, call_first=call_first)
    if isinstance(test, ast.Call) and ast.unparse(test.func) in ("math.isclose", "isclose"):
        if len(test.args) != 2:
            raise Unsplittable(f"isclose needs two arguments: {text}")
        keywords = {k.arg: _tolerance(k.value) for k in test.keywords}
        if set(keywords) - {"rel_tol", "abs_tol"}:
            raise Unsplittable(f"isclose with other keywords: {text}")
        for computed, other in ((test.args[0], test.args[1]), (test.args[1], test.args[0])):
            ok, value = _try_expected(other)
            if ok:
                return Check(_computed(computed), text, "close", "isclose", value,
                             rel_tol=keywords.get("rel_tol", 1e-9),
                             abs_tol=keywords.get("abs_tol", 0.0))  # fmt: skip
        raise Unsplittable(f"no side of isclose is computable alone: {text}")
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    target = test.operand if negated else test
    if isinstance(target, ast.Call) and ast.unparse(target.func) in candidate_names:
        return Check(_computed(target), text, "falsy" if negated else "truthy")
    raise Unsplittable(f"an assertion of another shape: {text}")


def _parse(test: str) -> ast.Module:
    with warnings.catch_warnings():  # old MBPP tests have invalid escapes such as "\d"
        warnings.simplefilter("ignore")
        try:
            return ast.parse(test)
        except (SyntaxError, ValueError) as error:
            raise Unsplittable(f"the test does not parse: {error}") from error


def _is_trivial(statement: ast.stmt) -> bool:
    """A docstring, ``pass``, or ``assert <constant>`` (HumanEval's ``assert True``)."""
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True
    return isinstance(statement, ast.Assert) and isinstance(statement.test, ast.Constant)


def _constant_holds(statement: ast.Assert) -> bool:
    return bool(statement.test.value)  # type: ignore[attr-defined]


def _without(source: str, statements: list[ast.stmt]) -> str:
    """``source`` with the lines of the given top-level statements removed."""
    lines = source.splitlines(keepends=True)
    drop = set()
    for statement in statements:
        drop.update(range(statement.lineno - 1, statement.end_lineno or statement.lineno))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


def split_check_function(test: str, entry_point: str) -> TestSplit:
    """HumanEval's shape: ``def check(candidate)`` of assertions, later ``check(entry_point)``."""
    tree = _parse(test)
    checks_defs = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"
    ]
    if not checks_defs:
        raise Unsplittable("no def check(candidate) in the test")
    check_def = checks_defs[-1]
    if len(check_def.args.args) != 1 or check_def.decorator_list:
        raise Unsplittable("check does not take exactly one argument")
    parameter = check_def.args.args[0].arg
    checks, imports = [], []
    for statement in check_def.body:
        if _is_trivial(statement):
            if isinstance(statement, ast.Assert) and not _constant_holds(statement):
                raise Unsplittable("check asserts a false constant")
            continue
        if isinstance(statement, ast.Import | ast.ImportFrom):
            imports.append(ast.unparse(statement))
            continue
        if not isinstance(statement, ast.Assert):
            raise Unsplittable(f"check holds a {type(statement).__name__} statement")
        checks.append(_check(test, statement, {parameter}))
    if not checks:
        raise Unsplittable("check asserts nothing")
    setup = _without(test, [check_def]) + "".join(line + "\n" for line in imports)
    return TestSplit(setup, tuple(checks), {parameter: entry_point})


def split_asserts(test: str, entry_point: str | None = None) -> TestSplit:
    """MBPP's and the exercises' shape: set-up statements, then top-level assertions."""
    tree = _parse(test)
    checks, asserts = [], []
    names = {entry_point} if entry_point else set()
    for statement in tree.body:
        if isinstance(statement, ast.Assert) and not _is_trivial(statement):
            asserts.append(statement)
            checks.append(_check(test, statement, names))
        elif _is_trivial(statement):
            if isinstance(statement, ast.Assert) and not _constant_holds(statement):
                raise Unsplittable("the test asserts a false constant")
        elif asserts or not isinstance(statement, _SETUP):
            raise Unsplittable(f"a {type(statement).__name__} statement among the assertions")
    if not checks:
        raise Unsplittable("the test asserts nothing")
    return TestSplit(_without(test, asserts), tuple(checks))
