"""Perturbed prompts (typos, grammar, rewording) and the ``robustness`` stage of chapter 7."""

from __future__ import annotations

import ast

import datasets
import pytest
from test_evaluation_models import make_tiny_model

from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.perturb import KINDS, PerturbationError, perturb
from phi1lib.evaluation.robustness import (
    ROBUSTNESS,
    read_prompts,
    read_robustness,
    summarise,
)
from phi1lib.pipeline import STAGES, build_stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import Artifact, RunStore

PROMPT = (
    "def count_longer(words: list[str], limit: int) -> int:\n"
    '    """Count the words in the list that are longer than limit characters.\n'
    "\n"
    "    >>> count_longer(['a', 'abc'], 2)\n"
    "    1\n"
    '    """\n'
)


def _docstring_head(prompt: str) -> str:
    return prompt.split('"""')[1].split("\n\n")[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_perturbation_changes_only_the_task_sentence(kind):
    result = perturb(PROMPT, kind, seed=0)
    assert result.prompt != PROMPT and result.changed
    assert result.prompt == perturb(PROMPT, kind, seed=0).prompt, "deterministic"
    before, after = PROMPT.splitlines(), result.prompt.splitlines()
    assert before[0] == after[0], "the signature is untouched"
    assert before[2:] == after[2:], "the examples are untouched"
    head = _docstring_head(result.prompt)
    assert "limit" in head.split(), "a parameter's name is never perturbed"
    tree = ast.parse(result.prompt + "    pass\n")
    assert tree.body[0].name == "count_longer"


def test_each_kind_does_what_it_says():
    typos = _docstring_head(perturb(PROMPT, "typos", rate=1.0, seed=1).prompt)
    original = _docstring_head(PROMPT)
    assert len(typos.split()) == len(original.split())
    changed = [(a, b) for a, b in zip(original.split(), typos.split(), strict=True) if a != b]
    assert len(changed) >= 5 and all(abs(len(a) - len(b)) <= 1 for a, b in changed)
    grammar = perturb(PROMPT, "grammar", rate=1.0, seed=0)
    assert "the" not in _docstring_head(grammar.prompt).split() and "are" not in (
        _docstring_head(grammar.prompt).split()
    )
    reworded = _docstring_head(perturb(PROMPT, "reworded", seed=0).prompt)
    assert "tally" in reworded and "sequence" in reworded and "Count" not in reworded
    seeds = {perturb(PROMPT, "typos", seed=s).prompt for s in range(6)}
    assert len(seeds) > 1, "the seed chooses the typos"


def test_bad_prompts_are_refused_with_their_name():
    with pytest.raises(PerturbationError, match="task 7: the function 'f' has no docstring"):
        perturb("def f(x):\n", "typos", where="task 7")
    with pytest.raises(PerturbationError, match="defines no function"):
        perturb("x = 1\n", "grammar")
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(PROMPT, "shouting")


def test_every_humaneval_prompt_is_perturbed_or_refused_cleanly():
    perturbed = 0
    for problem in load_humaneval():
        for kind in KINDS:
            try:
                result = perturb(problem.prompt, kind, seed=0, where=problem.task_id)
            except PerturbationError:
                continue
            ast.parse(result.prompt + "    pass\n")
            assert result.prompt.split('"""')[0] == problem.prompt.split('"""')[0] or (
                result.prompt.split("'''")[0] == problem.prompt.split("'''")[0]
            ), "nothing before the docstring changes"
            perturbed += 1
    assert perturbed > 0.9 * 3 * 164


def test_summarise_pairs_the_clean_and_perturbed_verdicts():
    clean = [1] * 30 + [0] * 30
    typos = [1] * 10 + [0] * 20 + [1] * 2 + [0] * 28  # 20 broken, 2 fixed
    summary = summarise({"clean": clean, "typos": typos}, resamples=1000, seed=0)
    rates = summary["rates"]
    assert rates["clean"]["passed"] == 30 and rates["typos"]["passed"] == 12
    low, high = rates["typos"]["interval"]
    assert low < 0.2 < high
    change = summary["changes"]["typos"]
    assert change["broken"] == 20 and change["fixed"] == 2
    assert change["difference"] == pytest.approx(-0.3)
    assert change["interval"][0] < -0.3 < change["interval"][1] < -0.1


@pytest.fixture
def upstream(tmp_path):
    make_tiny_model(tmp_path / "finetune" / "model")
    records = [
        {
            "prompt": PROMPT.replace("count_longer", f"count_longer_{i}"),
            "text": PROMPT.replace("count_longer", f"count_longer_{i}")
            + "    return sum(len(w) > limit for w in words)\n",
            "tests": [f"assert count_longer_{i}(['abc'], 2) == 1"],
        }
        for i in range(6)
    ]
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "exercises" / "infamily"))
    return {
        stage: Artifact(stage, tmp_path / stage, {"fingerprint": f"{stage}-test", "counts": {}})
        for stage in ("finetune", "exercises")
    }


