"""The run store: caching by fingerprint, atomic writes, and damaged artifacts rebuilt."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from phi1lib import pipeline
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore

CALLS: list[str] = []


def _write_numbers(ctx: pipeline.StageContext) -> dict:
    CALLS.append("numbers")
    n = ctx.profile.pretrain.steps
    (ctx.out / "numbers.json").write_text(json.dumps(list(range(n))))
    return {"n": n}


def _write_total(ctx: pipeline.StageContext) -> dict:
    CALLS.append("total")
    numbers = ctx.inputs["numbers"].json("numbers.json")
    (ctx.out / "total.json").write_text(json.dumps(sum(numbers)))
    return {"total": sum(numbers)}


NUMBERS = pipeline.Stage(
    name="numbers", build=_write_numbers, config=lambda p: {"steps": p.pretrain.steps}
)
TOTAL = pipeline.Stage(name="total", build=_write_total, config=lambda p: {}, needs=("numbers",))


@pytest.fixture
def stages(monkeypatch):
    monkeypatch.setattr(
        pipeline, "STAGES", {"numbers": f"{__name__}:NUMBERS", "total": f"{__name__}:TOTAL"}
    )
    CALLS.clear()


def test_upstream_is_built_then_cached(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("total", profile)
    assert artifact.json("total.json") == sum(range(profile.pretrain.steps))
    assert CALLS == ["numbers", "total"]
    again = pipeline.run("total", profile)
    assert CALLS == ["numbers", "total"]  # nothing rebuilt
    assert again.fingerprint == artifact.fingerprint
    manifest = artifact.manifest
    assert manifest["inputs"]["numbers"] == pipeline.run("numbers", profile).fingerprint
    assert manifest["counts"] == {"total": sum(range(profile.pretrain.steps))}
    assert "torch" in manifest["versions"] and manifest["wall_time_s"] >= 0
    assert set(manifest["files"]) == {"total.json"}


def test_config_change_rebuilds_only_what_depends_on_it(stages, runs_root):
    pipeline.run("total", load_profile("tiny", use_env=False))
    CALLS.clear()
    changed = load_profile("tiny", overrides={"pretrain.steps": 5}, use_env=False)
    assert pipeline.run("total", changed).json("total.json") == 10
    assert CALLS == ["numbers", "total"]
    CALLS.clear()
    unrelated = load_profile(
        "tiny", overrides={"pretrain.steps": 5, "eval.workers": 3}, use_env=False
    )
    pipeline.run("total", unrelated)
    assert CALLS == []


def test_profiles_write_separate_folders(stages, runs_root):
    a = pipeline.run("numbers", load_profile("tiny", use_env=False))
    b = pipeline.run("numbers", load_profile("smoke", use_env=False))
    assert a.path != b.path and a.path.parent.name == "tiny" and b.path.parent.name == "smoke"
    assert a.counts["n"] != b.counts["n"]


def test_corrupted_artifact_is_detected_and_rebuilt(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("numbers", profile)
    (artifact.path / "numbers.json").write_text("[1, 2")  # damaged
    store = RunStore("tiny")
    assert store.problems("numbers") and store.load("numbers") is None
    CALLS.clear()
    rebuilt = pipeline.run("numbers", profile)
    assert CALLS == ["numbers"]
    assert rebuilt.json("numbers.json") == list(range(profile.pretrain.steps))


def test_missing_manifest_means_not_trusted(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("numbers", profile)
    (artifact.path / "manifest.json").unlink()
    CALLS.clear()
    pipeline.run("numbers", profile)
    assert CALLS == ["numbers"]


def test_failed_build_leaves_nothing_behind(stages, runs_root, monkeypatch):
    def explode(ctx):
        (ctx.out / "partial.json").write_text("{}")
        raise RuntimeError("boom")

    monkeypatch.setattr(
        sys.modules[__name__], "NUMBERS", pipeline.Stage("numbers", explode, lambda p: {})
    )
    with pytest.raises(RuntimeError, match="boom"):
        pipeline.run("numbers", load_profile("tiny", use_env=False))
    store = RunStore("tiny")
    assert store.problems("numbers") == ["missing"]
    assert not any(p.name.startswith(".tmp-") for p in store.root.iterdir())


def test_killed_writer_never_leaves_a_trusted_artifact(runs_root, tmp_path):
    """SIGKILL a process in the middle of a build: the next run sees nothing to trust."""
    script = tmp_path / "slow_stage.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from phi1lib import pipeline
            from phi1lib.profiles import load_profile

            def build(ctx):
                (ctx.out / "half.bin").write_bytes(b"x" * 1000)
                print("writing", flush=True)
                time.sleep(60)
                return {}

            SLOW = pipeline.Stage("slow", build, lambda p: {})
            pipeline.STAGES["slow"] = "__main__:SLOW"
            pipeline.run("slow", load_profile("tiny", use_env=False))
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = RunStore("tiny")
    assert store.load("slow") is None
    assert store.problems("slow") == ["missing"]
    left = [p.name for p in store.root.iterdir() if p.name.startswith(".tmp-slow-")]
    assert len(left) == 1, "the killed build left its staging folder"
    assert left[0] in store.sweep("slow") and not (store.root / left[0]).exists()


def test_status_reports_states(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    rows = {row["stage"]: row["state"] for row in pipeline.status(profile)}
    assert rows == {"numbers": "missing", "total": "missing"}
    pipeline.run("total", profile)
    rows = {row["stage"]: row["state"] for row in pipeline.status(profile)}
    assert rows == {"numbers": "done", "total": "done"}
    changed = load_profile("tiny", overrides={"pretrain.steps": 3}, use_env=False)
    rows = {row["stage"]: row["state"] for row in pipeline.status(changed)}
    assert rows == {"numbers": "stale", "total": "stale"}


def test_cli_status_and_run(stages, runs_root, capsys):
    from phi1lib.cli import main

    assert main(["run", "total", "--profile", "smoke"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stage"] == "total" and out["counts"]["total"] == sum(range(20))
    assert main(["status", "--profile", "smoke"]) == 0
    text = capsys.readouterr().out
    assert "numbers" in text and "done" in text


def test_verify_rebuilds_and_compares(stages, runs_root, monkeypatch):
    profile = load_profile("tiny", use_env=False)
    report = pipeline.verify("total", profile)
    assert report == {**report, "stage": "total", "files": 1, "identical": 1, "reproduced": True}
    stored = pipeline.run("total", profile)
    before = stored.manifest["files"]

    def nondeterministic(ctx):
        (ctx.out / "total.json").write_text(str(len(CALLS)))
        CALLS.append("total")
        return {}

    monkeypatch.setattr(
        sys.modules[__name__],
        "TOTAL",
        pipeline.Stage("total", nondeterministic, lambda p: {}, needs=("numbers",)),
    )
    report = pipeline.verify("total", profile)
    assert not report["reproduced"] and report["differing"] == ["total.json"]
    assert (
        RunStore("tiny").read_manifest("total")["files"] == before
    )  # the stored artifact is untouched


def _hashing(monkeypatch) -> list[str]:
    """Every file the run store hashes from now on."""
    import phi1lib.runstore as runstore

    hashed: list[str] = []
    original = runstore.file_digest

    def counting(path, *args, **kwargs):
        hashed.append(path.name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(runstore, "file_digest", counting)
    return hashed


def test_a_cached_run_hashes_nothing_and_deep_checks_hash_everything(
    stages, runs_root, monkeypatch
):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("total", profile)
    hashed = _hashing(monkeypatch)
    assert pipeline.run("total", profile).fingerprint == artifact.fingerprint
    assert {row["state"] for row in pipeline.status(profile)} == {"done"}
    assert hashed == [], "a cached lookup trusts sizes and times"
    # A file touched without a change is hashed once and still trusted.
    numbers = RunStore("tiny").path("numbers") / "numbers.json"
    recorded = numbers.stat()
    os.utime(numbers, ns=(1, 1))
    assert RunStore("tiny").load("numbers") is not None and hashed == ["numbers.json"]
    # A change that keeps size and time is what the deep check is for.
    hashed.clear()
    numbers.write_text(numbers.read_text().replace("1", "7", 1))
    os.utime(numbers, ns=(recorded.st_atime_ns, recorded.st_mtime_ns))
    assert RunStore("tiny").problems("numbers") == [] and hashed == []
    rows = {row["stage"]: row for row in pipeline.status(profile, deep=True)}
    assert rows["numbers"]["state"] == "damaged"
    assert rows["numbers"]["problems"] == ["numbers.json: content changed"]
    assert sorted(hashed) == ["numbers.json", "total.json"]


BROKEN_MANIFESTS = {
    "invalid UTF-8": b"\xff\xfe{not text",
    "a list": b"[1, 2, 3]",
    "files as a list": b'{"fingerprint": "x", "files": ["numbers.json"]}',
    "an entry without size": b'{"fingerprint": "x", "files": {"numbers.json": {"blake2b": "0"}}}',
    "truncated": b'{"fingerprint": "x", "fi',
}


@pytest.mark.parametrize("kind", BROKEN_MANIFESTS)
def test_a_manifest_of_the_wrong_shape_is_damaged_and_rebuilt(stages, runs_root, capsys, kind):
    from phi1lib.cli import main

    profile = load_profile("smoke", use_env=False)
    pipeline.run("total", profile)
    store = RunStore("smoke")
    (store.path("numbers") / "manifest.json").write_bytes(BROKEN_MANIFESTS[kind])
    assert store.read_manifest("numbers") is None and store.load("numbers") is None
    assert main(["status", "--profile", "smoke"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"numbers\s+damaged", printed) and re.search(r"total\s+stale", printed)
    assert "manifest" in printed  # the reason is shown
    CALLS.clear()
    assert main(["run", "total", "--profile", "smoke"]) == 0
    assert CALLS == ["numbers"]  # rebuilt as before, so total's inputs did not change
    assert {row["state"] for row in pipeline.status(profile)} == {"done"}


def test_a_manifest_listing_no_files_does_not_vouch_for_the_data(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("numbers", profile)
    manifest = dict(artifact.manifest, files={})
    (artifact.path / "manifest.json").write_text(json.dumps(manifest))
    (artifact.path / "numbers.json").write_text("[1, 2")  # corrupt
    assert RunStore("tiny").problems("numbers") == ["numbers.json: not in the manifest"]
    CALLS.clear()
    assert pipeline.run("numbers", profile).json("numbers.json") == list(
        range(profile.pretrain.steps)
    )
    assert CALLS == ["numbers"]


def test_files_a_dataset_reader_adds_are_not_part_of_the_artifact(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    artifact = pipeline.run("numbers", profile)
    (artifact.path / "cache-0123456789abcdef.arrow").write_bytes(b"derived")  # datasets' .map()
    assert RunStore("tiny").problems("numbers") == []
    (artifact.path / "extra.json").write_text("{}")
    assert RunStore("tiny").problems("numbers") == ["extra.json: not in the manifest"]


def test_leftovers_of_killed_builds_are_swept_by_the_next_build_of_their_stage(stages, runs_root):
    profile = load_profile("tiny", use_env=False)
    store = RunStore("tiny")
    store.root.mkdir(parents=True)
    for name in (".tmp-numbers-0badf00d", ".old-numbers-12345678", ".tmp-total-0badf00d"):
        (store.root / name).mkdir()
        (store.root / name / "half.bin").write_bytes(b"x" * 100)
    pipeline.run("numbers", profile)
    left = sorted(p.name for p in store.root.iterdir() if p.name.startswith((".tmp-", ".old-")))
    assert left == [".tmp-total-0badf00d"], "only the stage being built sweeps its own"
    pipeline.run("total", profile)
    assert not [p for p in store.root.iterdir() if p.name.startswith((".tmp-", ".old-"))]
