"""The contract between rendered prompts and any teacher: the parts a machine can read back.

Every prompt rendered from ``phi1lib/teacher/prompts/*.toml`` carries, in its user message,

* a line ``Task: <template id>``,
* a ``Constraints:`` block of ``- key: value`` lines (one constraint per line, ended by a blank
  line), which an LLM reads as a plain list and the offline server parses exactly,
* for the judge, the snippet between a line ``<code>`` and a line ``</code>``.

A GPT-4-class model just reads the prose around these; the offline teacher reads only these, and
answers a prompt without them with an OpenAI-style 400 error. Introduced in the appendix on
teacher endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TASK_PREFIX = "Task:"
CONSTRAINTS_HEADER = "Constraints:"
CODE_OPEN = "<code>"
CODE_CLOSE = "</code>"

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_CONSTRAINT_LINE = re.compile(r"^- ([a-z][a-z0-9_]*): (.*)$")


class PromptContractError(ValueError):
    """A prompt (or constraint) that does not follow the teacher contract."""


@dataclass(frozen=True)
class ParsedPrompt:
    """What the offline teacher reads from a prompt."""

    task: str
    constraints: dict[str, str]
    code: str | None


def constraint_value(key: str, value: Any) -> str:
    """One constraint value as it appears in a prompt: a single line of text."""
    if not _KEY.match(key):
        raise PromptContractError(
            f"constraint name {key!r} must be lower_snake_case (letters, digits, underscores)"
        )
    text = str(value).strip()
    if not text or "\n" in text or "\r" in text:
        raise PromptContractError(f"constraint {key!r} must be one non-empty line, got {value!r}")
    return text


def render_constraints(constraints: Mapping[str, Any]) -> str:
    """The ``Constraints:`` block for a prompt, keys in the order given."""
    lines = [CONSTRAINTS_HEADER]
    lines += [f"- {key}: {constraint_value(key, value)}" for key, value in constraints.items()]
    return "\n".join(lines)


def render_code(code: str) -> str:
    """A snippet between the code markers, so that it can be cut out again exactly."""
    if f"\n{CODE_CLOSE}\n" in f"\n{code}\n":
        raise PromptContractError(f"the code itself contains a line {CODE_CLOSE!r}")
    return f"{CODE_OPEN}\n{code}\n{CODE_CLOSE}"


def parse_prompt(text: str) -> ParsedPrompt:
    """Read the task, the constraints and the code (if any) back from a rendered user message."""
    lines = text.splitlines()
    task = next((ln[len(TASK_PREFIX) :].strip() for ln in lines if ln.startswith(TASK_PREFIX)), "")
    if not task:
        raise PromptContractError(
            f"the last user message has no line starting with {TASK_PREFIX!r}; the offline teacher "
            "answers only prompts rendered from phi1lib's templates (phi1lib.teacher.tasks)"
        )
    constraints: dict[str, str] = {}
    if CONSTRAINTS_HEADER in lines:
        for line in lines[lines.index(CONSTRAINTS_HEADER) + 1 :]:
            if not line.strip():
                break
            match = _CONSTRAINT_LINE.match(line)
            if match is None:
                raise PromptContractError(
                    f"constraint line {line!r} is not of the form '- key: value'"
                )
            constraints[match.group(1)] = match.group(2).strip()
    code = None
    if CODE_OPEN in lines:
        start = lines.index(CODE_OPEN) + 1
        ends = [i for i, line in enumerate(lines) if line == CODE_CLOSE and i >= start]
        if not ends:
            raise PromptContractError(f"a {CODE_OPEN!r} line is never closed by {CODE_CLOSE!r}")
        code = "\n".join(lines[start : ends[-1]])
    return ParsedPrompt(task=task, constraints=constraints, code=code)
