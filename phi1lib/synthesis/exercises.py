"""CodeExercises: HumanEval-style exercises from constrained function names, each one executed.

An exercise of the paper is a function signature with a docstring that states a task, followed
by the solution (paper §2.2); diversity came mainly from constraining the function names.
Here each exercise is asked for with three constraints (function name, topic, difficulty; see
``constraints.py``) through the teacher's ``code_exercise`` template, which answers the fields
separately (signature, docstring, solution, tests). This module turns an answer into a record:
the *prompt* (any imports the solution needs, the signature and the docstring, as a HumanEval
prompt), the *training text* in the paper's format (the prompt followed by the solution's body)
and the *program* that checks it (the training text followed by the tests). The training text
itself is what runs in the sandbox, so what the model learns is exactly what was verified.
Introduced in chapter 3.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phi1lib.profiles import Profile
from phi1lib.sandbox import SandboxLimits
from phi1lib.sandbox.split import Unsplittable, split_asserts
from phi1lib.synthesis.constraints import (
    exercise_constraints,
    infamily_constraints,
    request_seed,
    vary_function_names,
)
from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.synthesis.records import KEPT, provenance_columns, rejection
from phi1lib.synthesis.split import heldout_units
from phi1lib.synthesis.verification import verify_programs
from phi1lib.teacher import JobReport, TeacherRequest, run_requests, tasks, teacher_endpoint
from phi1lib.teacher.records import TeacherResult
from phi1lib.teacher.tasks import TeacherOutputError

REQUEST_CONSTRAINTS = ("function_name", "topic", "difficulty")


@dataclass(frozen=True)
class ExerciseSettings:
    """The profile's ``[exercises]`` section (chapter 3)."""

    n_exercises: int
    seed: int
    # The families exercises are asked for ([] = all): a narrower domain gives a small model
    # more instances of each task (chapter 3).
    families: list[str]
    # Share of function names given a modifier (``count_vowels_raw``); see ``synthesis.names``.
    name_variant_share: float
    heldout_fraction: float
    # New instances of training families, with reserved names, wordings and constants.
    infamily_exercises: int
    timeout_s: float
    workers: int
    token_counter: str


@dataclass(frozen=True)
class ExercisePlan:
    """What a profile asks the teacher for: every request's constraints (``split`` is
    ``"infamily"`` for in-family requests, else empty) and the families held out whole."""

    constraints: list[dict[str, str]]
    heldout_families: list[str]


def exercise_plan(settings: ExerciseSettings) -> ExercisePlan:
    """The training requests (balanced over the profile's families, names varied), the held-out
    families, and the in-family requests for the other families that have reserved wordings
    (chapter 3), all from the curriculum."""
    curriculum = load_curriculum()
    known = {entry["family"] for entry in curriculum.exercise_names}
    if unknown := sorted(set(settings.families) - known):
        raise ValueError(f"exercises.families names unknown families: {unknown}")
    chosen = set(settings.families) or known
    names = [entry for entry in curriculum.exercise_names if entry["family"] in chosen]
    train = exercise_constraints(settings.n_exercises, settings.seed, names=names)
    train = vary_function_names(train, settings.seed, settings.name_variant_share)
    heldout = heldout_units(sorted(chosen), settings.heldout_fraction)
    eligible = [f for f in curriculum.infamily_families if f in chosen and f not in heldout]
    infamily = infamily_constraints(
        settings.infamily_exercises, settings.seed, eligible, names=names
    )
    constraints = [{**item, "split": ""} for item in train]
    constraints += [{**item, "split": "infamily"} for item in infamily]
    return ExercisePlan(constraints, sorted(heldout))


def exercise_requests(constraints: Sequence[dict[str, str]], seed: int) -> list[TeacherRequest]:
    """One ``code_exercise`` request per constraint set; ids ``exercise-0000000``... and, for
    in-family requests, ``infamily-0000000``... (chapter 3)."""
    requests, counts = [], {"exercise": 0, "infamily": 0}
    for item in constraints:
        kind = "infamily" if item.get("split") == "infamily" else "exercise"
        index = counts[kind]
        counts[kind] += 1
        requests.append(
            tasks.exercise_request(
                {key: item[key] for key in REQUEST_CONSTRAINTS},
                id=f"{kind}-{index:07d}",
                seed=request_seed(kind, seed, index),
            )
        )
    return requests


