"""Synthesis units (chapters 2-3): constraints, code blocks, the exercise format, verification,
cleaning and the held-out split, on small inputs."""

from __future__ import annotations

import ast
import json
from collections import Counter
from dataclasses import replace

import pytest

from phi1lib.profiles import load_profile
from phi1lib.sandbox import SandboxLimits
from phi1lib.synthesis.cleaning import (
    ast_decontamination,
    benchmark_problems,
    ngram_decontamination,
    remove_duplicates,
)
from phi1lib.synthesis.code_blocks import code_blocks, python_blocks, runnable_source
from phi1lib.synthesis.constraints import (
    coverage,
    exercise_constraints,
    request_seed,
    textbook_constraints,
)
from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.synthesis.exercises import check_program, exercise_text, read_exercise
from phi1lib.synthesis.split import heldout_units
from phi1lib.synthesis.textbooks import check_sections
from phi1lib.synthesis.tokens import OFFLINE_COUNTER, token_counter
from phi1lib.synthesis.verification import verify_programs
from phi1lib.teacher import TeacherResult
from phi1lib.teacher.tasks import TeacherOutputError

CURRICULUM = load_curriculum()
TOPICS, AUDIENCES, STYLES = CURRICULUM.topics, CURRICULUM.audiences, CURRICULUM.styles
LIMITS = SandboxLimits(timeout_s=2.0)


# --- constraints -------------------------------------------------------------------------------


def test_textbook_constraints_are_balanced_prefix_stable_and_seeded():
    items = textbook_constraints(400, seed=0)
    per_topic = Counter(item["topic"] for item in items)
    assert set(per_topic) == {t["topic"] for t in TOPICS}
    assert max(per_topic.values()) - min(per_topic.values()) <= 1  # 400 over 72: 5 or 6 each
    for key, universe in (("audience", AUDIENCES), ("style", STYLES)):
        counts = Counter(item[key] for item in items)
        assert set(counts) == set(universe)
        assert max(counts.values()) - min(counts.values()) <= 1
    subtopics = {t["topic"]: set(t["subtopics"]) for t in TOPICS}
    assert all(item["subtopic"] in subtopics[item["topic"]] for item in items)
    assert textbook_constraints(100, seed=0) == items[:100]
    assert textbook_constraints(100, seed=1) != items[:100]
    independent = Counter(
        __import__("random").Random(0).choice([t["topic"] for t in TOPICS]) for _ in range(400)
    )
    assert max(independent.values()) > max(per_topic.values())  # what balancing buys


def test_exercise_constraints_rotate_families_and_reject_bad_entries():
    names = [
        {"function_name": f"{family}_{i}", "family": family, "topic": "t", "difficulty": "easy"}
        for family, count in (("a", 1), ("b", 5), ("c", 2))
        for i in range(count)
    ]
    items = exercise_constraints(30, seed=3, names=names)
    assert Counter(item["family"] for item in items) == {"a": 10, "b": 10, "c": 10}
    assert len({item["function_name"] for item in items if item["family"] == "b"}) == 5
    assert exercise_constraints(12, seed=3, names=names) == items[:12]
    with pytest.raises(ValueError, match="lacks \\['difficulty'\\]"):
        exercise_constraints(3, seed=0, names=[{"function_name": "f", "topic": "t"}])


