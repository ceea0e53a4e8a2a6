"""Verdicts decided outside the program: split tests, values as data, forgeries that fail.

For tests the parser can split (``phi1lib.sandbox.split``), only the calls enter the sandbox;
their values come back as data (``phi1lib.sandbox.values``) and the parent compares them with
expected values the program never sees. Every forgery below turns a wrong completion into a
pass where a program judges itself; here each must fail.
"""

from __future__ import annotations

import ast
import json
import math
from collections import Counter, OrderedDict, namedtuple
from fractions import Fraction

import pytest
from sandbox_forgeries import FORGE_PRELUDE, FORGERIES

from phi1lib.evaluation.grading import grade_completions, graded_program, split_test, summarize
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.mbpp import load_mbpp
from phi1lib.sandbox import SandboxLimits, SandboxPool
from phi1lib.sandbox.split import Unsplittable, split_asserts, split_check_function
from phi1lib.sandbox.values import NotEvaluable, Unencodable, decode, encode, expected_value


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


@pytest.fixture(scope="module")
def mbpp():
    return load_mbpp("test")


# --- values and the parser, no process ---------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, 0, 2**100, -1.5, math.inf, "é\ud800", [1, (2, 3)], {1, 2}, frozenset({3}),
     {(1, 2): [3]}, b"\x00\xff", 1 - 2j, Fraction(1, 3)],
)  # fmt: skip
def test_values_cross_as_data_and_keep_their_types(value):
    back = decode(json.loads(json.dumps(encode(value))))
    assert back == value and type(back) is type(value)


def test_subclasses_cross_as_their_base_type_and_strangers_do_not_cross():
    point = namedtuple("Point", "x y")(1, 2)
    assert decode(encode(point)) == (1, 2)
    assert decode(encode(Counter("aab"))) == {"a": 2, "b": 1}
    assert decode(encode(OrderedDict(a=1))) == {"a": 1}

    class Always:
        def __eq__(self, other):
            return True

    with pytest.raises(Unencodable, match="Always"):
        encode(Always())
    with pytest.raises(ValueError):
        decode({"pickle": "gASV"})
    nested: list = []
    for _ in range(200):
        nested = [nested]
    with pytest.raises(Unencodable):
        encode(nested)


def test_expected_values_are_computed_in_the_parent_within_bounds():
    value = lambda text: expected_value(ast.parse(text, mode="eval").body)  # noqa: E731
    assert value("set([1, 2])") == {1, 2}
    assert value("-0.5 * 2") == -1.0 and value("float('inf')") == math.inf
    assert value("(1, 'a', None)") == (1, "a", None)
    for refused in ("2 ** 10 ** 10", "'a' * 10 ** 9", "list(range(10 ** 12))", "poly(xs, x)"):
        with pytest.raises(NotEvaluable):
            value(refused)


def test_the_parser_splits_the_shapes_tests_use():
    test = (
        "import math\n\ndef check(candidate):\n"
        "    assert candidate(1) == (1, 2), 'msg'\n"
        "    assert 3 != candidate(2)\n"
        "    assert abs(candidate(3) - 0.5) < 1e-6\n"
        "    assert math.isclose(candidate(4), 2.0, rel_tol=0.01)\n"
        "    assert candidate(5)\n"
        "    assert not candidate(6)\n"
        "    assert candidate(7) is None\n"
        "    assert True\n"
    )
    split = split_check_function(test, "f")
    assert split.bindings == {"candidate": "f"}
    assert [c.call for c in split.checks] == [f"candidate({i})" for i in range(1, 8)]
    assert "def check" not in split.setup and "import math" in split.setup
    results = [(1, 2), 2, 0.5000001, 2.01, [0], "", None]
    assert all(check.holds(value) for check, value in zip(split.checks, results, strict=True))
    wrong = [[1, 2], 3, 0.5001, 2.1, [], "x", 0]
    assert not any(check.holds(value) for check, value in zip(split.checks, wrong, strict=True))
    assert all("expected" not in json.dumps(split.calls()) for _ in [0])
    assert "(1, 2)" not in json.dumps(split.calls())  # no expected value goes in


@pytest.mark.parametrize(
    "test",
    [
        "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == x\n",
        "def check(candidate):\n    assert candidate(1) == candidate(2)\n",
        "def check(candidate):\n    assert (candidate(1) == 2) == True\n",
        "def check(candidate):\n    assert candidate(1) is [1]\n",
        "def check(candidate):\n    x = 2\n    assert candidate(x) == 2\n",
    ],
)
def test_tests_that_cannot_be_split_are_refused(test):
    with pytest.raises(Unsplittable):
        split_check_function(test, "f")


def test_asserts_after_other_statements_cannot_be_split():
    with pytest.raises(Unsplittable):
        split_asserts("assert f(1) == 1\nx = 2\nassert f(x) == 2\n", "f")
    split = split_asserts("import re\nassert f(1) == 1\nassert not f(0)\n", "f")
    assert split.setup == "import re\n" and len(split.checks) == 2


