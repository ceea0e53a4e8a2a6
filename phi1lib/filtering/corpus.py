"""The raw code corpus: real Python files, one record each, with bad input counted, never fatal.

Two sources give records of one schema (``text``, ``path``, ``package``, ``source``, ``size``,
``skip_reason``):

* ``local`` (offline, the default): the Python source already on every machine, namely the
  interpreter's standard library (its own test suite included) and the site-packages of the
  running interpreter. It is real, varied code that nobody in this project wrote; this project's
  own package is left out. ``package`` is the top-level package (``torch``) or, for the standard
  library, ``stdlib/<module>``: the closest thing to The Stack's repository.
* ``hub`` (online): The Stack's deduplicated Python subset and StackOverflow, streamed with
  ``datasets`` (``load_dataset(..., streaming=True)``) and split across workers with
  ``split_dataset_by_node``. The column names of each source are set in the profile, so a local
  parquet or JSON Lines file with The Stack's columns goes through exactly the same code.

A file is skipped (``skip_reason`` set, text emptied unless it is readable text) when it cannot
be read, is larger than ``max_file_bytes``, holds NUL bytes or is no regular file at all (a FIFO,
socket or device: both count as ``binary``), cannot be decoded, is empty, or is Python that
``ast.parse`` rejects. Only regular files are opened, their size is checked before they are read
and never more than ``max_file_bytes`` are read, and folders are walked without recursion, so no
file or folder a reader points at can hang, exhaust memory or overflow the stack.

Worker ``rank`` of ``world_size`` reads one contiguous block of the corpus (:func:`shard_range`),
so the workers' outputs laid end to end are the corpus in order. Introduced in chapter 1.
"""

from __future__ import annotations

import ast
import io
import os
import random
import site
import stat
import sysconfig
import tokenize
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

SKIP_REASONS = ("not_found", "unreadable", "too_large", "binary", "undecodable", "empty", "syntax")
COLUMNS = ("text", "path", "package", "source", "size", "skip_reason")
PROJECT_PACKAGE = "phi1lib"


@dataclass(frozen=True)
class LocalFile:
    """A Python file on this machine, named the way the corpus shows it."""

    location: Path
    path: str  # "stdlib/json/decoder.py" or "site-packages/torch/nn/functional.py"
    package: str
    source: str  # "stdlib" or "site-packages"


