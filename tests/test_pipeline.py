"""The pipeline's context: what a build gets, where it may write, and what one run looks up."""

from __future__ import annotations

import json

import pytest

from phi1lib import pipeline
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore

SEEN: list[tuple[str, str]] = []


def _source(ctx: pipeline.StageContext) -> dict:
    (ctx.out / "value.json").write_text(json.dumps(ctx.profile.pretrain.steps))
    return {}


def _resumable(ctx: pipeline.StageContext) -> dict:
    """Counts its attempts in the work folder and fails on the first one."""
    attempts = ctx.work / "attempts"
    count = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(count))
    answers = ctx.cache("teacher/test") / "answers.txt"
    answers.write_text(answers.read_text() + "x" if answers.exists() else "x")
    SEEN.append((ctx.fingerprint, str(ctx.work)))
    if count == 1:
        raise RuntimeError("interrupted")
    (ctx.out / "attempts.json").write_text(str(count))
    return {"attempts": count}


def _comparing(ctx: pipeline.StageContext) -> dict:
    borrowed = sorted(key for key in ctx.inputs if "@" in key)
    (ctx.out / "borrowed.json").write_text(json.dumps(borrowed))
    return {"borrowed": len(borrowed)}


SOURCE = pipeline.Stage("source", _source, config=lambda p: {"steps": p.pretrain.steps})
LEFT = pipeline.Stage("left", _comparing, config=lambda p: {}, needs=("source",))
RIGHT = pipeline.Stage("right", _comparing, config=lambda p: {}, needs=("source",))
TOP = pipeline.Stage("top", _comparing, config=lambda p: {}, needs=("left", "right", "source"))
RESUMABLE = pipeline.Stage("resumable", _resumable, config=lambda p: {})
COMPARING = pipeline.Stage(
    "comparing",
    _comparing,
    config=lambda p: {},
    borrows=lambda p: [("smoke", "source"), ("gpu", "source")],
)


@pytest.fixture
def stages(monkeypatch):
    names = ("source", "left", "right", "top", "resumable", "comparing")
    monkeypatch.setattr(pipeline, "STAGES", {n: f"{__name__}:{n.upper()}" for n in names})
    SEEN.clear()


def test_the_work_folder_survives_a_failed_build_and_goes_once_stored(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    with pytest.raises(RuntimeError, match="interrupted"):
        pipeline.run("resumable", profile)
    artifact = pipeline.run("resumable", profile)
    assert artifact.counts == {"attempts": 2}, "the second build saw the first one's work"
    (fingerprint, work), again = SEEN
    assert again == (fingerprint, work) and fingerprint == artifact.fingerprint
    store = RunStore("tiny")
    assert work == str(store.work_dir("resumable", fingerprint))
    assert not store.work_dir("resumable", fingerprint).exists(), "removed once stored"
    assert (store.cache_dir("teacher/test") / "answers.txt").read_text() == "xx", "cache kept"


def test_a_run_looks_each_stage_up_once(stages, runs_root, monkeypatch):
    profile = load_profile("tiny", use_env=False)
    pipeline.run("top", profile)
    loads: list[str] = []
    original = RunStore.load

    def counting(self, stage, expected=None):
        loads.append(stage)
        return original(self, stage, expected)

    monkeypatch.setattr(RunStore, "load", counting)
    pipeline.run("top", profile)
    assert sorted(loads) == ["left", "right", "source", "top"]  # source is needed three times


def test_a_stage_borrows_other_profiles_from_its_own_store_root(stages, runs_root, tmp_path):
    tiny = load_profile("tiny", use_env=False)
    assert pipeline.run("comparing", tiny).json("borrowed.json") == []  # nothing built there
    smoke_source = pipeline.run("source", load_profile("smoke", use_env=False))
    artifact = pipeline.run("comparing", tiny)
    assert artifact.json("borrowed.json") == ["source@smoke"]
    assert artifact.manifest["inputs"] == {"source@smoke": smoke_source.fingerprint}
    # A store elsewhere does not see this root's other profiles.
    elsewhere = RunStore("tiny", tmp_path / "elsewhere")
    assert pipeline.run("comparing", tiny, store=elsewhere).json("borrowed.json") == []
    rows = {row["stage"]: row["state"] for row in pipeline.status(tiny)}
    assert rows["comparing"] == "done"
    pipeline.run("source", load_profile("gpu", use_env=False))
    rows = {row["stage"]: row["state"] for row in pipeline.status(tiny)}
    assert rows["comparing"] == "stale", "a newly built borrowed artifact makes it stale"
