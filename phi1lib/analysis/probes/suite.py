"""The probe suite: prompts for the abilities the paper says emerged, each with an automatic check.

The probes live in ``suite.toml`` beside this module (written for this book; its header explains
every field). This module reads and validates them, so that a typo in the data file is reported
with the probe's id and the field at fault instead of surfacing as a wrong score.
Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

SUITE_FILE = Path(__file__).with_name("suite.toml")
CATEGORIES = ("stdlib", "gui", "chat", "logic", "robustness", "counting")
PERTURBATIONS = ("original", "reworded", "grammar", "longer")
FORMATS = ("code", "chat")
CHECKS = ("tests", "structure")


class ProbeFormatError(ValueError):
    """A probe in the suite file that lacks a field or holds one that cannot be right."""


@dataclass(frozen=True)
class Structure:
    """What a structural check looks for (see the header of ``suite.toml``)."""

    uses: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    positions: frozenset[tuple[int, int]] | None = None
    keywords: tuple[str, ...] = ()  # "call:keyword": a call of that name passing that keyword


@dataclass(frozen=True)
class Probe:
    """One prompt of the suite and how its completion is judged."""

    id: str
    category: str
    echoes: str
    format: str
    check: str
    prompt: str
    reference: str
    entry_point: str = ""
    tests: str = ""
    structure: Structure = field(default_factory=Structure)
    group: str = ""
    perturbation: str = ""


def _require(record: Mapping[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ProbeFormatError(f"{where}: field {name!r} is missing or empty")
    return value


def _choice(record: Mapping[str, Any], name: str, allowed: Sequence[str], where: str) -> str:
    value = _require(record, name, where)
    if value not in allowed:
        raise ProbeFormatError(f"{where}: {name} {value!r} is not one of {', '.join(allowed)}")
    return value


def _structure(record: Mapping[str, Any], where: str) -> Structure:
    raw = record.get("structure")
    if not isinstance(raw, Mapping) or not (raw.get("uses") or raw.get("counts")):
        raise ProbeFormatError(f"{where}: a structure check needs [probe.structure] uses or counts")
    unknown = set(raw) - {"uses", "counts", "positions", "keywords"}
    if unknown:
        raise ProbeFormatError(f"{where}: unknown structure field(s) {', '.join(sorted(unknown))}")
    positions = raw.get("positions")
    try:
        cells = frozenset((int(row), int(col)) for row, col in positions) if positions else None
    except (TypeError, ValueError) as error:
        raise ProbeFormatError(f"{where}: positions must be [row, column] pairs") from error
    keywords = tuple(raw.get("keywords", ()))
    if any(keyword.count(":") != 1 for keyword in keywords):
        raise ProbeFormatError(f"{where}: keywords are written 'call:keyword'")
    return Structure(
        uses=tuple(raw.get("uses", ())),
        counts={name: int(count) for name, count in raw.get("counts", {}).items()},
        positions=cells,
        keywords=keywords,
    )


def probe_from_record(record: Mapping[str, Any], where: str) -> Probe:
    """Validate one ``[[probe]]`` table (``where`` names it in errors) and build the Probe."""
    probe_id = _require(record, "id", where)
    where = f"{where} ({probe_id})"
    category = _choice(record, "category", CATEGORIES, where)
    if not probe_id.startswith(f"{category}/"):
        raise ProbeFormatError(f"{where}: id must start with its category, {category!r}/")
    format_ = _choice(record, "format", FORMATS, where)
    check = _choice(record, "check", CHECKS, where)
    prompt = _require(record, "prompt", where)
    reference = _require(record, "reference", where)
    values: dict[str, Any] = {}
    if check == "tests":
        values["entry_point"] = _require(record, "entry_point", where)
        values["tests"] = _require(record, "tests", where)
        try:
            ast.parse(values["tests"])
        except SyntaxError as error:
            raise ProbeFormatError(f"{where}: tests do not parse ({error})") from error
    else:
        values["structure"] = _structure(record, where)
    if format_ == "code":
        try:
            ast.parse(prompt + reference)
        except SyntaxError as error:
            raise ProbeFormatError(
                f"{where}: prompt + reference does not parse ({error})"
            ) from error
    if category == "robustness":
        values["group"] = _require(record, "group", where)
        values["perturbation"] = _choice(record, "perturbation", PERTURBATIONS, where)
    return Probe(
        id=probe_id,
        category=category,
        echoes=str(record.get("echoes", "")),
        format=format_,
        check=check,
        prompt=prompt,
        reference=reference,
        **values,
    )


def load_suite(path: Path = SUITE_FILE) -> list[Probe]:
    """Every probe of the suite file, validated, in file order."""
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ProbeFormatError(f"{path}: not valid TOML ({error})") from error
    records = table.get("probe")
    if not isinstance(records, list) or not records:
        raise ProbeFormatError(f"{path}: no [[probe]] tables found")
    probes = [probe_from_record(record, f"{path} probe {i}") for i, record in enumerate(records, 1)]
    seen: set[str] = set()
    for probe in probes:
        if probe.id in seen:
            raise ProbeFormatError(f"{path}: probe id {probe.id!r} appears twice")
        seen.add(probe.id)
    return probes
