"""The raw corpus: local files, The Stack's format through datasets streaming, bad input, shards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from phi1lib.filtering import corpus

GOOD = 'def greet(name):\n    """Say hello."""\n    return f"hello {name}"\n'


@pytest.fixture(scope="module")
def local_files() -> list[corpus.LocalFile]:
    return corpus.local_python_files()


def test_local_corpus_is_stdlib_and_site_packages_without_this_project(local_files):
    paths = {f.path for f in local_files}
    assert "stdlib/json/decoder.py" in paths
    assert "site-packages/datasketch/minhash.py" in paths
    assert not any(f.package == "phi1lib" or "/phi1lib/" in f.path for f in local_files)
    assert not any("__editable__" in f.path or "__pycache__" in f.path for f in local_files)
    by_path = {f.path: f for f in local_files}
    assert by_path["stdlib/json/decoder.py"].package == "stdlib/json"
    assert by_path["site-packages/datasketch/minhash.py"].package == "datasketch"
    assert [f.path for f in local_files] == sorted(paths)


def test_local_sample_is_deterministic_and_sized(local_files):
    first = corpus.sample_files(local_files, 50, seed=0)
    assert first == corpus.sample_files(local_files, 50, seed=0)
    assert first != corpus.sample_files(local_files, 50, seed=1)
    assert len(first) == 50 and [f.path for f in first] == sorted(f.path for f in first)
    assert corpus.sample_files(local_files, 0, seed=0) == local_files


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_bad_files_are_skipped_with_their_reason(tmp_path):
    cases = {
        "good.py": (GOOD.encode(), None),
        "latin1.py": (b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n", None),
        "bom.py": (b"\xef\xbb\xbfx = 1\n", None),
        "binary.py": (b"x = 1\x00\x01\x02", "binary"),
        "bad_utf8.py": (b"x = '\xff\xfe'\n", "undecodable"),
        "bad_cookie.py": (b"# coding: no-such-codec\nx = 1\n", "undecodable"),
        "empty.py": (b"  \n\n", "empty"),
        "broken.py": (b"def f(:\n    pass\n", "syntax"),
        "py2.py": (b"print 'hello'\n", "syntax"),
        "huge.py": (b"x = 1\n" * 100, "too_large"),
    }
    for name, (data, expected) in cases.items():
        text, size, reason = corpus.read_python_file(write(tmp_path, name, data), 500)
        assert reason == expected, name
        assert size == len(data)
        if expected is None:
            assert text and not text.startswith("\ufeff")
    assert corpus.read_python_file(tmp_path / "latin1.py", 500)[0].endswith("'été'\n")
    assert corpus.read_python_file(tmp_path / "missing.py", 500) == ("", 0, "not_found")


def test_local_records_have_the_schema_and_never_raise(tmp_path):
    files = [
        corpus.LocalFile(write(tmp_path, "a.py", GOOD.encode()), "x/a.py", "x", "stdlib"),
        corpus.LocalFile(write(tmp_path, "b.py", b"\x00"), "x/b.py", "x", "stdlib"),
        corpus.LocalFile(tmp_path / "gone.py", "x/gone.py", "x", "stdlib"),
    ]
    records = list(corpus.local_records(files, max_file_bytes=1000))
    assert [set(r) for r in records] == [set(corpus.COLUMNS)] * 3
    assert [r["skip_reason"] for r in records] == [None, "binary", "not_found"]
    assert records[0]["text"] == GOOD and records[1]["text"] == ""


def the_stack_rows(start: int, n: int) -> list[dict]:
    """Rows with The Stack's columns; every fifth is broken in its own way."""
    rows = []
    for i in range(start, start + n):
        content = f"def f{i}(x):\n    return x + {i}\n"
        content = {1: "def broken(:\n", 2: "", 3: "a\x00b"}.get(i % 5, content)
        rows.append(
            {
                "content": content,
                "max_stars_repo_name": f"owner/repo{i % 3}",
                "max_stars_repo_path": f"src/file{i}.py",
                "size": len(content),
                "ext": "py",
                "lang": "Python",
            }
        )
    return rows