def test_the_stage_grades_the_same_problems_clean_and_perturbed(upstream, runs_root):
    profile = load_profile("smoke", {"robustness.problems": 4}, use_env=False)
    artifact = build_stage(ROBUSTNESS, profile, upstream, RunStore("smoke", root=runs_root))
    result = read_robustness(artifact)
    assert result["split"] == "infamily" and result["kinds"] == list(KINDS)
    for condition in ("clean", *KINDS):
        rate = result["rates"][condition]
        assert rate["problems"] == 4 and rate["passed"] == 0  # random weights
        assert rate["interval"] == pytest.approx([0.0, 0.4899], abs=1e-4)
    assert result["changes"]["typos"]["interval"] == [0.0, 0.0]
    prompts = read_prompts(artifact)
    assert [p["task_id"] for p in prompts] == [
        "exercise/0",
        "exercise/2",
        "exercise/3",
        "exercise/5",
    ]
    first = prompts[0]
    assert first["clean"]["prompt"] == upstream["exercises"].dataset("infamily")[0]["prompt"]
    assert all(first[kind]["prompt"] != first["clean"]["prompt"] for kind in KINDS)
    assert artifact.counts["clean/passed"] == 0


def test_the_stage_is_registered_after_evaluation():
    names = list(STAGES)
    assert names.index("robustness") > names.index("finetune")
    assert ROBUSTNESS.needs == ("finetune", "exercises")


def test_the_chapter_table_shows_every_rate_and_change_with_its_interval():
    import matplotlib

    matplotlib.use("Agg")
    from phi1lib.evaluation.robustness_report import plot_robustness, prompt_pair, robustness_table

    clean = [1] * 30 + [0] * 30
    passed = {"clean": clean, "typos": [1] * 10 + [0] * 20 + [1] * 2 + [0] * 28, "grammar": clean}
    result = {"split": "heldout", **summarise(passed, resamples=500, seed=0)}
    table = robustness_table(result)
    assert list(table.index) == ["clean prompts", "typos", "grammar errors"]
    assert table.loc["typos", "passed"] == "12/60" and table.loc["typos", "broken"] == 20
    assert table.loc["typos", "change from clean (points) [95%]"].startswith("-30.0 [")
    assert table.loc["grammar errors", "change from clean (points) [95%]"] == "+0.0 [+0.0, +0.0]"
    assert table.loc["clean prompts", "pass@1 (%) [95% Wilson]"] == "50.0 [37.7, 62.3]"
    assert table.attrs["split"] == "held-out families"
    assert len(plot_robustness(result).axes[0].patches) == 3
    record = {
        "task_id": "exercise/0",
        "clean": {"prompt": "def f():\n", "passed": True},
        "typos": {"prompt": "def f(): <x>\n", "passed": False},
    }
    shown = prompt_pair(record, "typos")
    assert "&lt;x&gt;" in shown and "passes" in shown and "fails" in shown


def test_an_interrupted_build_resumes_with_the_next_condition(upstream, runs_root, monkeypatch):
    from phi1lib.evaluation import harness

    profile = load_profile("smoke", {"robustness.problems": 3}, use_env=False)
    store = RunStore("smoke", root=runs_root)
    real, calls = harness.evaluate_model, []

    def stopping_at_grammar(model, benchmark, **kwargs):
        if benchmark == "grammar" and not calls.count("resumed"):
            raise RuntimeError("killed")
        calls.append(benchmark)
        return real(model, benchmark, **kwargs)

    monkeypatch.setattr(harness, "evaluate_model", stopping_at_grammar)
    with pytest.raises(RuntimeError, match="killed"):
        build_stage(ROBUSTNESS, profile, upstream, store)
    assert calls == ["clean", "typos"]
    calls.append("resumed")
    artifact = build_stage(ROBUSTNESS, profile, upstream, store)
    assert calls == ["clean", "typos", "resumed", "grammar", "reworded"]
    assert set(read_robustness(artifact)["rates"]) == {"clean", *KINDS}
