"""Bad input at the seams, beyond the cases the modules' own tests name: a run store whose
manifests are not regular files or whose folders were replaced, and a malformed upload to the
offline teacher. Each must be reported (damaged, a 400), never hang, crash or leak."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import httpx2
import pytest
from test_runstore import CALLS, stages  # noqa: F401  (the two-stage pipeline fixture)

from phi1lib import pipeline
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore


@contextlib.contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a FIFO that is opened blocks until a writer comes."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _replace_manifest(store: RunStore, how: str) -> None:
    manifest = store.path("numbers") / "manifest.json"
    manifest.unlink()
    if how == "a FIFO":
        os.mkfifo(manifest)
    elif how == "a link to /dev/zero":
        manifest.symlink_to("/dev/zero")
    elif how == "a folder":
        manifest.mkdir()
    elif how == "a link to itself":
        manifest.symlink_to(manifest)


@pytest.mark.parametrize("how", ["a FIFO", "a link to /dev/zero", "a folder", "a link to itself"])
def test_a_manifest_that_is_no_regular_file_is_damaged_not_read(stages, runs_root, capsys, how):  # noqa: F811
    from phi1lib.cli import main

    profile = load_profile("tiny", use_env=False)
    pipeline.run("total", profile)
    store = RunStore("tiny")
    _replace_manifest(store, how)
    with _within(20):
        assert store.load("numbers") is None
        assert main(["status", "--profile", "tiny"]) == 0
        printed = capsys.readouterr().out
        assert "damaged" in printed and "manifest cannot be read" in printed
        CALLS.clear()
        assert main(["run", "total", "--profile", "tiny"]) == 0
    assert CALLS == ["numbers"]
    assert {row["state"] for row in pipeline.status(profile)} == {"done"}


def test_an_artifact_folder_replaced_by_a_file_is_rebuilt_and_nothing_is_left(stages, runs_root):  # noqa: F811
    profile = load_profile("tiny", use_env=False)
    pipeline.run("numbers", profile)
    store = RunStore("tiny")
    for path in store.path("numbers").iterdir():
        path.unlink()
    store.path("numbers").rmdir()
    store.path("numbers").write_text("not a folder")
    (store.root / ".old-numbers-0badf00d").write_text("a retired artifact that was a file")
    assert store.problems("numbers")[0].startswith("manifest cannot be read")
    assert pipeline.run("numbers", profile).json("numbers.json")
    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    assert leftovers == []


def test_a_deep_tree_inside_an_artifact_is_listed_without_recursion(
    stages,  # noqa: F811
    runs_root,
    deep_folders,
):
    profile = load_profile("tiny", use_env=False)
    pipeline.run("numbers", profile)
    store = RunStore("tiny")
    bottom = deep_folders(store.path("numbers"), 1200)
    (bottom / "stray.bin").write_bytes(b"x")
    problems = store.problems("numbers")
    assert len(problems) == 1 and problems[0].endswith("stray.bin: not in the manifest")
    rows = {row["stage"]: row["state"] for row in pipeline.status(profile)}
    assert rows == {"numbers": "damaged", "total": "missing"}


def test_a_cached_lookup_reads_no_file_but_a_changed_file_is_still_caught(
    stages,  # noqa: F811
    runs_root,
    monkeypatch,
):
    """Trusting size and time is safe only if a change to either is noticed."""
    import phi1lib.runstore as runstore

    profile = load_profile("tiny", use_env=False)
    pipeline.run("total", profile)
    digests: list[str] = []
    original = runstore.file_digest
    monkeypatch.setattr(
        runstore, "file_digest", lambda path, *a, **k: digests.append(path.name) or original(path)
    )
    CALLS.clear()
    for _ in range(3):
        pipeline.run("total", profile)
    assert CALLS == [] and digests == []
    numbers = RunStore("tiny").path("numbers") / "numbers.json"
    text = numbers.read_text()
    numbers.write_text(text.replace("1", "7", 1))  # same size, new time: hashed, found changed
    assert RunStore("tiny").problems("numbers") == ["numbers.json: content changed"]
    assert digests == ["numbers.json"]
    numbers.write_text(text + " ")  # another size: caught without reading it
    digests.clear()
    assert RunStore("tiny").problems("numbers")[0].startswith("numbers.json: size")
    assert digests == []
    pipeline.run("total", profile)
    assert CALLS == ["numbers"]  # rebuilt to the same content, so total is still up to date


@pytest.fixture(scope="module")
def teacher():
    from phi1lib.teacher import LocalTeacherServer
    from phi1lib.teacher.offline import ServerConfig

    with LocalTeacherServer(ServerConfig()) as running:
        yield running


def test_a_malformed_multipart_upload_is_a_400_not_a_500(teacher):
    with httpx2.Client(base_url=teacher.base_url.removesuffix("/v1"), timeout=30) as http:
        answer = http.post(
            "/v1/files",
            content=b"no boundary anywhere",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert answer.status_code == 400
        assert "multipart body cannot be read" in answer.json()["error"]["message"]
        assert http.get("/health").json()["status"] == "ok"


def test_the_code_corpus_walk_survives_a_link_loop_named_like_python(tmp_path, monkeypatch):
    """``code_corpus`` walks site-packages; a ``x.py`` linking to itself is read as unreadable."""
    from phi1lib.filtering import corpus

    site_packages = tmp_path / "site-packages"
    (site_packages / "pkg").mkdir(parents=True)
    (site_packages / "pkg" / "good.py").write_text("x = 1\n")
    (site_packages / "pkg" / "loop.py").symlink_to("loop.py")
    monkeypatch.setattr(corpus.site, "getsitepackages", lambda: [str(site_packages)])
    monkeypatch.setattr(corpus, "_user_site", lambda: set())
    found = {f.path: f for f in corpus.local_python_files() if f.source == "site-packages"}
    assert set(found) == {"site-packages/pkg/good.py", "site-packages/pkg/loop.py"}
    records = list(corpus.local_records([found["site-packages/pkg/loop.py"]], max_file_bytes=100))
    assert [r["skip_reason"] for r in records] == ["unreadable"]