@pytest.fixture
def stack_shards(tmp_path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = []
    for shard, start in enumerate((0, 20)):
        path = tmp_path / f"train-{shard:05d}-of-00002.parquet"
        pq.write_table(pa.Table.from_pylist(the_stack_rows(start, 20)), path)
        files.append(str(path))
    return files


STACK_SPEC = {
    "name": "the-stack",
    "path": "parquet",
    "text_column": "content",
    "path_column": "max_stars_repo_path",
    "group_column": "max_stars_repo_name",
    "share": 0.8,
    "parse_python": True,
}


def test_the_stack_format_streams_through_the_hub_code_path(stack_shards):
    spec = {**STACK_SPEC, "data_files": stack_shards}
    records = list(corpus.hub_records([spec], max_files=0, max_file_bytes=10_000))
    assert len(records) == 40
    assert records[0]["path"] == "owner/repo0/src/file0.py"
    assert records[0]["package"] == "owner/repo0" and records[0]["source"] == "the-stack"
    reasons = Counter(r["skip_reason"] for r in records)
    assert reasons == {None: 16, "syntax": 8, "empty": 8, "binary": 8}
    assert all(r["text"] == "" for r in records if r["skip_reason"] == "binary")


def test_stackoverflow_posts_are_not_parsed_as_python(tmp_path, stack_shards):
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "\n".join(
            json.dumps({"content": f"Q: how do I sort?\nA: use sorted() #{i}"}) for i in range(5)
        )
    )
    spec = {
        "name": "stackoverflow",
        "path": "json",
        "data_files": [str(posts)],
        "text_column": "content",
    }
    records = list(
        corpus.hub_records([{**spec, "parse_python": False}], max_files=0, max_file_bytes=10_000)
    )
    assert [r["skip_reason"] for r in records] == [None] * 5
    assert records[0]["path"] == "stackoverflow" and records[0]["package"] == "stackoverflow"
    as_python = list(corpus.hub_records([spec], max_files=0, max_file_bytes=10_000))
    assert {r["skip_reason"] for r in as_python} == {"syntax"}


def test_share_of_max_files_and_too_large(stack_shards):
    spec = {**STACK_SPEC, "data_files": stack_shards}
    records = list(corpus.hub_records([spec], max_files=10, max_file_bytes=25))
    assert len(records) == 8  # share 0.8 of 10
    assert {r["skip_reason"] for r in records} >= {"too_large"}
    assert all(r["text"] == "" for r in records if r["skip_reason"] == "too_large")


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_workers_read_every_streamed_record_exactly_once(stack_shards, world_size):
    spec = {**STACK_SPEC, "data_files": stack_shards}
    seen = []
    for rank in range(world_size):
        seen += [
            r["path"]
            for r in corpus.hub_records(
                [spec], max_files=0, max_file_bytes=10_000, rank=rank, world_size=world_size
            )
        ]
    assert sorted(seen) == sorted(f"owner/repo{i % 3}/src/file{i}.py" for i in range(40))


def test_worker_limits_add_up_to_max_files():
    assert [corpus.share_of(10, rank, 3) for rank in range(3)] == [4, 3, 3]
    assert sum(corpus.share_of(7, rank, 4) for rank in range(4)) == 7


def test_shard_ranges_are_contiguous_blocks_that_cover_everything_once():
    for total, world_size in [(23, 1), (23, 4), (23, 7), (3, 5), (0, 2)]:
        blocks = [corpus.shard_range(total, rank, world_size) for rank in range(world_size)]
        assert [i for block in blocks for i in block] == list(range(total))
        assert [len(b) for b in blocks] == [
            corpus.share_of(total, r, world_size) for r in range(world_size)
        ]


def test_local_workers_read_contiguous_blocks_of_the_sample(tmp_path):
    files = [
        corpus.LocalFile(write(tmp_path, f"m{i}.py", GOOD.encode()), f"x/m{i}.py", "x", "stdlib")
        for i in range(7)
    ]
    settings = {"source": "local", "max_file_bytes": 1000}
    seen = [
        [
            r["path"]
            for r in corpus.corpus_records(settings, rank=rank, world_size=3, local_files=files)
        ]
        for rank in range(3)
    ]
    assert seen == [
        ["x/m0.py", "x/m1.py", "x/m2.py"],
        ["x/m3.py", "x/m4.py"],
        ["x/m5.py", "x/m6.py"],
    ]


def test_only_regular_files_are_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    (tmp_path / "folder.py").mkdir()
    for name in ("fifo.py", "zero.py"):  # would block, or read until memory runs out
        assert corpus.read_python_file(tmp_path / name, 500) == ("", 0, "binary"), name
    assert corpus.read_python_file(tmp_path / "loop.py", 500) == ("", 0, "unreadable")
    assert corpus.read_python_file(tmp_path / "folder.py", 500) == ("", 0, "binary")
    assert corpus.read_python_file(tmp_path / "zero.py", 0)[2] == "binary"  # no size limit


def test_the_walk_is_iterative_and_does_not_follow_links_to_folders(tmp_path, deep_folders):
    deep = deep_folders(tmp_path, 1200)  # a recursive walk overflows Python's stack before this
    write(deep, "bottom.py", b"x = 1\n")
    (tmp_path / "d" / "back").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "folder.py").mkdir()
    found = corpus.python_files_under([tmp_path])
    assert found == [deep / "bottom.py"]


def test_python_files_under_keeps_missing_paths_for_reporting(tmp_path):
    write(tmp_path, "a.py", b"x = 1\n")
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    write(tmp_path / "pkg", "b.py", b"y = 2\n")
    write(tmp_path / "pkg" / "__pycache__", "b.cpython-311.py", b"")
    write(tmp_path, "notes.txt", b"not python")
    found = corpus.python_files_under([tmp_path, tmp_path / "notes.txt", tmp_path / "nope.py"])
    assert found == [
        tmp_path / "a.py",
        tmp_path / "pkg" / "b.py",
        tmp_path / "notes.txt",
        tmp_path / "nope.py",
    ]


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="corpus.source"):
        list(corpus.corpus_records({"source": "github"}))