def test_request_seeds_and_coverage():
    seeds = [request_seed("exercise", 0, i) for i in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert request_seed("textbook", 0, 5) != request_seed("exercise", 0, 5)
    report = coverage(["a", "a", "b", "z"], ["a", "b", "c"])
    assert report == {
        "items": 3,
        "covered": 2,
        "share_covered": 2 / 3,
        "min": 0,
        "max": 2,
        "outside": 1,
    }


# --- textbook code blocks ----------------------------------------------------------------------

SECTION = """## Lists

Prose first.

```python
numbers = [3, 1, 2]
print(sorted(numbers))
```

```text
[1, 2, 3]
```

```py
>>> total = sum(numbers)
>>> total
6
```

~~~
not code
~~~

```python
def broken(:
"""


def test_code_blocks_finds_fences_languages_and_a_truncated_block():
    blocks = code_blocks(SECTION)
    assert [b.language for b in blocks] == ["python", "text", "py", "", "python"]
    assert blocks[0].line == 6 and blocks[0].code.startswith("numbers = ")
    assert blocks[-1].code == "def broken(:"  # unclosed at the end of a truncated answer
    assert len(python_blocks(SECTION)) == 3
    assert runnable_source(blocks[2].code) == "total = sum(numbers)\ntotal"


def test_check_sections_runs_blocks_alone_then_after_their_predecessors():
    section = (
        "```python\ndef double(x):\n    return 2 * x\n```\n\ntext\n\n"
        "```python\nassert double(4) == 8\n```\n\n"
        "```python\nassert double(2) == 5, 'wrong on purpose'\n```\n"
    )
    no_code = "Only prose here."
    first, second = check_sections([section, no_code], limits=LIMITS, workers=2, progress=False)
    assert (first.blocks, first.failed) == (3, 1)
    failure = first.failures[0]
    assert failure["block"] == 2 and failure["kind"] == "assertion"
    assert "double(2) == 5" in failure["failed_assertion"]
    assert (second.blocks, second.failed) == (0, 0)


# --- the exercise format -----------------------------------------------------------------------


def test_exercise_text_rebuilds_the_paper_format_with_imports_and_odd_docstrings():
    solution = (
        "import math\n\n"
        "def hypotenuse(a: float, b: float) -> float:\n"
        "  '''Old docstring.'''\n"
        "  # Pythagoras\n"
        "  return math.sqrt(a * a + b * b)\n\n"
        "HELPER = 1\n"
    )
    docstring = 'Return the "hypotenuse" \\ of a """right""" triangle.\n\n>>> hypotenuse(3, 4)\n5.0'
    built = exercise_text("hypotenuse", docstring, solution)
    assert built.signature == "def hypotenuse(a: float, b: float) -> float:"
    assert built.prompt.startswith("import math\n\n\ndef hypotenuse(")
    assert built.text.startswith(built.prompt) and built.text.endswith("HELPER = 1\n")
    assert "  # Pythagoras\n  return math.sqrt" in built.body
    function = ast.parse(built.text).body[1]
    assert ast.get_docstring(function) == docstring
    namespace: dict = {}
    exec(
        compile(check_program(built.text, ["assert hypotenuse(3, 4) == 5.0"]), "t", "exec"),
        namespace,
    )

    with pytest.raises(ValueError, match="no top-level function"):
        exercise_text("missing", "d", solution)
    with pytest.raises(ValueError, match="no body"):
        exercise_text("f", "d", 'def f():\n    """only a docstring"""\n')
    with pytest.raises(ValueError, match="shares a line"):
        exercise_text("f", "d", "def f(): return 1\n")


def _answer(rid: str, **fields) -> TeacherResult:
    parsed = {
        "function_name": "add",
        "signature": "def add(a: int, b: int) -> int:",
        "docstring": "Add two numbers.",
        "solution": 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n    return a + b\n',
        "tests": ["assert add(1, 2) == 3"],
        **fields,
    }
    return TeacherResult(
        id=rid,
        status="ok",
        text=json.dumps(parsed),
        parsed=parsed,
        provenance={"constraints": {"function_name": "add"}},
    )


def test_read_exercise_accepts_a_good_answer_and_names_the_problem_of_a_bad_one():
    record = read_exercise(_answer("e1"))
    assert record["prompt"] == 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n'
    assert record["text"] == record["prompt"] + "    return a + b\n"
    assert record["entry_point"] == "add" and record["tests"] == ["assert add(1, 2) == 3"]
    with pytest.raises(TeacherOutputError, match="'e2': no test calls add"):
        read_exercise(_answer("e2", tests=["assert 1 + 2 == 3"]))
    with pytest.raises(TeacherOutputError, match="'e3': asked for function 'add'"):
        read_exercise(_answer("e3", function_name="plus"))
    with pytest.raises(TeacherOutputError, match="'e4'.*not an assert"):
        read_exercise(_answer("e4", tests=["print(add(1, 2))"]))


# --- verification ------------------------------------------------------------------------------

PROGRAMS = {
    "passed": "def f(x):\n    return x + 1\nassert f(1) == 2\n",
    "assertion": "def f(x):\n    return x\nassert f(1) == 2, 'off by one'\n",
    "exception": "def f(x):\n    return x[3]\nassert f([1]) == 2\n",
    "syntax_error": "def f(x)\n    return x\n",
    "exit": "import sys\nsys.exit(0)\nassert False\n",
    "timeout": "while True:\n    pass\n",
}


def test_verify_programs_sorts_failures_and_resumes_from_its_cache(tmp_path, monkeypatch):
    sources = list(PROGRAMS.values()) + [PROGRAMS["passed"]]  # a repeat runs once
    verdicts = verify_programs(
        sources, limits=SandboxLimits(timeout_s=1.0), cache_dir=tmp_path, progress=False
    )
    assert [v.kind for v in verdicts] == list(PROGRAMS) + ["passed"]
    assert verdicts[1].failed_assertion == "assert f(1) == 2, 'off by one'"
    assert verdicts[2].error_type == "IndexError"
    assert len((tmp_path / "responses.jsonl").read_text().splitlines()) == len(PROGRAMS)

    import phi1lib.synthesis.verification as verification

    def no_sandbox(*args, **kwargs):
        raise AssertionError("every verdict should come from the cache")

    monkeypatch.setattr(verification, "run_programs", no_sandbox)
    again = verify_programs(
        sources, limits=SandboxLimits(timeout_s=1.0), cache_dir=tmp_path, progress=False
    )
    assert again == verdicts


# --- cleaning and the split --------------------------------------------------------------------


def _records(texts, **extra):
    return [
        {"id": f"r{i}", "text": text, "docstring": text, "rejected": "", **extra}
        for i, text in enumerate(texts)
    ]


def test_remove_duplicates_within_and_against_a_reference():
    base = "def area(width, height):\n    return width * height  # the area of a rectangle\n"
    near = base.replace("rectangle", "rectangle shape")
    records = _records([base, base + "\n", near, "something else entirely " * 5])
    smoke = load_profile("smoke", use_env=False).cleaning
    report = remove_duplicates(records, replace(smoke, near_threshold=0.5))
    assert [r["rejected"] for r in records] == ["", "exact_duplicate", "near_duplicate", ""]
    assert report["summary"]["removed_exact"] == 1
    remove_duplicates(records, smoke, against=[records[3]["text"]], against_name="x")
    assert records[3]["rejected"] == "duplicates_x"


def test_decontamination_removes_benchmark_copies_at_the_profile_tau():
    problems = benchmark_problems()
    assert len(problems["humaneval"]) == 164 and len(problems["mbpp"]) == 500
    problems = {"humaneval": problems["humaneval"][:20], "mbpp": problems["mbpp"][:20]}
    leaked = problems["humaneval"][3]
    renamed = leaked.reference_code().replace(leaked.entry_point, "my_renamed_function")
    records = _records(
        [
            renamed,  # the same program under another name: AST match rate 1.0
            f"Intro. {problems['mbpp'][0].description} Outro.",  # a 13-gram copy
            "def unrelated(x):\n    return [i for i in range(x) if i % 7 == 3]\n",
        ]
    )
    records[0]["docstring"] = "A task worded in other words."
    settings = replace(load_profile("smoke", use_env=False).cleaning, prune_tau=0.95, workers=1)
    ngram = ngram_decontamination(records, "docstring", problems, settings)
    assert ngram["mbpp"]["items_matched"] == 1 and ngram["removed"] >= 1
    assert records[1]["rejected"] == "ngram_mbpp"
    ast_report = ast_decontamination(records, problems, settings)
    assert records[0]["rejected"] == "ast_humaneval" and records[2]["rejected"] == ""
    rows = {row["tau"]: row for row in ast_report["humaneval"]["table"]}
    assert set(rows) == {0.95, 0.9, 0.85, 0.8}
    assert rows[0.95]["similar_problems"] >= 1
    with pytest.raises(ValueError, match="prune_tau"):
        load_profile("smoke", {"cleaning.prune_tau": 0.5}).settings("cleaning")


def test_heldout_units_are_stable_whole_and_never_empty():
    units = [f"family_{i}" for i in range(200)]
    chosen = heldout_units(units, 0.1)
    assert chosen == heldout_units(list(reversed(units)), 0.1)
    assert 8 <= len(chosen) <= 35
    assert len(heldout_units(units[:3], 0.01)) == 1
    assert heldout_units(units, 0.0) == set()
    with pytest.raises(ValueError, match="heldout_fraction"):
        heldout_units(units, 1.5)


def test_the_offline_token_counter_and_a_clear_error_for_a_hub_tokenizer_offline(monkeypatch):
    count = token_counter(OFFLINE_COUNTER)
    # def, " add", "(", "a", ",", " b", "):", "\n   ", " return", " a", " +", " b", "\n"
    assert count(["def add(a, b):\n    return a + b\n", ""]) == [13, 0]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="gpt2-pieces"):
        token_counter("Salesforce/codegen-350M-mono")
