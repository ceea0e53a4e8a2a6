"""The ``evaluate`` stage's build, on tiny models made here instead of the training stages'."""

from __future__ import annotations

import json

import datasets
import pytest
from test_evaluation_models import make_tiny_model

from phi1lib.evaluation.exercises import ExerciseFormatError, split_problems
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.stage import EVALUATE, read_report, read_summary
from phi1lib.evaluation.tables import (
    pass_rates_table,
    pruning_beside_paper,
    table3_beside_paper,
    verdict_table,
)
from phi1lib.pipeline import STAGES, build_stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import WORK, Artifact, RunStore


def _artifact(stage: str, path) -> Artifact:
    return Artifact(stage, path, {"fingerprint": f"{stage}-test", "counts": {}})


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """Stand-ins for the pretrain, finetune and exercises artifacts."""
    root = tmp_path_factory.mktemp("upstream")
    for stage, seed in (("pretrain", 0), ("finetune", 1)):
        make_tiny_model(root / stage / "model", seed=seed)
    # Exercises: two HumanEval solutions in disguise (renamed), and an unrelated snippet.
    humaneval = load_humaneval(limit=3)
    renamed = [
        (humaneval[0], "has_close_elements", "near_pair", "near_pair([1.0, 1.1], 0.5)"),
        (humaneval[2], "truncate_number", "fraction_part", "fraction_part(3.5) == 0.5"),
    ]
    records = [
        {
            "prompt": problem.prompt.replace(old, new),
            "text": problem.reference_code().replace(old, new),
            "tests": [f"assert {check}"],
        }
        for problem, old, new, check in renamed
    ]
    greet = "def greet(name):\n"
    records.append(
        {
            "prompt": greet,
            "text": greet + "    return 'hello ' + name\n",
            "tests": ["assert greet('a') == 'hello a'"],
        }
    )
    datasets.Dataset.from_list(records).save_to_disk(str(root / "exercises" / "data"))
    heldout = [
        {"prompt": f"def add_{i}(x):\n", "text": f"def add_{i}(x):\n    return x + {i}\n",
         "tests": [f"assert add_{i}(1) == {1 + i}"]}
        for i in range(4)
    ]  # fmt: skip
    datasets.Dataset.from_list(heldout).save_to_disk(str(root / "exercises" / "heldout"))
    datasets.Dataset.from_list(heldout[:1]).save_to_disk(str(root / "exercises" / "infamily"))
    return {
        stage: _artifact(stage, root / stage) for stage in ("pretrain", "finetune", "exercises")
    }


def _build(profile, store: RunStore, inputs) -> Artifact:
    return build_stage(EVALUATE, profile, inputs, store)


