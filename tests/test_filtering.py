"""Chapter 1 end to end: judge, classifier, the six stages at ``smoke``, and ``phi1 filter``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from phi1lib import pipeline
from phi1lib.filtering import classifier, judge, properties
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore

GOOD = '''def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    total = 0
    for value in values:
        total += value
    return total / len(values)
'''


def test_evaluate_counts_the_confusion_matrix_by_hand():
    scores = classifier.evaluate([0, 0, 1, 1, 1], [0.1, 0.7, 0.8, 0.4, 0.9], threshold=0.5)
    assert scores["confusion"] == [[1, 1], [1, 2]]
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["roc_auc"] == pytest.approx(5 / 6)
    assert classifier.evaluate([1, 1], [0.2, 0.9], 0.5)["roc_auc"] is None


def test_forest_learns_a_separable_signal_and_refuses_one_class():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 16)).astype(np.float32)
    labels = (features[:, 0] + 0.3 * rng.normal(size=300) > 0.8).astype(int)
    settings = {"test_fraction": 0.25, "seed": 0, "n_jobs": 1}
    trained = classifier.train_classifier(
        features, labels, n_estimators=60, threshold_rule="judge_rate", threshold=0.5, **settings
    )
    assert trained.metrics["test"] == 75 and trained.metrics["train"] == 225
    assert trained.metrics["roc_auc"] > 0.9
    assert set(trained.train_index) | set(trained.test_index) == set(range(300))
    # The threshold keeps the judge's share of educational files, chosen on out-of-bag scores.
    rate = labels[trained.train_index].mean()
    assert np.mean(trained.oob_proba >= trained.threshold) == pytest.approx(rate, abs=0.03)
    # Out-of-bag scores are honest; the forest's in-sample scores are near perfect.
    train_labels = labels[trained.train_index]
    in_sample = classifier.educational_probability(trained.model, features[trained.train_index])
    oob_auc = classifier.evaluate(train_labels, trained.oob_proba, 0.5)["roc_auc"]
    assert oob_auc < 0.99 < classifier.evaluate(train_labels, in_sample, 0.5)["roc_auc"]
    fixed = classifier.train_classifier(
        features, labels, n_estimators=20, threshold_rule="fixed", threshold=0.3, **settings
    )
    assert fixed.threshold == fixed.metrics["threshold"] == 0.3
    sweep = classifier.threshold_sweep(labels[trained.test_index], trained.test_proba, [0.1, 0.9])
    assert sweep[0]["kept_fraction"] >= sweep[1]["kept_fraction"]
    assert sweep[0]["recall"] >= sweep[1]["recall"]
    beyond = classifier.threshold_sweep(labels[trained.test_index], trained.test_proba, [1.01])
    assert beyond[0]["kept_fraction"] == 0 and beyond[0]["precision"] is None
    with pytest.raises(ValueError, match="threshold_rule"):
        classifier.train_classifier(
            features, labels, n_estimators=5, threshold_rule="best", threshold=0.5, **settings
        )
    with pytest.raises(classifier.LabelError, match="judge.sample_size"):
        classifier.train_classifier(
            features,
            np.zeros(300, int),
            n_estimators=5,
            threshold_rule="fixed",
            threshold=0.5,
            **settings,
        )


def test_judge_sample_and_cut():
    assert judge.sample_indices(10, 20, seed=0) == list(range(10))
    sample = judge.sample_indices(1000, 50, seed=3)
    assert sample == judge.sample_indices(1000, 50, seed=3) == sorted(sample)
    assert judge.cut_for_judge(GOOD, 100_000) == GOOD
    # A long docstring and a long class: a cut at a line break would land inside either.
    text = 'def first():\n    """' + "words " * 40 + '\n    """\n    return 1\n\n'
    text += "class Table:\n" + "".join(f"    entry_{i} = {i}\n" for i in range(200))
    for max_chars in (400, 1500):
        cut = judge.cut_for_judge(text, max_chars)
        assert cut.endswith(judge.CUT_MARKER) and len(cut) <= max_chars + len(judge.CUT_MARKER)
        assert compile(cut, "cut", "exec")  # what the judge reads is still valid Python
        assert text.startswith(cut.removesuffix(judge.CUT_MARKER))
    assert "entry_" in judge.cut_for_judge(text, 1500)  # cut inside the class, not before it
    # No statement ends early enough: a plain cut at the last line break.
    assert judge.cut_for_judge(text, 150) == "def first():" + judge.CUT_MARKER


def test_properties_measure_the_four_complaints():
    boilerplate = "\n".join(f"SETTING_{i} = {i}" for i in range(25)) + "\nparser.add('-v')\n"
    dependent = "from . import a\nfrom .b import c, d\nimport pkg.e\nimport os\nx = a(c)\n"
    buried = (
        "def work(x):\n" + "".join(f"    x = x * {i} + 1\n" for i in range(40)) + "    return x\n"
    )
    assert properties.code_properties(boilerplate).boilerplate_fraction == 1.0
    measured = properties.code_properties(dependent, package="pkg")
    assert (measured.imports, measured.local_imports) == (5, 4)
    long_one = properties.code_properties(buried + GOOD)
    assert long_one.longest_undocumented == 42 and long_one.longest_undocumented_name == "work"
    assert long_one.documented_functions == 1
    assert properties.code_properties("def broken(:").lines == 1
    picks = properties.pick_examples([boilerplate, GOOD, buried], ["x", "x", "x"])
    assert picks == {"boilerplate": 0, "buried_logic": 2}
    assert properties.excerpt(GOOD, 2, 2).splitlines()[-1].endswith("(3 more lines)")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The six stages built once at ``smoke`` in a run store of this module's own."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHI1_RUNS", str(root))
        patch.delenv("PHI1_SET", raising=False)
        profile = load_profile("smoke", use_env=False)
        artifacts = {name: pipeline.run(name, profile) for name in ("filtered_code",)}
        for name in ("code_corpus", "raw_code", "code_judgements", "edu_classifier"):
            artifacts[name] = pipeline.run(name, profile)
        yield profile, artifacts, root


@pytest.mark.slow
def test_stages_build_the_filtered_corpus(smoke_run):
    profile, artifacts, _ = smoke_run
    corpus = artifacts["code_corpus"].counts
    assert corpus["files"] == profile.corpus.max_files
    assert corpus["readable"] + sum(v for k, v in corpus.items() if k.startswith("skipped_")) == 300

    raw = artifacts["raw_code"]
    raw_data = raw.dataset()
    assert raw.counts["files"] == len(raw_data) <= corpus["readable"]
    assert raw.counts["tokens"] == sum(raw_data["tokens"]) > 0
    assert raw.counts["input_files"] - raw.counts["files"] == (
        raw.counts["removed_exact"] + raw.counts["removed_near"]
    )
    assert {"text", "path", "package", "tokens"} <= set(raw_data.column_names)
    report = raw.json("dedup.json")
    assert report["params"]["num_perm"] == 256 and report["params"]["threshold"] == 0.7
    assert (report["params"]["bands"], report["params"]["rows"]) == (25, 10)
    assert report["summary"]["kept"] == len(raw_data)
    # The corpus is this interpreter's own library, so its size differs between machines.
    assert report["summary"]["input"] == raw.counts["input_files"] <= corpus["readable"]
    clusters = raw.dataset("clusters")
    removed = sum(size - 1 for size in clusters["size"])
    assert removed == raw.counts["removed_exact"] + raw.counts["removed_near"]
    assert not set(raw_data["path"]) & {p for paths in clusters["paths"] for p in paths[1:]}

    judged = artifacts["code_judgements"]
    labels = judged.dataset()
    assert judged.counts["judged"] == profile.judge.sample_size == len(labels)
    assert judged.counts["labelled"] >= 0.9 * judged.counts["judged"]
    scored = [s for s in labels["score"] if s is not None]
    assert all(0 <= s <= 5 for s in scored)
    assert all(r for r, s in zip(labels["reason"], labels["score"], strict=True) if s is not None)
    assert judged.counts["educational"] == sum(s >= 3 for s in scored)

    metrics = artifacts["edu_classifier"].json("metrics.json")
    assert metrics["train"] + metrics["test"] == judged.counts["labelled"]
    assert 0 <= metrics["accuracy"] <= 1 and len(metrics["sweep"]) == 19
    assert sum(map(sum, metrics["confusion"])) == metrics["test"]
    assert 0 < metrics["threshold"] < 1 and metrics["threshold_rule"] == "judge_rate"
    training = artifacts["edu_classifier"].json("training.json")
    assert len(training["raw_index"]) == metrics["train"]

    filtered = artifacts["filtered_code"]
    kept = filtered.dataset()
    scores = filtered.dataset("scores")
    # Every raw file is scored exactly once across the three tasks, in raw_code's order.
    assert scores["path"] == raw_data["path"]
    assert filtered.counts["files"] == len(kept) == sum(scores["kept"])
    assert filtered.counts["tokens"] == sum(kept["tokens"]) <= raw.counts["tokens"]
    assert min(kept["edu_score"], default=1.0) >= metrics["threshold"]
    assert "text" in kept.column_names
    # Files the forest learned from carry their out-of-bag scores, not in-sample ones.
    by_index = dict(zip(training["raw_index"], training["edu_score"], strict=True))
    assert all(scores[i]["edu_score"] == score for i, score in by_index.items())
    assert sum(scores["trained_on"]) == metrics["train"]


@pytest.mark.slow
def test_raw_code_differs_from_the_in_memory_path_only_near_the_threshold(smoke_run):
    """datatrove and ``phi1lib.dedup`` agree far from the threshold (see dedup_steps)."""
    from phi1lib.dedup import deduplicate, jaccard, shingles

    _, artifacts, _ = smoke_run
    corpus = artifacts["code_corpus"].dataset()
    readable = corpus.filter(lambda r: r is None, input_columns="skip_reason")
    result = deduplicate(readable["text"])
    by_memory = {readable[i]["path"] for i in result.removed}
    kept = set(artifacts["raw_code"].dataset()["path"])
    by_datatrove = set(readable["path"]) - kept
    texts = dict(zip(readable["path"], readable["text"], strict=True))
    clusters = artifacts["raw_code"].dataset("clusters")
    for path in by_memory ^ by_datatrove:
        members = [m for paths in clusters["paths"] if path in paths for m in paths]
        members += [
            readable[result.duplicate_of[i]]["path"]
            for i in result.removed
            if readable[i]["path"] == path
        ]
        best = max(jaccard(shingles(texts[path]), shingles(texts[m])) for m in members if m != path)
        assert 0.45 <= best < 0.9, (path, best)
    assert len(by_memory ^ by_datatrove) <= 0.2 * max(len(by_memory), 1)


@pytest.mark.slow
def test_stages_are_reproducible_and_cached(smoke_run):
    profile, artifacts, _ = smoke_run
    again = pipeline.run("filtered_code", profile)
    assert again.fingerprint == artifacts["filtered_code"].fingerprint
    for stage in ("raw_code", "edu_classifier"):  # raw_code: built by datatrove's tasks
        report = pipeline.verify(stage, profile)
        assert report["reproduced"], report


@pytest.mark.slow
def test_a_failing_judge_stores_nothing(smoke_run, monkeypatch):
    _, artifacts, root = smoke_run
    monkeypatch.setenv("PHI1_RUNS", str(root))
    broken = load_profile(
        "smoke",
        {"judge.seed": 1, "teacher.error_rate": 1.0, "teacher.max_retries": 0},
        use_env=False,
    )
    with pytest.raises(RuntimeError, match="the judge answered only .* of 150 files usably"):
        pipeline.run("code_judgements", broken)
    stored = RunStore("smoke").read_manifest("code_judgements")
    assert stored["fingerprint"] == artifacts["code_judgements"].fingerprint


def write_reader_files(folder: Path) -> Path:
    project = folder / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "good.py").write_text(GOOD)
    (project / "pkg" / "config.py").write_text("\n".join(f"OPTION_{i} = {i}" for i in range(30)))
    (project / "broken.py").write_text("def f(:\n")
    (project / "blob.py").write_bytes(b"\x00\x01binary")
    (project / "empty.py").write_text("")
    (project / "huge.py").write_text("x = 1\n" * 50_000)
    return project


@pytest.mark.slow
def test_phi1_filter_scores_reports_and_resumes(smoke_run, tmp_path, capsys):
    from phi1lib.cli import main

    project = write_reader_files(tmp_path)
    out = tmp_path / "scores.jsonl"
    argv = ["filter", str(project), str(tmp_path / "missing.py"), "--profile", "smoke"]
    assert main([*argv, "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    by_name = {Path(row["path"]).name: row for row in rows}
    assert set(by_name) == {
        "good.py",
        "config.py",
        "broken.py",
        "blob.py",
        "empty.py",
        "huge.py",
        "missing.py",
    }
    assert by_name["broken.py"]["skip_reason"] == "syntax"
    assert by_name["blob.py"]["skip_reason"] == "binary"
    assert by_name["empty.py"]["skip_reason"] == "empty"
    assert by_name["huge.py"]["skip_reason"] == "too_large"
    assert by_name["missing.py"]["skip_reason"] == "not_found"
    for name in ("good.py", "config.py"):
        assert 0 <= by_name[name]["score"] <= 1
        assert by_name[name]["kept"] == (by_name[name]["score"] >= summary["threshold"])
    assert summary["summary"] and summary["files"] == 7 and summary["scored"] == 2
    assert summary["skipped"] == {
        "binary": 1,
        "empty": 1,
        "not_found": 1,
        "syntax": 1,
        "too_large": 1,
    }
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary

    # An interrupted run: two results and half a line written. The rerun scores only the rest.
    out.write_text("\n".join(json.dumps(row) for row in rows[:2]) + '\n{"path": "cut')
    assert main([*argv, "--out", str(out)]) == 0
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    assert resumed[:2] == rows[:2] and resumed[-1] == summary
    assert sorted(r["path"] for r in resumed[:-1]) == sorted(r["path"] for r in rows)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_phi1_filter_skips_fifos_devices_and_deep_trees(smoke_run, tmp_path, deep_folders):
    """A FIFO would block, /dev/zero never ends, 1,200 folders overflowed a recursive walk."""
    import os

    from phi1lib.cli import main

    project = tmp_path / "hostile"
    project.mkdir()
    deep = deep_folders(project, 1200)
    (deep / "good.py").write_text(GOOD)
    os.mkfifo(project / "x.py")
    (project / "zero.py").symlink_to("/dev/zero")
    out = tmp_path / "scores.jsonl"
    assert main(["filter", str(project), "--profile", "smoke", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {Path(row["path"]).name: row for row in rows[:-1]}
    assert by_name["x.py"]["skip_reason"] == by_name["zero.py"]["skip_reason"] == "binary"
    assert 0 <= by_name["good.py"]["score"] <= 1
    assert rows[-1]["files"] == 3 and rows[-1]["skipped"] == {"binary": 2}
