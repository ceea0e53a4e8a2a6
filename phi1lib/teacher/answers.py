"""Reading one answer: is it complete, and for a structured request, valid JSON of the schema?

The same check runs on answers from the chat endpoint and from Batch API output files, so an
answer is accepted by one rule whichever way it came. A problem here makes the client ask
again (a bounded number of times, quoting the problem) and, if it persists, count the request
as malformed; a malformed answer is never served from the cache, though its text is kept for
a reader to see. A request with ``text_fallback`` takes an answer that is not JSON of its
schema as plain text, for the caller to read. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from phi1lib.teacher.records import TeacherRequest

# Open models often wrap JSON in a markdown fence even when asked not to; that much is forgiven.
_FENCED = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)


@functools.lru_cache(maxsize=64)
def schema_validator(schema_json: str) -> jsonschema.Draft202012Validator:
    """A validator per distinct schema (given as sorted JSON), checked once and then reused."""
    schema = json.loads(schema_json)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@dataclass(frozen=True)
class Answer:
    text: str | None
    parsed: Any = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None


def read_answer(request: TeacherRequest, content: str | None, finish_reason: str | None) -> Answer:
    """Check one completion against what ``request`` asked for."""
    if content is None or not content.strip():
        return Answer(content, problem=f"empty answer (finish_reason={finish_reason})")
    if finish_reason == "length":
        return Answer(content, problem="truncated at max_tokens (finish_reason=length)")
    if finish_reason not in (None, "stop"):
        return Answer(content, problem=f"answer ended with finish_reason={finish_reason}")
    if request.json_schema is None:
        return Answer(content)
    stripped = content.strip()
    fenced = _FENCED.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        parsed = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError) as error:
        if request.text_fallback:
            return Answer(content)
        where = f" at char {error.pos}" if isinstance(error, json.JSONDecodeError) else ""
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deeply"
        return Answer(content, problem=f"not valid JSON ({reason}{where})")
    validator = schema_validator(json.dumps(request.json_schema, sort_keys=True))
    errors = sorted(validator.iter_errors(parsed), key=lambda e: list(e.absolute_path))
    if errors and request.text_fallback:
        return Answer(content)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        return Answer(
            content, problem=f"JSON does not match the schema at {where}: {errors[0].message}"
        )
    return Answer(content, parsed=parsed)
