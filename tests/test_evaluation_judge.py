"""The LLM judge of Table 2: its prompt, the parsing of its answers, and a run through the client.

The book's offline teacher does not answer the judge's task (it knows only chapters 1-3's), so
the client path is tested twice: against a small OpenAI-compatible HTTP server started here,
which grades like a strict judge would (10 for the reference, 2 otherwise), and against the
offline teacher, whose refusal must come back as "no grade", not as a crash.
"""

from __future__ import annotations

import re

import pytest
from fake_judge import JudgeServer

from phi1lib.evaluation.benchmarks import load_new_problems
from phi1lib.evaluation.judge import (
    JudgeAnswerError,
    grade_from_text,
    judge_available,
    judge_completions,
    judge_request,
    judge_score,
    load_judge_template,
    parse_judge_result,
)
from phi1lib.profiles import load_profile
from phi1lib.teacher.records import TeacherResult


def test_template_is_versioned_and_asks_for_assessment_then_grade():
    template = load_judge_template()
    assert template.id == "judge_solution" and template.version >= 1
    properties = list(template.json_schema["properties"])
    assert properties == ["assessment", "grade"]
    assert template.json_schema["properties"]["grade"]["maximum"] == 10


def test_request_shows_problem_reference_and_candidate():
    problem = load_new_problems(limit=1)[0]
    request = judge_request(problem, "    return 0\n")
    user = request.messages[-1]["content"]
    assert request.id == f"judge:{problem.task_id}" and request.template == "judge_solution"
    assert "Task: judge_solution" in user.splitlines()
    problem_block = re.search(r"<problem>\n(.*)\n</problem>", user, re.S).group(1)
    reference_block = re.search(r"<reference>\n(.*)\n</reference>", user, re.S).group(1)
    candidate_block = re.search(r"<code>\n(.*)\n</code>", user, re.S).group(1)
    assert problem_block == problem.prompt.strip("\n")
    assert reference_block == problem.reference_code().strip("\n")
    assert candidate_block == (problem.prompt + "    return 0").strip("\n")
    assert request.json_schema is not None and request.params["temperature"] == 0.0


def test_template_without_a_placeholder_is_rejected(tmp_path):
    text = load_judge_template.__defaults__[0].read_text().replace("$reference", "REF")
    path = tmp_path / "judge_solution.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"judge_solution\.toml: the user message lacks \$ref"):
        load_judge_template(path)


def _result(**fields) -> TeacherResult:
    return TeacherResult(id="judge:New/0", **fields)


def test_parse_json_answers_and_free_text_answers():
    grade = parse_judge_result(
        _result(status="ok", text="{}", parsed={"assessment": "Close.", "grade": 7}), "New/0"
    )
    assert (grade.grade, grade.assessment, grade.task_id) == (7, "Close.", "New/0")
    text = "The loop is right but the sign is dropped.\nGrade: 6/10"
    grade = parse_judge_result(_result(status="ok", text=text), "New/0")
    assert grade.grade == 6 and grade.assessment.startswith("The loop is right")
    assert grade_from_text("grade - 10", "r")[0] == 10


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "failed", "error": "HTTP 400"}, "no answer"),
        (
            {"status": "ok", "text": "{}", "parsed": {"assessment": "", "grade": 11}},
            "not an integer",
        ),
        ({"status": "ok", "text": "Looks fine to me."}, "gives no grade"),
        ({"status": "ok", "text": "Grade: 42"}, "outside 0-10"),
    ],
)
def test_unusable_answers_raise_with_the_request_id(fields, message):
    with pytest.raises(JudgeAnswerError, match=f"judge:New/0.*{message}|{message}"):
        parse_judge_result(_result(**fields), "New/0")


def test_judge_score_is_mean_grade_over_ten():
    assert judge_score([10, 5, 0, 5]) == 50.0
    with pytest.raises(ValueError):
        judge_score([])


# --- through the teacher client --------------------------------------------------------------


def test_judge_runs_through_the_teacher_client_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    problems = load_new_problems(limit=3)
    completions = [problems[0].canonical_solution, "    return None\n", ""]
    with JudgeServer(wrong_grade=2) as server:
        profile = load_profile(
            "smoke",
            {"teacher.endpoint": f"http://127.0.0.1:{server.port}/v1", "teacher.model": "judge"},
        )
        assert judge_available(profile)
        grades, report = judge_completions(problems, completions, profile, cache_dir=tmp_path)
        assert [g.grade for g in grades] == [10, 2, 2]
        assert len(server.requests) == 3
        assert server.requests[0]["response_format"]["type"] == "json_schema"
        again, report = judge_completions(problems, completions, profile, cache_dir=tmp_path)
        assert [g.grade for g in again] == [10, 2, 2]
        assert len(server.requests) == 3, "the second run must come from the cache"
        assert report.counts["cached"] == 3


def test_a_judge_that_answers_in_prose_is_graded_from_its_grade_line(tmp_path, monkeypatch):
    # A server that ignores response_format: its model writes prose ending "Grade: N/10".
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    problems = load_new_problems(limit=3)
    completions = [problems[0].canonical_solution, "    return None\n", ""]
    with JudgeServer(wrong_grade=7, answer_as="text") as server:
        profile = load_profile(
            "smoke",
            {"teacher.endpoint": f"http://127.0.0.1:{server.port}/v1", "teacher.model": "judge"},
        )
        grades, report = judge_completions(problems, completions, profile, cache_dir=tmp_path)
        assert len(server.requests) == 3  # each accepted at once, not re-asked as malformed
    assert [g.grade for g in grades] == [10, 7, 7]
    assert grades[1].assessment == "The candidate was compared with the reference."
    assert report.counts["ok"] == 3 and all(r.parsed is None for r in report.results)


@pytest.mark.slow
def test_offline_teacher_refuses_the_judge_and_grades_come_back_empty(tmp_path):
    profile = load_profile("smoke", use_env=False)
    assert not judge_available(profile)
    grades, report = judge_completions(
        load_new_problems(limit=2), ["    pass\n", "    pass\n"], profile, cache_dir=tmp_path
    )
    assert grades == [None, None]
    assert report.counts["ok"] == 0 and report.counts["failed"] == 2
    assert "unknown task" in report.results[0].error


def test_add_judge_grades_puts_grades_and_score_into_a_report(tmp_path, monkeypatch):
    from phi1lib.evaluation.grading import SampleResult
    from phi1lib.evaluation.harness import add_judge_grades, evaluate_canonical

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    problems = load_new_problems(limit=2)
    report = evaluate_canonical("new", problems=problems, progress=False)
    report.results[1].samples[0] = SampleResult("    return 0\n", "failed", False)
    with JudgeServer(wrong_grade=2) as server:
        profile = load_profile(
            "smoke",
            {"teacher.endpoint": f"http://127.0.0.1:{server.port}/v1", "teacher.model": "judge"},
        )
        job = add_judge_grades(report, problems, profile, cache_dir=tmp_path)
    assert [r.judge_grade for r in report.results] == [10, 2]
    assert report.summary["judge_score"] == 60.0 and report.summary["judged_problems"] == 2
    assert job["counts"]["ok"] == 2
    assert report.per_problem()[0]["judge_grade"] == 10
