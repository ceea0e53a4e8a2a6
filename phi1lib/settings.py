"""The one strict loader that turns a table of ``profiles.toml`` into a typed settings object.

Every section of a profile has one frozen dataclass (listed in ``profiles.SECTIONS``) whose
fields are exactly the section's keys: no defaults in the class, none in ``.get()`` calls, so
``profiles.toml`` is the single place a value is written. Loading checks both directions (a key
without a field is a typo, a field without a key a forgotten value) and the type of every
value, and names the profile, section and field that is wrong. Introduced in the preface
("Profiles").
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A profile section whose keys or values do not fit its settings class."""


def field_names(cls: type) -> list[str]:
    """The keys a section of this settings class must hold, in declaration order."""
    return [item.name for item in dataclasses.fields(cls) if item.init]


def _check(value: Any, hint: Any, where: str) -> Any:
    """``value`` if it has the type ``hint`` (an int is accepted as a float), else an error."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _check(value, option, where)
            except SettingsError:
                continue
        raise SettingsError(f"{where} = {value!r}: expected {hint}")
    if hint is type(None):
        if value is None:
            return value
        raise SettingsError(f"{where} = {value!r}: expected nothing")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = origin or hint
    if expected is int and isinstance(value, bool):
        raise SettingsError(f"{where} = {value!r}: expected int, not a boolean")
    if not isinstance(value, expected):
        raise SettingsError(f"{where} = {value!r}: expected {getattr(hint, '__name__', hint)}")
    if expected is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        return [_check(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def load_settings(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Build ``cls`` from a section's ``values``; ``where`` names the section in errors."""
    names = field_names(cls)
    unknown = sorted(set(values) - set(names))
    missing = [name for name in names if name not in values]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown field(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing field(s) {', '.join(missing)}")
        raise SettingsError(f"{where} ({cls.__name__}): {'; '.join(problems)}")
    hints = typing.get_type_hints(cls)
    checked = {name: _check(values[name], hints[name], f"{where}.{name}") for name in names}
    try:
        return cls(**checked)
    except ValueError as error:  # a class's own check (a range, a choice) failed
        raise SettingsError(f"{where}: {error}") from error
