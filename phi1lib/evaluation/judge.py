"""The LLM judge of the paper's Table 2: a 0-10 grade of a candidate against the reference.

Unit tests say only pass or fail. To score the 50 unconventional problems the paper instead asked
GPT-4 to compare each candidate with a correct solution, write a short assessment, then grade it
from 0 to 10 (the paper's §4), which credits a solution that is nearly right. The prompt lives
in ``data/judge_solution.toml`` (versioned, so cached grades name the words that produced them)
and goes through the book's teacher client. The book's offline teacher answers only the
generation tasks of chapters 1-3, so this judge runs only when the profile's teacher is a real
LLM endpoint. Introduced in chapter 6 ("Grading by an LLM").
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from phi1lib.evaluation.problems import Problem

JUDGE_TEMPLATE_FILE = Path(__file__).with_name("data") / "judge_solution.toml"
GRADE_MAX = 10
_GRADE_TEXT = re.compile(r"grade\W{0,3}(\d{1,2})(?:\s*/\s*10)?", re.IGNORECASE)


class JudgeAnswerError(ValueError):
    """A judge answer that holds no usable grade; the message names the request."""


@dataclass(frozen=True)
class JudgeTemplate:
    """The judge's versioned prompt, as read from its TOML file."""

    id: str
    version: int
    system: str
    user: str
    params: dict[str, Any]
    json_schema: dict[str, Any] | None
    text_fallback: bool = False

    def messages(self, problem: str, reference: str, candidate: str) -> list[dict[str, str]]:
        user = string.Template(self.user).substitute(
            problem=problem.strip("\n"),
            reference=reference.strip("\n"),
            candidate=candidate.strip("\n") or "# (empty)",
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class JudgeGrade:
    """One graded candidate: the grade from 0 to 10 and the judge's assessment."""

    task_id: str
    grade: int
    assessment: str


def load_judge_template(path: Path = JUDGE_TEMPLATE_FILE) -> JudgeTemplate:
    """Read and check the judge's prompt file; errors name the file and the problem."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"judge template {path}: cannot be read ({error})") from error
    missing = [key for key in ("id", "version", "system", "user") if key not in raw]
    if missing:
        raise ValueError(f"judge template {path}: missing field(s) {', '.join(missing)}")
    for placeholder in ("$problem", "$reference", "$candidate"):
        if placeholder not in raw["user"]:
            raise ValueError(f"judge template {path}: the user message lacks {placeholder}")
    return JudgeTemplate(
        id=raw["id"],
        version=int(raw["version"]),
        system=raw["system"],
        user=raw["user"],
        params=dict(raw.get("params", {})),
        json_schema=raw.get("json_schema"),
        text_fallback=bool(raw.get("text_fallback", False)),
    )


def judge_request(problem: Problem, completion: str, template: JudgeTemplate | None = None):
    """The teacher request that grades ``completion`` of ``problem`` (chapter 6).

    The candidate is shown as the whole function (prompt + completion), the reference likewise,
    so the judge sees the same signature in both.
    """
    from phi1lib.teacher.records import TeacherRequest

    template = template or load_judge_template()
    return TeacherRequest(
        id=f"judge:{problem.task_id}",
        template=template.id,
        template_version=template.version,
        messages=template.messages(
            problem.prompt, problem.reference_code(), problem.prompt + completion
        ),
        params=dict(template.params),
        json_schema=template.json_schema,
        constraints={"task_id": problem.task_id},
        text_fallback=template.text_fallback,
    )


def grade_from_text(text: str, request_id: str) -> tuple[int, str]:
    """``(grade, assessment)`` from a free-text answer ending in e.g. "Grade: 7/10"."""
    matches = _GRADE_TEXT.findall(text)
    if not matches:
        raise JudgeAnswerError(f"{request_id}: the judge's answer gives no grade: {text[:200]!r}")
    grade = int(matches[-1])
    if not 0 <= grade <= GRADE_MAX:
        raise JudgeAnswerError(f"{request_id}: grade {grade} is outside 0-{GRADE_MAX}")
    assessment = text[: text.lower().rfind("grade")].strip()
    return grade, assessment


def parse_judge_result(result, task_id: str) -> JudgeGrade:
    """The grade in one teacher result: its JSON answer, else a "Grade: N" line of its text."""
    if not result.ok:
        raise JudgeAnswerError(f"{result.id}: no answer ({result.status}): {result.error}")
    answer = result.parsed
    if isinstance(answer, dict) and "grade" in answer:
        grade = answer["grade"]
        if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= GRADE_MAX:
            raise JudgeAnswerError(f"{result.id}: grade {grade!r} is not an integer 0-10")
        return JudgeGrade(task_id, grade, str(answer.get("assessment", "")))
    grade, assessment = grade_from_text(result.text or "", result.id)
    return JudgeGrade(task_id, grade, assessment)


def _has_grade(result) -> None:
    """The teacher client's ``accept``: raises JudgeAnswerError for an answer without a grade."""
    parse_judge_result(result, result.id)


def judge_score(grades: Sequence[int]) -> float:
    """The benchmark's judge score in percent: the mean grade divided by 10 (chapter 6)."""
    if not grades:
        raise ValueError("no grades to average")
    return 100.0 * sum(grades) / (GRADE_MAX * len(grades))


def judge_available(profile) -> bool:
    """The judge needs a real LLM: the profile's teacher endpoint must not be the offline one."""
    return profile.teacher.endpoint != "local"


def judge_completions(
    problems: Sequence[Problem],
    completions: Sequence[str],
    profile,
    *,
    cache_dir: Path | None,
) -> tuple[list[JudgeGrade | None], Any]:
    """Grade one completion per problem through the profile's teacher (chapter 6).

    Returns one grade per problem (``None`` where the judge gave no usable answer; the job
    report says why) and the teacher's job report, which counts tokens and cost. An answer
    with no grade in it, as JSON or as a "Grade: N/10" line, is refused and asked again, so it
    is never cached. Answers are cached under ``cache_dir`` (``None``: no cache). Chapter 7
    grades its probes with it too.
    """
    from phi1lib.teacher import run_requests, teacher_endpoint

    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    template = load_judge_template()
    requests = [judge_request(p, c, template) for p, c in zip(problems, completions, strict=True)]
    with teacher_endpoint(profile) as endpoint:
        report = run_requests(endpoint, requests, cache_dir=cache_dir, accept=_has_grade)
    grades: list[JudgeGrade | None] = []
    for problem, result in zip(problems, report.results, strict=True):
        try:
            grades.append(parse_judge_result(result, problem.task_id))
        except JudgeAnswerError:
            grades.append(None)
    return grades, report
