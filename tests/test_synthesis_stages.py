"""The synthesis stages end to end at the smoke profile (chapters 2-3): the data contract,
execution verification, resumption after SIGKILL, malformed answers, and the hub export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from phi1lib import pipeline
from phi1lib.decontam import ngram_overlap
from phi1lib.profiles import Profile, load_profile
from phi1lib.runstore import RunStore
from phi1lib.sandbox import SandboxLimits, run_programs
from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.synthesis.exercises import check_program, generate_exercises
from phi1lib.synthesis.report import size_table
from phi1lib.synthesis.split import signature_names

pytestmark = pytest.mark.slow  # every test builds the synthesis stages or runs a teacher job

TOPICS = load_curriculum().topics
TEXTBOOK_COLUMNS = {"id", "text", "topic", "subtopic", "audience", "style", "n_tokens"}
EXERCISE_COLUMNS = {
    "function_name",
    "family",
    "topic",
    "difficulty",
    "signature",
    "docstring",
    "prompt",
    "solution",
    "tests",
    "text",
    "entry_point",
    "n_tokens",
    "verification",
}
PROVENANCE_COLUMNS = {"teacher_model", "template", "template_version", "seed", "provenance"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both stages built once at the smoke profile in a private run store."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHI1_RUNS", str(root))
        store = RunStore("smoke", root)
        exercises = pipeline.run("exercises", "smoke", store=store)
        textbooks = pipeline.run("textbooks", "smoke", store=store)
        yield {"root": root, "store": store, "textbooks": textbooks, "exercises": exercises}


def test_textbooks_keep_the_contract_and_cover_every_topic(built):
    artifact = built["textbooks"]
    data = artifact.dataset("data")
    assert set(data.column_names) >= TEXTBOOK_COLUMNS | PROVENANCE_COLUMNS
    assert len(data) >= 0.9 * load_profile("smoke").textbooks.n_sections
    assert set(data["topic"]) == {t["topic"] for t in TOPICS}  # 80 sections over 72 topics
    assert all(n > 50 for n in data["n_tokens"]) and all("```python" in t for t in data["text"])
    report = artifact.json("report.json")
    assert report["tokens"]["kept"] == sum(data["n_tokens"]) == artifact.counts["tokens"]
    sandbox = artifact.counts["sandbox"]  # the layers its code blocks ran under
    assert sandbox["layers"][-1] == "python-guard" and sandbox["full"] == (not sandbox["missing"])
    assert report["coverage"]["topic"]["share_covered"] == 1.0
    assert report["code_blocks"]["total"] >= len(data)
    provenance = json.loads(data[0]["provenance"])
    assert provenance["template"] == "textbook_section" and provenance["constraints"]["topic"]


def test_exercises_are_verified_split_by_family_and_in_the_paper_format(built):
    artifact = built["exercises"]
    train, heldout = artifact.dataset("data"), artifact.dataset("heldout")
    for split in (train, heldout):
        assert set(split.column_names) >= EXERCISE_COLUMNS | PROVENANCE_COLUMNS
        assert set(split["verification"]) == {"passed"}
    assert len(train) > 100 and len(heldout) >= 1
    assert not set(train["family"]) & set(heldout["family"])
    assert set(heldout["family"]) == set(artifact.json("report.json")["heldout"]["families"])
    for row in train.select(range(20)):
        assert row["text"].startswith(row["prompt"]) and row["entry_point"] == row["function_name"]
        assert row["prompt"].startswith(row["signature"]) or "import" in row["prompt"]
    # What is kept passes when run again; what failed fails again.
    kept = [check_program(r["text"], r["tests"]) for r in train.select(range(30))]
    rejected = artifact.dataset("rejected").filter(lambda r: r["rejected"] == "fails_tests")
    failing = [check_program(r["text"], r["tests"]) for r in rejected]
    results = run_programs(kept + failing, limits=SandboxLimits(timeout_s=3.0), workers=2)
    assert all(r.passed for r in results[: len(kept)])
    assert not any(r.passed for r in results[len(kept) :])
    assert any(r["failed_assertion"] for r in rejected if r["verification"] == "assertion")
    infamily = artifact.dataset("infamily")
    assert set(infamily.column_names) == set(heldout.column_names)
    assert set(infamily["verification"]) == {"passed"}
    report = artifact.json("report.json")["infamily"]
    assert report["exercises"] == len(infamily) == artifact.counts["infamily"] >= 20
    assert set(infamily["family"]) <= set(train["family"])
    assert not set(infamily["family"]) & set(heldout["family"])
    seen = set().union(*(signature_names(s) for s in train["signature"]))
    assert all(not signature_names(s) & seen for s in infamily["signature"])
    assert not ngram_overlap(dict(enumerate(infamily["docstring"])), train["docstring"])
    assert [row["tau"] for row in report["ast_against_train"]["table"]] == [0.95, 0.9, 0.85, 0.8]
    sizes = size_table(built["textbooks"].json("report.json"), artifact.json("report.json"))
    row = sizes.loc["CodeExercises (train + held out)"]
    assert row["items (ours)"] == len(train) + len(heldout) + len(infamily)
    assert row["tokens (paper)"] == "under 180M"  # the paper gives a bound, not a count


def test_the_error_rate_matches_the_injected_mistake_rate(built):
    report = built["exercises"].json("report.json")
    rate = load_profile("smoke").teacher.mistake_rate
    failed = sum(report["failure_kinds"].values())
    assert report["verified"] == report["passed"] + failed
    assert abs(failed / report["verified"] - rate) < 0.08  # 200 exercises at rate 0.1
    assert report["reasons"]["fails_tests"] == failed
    assert report["tokens"]["train"] == sum(built["exercises"].dataset("data")["n_tokens"])
    tables = report["ast"]["humaneval"]["table"]
    assert [row["tau"] for row in tables] == [0.95, 0.9, 0.85, 0.8]
    assert tables[0]["pruned_training_items"] <= tables[-1]["pruned_training_items"]


def test_a_rebuild_with_other_cleaning_asks_the_teacher_nothing(built, monkeypatch):
    monkeypatch.setenv("PHI1_RUNS", str(built["root"]))
    profile = load_profile("smoke", {"cleaning.prune_tau": 0.9})
    artifact = pipeline.run("exercises", profile, store=built["store"])
    requested = profile.exercises.n_exercises + profile.exercises.infamily_exercises
    assert artifact.counts["teacher_cached"] == requested
    assert artifact.counts["teacher_http_requests"] == 0
    assert artifact.fingerprint != built["exercises"].fingerprint


GENERATE = """
import sys
from pathlib import Path
from phi1lib.profiles import load_profile
from phi1lib.synthesis.exercises import generate_exercises
profile = load_profile("smoke", {"teacher.latency_s": 0.04, "teacher.concurrency": 4})
generate_exercises(profile, cache_dir=Path(sys.argv[1]), progress=False)
"""


def _content(records):
    return [(r["id"], r["text"], r["tests"], r["verification"], r["rejected"]) for r in records]


def test_generation_resumes_after_sigkill_without_loss_or_duplicates(tmp_path):
    cache = tmp_path / "cache"
    answers = cache / "teacher" / "responses.jsonl"
    process = subprocess.Popen([sys.executable, "-c", GENERATE, str(cache)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not answers.exists() or len(answers.read_bytes().splitlines()) < 40:
            assert process.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, "no answers arrived"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the generator and its teacher server
        process.wait()
    before = len(answers.read_bytes().splitlines())
    assert before < load_profile("smoke").exercises.n_exercises

    profile = load_profile("smoke")
    records, report = generate_exercises(profile, cache_dir=cache, progress=False)
    keys = [json.loads(line)["key"] for line in answers.read_bytes().splitlines() if line]
    requested = profile.exercises.n_exercises + profile.exercises.infamily_exercises
    assert len(keys) == len(set(keys)) == len(records) == requested
    assert report.counts["cached"] >= before - 1  # a torn last line may be asked again
    fresh, _ = generate_exercises(profile, cache_dir=tmp_path / "fresh", progress=False)
    assert _content(records) == _content(fresh)


def test_malformed_answers_are_retried_then_counted_never_kept(tmp_path):
    values = load_profile("smoke").to_dict()
    values["teacher"]["malformed_rate"] = 0.5
    values["exercises"]["n_exercises"] = 50
    values["exercises"]["infamily_exercises"] = 10
    records, report = generate_exercises(
        Profile("smoke", values), cache_dir=tmp_path, progress=False
    )
    malformed = [r for r in records if r["rejected"] == "teacher_malformed"]
    assert report.retries > 0 and len(malformed) == report.counts["malformed"] > 0
    assert all(r["text"] == "" and "JSON" in r["teacher_error"] for r in malformed)
    assert len(records) == 60


def test_push_to_hub_builds_the_dataset_dict_up_to_the_network(built, monkeypatch):
    from datasets import DatasetDict
    from huggingface_hub.errors import OfflineModeIsEnabled

    from phi1lib.synthesis import push_to_hub

    monkeypatch.setenv("PHI1_RUNS", str(built["root"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = {}
    original = DatasetDict.push_to_hub

    def spy(self, repo_id, **kwargs):
        seen.update(repo_id=repo_id, splits={k: len(v) for k, v in self.items()}, **kwargs)
        return original(self, repo_id, **kwargs)

    monkeypatch.setattr(DatasetDict, "push_to_hub", spy)
    with pytest.raises(OfflineModeIsEnabled):
        push_to_hub("exercises", "reader/phi1-exercises", "smoke", token="hf_not_a_real_token")
    artifact = pipeline.run("exercises", "smoke", store=built["store"])  # what was pushed
    assert seen["repo_id"] == "reader/phi1-exercises" and seen["private"] is True
    assert seen["splits"] == {
        "train": len(artifact.dataset("data")),
        "heldout": len(artifact.dataset("heldout")),
        "infamily": len(artifact.dataset("infamily")),
    }
    assert artifact.fingerprint in seen["commit_message"]
    with pytest.raises(ValueError, match="only"):
        push_to_hub("filtered_code", "reader/x", "smoke")


def test_a_rebuild_from_the_caches_is_byte_identical(built, monkeypatch):
    monkeypatch.setenv("PHI1_RUNS", str(built["root"]))
    report = pipeline.verify("exercises", "smoke", store=built["store"])
    assert report["reproduced"], report["differing"]
    assert report["files"] >= 10  # data, heldout, rejected (3 files each) and report.json
