"""The ``finetune_curve`` stage on stand-in models: every saved step graded once, in order, with
intervals, and an interrupted build resuming with the next step (chapter 5)."""

from __future__ import annotations

import json

import datasets
import matplotlib.pyplot as plt
import pytest
from test_evaluation_models import make_tiny_model

from phi1lib.evaluation import curve
from phi1lib.evaluation.curve import FINETUNE_CURVE, curve_table, plot_curve, snapshot_models
from phi1lib.pipeline import build_stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import Artifact, RunStore


def _artifact(stage: str, path) -> Artifact:
    return Artifact(stage, path, {"fingerprint": f"{stage}-test", "counts": {}})


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    root = tmp_path_factory.mktemp("curve")
    make_tiny_model(root / "pretrain" / "model", seed=0)
    make_tiny_model(root / "finetune" / "model", seed=1)
    for step, seed in ((8, 3), (4, 2)):  # written out of order on purpose
        make_tiny_model(root / "finetune" / "snapshots" / f"step-{step:06d}", seed=seed)
    (root / "finetune" / "training.json").write_text(json.dumps({"steps": 12}))
    for split, first, count in (("infamily", 0, 3), ("data", 10, 5)):
        records = [
            {
                "prompt": f"def add_{i}(x):\n",
                "text": f"def add_{i}(x):\n    return x + {i}\n",
                "tests": [f"assert add_{i}(1) == {1 + i}"],
            }
            for i in range(first, first + count)
        ]
        datasets.Dataset.from_list(records).save_to_disk(str(root / "exercises" / split))
    return {
        stage: _artifact(stage, root / stage) for stage in ("pretrain", "finetune", "exercises")
    }


def test_the_points_run_from_the_base_model_through_the_snapshots_to_the_end(upstream):
    points = snapshot_models(upstream["pretrain"], upstream["finetune"])
    assert [step for step, _ in points] == [0, 4, 8, 12]
    assert points[0][1] == upstream["pretrain"].path / "model"
    assert points[-1][1] == upstream["finetune"].path / "model"


def test_every_step_is_graded_once_and_an_interruption_resumes(upstream, runs_root, monkeypatch):
    profile = load_profile(
        "smoke", {"eval.max_new_tokens": 8, "eval.exercise_limit": 4}, use_env=False
    )
    store = RunStore("smoke", root=runs_root)
    real, graded = curve.evaluate_model, []

    def killed_at_the_third_step(model, benchmark, *, name, **kwargs):
        if name == "step 8":
            raise RuntimeError("killed")
        graded.append((name, benchmark))
        return real(model, benchmark, name=name, **kwargs)

    monkeypatch.setattr(curve, "evaluate_model", killed_at_the_third_step)
    with pytest.raises(RuntimeError, match="killed"):
        build_stage(FINETUNE_CURVE, profile, upstream, store)
    assert graded == [(f"step {s}", f"exercises-{split}") for s in (0, 4)
                      for split in ("infamily", "data")]  # fmt: skip
    graded.clear()
    monkeypatch.setattr(curve, "evaluate_model", lambda model, benchmark, *, name, **kw: (
        graded.append((name, benchmark)), real(model, benchmark, name=name, **kw))[1])  # fmt: skip
    artifact = build_stage(FINETUNE_CURVE, profile, upstream, store)
    assert [name for name, _ in graded] == ["step 8"] * 2 + ["step 12"] * 2, "no step twice"

    rows = artifact.json("curve.json")["rows"]
    assert [(r["step"], r["split"]) for r in rows] == [
        (s, split) for s in (0, 4, 8, 12) for split in ("infamily", "data")
    ]
    for row in rows:
        assert row["problems"] == (3 if row["split"] == "infamily" else 4)  # limit 4, 3 exist
        assert row["passed"] == round(row["pass@1"] * row["problems"])
        low, high = row["pass@1_interval"]
        assert low <= row["pass@1"] <= high and high > 0, "zero passes still have an upper end"
        assert (
            row["tokens"] == row["step"] * profile.finetune.global_batch * profile.finetune.seq_len
        )
    assert artifact.counts["points"] == 4
    assert "infamily/step-12/pass@1" in artifact.counts and "python-guard" in str(
        artifact.counts["sandbox"]
    )

    table = curve_table(artifact)
    assert list(table.index) == [0, 4, 8, 12] and list(table.columns) == [
        "tokens seen", "infamily", "data"
    ]  # fmt: skip
    assert table.loc[0, "infamily"].startswith(f"{rows[0]['passed']}/3 = ")
    fig = plt.figure()
    ax = fig.add_subplot()
    plot_curve(artifact, ax)
    assert [line.get_label() for line in ax.get_lines()] == ["infamily", "data"]
    assert list(ax.get_lines()[0].get_xdata()) == [0, 4, 8, 12]


def test_the_findings_read_every_number_from_the_curve(tmp_path):
    rows = [
        {"step": step, "tokens": step * 10, "split": "infamily", "problems": 10, "passed": passed,
         "pass@1": passed / 10, "pass@1_interval": interval, "failures": failures}
        for step, passed, interval, failures in (
            (0, 0, [0.0, 0.28], {"NameError": 3, "SyntaxError": 7}),
            (5, 1, [0.02, 0.4], {"NameError": 9}),
            (10, 8, [0.49, 0.94], {"AssertionError": 2}),
        )
    ]  # fmt: skip
    (tmp_path / "curve.json").write_text(json.dumps({"rows": rows}))
    lines = curve.curve_findings(_artifact("finetune_curve", tmp_path))
    assert lines[0] == (
        "infamily: phi-1-base (step 0) passes 0/10 (0%, 95% interval 0-28%); after 10 steps "
        "(100 tokens) the fine-tuned model passes 8/10 (80%, 95% interval 49-94%)."
    )
    assert "wholly above the base model's: 10." in lines[1]
    assert lines[2].endswith("step 0: 3/10, step 5: 9/9, step 10: 0/2.")
    assert curve.curve_findings(_artifact("finetune_curve", tmp_path), "data") == [
        "the curve has no 'data' split"
    ]
