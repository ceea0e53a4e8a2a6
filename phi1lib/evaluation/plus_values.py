"""Python values as JSON and back, for the inputs and outputs of HumanEval+ and MBPP+.

EvalPlus grades a completion by calling it on hundreds of inputs and comparing each output with
the reference solution's. Here the comparison happens in the trusted parent, never inside the
sandbox: the program only sends back what the function returned, as data. JSON alone would blur
what a comparison must tell apart (a tuple from a list, a set from a list, ``nan`` from null,
integer dictionary keys from strings), so values are tagged: ``{"$t": [...]}`` a tuple,
``{"$s": [...]}`` a set, ``{"$fs": [...]}`` a frozenset, ``{"$d": [[key, value], ...]}`` any
dictionary, ``{"$f": "nan"}`` a float JSON cannot write, ``{"$c": [re, im]}`` a complex number,
``{"$b": "hex"}`` bytes, and ``{"$r": repr, "$type": name}`` anything else (compared by its repr).

The two functions below are also pasted, as source, into every program the sandbox runs for
these benchmarks (``plus.py``), so the program and the parent speak exactly the same format.
Introduced in chapter 6 ("HumanEval+ and MBPP+").
"""

from __future__ import annotations

import inspect
from typing import Any


def plus_encode(value):
    """``value`` as JSON-ready data (lists, dicts with text keys, numbers, text, None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value:
            return {"$f": "nan"}
        if value in (float("inf"), float("-inf")):
            return {"$f": "inf" if value > 0 else "-inf"}
        return value
    if isinstance(value, list):
        return [plus_encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$t": [plus_encode(item) for item in value]}
    if isinstance(value, frozenset):
        return {"$fs": [plus_encode(item) for item in value]}
    if isinstance(value, set):
        return {"$s": [plus_encode(item) for item in value]}
    if isinstance(value, dict):
        return {"$d": [[plus_encode(k), plus_encode(v)] for k, v in value.items()]}
    if isinstance(value, complex):
        return {"$c": [plus_encode(value.real), plus_encode(value.imag)]}
    if isinstance(value, bytes | bytearray):
        return {"$b": bytes(value).hex()}
    return {"$r": repr(value), "$type": type(value).__name__}


def plus_decode(data):
    """The Python value ``plus_encode`` wrote; unknown types come back as ``Opaque``."""
    if isinstance(data, list):
        return [plus_decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "$t" in data:
        return tuple(plus_decode(item) for item in data["$t"])
    if "$s" in data:
        return {plus_decode(item) for item in data["$s"]}
    if "$fs" in data:
        return frozenset(plus_decode(item) for item in data["$fs"])
    if "$d" in data:
        return {plus_decode(k): plus_decode(v) for k, v in data["$d"]}
    if "$f" in data:
        return float(data["$f"])
    if "$c" in data:
        return complex(plus_decode(data["$c"][0]), plus_decode(data["$c"][1]))
    if "$b" in data:
        return bytes.fromhex(data["$b"])
    return Opaque(str(data.get("$type")), str(data.get("$r")))


class Opaque:
    """A value of a type JSON has no tag for: equal to another only with the same type and repr."""

    def __init__(self, type_name, text):
        self.type_name, self.text = type_name, text

    def __eq__(self, other):
        return isinstance(other, Opaque) and (self.type_name, self.text) == (
            other.type_name,
            other.text,
        )

    def __hash__(self):
        return hash((self.type_name, self.text))

    def __repr__(self):
        return f"Opaque({self.type_name}: {self.text})"


def codec_source() -> str:
    """The source of the encoder and decoder, as pasted into each sandboxed program."""
    return "\n\n".join(inspect.getsource(item) for item in (plus_encode, plus_decode, Opaque))


def round_trip(value: Any) -> Any:
    """``value`` encoded and decoded again: what the parent sees of a program's output."""
    return plus_decode(plus_encode(value))
