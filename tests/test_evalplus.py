"""HumanEval+ and MBPP+ through evalplus's own loaders, graded in the sandbox, verdicts decided here.

The release files are downloaded from GitHub, which this machine cannot reach: the tests read
small files in the same format (``tests/data/evalplus``) and check that the online path fails
plainly at the network boundary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phi1lib.evaluation.benchmarks import load_benchmark
from phi1lib.evaluation.grading import grade_completions, summarize
from phi1lib.evaluation.harness import evaluate_canonical
from phi1lib.evaluation.plus import (
    PlusUnavailable,
    load_plus,
    output_matches,
    read_outputs,
)
from phi1lib.evaluation.problems import ProblemFormatError
from phi1lib.sandbox.values import decode

DATA = Path(__file__).parent / "data" / "evalplus"
HUMANEVAL_PLUS = DATA / "HumanEvalPlus-sample.jsonl"
MBPP_PLUS = DATA / "MbppPlus-sample.jsonl"


@pytest.fixture(scope="module")
def humaneval_plus():
    return {p.task_id: p for p in load_plus("humaneval+", path=HUMANEVAL_PLUS)}


@pytest.fixture(scope="module")
def mbpp_plus():
    return {p.task_id: p for p in load_plus("mbpp+", path=MBPP_PLUS)}


def test_evalplus_loaders_read_local_files_in_the_release_format(humaneval_plus, mbpp_plus):
    assert list(humaneval_plus) == ["HumanEval/0", "HumanEval/2", "HumanEval/32"]
    zero = humaneval_plus["HumanEval/0"]
    assert (
        zero.harness == "outputs"
        and zero.base_inputs == 3
        and zero.entry_point == "has_close_elements"
    )
    assert len(json.loads(zero.test)) == 8 and "Check if in given list" in zero.description
    assert humaneval_plus["HumanEval/32"].atol == 1e-6
    assert list(mbpp_plus) == ["Mbpp/2", "Mbpp/3", "Mbpp/17"]
    # evalplus's own deserialisation turned MBPP/2's argument lists into tuples.
    first_args = decode(json.loads(mbpp_plus["Mbpp/2"].test)[0])
    assert first_args == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert mbpp_plus["Mbpp/2"].stop_sequences != zero.stop_sequences  # MBPP's: a whole function
    with pytest.raises(ValueError, match="outside the sandbox"):
        zero.program("    return True\n")


def test_a_bad_record_names_its_file_and_task(tmp_path):
    record = json.loads(HUMANEVAL_PLUS.read_text().splitlines()[0])
    del record["plus_input"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(record) + "\n")
    with pytest.raises(
        ProblemFormatError, match=r"broken\.jsonl HumanEval/0: missing field.*plus_input"
    ):
        load_plus("humaneval+", path=broken)
    with pytest.raises(FileNotFoundError, match=r"no humaneval\+ data file"):
        load_plus("humaneval+", path=tmp_path / "absent.jsonl")


def test_every_reference_solution_passes_all_inputs(humaneval_plus, mbpp_plus):
    for problems in (humaneval_plus, mbpp_plus):
        report = evaluate_canonical(
            "plus", problems=list(problems.values()), workers=2, progress=False
        )
        assert report.summary["pass@1"] == 1.0 and report.summary["pass@1_base_tests"] == 1.0
        for result in report.results:
            assert result.samples[0].message.startswith("all ")


def test_a_solution_can_pass_the_original_tests_and_fail_the_plus_ones(humaneval_plus, mbpp_plus):
    # Only neighbours compared: right on the original inputs, wrong when the close pair is apart.
    adjacent_only = "    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))\n"
    # 1 is not prime, and squares of primes are not prime: this misses both.
    trial_division_up_to_sqrt_exclusive = (
        "def is_not_prime(n):\n    return any(n % i == 0 for i in range(2, int(n ** 0.5)))\n"
    )
    problems = [humaneval_plus["HumanEval/0"], mbpp_plus["Mbpp/3"]]
    results = grade_completions(
        problems,
        [[adjacent_only], [trial_division_up_to_sqrt_exclusive]],
        workers=2,
        progress=False,
    )
    for result in results:
        sample = result.samples[0]
        assert sample.base_passed is True and sample.passed is False
        assert sample.status == "failed" and "(plus) returned a different value" in sample.message
    summary = summarize(results)
    assert summary["pass@1"] == 0.0 and summary["pass@1_base_tests"] == 1.0


def test_special_oracles_and_tolerances(humaneval_plus, mbpp_plus):
    find_zero = humaneval_plus["HumanEval/32"]
    # Any root will do: x^3 - 3x + 2 has roots 1 and -2.
    assert output_matches(find_zero, [[2, -3, 0, 1]], 1.0, -2.0)
    assert output_matches(find_zero, [[2, -3, 0, 1]], -2.0000000001, 1.0)
    assert not output_matches(find_zero, [[2, -3, 0, 1]], 0.5, 1.0)
    shared = mbpp_plus["Mbpp/2"]
    assert output_matches(shared, [(3, 4), (4, 3)], (4, 3), (3, 4))  # compared as sets
    truncate = humaneval_plus["HumanEval/2"]
    assert output_matches(truncate, [3.5], 0.5 + 1e-9, 0.5)  # floats: atol 1e-6 when 0
    assert not output_matches(truncate, [3.5], 0.5001, 0.5)
    assert not output_matches(truncate, [3.5], "0.5", 0.5)
    perimeter = mbpp_plus["Mbpp/17"]
    assert not output_matches(perimeter, [10], 40.0000001, 40)  # an int answer is exact


def test_a_program_cannot_forge_outputs_it_does_not_know(humaneval_plus):
    # It finds the harness's channel marker in the caller's frame and writes "True" for every
    # input before exiting with status 0: the verdict is still decided against the reference.
    forger = (
        "    import os, sys\n"
        "    frame, nonce = sys._getframe(), ''\n"
        "    while frame is not None and not nonce:\n"
        "        nonce, frame = frame.f_locals.get('nonce', ''), frame.f_back\n"
        "    assert nonce.startswith('#plus-')\n"
        "    for i in range(64):\n"
        '        os.write(1, (nonce + \'{"i": %d, "value": true}\\n\' % i).encode())\n'
        "    os._exit(0)\n"
    )
    problem = humaneval_plus["HumanEval/0"]
    [result] = grade_completions([problem], [[forger]], workers=1, progress=False)
    assert result.samples[0].passed is False


def test_outputs_are_read_from_marked_lines_only():
    nonce = "#plus-x#"
    stdout = "\n".join(
        [
            "noise",
            nonce + '{"i": 0, "value": {"tuple": [1, 2]}}',
            nonce + '{"i": 0, "value": 99}',  # a second line for an index is ignored
            nonce + '{"i": 1, "error": "ZeroDivisionError"}',
            nonce + "not json",
            nonce + '{"i": 7, "value": 1}',  # out of range
        ]
    )
    assert read_outputs(stdout, nonce, 3) == [
        (True, (1, 2)),
        (False, "ZeroDivisionError"),
        (False, "no output"),
    ]


def test_offline_the_download_fails_plainly(tmp_path, monkeypatch):
    import evalplus.data.utils as utils

    monkeypatch.setattr(utils, "CACHE_DIR", str(tmp_path))  # no cached release file
    with pytest.raises(PlusUnavailable, match="could not fetch it"):
        load_benchmark("humaneval+")


def test_phi1_eval_grades_a_local_file_and_explains_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "phi1lib.cli", "eval", "mbpp+", "--canonical"]
    done = subprocess.run(
        [*command, "--data", str(MBPP_PLUS), "--profile", "smoke"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["benchmark"] == "mbpp+" and summary["problems"] == 3
    assert summary["pass@1"] == 1.0 and summary["pass@1_base_tests"] == 1.0
    offline = subprocess.run(
        [*command, "--profile", "smoke"], capture_output=True, text=True, env=env, timeout=300
    )
    assert offline.returncode == 2 and "could not fetch it" in offline.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "phi1lib.cli", "eval", "mbpp", "--canonical", "--data", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert wrong.returncode == 2 and "--data is for" in wrong.stderr


def test_answers_checked_only_for_none_travel_as_booleans():
    # MBPP's text_match_three returns a regex match: not data, so EvalPlus (and we) compare
    # only whether it is None.
    from phi1lib.evaluation.plus import problem_from_plus_record

    record = {
        "task_id": "Mbpp/787",
        "prompt": '"""\nWrite a function that matches a string that has an a followed by three b.\n"""\n',
        "entry_point": "text_match_three",
        "canonical_solution": "\nimport re\ndef text_match_three(text):\n"
        "    return re.search('ab{3}?', text)\n",
        "base_input": [["ac"], ["abbbba"]],
        "plus_input": [["caacabbbba"], [""]],
        "atol": 0,
    }
    problem = problem_from_plus_record("mbpp+", record, where="inline")
    right = "import re\ndef text_match_three(text):\n    return re.search('abbb', text)\n"
    wrong = "def text_match_three(text):\n    return 'abbb' in text and None\n"
    results = grade_completions([problem], [[right, wrong]], workers=2, progress=False)
    assert [sample.passed for sample in results[0].samples] == [True, False]