# --- the benchmarks: every canonical solution passes, judged outside ----------------------


def test_every_canonical_solution_passes_and_the_in_process_ones_are_counted(humaneval, mbpp):
    counts = {}
    for name, problems in (("humaneval", humaneval), ("mbpp", mbpp)):
        results = grade_completions(  # 30 s: MBPP/123 takes 3 s alone, and this machine is shared
            problems,
            [[p.canonical_solution] for p in problems],
            limits=SandboxLimits(timeout_s=30),
            progress=False,
        )
        summary = summarize(results)
        assert summary["pass@1"] == 1.0, [
            (r.task_id, r.samples[0].message) for r in results if not r.samples[0].passed
        ]
        counts[name] = summary["verdicts"]
        assert summary["in_process_problems"] == counts[name].get("in-process", 0)
    assert counts["mbpp"] == {"parent": 500}
    assert counts["humaneval"]["parent"] >= 150  # measured: 156 of 164 split, 8 in-process


def test_wrong_completions_fail_everywhere(humaneval, mbpp):
    problems = humaneval + mbpp
    wrong = [["    return None\n" if p.benchmark == "humaneval" else "def x():\n    pass\n"]
             for p in problems]  # fmt: skip
    results = grade_completions(problems, wrong, progress=False)
    assert sum(r.c for r in results) == 0


# --- forgeries -----------------------------------------------------------------------------


def _forged(problem, forgery: str) -> str:
    body = "\n".join("    " + line for line in (FORGE_PRELUDE + forgery).splitlines())
    return f"    {problem.entry_point}.__dict__\n{body}\n    return None\n"


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forgeries_do_not_pass_a_wrong_completion(name, humaneval):
    problem = humaneval[0]  # has_close_elements: a split test
    assert split_test(problem) is not None
    # The forgery runs when the function is first called, i.e. inside the first test call;
    # as a module-level prefix it runs at import time too.
    completion = _forged(problem, FORGERIES[name])
    module_level = f"    return None\n{FORGE_PRELUDE}{FORGERIES[name]}"
    results = grade_completions([problem, problem], [[completion], [module_level]],
                                progress=False)  # fmt: skip
    for result in results:
        sample = result.samples[0]
        assert not sample.passed, (name, sample)
        assert "LEAK" not in sample.stderr_tail
    with SandboxPool(1) as pool:
        source, tests = graded_program(problem, module_level)
        scan = pool.run(source, tests=tests, as_main=False)
        assert "LEAK" not in scan.stdout_tail
        if name == "gc-scan-for-the-test":
            assert "no-leak" in scan.stdout_tail, scan


def test_an_honest_completion_with_a_main_block_or_closing_fd_3_passes(humaneval):
    problem = humaneval[2]
    close_3 = "import os\ntry:\n    os.close(3)\nexcept OSError:\n    pass\n"
    for extra in ('if __name__ == "__main__":\n    print(input())\n', close_3):
        completion = problem.canonical_solution + "\n\n" + extra
        [result] = grade_completions([problem], [[completion]], progress=False)
        assert result.samples[0].passed, (extra, result.samples[0])


def test_a_value_that_only_pretends_to_be_equal_does_not_pass(humaneval):
    problem = humaneval[0]
    completion = (
        "    class Yes:\n        def __eq__(self, other):\n            return True\n"
        "        __bool__ = lambda self: True\n    return Yes()\n"
    )
    [result] = grade_completions([problem], [[completion]], progress=False)
    sample = result.samples[0]
    assert not sample.passed and "cannot be compared outside" in sample.message


def test_the_in_process_fallback_is_flagged(humaneval):
    unsplit = [p for p in humaneval if split_test(p) is None]
    assert unsplit  # HumanEval/32 (find_zero) and a few others
    results = grade_completions(unsplit[:2], [[p.canonical_solution] for p in unsplit[:2]],
                                limits=SandboxLimits(timeout_s=5), progress=False)  # fmt: skip
    assert {r.samples[0].verdict for r in results} == {"in-process"}
    assert summarize(results)["in_process_problems"] == 2


def test_exercise_verdicts_are_decided_outside_too():
    from phi1lib.synthesis.exercises import checked_program
    from phi1lib.synthesis.verification import verify_programs

    tests = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
    right = "def add(a, b):\n    return a + b\n"
    wrong = "def add(a, b):\n    return a - b\n"
    forged = wrong + FORGE_PRELUDE + FORGERIES["frame-walk-completed-exit"]
    programs = [checked_program(text, tests, "add") for text in (right, wrong, forged)]
    assert all(split is not None for _, split in programs)
    assert all("== 3" not in source for source, _ in programs)  # expected values stay out
    verdicts = verify_programs(
        [source for source, _ in programs],
        tests=[split for _, split in programs],
        limits=SandboxLimits(timeout_s=5),
        progress=False,
    )
    assert [v.kind for v in verdicts[:2]] == ["passed", "assertion"]
    assert not verdicts[2].passed and "no value came back" in verdicts[2].message
    assert verdicts[1].failed_assertion == "assert add(1, 2) == 3"
