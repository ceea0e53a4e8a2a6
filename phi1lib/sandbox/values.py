"""Values that cross the sandbox's wall as plain data, and the expected values that never do.

A split test (``split.py``) evaluates only the *call* of an assertion inside the sandbox; the
result comes back here as JSON and the trusted parent compares it with the expected value the
test wrote. :func:`encode` runs in the sandboxed process and turns a result into JSON-able data
that keeps Python's distinctions (a tuple is not a list, ``True`` is not ``1``); :func:`decode`
rebuilds it in the parent from those few types only, never by unpickling or calling anything
the program chose. A value of another type (a class whose ``__eq__`` says yes to everything)
cannot be compared outside and so does not pass. :func:`expected_value` evaluates the other
side of an assertion in the parent: literals, arithmetic and a few pure builtins, with sizes
bounded, since the tests of generated exercises are not trusted either. Introduced in chapter 6
("Why code must be sandboxed").
"""

from __future__ import annotations

import ast
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
_TAGS = ("tuple", "set", "frozenset", "dict", "bytes", "complex", "fraction", "decimal", "float")


class Unencodable(TypeError):
    """A result of a type that cannot be compared outside the sandbox."""


def encode(value: Any, _depth: int = 0, _budget: list[int] | None = None) -> Any:
    """JSON-able data for ``value`` (runs in the sandbox; base-type methods, not the value's)."""
    budget = _budget if _budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if _depth > MAX_DEPTH or budget[0] < 0:
        raise Unencodable("the value is too deep or too large to compare outside the sandbox")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        number = float.__float__(value)
        if math.isfinite(number):
            return number
        return {"float": repr(number)}  # JSON has no inf or nan
    if isinstance(value, str):
        return str.__str__(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return encode(value.item(), _depth + 1, budget)  # a numpy scalar compares as its value
    if isinstance(value, list):
        return [encode(item, _depth + 1, budget) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(item, _depth + 1, budget) for item in tuple.__iter__(value)]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode(i, _depth + 1, budget) for i in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"set": [encode(item, _depth + 1, budget) for item in set.__iter__(value)]}
    if isinstance(value, dict):
        pairs = dict.items(value)
        return {"dict": [[encode(k, _depth + 1, budget), encode(v, _depth + 1, budget)]
                         for k, v in pairs]}  # fmt: skip
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, complex):
        number = complex.__complex__(value)
        return {"complex": [repr(number.real), repr(number.imag)]}
    if kind is Fraction:
        return {"fraction": [value.numerator, value.denominator]}
    if kind is Decimal:
        return {"decimal": str(value)}
    raise Unencodable(f"a value of type {kind.__name__} cannot be compared outside the sandbox")


def decode(data: Any, _depth: int = 0) -> Any:
    """The value :func:`encode` described (runs in the parent; raises ValueError on junk)."""
    if _depth > MAX_DEPTH + 1:
        raise ValueError("nested too deep")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(item, _depth + 1) for item in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not an encoded value: {str(data)[:80]}")
    ((tag, inner),) = data.items()
    if tag not in _TAGS:
        raise ValueError(f"unknown tag {tag!r}")
    if tag == "float":
        return float(str(inner))
    if tag == "bytes":
        return bytes.fromhex(str(inner))
    if tag == "complex":
        return complex(float(inner[0]), float(inner[1]))
    if tag == "fraction":
        return Fraction(int(inner[0]), int(inner[1]))
    if tag == "decimal":
        return Decimal(str(inner))
    items = [decode(item, _depth + 1) for item in inner]
    if tag == "tuple":
        return tuple(items)
    if tag == "set":
        return set(items)
    if tag == "frozenset":
        return frozenset(items)
    return {key: value for key, value in items}


class NotEvaluable(ValueError):
    """An expected value the parent will not compute (it would need the program's code)."""


_PURE_CALLS = {
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "list": list,
    "dict": dict,
    "sorted": sorted,
    "float": float,
    "int": int,
    "str": str,
    "bool": bool,
    "complex": complex,
    "abs": abs,
    "round": round,
    "len": len,
    "min": min,
    "max": max,
    "sum": sum,
    "range": range,
    "math.sqrt": math.sqrt,
    "math.log": math.log,
    "math.exp": math.exp,
}
_CONSTANTS = {"math.pi": math.pi, "math.e": math.e, "math.inf": math.inf, "math.tau": math.tau}
_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _bounded(value: Any) -> Any:
    sized = isinstance(value, str | bytes | list | tuple | set | frozenset | dict | range)
    if sized and len(value) > MAX_ITEMS:
        raise NotEvaluable("the expected value is too large")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4096:
        raise NotEvaluable("the expected number is too large")
    return value


def _evaluate(node: ast.expr, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise NotEvaluable("nested too deep")
    go = lambda child: _evaluate(child, depth + 1)  # noqa: E731
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(go(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [go(e) for e in node.elts]
    if isinstance(node, ast.Set):
        return {go(e) for e in node.elts}
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {go(k): go(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        operand = go(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = go(node.left), go(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int) and abs(right) > 4096:
            raise NotEvaluable("the exponent is too large")
        if isinstance(node.op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                    _bounded(range(len(seq) * max(n, 0)))
        return _bounded(_OPERATORS[type(node.op)](left, right))
    name = _dotted(node)
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    if name in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[name]
    if isinstance(node, ast.Call) and _dotted(node.func) in _PURE_CALLS and not node.keywords:
        arguments = [go(argument) for argument in node.args]
        for argument in arguments:
            _bounded(argument)
        return _bounded(_PURE_CALLS[_dotted(node.func)](*arguments))
    raise NotEvaluable(f"cannot evaluate {ast.unparse(node)[:80]} outside the program")


def expected_value(node: ast.expr) -> Any:
    """The value of an assertion's expected side, computed in the trusted parent."""
    try:
        return _evaluate(node)
    except NotEvaluable:
        raise
    except (ArithmeticError, TypeError, ValueError, RecursionError) as error:
        raise NotEvaluable(f"the expected side raises {type(error).__name__}") from error
