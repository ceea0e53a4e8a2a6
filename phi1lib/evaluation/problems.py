"""One shape for every benchmark problem, and the program that checks a completion of it.

HumanEval, MBPP and the book's new problems differ in how a prompt is written and how the tests
are called, but an evaluation only needs five things from each: the text the model continues,
a reference completion, the test code, the function under test, and where to stop generating.
Introduced in chapter 6 ("Three benchmarks").
"""

from __future__ import annotations

import ast
import gzip
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

# Where a completion of a function body ends: the next top-level statement. Chen et al. (2021)
# stopped HumanEval samples at these; the bigcode harness uses the same set.
FUNCTION_BODY_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n@", "\nassert ")

HUMANEVAL_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


class ProblemFormatError(ValueError):
    """A benchmark record that lacks a field or whose code does not parse."""


@dataclass(frozen=True)
class Problem:
    """A benchmark problem, whatever benchmark it comes from (chapter 6).

    ``harness`` says how ``test`` is run: ``"check"`` for HumanEval's ``def check(candidate)``
    (called on the entry point after the tests are defined), ``"asserts"`` for MBPP's top-level
    assert statements, ``"outputs"`` for HumanEval+ and MBPP+, whose ``test`` is their inputs
    as JSON (the first ``base_inputs`` of them the original benchmark's) and whose outputs are
    compared with the reference solution's, to ``atol`` for floats (``plus.py``). ``description`` is the task in words, used by the n-gram
    decontamination check and shown to the LLM judge.
    """

    benchmark: str
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str
    description: str
    harness: Literal["check", "asserts", "outputs"] = "check"
    stop_sequences: tuple[str, ...] = FUNCTION_BODY_STOPS
    base_inputs: int = 0
    atol: float = 0.0

    def program(self, completion: str) -> str:
        """The full program that passes (exit status 0) exactly when ``completion`` is correct."""
        if self.harness == "outputs":
            raise ValueError(
                f"{self.task_id}: its verdict compares outputs outside the sandbox "
                "(phi1lib.evaluation.plus.grade_outputs); there is no single program to run"
            )
        body = self.prompt + completion
        if self.harness == "check":
            return f"{body}\n\n{self.test}\n\ncheck({self.entry_point})\n"
        return f"{body}\n\n{self.test}\n"

    def reference_code(self) -> str:
        """The prompt completed by its reference solution: the code decontamination compares."""
        return self.prompt + self.canonical_solution

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["stop_sequences"] = list(self.stop_sequences)
        return record


def function_docstring(source: str, name: str) -> str | None:
    """The docstring of the top-level function ``name`` in ``source``, if it parses and has one."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            # The first string statement, not only the first statement: HumanEval/115 puts an
            # import above its docstring.
            for statement in node.body:
                value = statement.value if isinstance(statement, ast.Expr) else None
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return inspect.cleandoc(value.value)
            return None
    return None


def problem_from_humaneval_record(
    record: Mapping[str, Any], *, benchmark: str, where: str
) -> Problem:
    """Check a HumanEval-format record (``where`` names it in errors) and wrap it as a Problem."""
    missing = [field for field in HUMANEVAL_FIELDS if not isinstance(record.get(field), str)]
    if missing:
        raise ProblemFormatError(f"{where}: missing or non-text field(s) {', '.join(missing)}")
    if "def check(" not in record["test"]:
        raise ProblemFormatError(f"{where}: test code defines no check(candidate) function")
    for field in ("prompt", "test"):
        try:
            ast.parse(record[field])
        except SyntaxError as error:
            raise ProblemFormatError(f"{where}: {field} does not parse ({error})") from error
    docstring = function_docstring(record["prompt"] + "    pass\n", record["entry_point"])
    return Problem(
        benchmark=benchmark,
        task_id=record["task_id"],
        prompt=record["prompt"],
        canonical_solution=record["canonical_solution"],
        test=record["test"],
        entry_point=record["entry_point"],
        description=docstring or record["prompt"],
    )


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every non-blank line; a bad line names the file and line.

    A name ending in ``.gz`` is read through gzip, as the bundled benchmark files are stored.
    """
    gzipped = path.suffix == ".gz"
    with (
        gzip.open(path, "rt", encoding="utf-8")
        if gzipped
        else path.open(encoding="utf-8") as handle
    ):
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ProblemFormatError(f"{path}:{number}: not valid JSON ({error})") from error
            if not isinstance(record, dict):
                raise ProblemFormatError(f"{path}:{number}: expected a JSON object")
            yield number, record