def format_docstring(docstring: str, indent: str) -> str:
    """The docstring as source lines at ``indent``, quoted so that any text stays valid Python."""
    text = inspect.cleandoc(docstring).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.splitlines() or [""]
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""'
    inner = "\n".join(f"{indent}{line}".rstrip() for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{inner}\n{indent}"""'


@dataclass(frozen=True)
class ExerciseText:
    """The three views of one exercise: what the model is shown, learns, and is checked with."""

    signature: str
    prompt: str
    body: str
    text: str


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def exercise_text(function_name: str, docstring: str, solution: str) -> ExerciseText:
    """Rebuild the exercise in the paper's format: signature + docstring, then the body.

    The signature is the solution's own ``def`` header; the docstring is the one the teacher
    stated as the task; code the solution has before the function (imports, helpers) opens the
    prompt, as in HumanEval, and code after it follows the body. Raises ``ValueError`` when the
    solution has no such function or no body besides a docstring. Introduced in chapter 3.
    """
    module = ast.parse(solution)
    functions = [
        node
        for node in module.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function_name
    ]
    if not functions:
        raise ValueError(f"the solution defines no top-level function {function_name}()")
    node = functions[-1]
    lines = solution.splitlines()
    statements = node.body[1:] if _is_docstring(node.body[0]) else node.body
    if not statements:
        raise ValueError(f"{function_name}() has no body besides its docstring")
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    header_end = node.body[0].lineno - 1
    body_start = node.body[0].end_lineno if _is_docstring(node.body[0]) else header_end
    if node.body[0].lineno == node.lineno or statements[0].lineno <= body_start:
        raise ValueError(f"{function_name}() shares a line between its header, docstring and body")
    signature = "\n".join(lines[start - 1 : header_end]).rstrip()
    body_lines = lines[body_start : node.end_lineno]
    first = next(line for line in body_lines if line.strip())
    indent = first[: len(first) - len(first.lstrip())]
    preamble = "\n".join(lines[: start - 1]).strip("\n")
    postamble = "\n".join(lines[node.end_lineno :]).strip("\n")
    prompt = f"{signature}\n{format_docstring(docstring, indent)}\n"
    if preamble:
        prompt = f"{preamble}\n\n\n{prompt}"
    body = "\n".join(body_lines).strip("\n") + "\n"
    text = prompt + body + (f"\n\n{postamble}\n" if postamble else "")
    return ExerciseText(signature=signature, prompt=prompt, body=body, text=text)


def check_program(text: str, tests: Sequence[str]) -> str:
    """The program that passes exactly when the exercise's training text passes its tests."""
    return text.rstrip("\n") + "\n\n\n" + "\n".join(tests) + "\n"


def checked_program(text: str, tests: Sequence[str], entry_point: str) -> tuple[str, Any]:
    """The program the sandbox runs for an exercise, and its split test (None: in-process).

    Tests of the form ``assert f(args) == expected`` are split (``phi1lib.sandbox.split``): only
    their calls run in the sandbox, the comparisons happen here, so a generated solution cannot
    forge its own verdict. Others run in-process, inside :func:`check_program`.
    """
    try:
        split = split_asserts("\n".join(tests), entry_point)
    except Unsplittable:
        return check_program(text, tests), None
    return text.rstrip("\n") + "\n\n\n" + split.setup, split


def _tests_call(tests: Sequence[str], function_name: str) -> bool:
    return any(
        isinstance(node, ast.Name) and node.id == function_name
        for test in tests
        for node in ast.walk(ast.parse(test))
    )


def read_exercise(result: TeacherResult) -> dict[str, Any]:
    """An answered request as exercise fields plus ``prompt``, ``text``, ``entry_point``.

    Raises :class:`~phi1lib.teacher.tasks.TeacherOutputError` naming the request and the problem
    for an answer that is not a usable exercise (chapter 3).
    """
    fields = tasks.parse_exercise(result)
    name = fields["function_name"]
    if not _tests_call(fields["tests"], name):
        raise TeacherOutputError(f"request {result.id!r}: no test calls {name}()")
    try:
        built = exercise_text(name, fields["docstring"], fields["solution"])
    except ValueError as error:
        raise TeacherOutputError(f"request {result.id!r}: {error}") from None
    return {
        **fields,
        "signature": built.signature,
        "docstring": inspect.cleandoc(fields["docstring"]),
        "prompt": built.prompt,
        "text": built.text,
        "entry_point": name,
    }


def _empty_fields(item: dict[str, str]) -> dict[str, Any]:
    return {
        "function_name": item["function_name"],
        "signature": "",
        "docstring": "",
        "prompt": "",
        "solution": "",
        "tests": [],
        "text": "",
        "entry_point": item["function_name"],
    }


def generate_exercises(
    profile: Profile,
    *,
    cache_dir: Path,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], JobReport]:
    """Ask the teacher for the profile's exercises and run each against its tests (chapter 3).

    Returns one record per request (see :func:`exercise_plan`; ``split`` is ``"infamily"`` for
    an in-family request), in request order, with ``rejected`` empty for a verified
    exercise, else the reason (``teacher_failed``, ``teacher_malformed``, ``invalid``: the
    answer is not a usable exercise, ``fails_tests``: ``verification`` says how); and the
    teacher's job report. ``cache_dir`` holds the teacher's answers and the sandbox verdicts.
    """
    settings = profile.exercises
    constraints = exercise_plan(settings).constraints
    requests = exercise_requests(constraints, settings.seed)
    with teacher_endpoint(profile) as endpoint:
        report = run_requests(
            endpoint, requests, cache_dir=cache_dir / "teacher", progress=progress
        )
    records: list[dict[str, Any]] = []
    for item, result in zip(constraints, report.results, strict=True):
        record: dict[str, Any] = {"id": result.id, **item, **_empty_fields(item)}
        reason, problem = rejection(result), result.error or ""
        if reason == KEPT:
            try:
                record.update(read_exercise(result))
            except TeacherOutputError as error:
                reason, problem = "invalid", str(error)
        record.update(
            {
                "teacher_error": problem,
                **provenance_columns(result),
                "rejected": reason,
            }
        )
        records.append(record)
    runnable = [index for index, record in enumerate(records) if record["rejected"] == KEPT]
    programs = [
        checked_program(records[i]["text"], records[i]["tests"], records[i]["entry_point"])
        for i in runnable
    ]
    verdicts = verify_programs(
        [source for source, _ in programs],
        tests=[split for _, split in programs],
        limits=SandboxLimits(timeout_s=settings.timeout_s),
        workers=settings.workers,
        cache_dir=cache_dir / "sandbox",
        progress=progress,
        desc="exercises",
    )
    for record in records:
        record.update(verification="", error_type="", failed_assertion="", verification_message="")
    for index, verdict in zip(runnable, verdicts, strict=True):
        records[index].update(
            verification=verdict.kind,
            error_type=verdict.error_type or "",
            failed_assertion=verdict.failed_assertion or "",
            verification_message=verdict.message,
        )
        if not verdict.passed:
            records[index]["rejected"] = "fails_tests"
    return records, report
