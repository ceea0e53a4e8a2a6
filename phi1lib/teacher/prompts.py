"""Versioned prompt templates, read from ``phi1lib/teacher/prompts/<id>.toml``.

A template holds its id and version, the system message, the user message (a
:class:`string.Template` with ``$constraints`` and, for the judge, ``$code``), default sampling
parameters and, for structured answers, the JSON schema. Keeping them in data files, not code,
means a reader can read and change the exact words sent to the teacher, and the version in every
result's provenance says which words produced it. Introduced in chapter 2 and the appendix on
teacher endpoints.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import tomllib

from phi1lib.teacher.protocol import (
    TASK_PREFIX,
    PromptContractError,
    render_code,
    render_constraints,
)

PROMPTS_DIR = Path(__file__).with_name("prompts")


@dataclass(frozen=True)
class PromptTemplate:
    """One task's prompt, as loaded from its TOML file."""

    id: str
    version: int
    description: str
    system: str
    user: str
    params: dict[str, Any] = field(default_factory=dict)
    json_schema: dict[str, Any] | None = None
    required_constraints: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def needs_code(self) -> bool:
        return "$code" in self.user

    def render(
        self, constraints: Mapping[str, Any] | None = None, code: str | None = None
    ) -> list[dict[str, str]]:
        """The chat messages for these constraints (and code), checked against the contract."""
        constraints = dict(constraints or {})
        missing = [key for key in self.required_constraints if key not in constraints]
        if missing:
            raise PromptContractError(
                f"template {self.id!r} needs the constraints {missing}; got {sorted(constraints)}"
            )
        if self.needs_code and code is None:
            raise PromptContractError(f"template {self.id!r} needs a code snippet")
        user = string.Template(self.user).substitute(
            constraints=render_constraints(constraints),
            code=render_code(code) if self.needs_code else "",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def _problem(path: Path, message: str) -> PromptContractError:
    return PromptContractError(f"prompt template {path}: {message}")


def read_template(path: Path) -> PromptTemplate:
    """Load and check one template file; errors name the file and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise _problem(path, f"cannot be read: {error}") from error
    for key in ("id", "version", "system", "user"):
        if key not in raw:
            raise _problem(path, f"missing field {key!r}")
    if raw["id"] != path.stem:
        raise _problem(path, f"id {raw['id']!r} differs from the file name")
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise _problem(path, f"version must be a positive integer, got {raw['version']!r}")
    if f"{TASK_PREFIX} {raw['id']}" not in raw["user"].splitlines():
        raise _problem(path, f"the user message must contain the line '{TASK_PREFIX} {raw['id']}'")
    schema = raw.get("json_schema")
    if schema is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise _problem(
                path, f"json_schema is not a valid JSON Schema: {error.message}"
            ) from None
    return PromptTemplate(
        id=raw["id"],
        version=raw["version"],
        description=raw.get("description", ""),
        system=raw["system"],
        user=raw["user"],
        params=dict(raw.get("params", {})),
        json_schema=schema,
        required_constraints=tuple(raw.get("required_constraints", ())),
        path=path,
    )


@functools.cache
def load_template(template_id: str) -> PromptTemplate:
    """The template with this id from the package's prompt folder."""
    path = PROMPTS_DIR / f"{template_id}.toml"
    if not path.exists():
        known = ", ".join(available_templates())
        raise PromptContractError(f"no prompt template {template_id!r}; known: {known}")
    return read_template(path)


def available_templates() -> list[str]:
    return sorted(path.stem for path in PROMPTS_DIR.glob("*.toml"))