def _syntax_ok(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not our business
        try:
            ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def check_text(text: str, *, parse_python: bool = True) -> str | None:
    """Why a decoded text cannot enter the corpus, or None when it can (chapter 1)."""
    if "\x00" in text:
        return "binary"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were never text
        return "undecodable"
    if not text.strip():
        return "empty"
    if parse_python and not _syntax_ok(text):
        return "syntax"
    return None


def decode_python(data: bytes) -> str:
    """Decode Python source the way the interpreter does (PEP 263 coding cookie, else UTF-8)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    return text[1:] if text.startswith("\ufeff") else text


def _read_regular_file(location: Path, max_file_bytes: int) -> tuple[bytes, int, str | None]:
    """The bytes of a regular file, at most ``max_file_bytes`` + 1 of them, or why not.

    ``os.stat`` follows a symbolic link to what it names. Anything but a regular file (a FIFO
    would block ``open``, ``/dev/zero`` never ends) is refused before it is opened; the open
    itself does not block, and what was opened is checked again, in case the path changed.
    """
    try:
        info = os.stat(location)
    except FileNotFoundError:
        return b"", 0, "not_found"
    except OSError:  # permissions, a loop of symbolic links, a name too long
        return b"", 0, "unreadable"
    if not stat.S_ISREG(info.st_mode):
        return b"", 0, "binary"
    if max_file_bytes and info.st_size > max_file_bytes:
        return b"", info.st_size, "too_large"
    try:
        descriptor = os.open(location, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b"", info.st_size, "unreadable"
    with os.fdopen(descriptor, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return b"", 0, "binary"
            data = handle.read(max_file_bytes + 1) if max_file_bytes else handle.read()
        except OSError:
            return b"", info.st_size, "unreadable"
    if max_file_bytes and len(data) > max_file_bytes:  # it grew since it was measured
        return b"", len(data), "too_large"
    return data, len(data), None


def read_python_file(location: Path, max_file_bytes: int) -> tuple[str, int, str | None]:
    """Read one file: ``(text, size in bytes, skip_reason)``; never raises for bad input."""
    data, size, reason = _read_regular_file(location, max_file_bytes)
    if reason is not None:
        return "", size, reason
    if b"\x00" in data:
        return "", size, "binary"
    try:
        text = decode_python(data)
    except (SyntaxError, LookupError, UnicodeDecodeError):  # bad cookie, unknown codec, bad bytes
        return "", size, "undecodable"
    return text, size, check_text(text)


def iter_python_files(root: Path) -> Iterator[Path]:
    """Every ``*.py`` entry under a folder that is not itself a folder, in no particular order.

    The walk keeps its own stack of folders instead of recursing (a tree 1,200 folders deep is
    walked like a flat one), does not descend into symbolic links to folders (a link to ``..``
    would never end) nor into ``__pycache__``, and skips folders it may not list. FIFOs and
    devices named ``*.py`` are returned: :func:`read_python_file` skips them with a reason.
    """
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if is_folder:
                if not entry.is_symlink() and entry.name != "__pycache__":
                    pending.append(Path(entry.path))
            elif entry.name.endswith(".py"):
                yield Path(entry.path)


def _project_roots() -> list[Path]:
    """Where this project's own package lives, to leave it out of the corpus."""
    import phi1lib

    return [Path(phi1lib.__file__).resolve().parent]


def local_python_files() -> list[LocalFile]:
    """Every ``.py`` file of the standard library and the running interpreter's site-packages.

    Sorted by displayed path. Left out: this project's package (wherever it is installed), the
    editable-install shims of any package, byte-code caches, and a site-packages folder inside
    the standard library that belongs to another interpreter. Introduced in chapter 1.
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    site_dirs = sorted({Path(p).resolve() for p in site.getsitepackages()} | _user_site())
    excluded = _project_roots()
    roots = [(stdlib, "stdlib")] + [(d, "site-packages") for d in site_dirs]
    found: dict[str, LocalFile] = {}
    for root, source in roots:
        if not root.is_dir():
            continue
        for location in iter_python_files(root):
            relative = location.relative_to(root)
            parts = relative.parts
            if parts[0].startswith("__editable__"):
                continue
            if source == "stdlib" and parts[0] in {"site-packages", "dist-packages"}:
                continue
            top = parts[0].removesuffix(".py")
            if top == PROJECT_PACKAGE or _inside_any(location, excluded):
                continue
            package = f"stdlib/{top}" if source == "stdlib" else top
            shown = f"{source}/{relative.as_posix()}"
            found.setdefault(shown, LocalFile(location, shown, package, source))
    return [found[key] for key in sorted(found)]


def _inside_any(location: Path, folders: Sequence[Path]) -> bool:
    """Whether a file, links followed, lies in one of the folders; a link loop lies nowhere
    (``Path.resolve`` raises on one, and :func:`read_python_file` reports it unreadable)."""
    try:
        resolved = location.resolve()
    except (OSError, RuntimeError):
        return False
    return any(resolved.is_relative_to(folder) for folder in folders)


def _user_site() -> set[Path]:
    user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return {Path(user).resolve()} if user and Path(user).is_dir() else set()


def sample_files(files: Sequence[LocalFile], max_files: int, seed: int) -> list[LocalFile]:
    """A deterministic sample (all files when ``max_files`` is 0), in path order (chapter 1)."""
    if not max_files or max_files >= len(files):
        return list(files)
    chosen = random.Random(seed).sample(range(len(files)), max_files)
    return [files[i] for i in sorted(chosen)]


def local_records(
    files: Iterable[LocalFile], *, max_file_bytes: int, progress: bool = False
) -> Iterator[dict[str, Any]]:
    """One corpus record per local file, skipped files included (chapter 1)."""
    files = list(files)
    for file in tqdm(files, desc="reading files", unit="file", disable=not progress):
        text, size, reason = read_python_file(file.location, max_file_bytes)
        yield {
            "text": "" if reason in {"binary", "undecodable", "too_large"} else text,
            "path": file.path,
            "package": file.package,
            "source": file.source,
            "size": size,
            "skip_reason": reason,
        }


def hub_record(
    row: Mapping[str, Any], spec: Mapping[str, Any], *, max_file_bytes: int
) -> dict[str, Any]:
    """Map one row of a streamed dataset to a corpus record, as ``spec`` names its columns.

    ``spec`` holds ``name`` and ``text_column``, optionally ``path_column``, ``group_column``
    (the repository, for The Stack ``max_stars_repo_name``) and ``parse_python`` (false for
    StackOverflow posts, which are prose with code, not Python files). Introduced in chapter 1.
    """
    text = row.get(spec["text_column"])
    group = row.get(spec.get("group_column", ""), None) or spec["name"]
    path = row.get(spec.get("path_column", ""), None) or ""
    record = {
        "path": f"{group}/{path}" if path else str(group),
        "package": str(group),
        "source": spec["name"],
    }
    if not isinstance(text, str):
        return {**record, "text": "", "size": 0, "skip_reason": "undecodable"}
    size = len(text.encode("utf-8", "surrogatepass"))
    if max_file_bytes and size > max_file_bytes:
        return {**record, "text": "", "size": size, "skip_reason": "too_large"}
    reason = check_text(text, parse_python=spec.get("parse_python", True))
    kept_text = "" if reason in {"binary", "undecodable"} else text
    return {**record, "text": kept_text, "size": size, "skip_reason": reason}


def share_of(total: int, rank: int, world_size: int) -> int:
    """How many of ``total`` items worker ``rank`` of ``world_size`` takes (they sum to total)."""
    return total // world_size + (1 if rank < total % world_size else 0)


def shard_range(total: int, rank: int, world_size: int) -> range:
    """The contiguous block of ``range(total)`` that worker ``rank`` of ``world_size`` takes.

    The blocks are as even as :func:`share_of` makes them and follow each other in rank order, so
    that "first in the corpus" means "lowest rank, then first within the rank" (chapter 1).
    """
    start = rank * (total // world_size) + min(rank, total % world_size)
    return range(start, start + share_of(total, rank, world_size))


def hub_records(
    sources: Sequence[Mapping[str, Any]],
    *,
    max_files: int,
    max_file_bytes: int,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """Stream corpus records from Hugging Face datasets (or local files in the same format).

    Each source spec names ``path`` (a hub id such as ``bigcode/the-stack-dedup``, or a builder
    such as ``parquet``), optionally ``data_dir``, ``data_files``, ``split`` and ``share`` (its
    fraction of ``max_files``; 0 means the whole stream). Worker ``rank`` of ``world_size``
    reads its own part of every stream (``split_dataset_by_node``), so the workers together read
    each record exactly once. Introduced in chapter 1.
    """
    from datasets import load_dataset
    from datasets.distributed import split_dataset_by_node

    for spec in sources:
        stream = load_dataset(
            spec["path"],
            data_dir=spec.get("data_dir"),
            data_files=spec.get("data_files"),
            split=spec.get("split", "train"),
            streaming=True,
        )
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
        limit = round(max_files * spec.get("share", 1.0)) if max_files else 0
        if limit:
            stream = stream.take(share_of(limit, rank, world_size))
        rows = tqdm(stream, desc=f"streaming {spec['name']}", unit="row", disable=not progress)
        for row in rows:
            yield hub_record(row, spec, max_file_bytes=max_file_bytes)


def corpus_records(
    corpus: Mapping[str, Any],
    *,
    rank: int = 0,
    world_size: int = 1,
    local_files: Sequence[LocalFile] | None = None,
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """The records of a profile's ``[corpus]`` section, whichever its source (chapter 1).

    For the local source, ``local_files`` is the sample when the caller has drawn it already
    (listing this machine's Python files takes seconds, and every worker would repeat it).
    """
    source = corpus["source"]
    if source == "local":
        if local_files is None:
            local_files = sample_files(local_python_files(), corpus["max_files"], corpus["seed"])
        mine = [local_files[i] for i in shard_range(len(local_files), rank, world_size)]
        yield from local_records(mine, max_file_bytes=corpus["max_file_bytes"], progress=progress)
    elif source == "hub":
        yield from hub_records(
            corpus["hub_sources"],
            max_files=corpus["max_files"],
            max_file_bytes=corpus["max_file_bytes"],
            rank=rank,
            world_size=world_size,
            progress=progress,
        )
    else:
        raise ValueError(f"corpus.source must be 'local' or 'hub', not {source!r}")


def python_files_under(paths: Iterable[str | Path]) -> list[Path]:
    """The files a reader named: each file as given, each folder's ``*.py`` files, sorted.

    A path that does not exist is returned as is, so that the caller reports it as
    ``not_found`` instead of losing it (chapter 1, ``phi1 filter``).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(iter_python_files(path)))
        else:
            found.append(path)
    return list(dict.fromkeys(found))