def test_evaluate_stage_writes_reports_summary_and_decontamination(upstream, runs_root):
    profile = load_profile("smoke", {"eval.humaneval_limit": 4, "eval.mbpp_limit": 3,
                                     "eval.new_limit": 2, "eval.max_new_tokens": 12,
                                     "eval.exercise_limit": 2},
                           use_env=False)  # fmt: skip
    artifact = _build(profile, RunStore("smoke", root=runs_root), upstream)

    summary = read_summary(artifact)
    assert set(summary["models"]) == {"phi-1-base", "phi-1"}
    for model in ("phi-1-base", "phi-1"):
        benchmarks = summary["models"][model]["benchmarks"]
        assert {b: benchmarks[b]["problems"] for b in benchmarks} == {
            "humaneval": 4, "mbpp": 3, "new": 2, "exercises-data": 2, "exercises-infamily": 1,
            "exercises-heldout": 2,
        }  # fmt: skip
        assert benchmarks["humaneval"]["pass@1"] == 0.0  # random weights
        # every pass rate has its Wilson interval: 0 of 4 passed still allows up to 49%
        assert benchmarks["humaneval"]["pass@1_interval"] == pytest.approx([0.0, 0.4899], abs=1e-4)
        assert 0.0 <= benchmarks["exercises-heldout"]["pass@1_interval"][0] <= 1.0
        assert benchmarks["mbpp"]["generation"]["completions"] == 3
        assert summary["models"][model]["parameters"] > 0
        report = read_report(artifact, model, "new")
        assert [r.task_id for r in report.results] == ["New/0", "New/1"]
        # a split's sample is spread over it, and keeps the records' positions as task ids
        heldout = read_report(artifact, model, "exercises-heldout")
        assert [r.task_id for r in heldout.results] == ["exercise/0", "exercise/3"]
    rates = pass_rates_table(summary)
    assert len(rates) == 12
    row = rates.loc[("phi-1", "exercises: held-out families")]
    assert row["problems"] == 2 and row["pass@1 (%)"] == 0.0
    assert row["95% interval (%)"] == "0.0-65.8"
    assert artifact.counts["phi-1/humaneval/pass@1"] == 0.0
    assert "python-guard" in artifact.counts["sandbox"]["layers"]  # the manifest says how
    verdicts = verdict_table(summary)
    for (model, benchmark), row in verdicts.iterrows():
        samples = sum(summary["models"][model]["benchmarks"][benchmark]["statuses"].values())
        assert row["judged outside"] + row["judged in-process"] == samples
    assert verdicts.xs("mbpp", level="benchmark")["judged in-process"].sum() == 0

    decontamination = artifact.json("decontamination.json")
    best = {row["task_id"]: row for row in decontamination["ast"]["best"]}
    assert len(best) == 164
    assert best["HumanEval/0"]["rate"] == 1.0 and best["HumanEval/0"]["train_index"] == 0
    assert best["HumanEval/2"]["rate"] == 1.0 and best["HumanEval/2"]["train_index"] == 1
    assert decontamination["ngram"]["problems_matched"] >= 2  # the docstrings came along
    pruning = {row["tau"]: row for row in decontamination["ast"]["pruning"]}
    assert pruning[0.95]["pruned_training_items"] == 2
    table = {(row["tau"], row["subset"]): row for row in decontamination["table3"]}
    assert decontamination["table3_problems"] == 4
    assert table[(0.95, "similar")]["problems"] == 2
    assert table[(0.95, "non-similar")]["problems"] == 2
    assert table[(0.95, "total")]["phi-1"] == 0.0
    # the chapter's tables: τ labelled as the paper prints it, counts as integers beside the paper's
    shown = table3_beside_paper(decontamination["table3"], ["phi-1"])
    assert shown.loc[("0.95", "similar"), "problems (ours)"] == 2
    assert str(shown["problems (paper)"].dtype) == "Int64"
    pruned = pruning_beside_paper(decontamination["ast"]["pruning"], 10)
    assert pruned.loc["0.95", "exercises pruned (paper)"] == 42_500
    assert pruned.loc["0.95", "exercises pruned (ours)"] == 2
    assert "42500" in pruned.style.format(precision=2, na_rep="–").to_html()
    assert not (runs_root / "smoke" / WORK).exists() or not any(
        (runs_root / "smoke" / WORK).iterdir()
    ), "the work folder is removed once the stage is done"


def test_an_interrupted_build_resumes_from_finished_reports(upstream, runs_root, tmp_path):
    profile = load_profile("smoke", {"eval.humaneval_limit": 2, "eval.mbpp_limit": 2,
                                     "eval.new_limit": 2, "eval.max_new_tokens": 8,
                                     "eval.exercise_splits": []},
                           use_env=False)  # fmt: skip
    store = RunStore("smoke", root=runs_root)
    broken = dict(upstream)
    (tmp_path / "data").mkdir()  # an exercises artifact whose dataset cannot be read
    broken["exercises"] = _artifact("exercises", tmp_path)
    with pytest.raises(Exception, match="data"):
        _build(profile, store, broken)
    finished = sorted((runs_root / "smoke" / WORK).rglob("*.json"))
    assert len(finished) == 6, "all six reports survive the failure"
    stamps = {path: path.stat().st_mtime_ns for path in finished}
    saved = {path: json.loads(path.read_text()) for path in finished}

    artifact = _build(profile, store, upstream)
    assert all(path.stat().st_mtime_ns == stamps[path] for path in finished if path.exists())
    report = read_report(artifact, "phi-1", "mbpp")
    assert read_summary(artifact)["models"]["phi-1"]["parameters"] > 0
    key = next(p for p in saved if p.parent.name == "phi-1" and p.name == "mbpp.json")
    assert report.to_dict() == saved[key]


def test_stage_is_registered_after_the_training_stages():
    names = list(STAGES)
    assert STAGES["evaluate"] == "phi1lib.evaluation.stage:EVALUATE"
    assert names.index("evaluate") > names.index("finetune")
    assert EVALUATE.needs == ("pretrain", "finetune", "exercises")
    assert EVALUATE.config(load_profile("tiny", use_env=False))["judge"] is None


def test_an_exercise_split_the_artifact_lacks_is_named(upstream):
    with pytest.raises(ExerciseFormatError, match="no split 'train' \\(it has data, heldout, infa"):
        split_problems(upstream["exercises"], "train", 10)
    problems = split_problems(upstream["exercises"], "data", 10)
    assert [p.entry_point for p in problems] == ["near_pair", "fraction_part", "greet"]
    assert problems[0].program(problems[0].canonical_solution).count("def near_pair") == 1
