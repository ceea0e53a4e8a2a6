"""The paper's three teacher tasks: judge a snippet, write a textbook section, write an exercise.

Each ``*_request`` function renders the task's versioned template into a
:class:`~phi1lib.teacher.records.TeacherRequest`; each ``parse_*`` function turns an answer into
the values a stage stores, with an error that names the request and the problem when the
teacher answered something unusable. Introduced in chapter 1 (the judge), chapter 2
(textbooks) and chapter 3 (exercises).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from phi1lib.teacher.prompts import PromptTemplate, load_template
from phi1lib.teacher.records import TeacherRequest, TeacherResult

JUDGE = "judge_educational_value"
TEXTBOOK = "textbook_section"
EXERCISE = "code_exercise"

# A snippet counts as educational when the judge gives it at least this score (0-5 rubric).
EDUCATIONAL_THRESHOLD = 3

EXERCISE_FIELDS = ("function_name", "signature", "docstring", "solution", "tests")


class TeacherOutputError(ValueError):
    """An answer that cannot be used: the request failed, or its content is malformed."""


def _request(
    template: PromptTemplate,
    id: str,
    *,
    constraints: Mapping[str, Any],
    seed: int,
    code: str | None = None,
) -> TeacherRequest:
    return TeacherRequest(
        id=id,
        template=template.id,
        template_version=template.version,
        messages=template.render(constraints, code=code),
        params={**template.params, "seed": int(seed)},
        json_schema=template.json_schema,
        constraints=dict(constraints),
    )


def judge_request(code: str, id: str, *, seed: int = 0) -> TeacherRequest:
    """Ask the teacher how much ``code`` would help a student of basic programming (chapter 1)."""
    return _request(load_template(JUDGE), id, constraints={}, seed=seed, code=code)


def textbook_request(constraints: Mapping[str, Any], id: str, seed: int) -> TeacherRequest:
    """Ask for one textbook section; constraints: topic, subtopic, audience, style (chapter 2)."""
    return _request(load_template(TEXTBOOK), id, constraints=constraints, seed=seed)


def exercise_request(constraints: Mapping[str, Any], id: str, seed: int) -> TeacherRequest:
    """Ask for one exercise; constraints: function_name, topic, difficulty (chapter 3)."""
    return _request(load_template(EXERCISE), id, constraints=constraints, seed=seed)


def _answer(result: TeacherResult) -> Any:
    if not result.ok:
        raise TeacherOutputError(
            f"request {result.id!r} has no answer ({result.status}): {result.error}"
        )
    if result.parsed is None:
        raise TeacherOutputError(f"request {result.id!r} was not a structured (JSON) request")
    return result.parsed


def parse_judgement(result: TeacherResult) -> tuple[int, str]:
    """The judge's ``(score, reason)``; the score is an integer from 0 to 5 (chapter 1)."""
    answer = _answer(result)
    score, reason = answer.get("score"), answer.get("reason")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        raise TeacherOutputError(f"request {result.id!r}: score {score!r} is not an integer 0-5")
    if not isinstance(reason, str):
        raise TeacherOutputError(f"request {result.id!r}: reason {reason!r} is not text")
    return score, reason


def _parse_python(source: str, what: str, request_id: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise TeacherOutputError(
            f"request {request_id!r}: {what} is not valid Python ({error.msg}, line {error.lineno})"
        ) from None


def parse_exercise(result: TeacherResult) -> dict[str, Any]:
    """The exercise's fields, checked: the solution defines the asked function, tests are asserts.

    Returns ``function_name``, ``signature``, ``docstring``, ``solution`` and ``tests`` (a list
    of assert statements). Raises :class:`TeacherOutputError` naming the request and the problem.
    Introduced in chapter 3.
    """
    answer = _answer(result)
    rid = result.id
    missing = [name for name in EXERCISE_FIELDS if name not in answer]
    if missing:
        raise TeacherOutputError(f"request {rid!r}: the exercise lacks the fields {missing}")
    name = answer["function_name"]
    asked = result.provenance.get("constraints", {}).get("function_name")
    if asked is not None and name != asked:
        raise TeacherOutputError(f"request {rid!r}: asked for function {asked!r}, got {name!r}")
    for text_field in ("signature", "docstring", "solution"):
        if not isinstance(answer[text_field], str) or not answer[text_field].strip():
            raise TeacherOutputError(f"request {rid!r}: {text_field} is empty or not text")
    signature = answer["signature"].strip()
    if not signature.startswith(f"def {name}("):
        raise TeacherOutputError(
            f"request {rid!r}: signature {signature!r} does not define {name!r}"
        )
    _parse_python(f"{signature}\n    pass\n", "the signature", rid)
    module = _parse_python(answer["solution"], "the solution", rid)
    defined = {
        node.name
        for node in module.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    if name not in defined:
        raise TeacherOutputError(f"request {rid!r}: the solution does not define {name}()")
    tests = answer["tests"]
    if not isinstance(tests, list) or not tests:
        raise TeacherOutputError(f"request {rid!r}: tests must be a non-empty list of asserts")
    for number, test in enumerate(tests):
        if not isinstance(test, str):
            raise TeacherOutputError(f"request {rid!r}: test {number} is not text: {test!r}")
        body = _parse_python(test, f"test {number}", rid).body
        if not body or not all(isinstance(node, ast.Assert) for node in body):
            raise TeacherOutputError(f"request {rid!r}: test {number} is not an assert: {test!r}")
    return {key: answer[key] for key in EXERCISE_FIELDS}
