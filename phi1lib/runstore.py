"""The run store: artifacts on disk, the contract between the stages of the pipeline.

Each stage writes one folder, ``runs/<profile>/<stage>/``, holding whatever it produced
(``datasets`` saved to disk, ``save_pretrained`` folders, JSON) and a ``manifest.json`` that
records the configuration, the fingerprints of its inputs, counts, library versions, wall time
and the size, modification time and hash of every file. A stage is built in a temporary folder
and moved into place only when it finished, so a crash never leaves a half-written artifact that
a later run trusts (a killed build's leftovers are swept by the next build of that stage); an
artifact whose files no longer match its manifest, or whose manifest cannot be read, is reported
as damaged and rebuilt.

Looking an artifact up costs a directory listing and a ``stat`` per file, whatever the size of
the data: a file whose size and modification time are those the manifest recorded is trusted, as
``make`` and ``git status`` trust them; only a file whose time changed is hashed again. The full
content check, every byte hashed, is ``problems(stage, deep=True)`` (``phi1 status --deep``), and
``phi1 verify`` goes further and rebuilds. Introduced in the preface ("The run store").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
RUNS_ENV = "PHI1_RUNS"
WORK = ".work"  # resumable work of unfinished builds, one folder per stage and fingerprint
CACHE = ".cache"  # what every build of a profile may reuse: teacher answers, sandbox verdicts
# Files ``datasets`` writes beside a saved dataset when a reader filters or maps it; they are
# derived from the artifact, not part of it.
_DERIVED_FILE = re.compile(r"cache-[0-9a-f]+(_\d+_of_\d+)?\.arrow")
_LEFTOVER = re.compile(r"\.(?:tmp|old)-(?P<stage>.+)-[0-9a-f]{8}")
# A manifest lists one line per file; this bounds what a damaged one can make a lookup read.
MAX_MANIFEST_BYTES = 256 * 2**20
_TRACKED_LIBRARIES = ("phi1lib", "torch", "transformers", "datasets", "tokenizers", "accelerate")


def default_runs_root() -> Path:
    """Where artifacts live: $PHI1_RUNS, else ``runs/`` in the repository checkout, else a cache."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / "runs"
    return Path.home() / ".cache" / "phi1" / "runs"


def fingerprint(payload: Any) -> str:
    """A stable hash of a JSON-able value (sorted keys), used to decide whether a stage is stale."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError for anything else.

    A FIFO named ``manifest.json`` would block ``open`` and a link to ``/dev/zero`` never ends:
    both are refused before they are read, and the open itself does not block.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"{path.name} is not a regular file")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path.name} is larger than {limit} bytes")
    return data


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _not_artifact(name: str) -> bool:
    return name == MANIFEST or _DERIVED_FILE.fullmatch(name) is not None


def _artifact_files(folder: Path) -> dict[str, Path]:
    """The files of an artifact folder by their relative name (not the manifest, not the cache
    files ``datasets`` adds when a dataset is transformed)."""
    found: dict[str, Path] = {}
    pending = [folder]
    while pending:  # its own stack, not rglob's recursion: a tree 1,200 folders deep is no crash
        try:
            with os.scandir(pending.pop()) as listing:
                entries = list(listing)
        except OSError:  # a folder it may not list holds nothing it can vouch for
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif path.is_file() and not _not_artifact(entry.name):
                found[path.relative_to(folder).as_posix()] = path
    return dict(sorted(found.items()))


def _describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for name, path in _artifact_files(folder).items():
        info = path.stat()
        files[name] = {
            "size": info.st_size,
            "mtime_ns": info.st_mtime_ns,
            "blake2b": file_digest(path),
        }
    return files


def manifest_problem(manifest: Any) -> str | None:
    """Why a parsed manifest cannot describe an artifact (None when it can)."""
    if not isinstance(manifest, dict):
        return f"manifest is a JSON {type(manifest).__name__}, not an object"
    if not isinstance(manifest.get("fingerprint"), str):
        return "manifest has no fingerprint"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return f"manifest 'files' is a {type(files).__name__}, not an object"
    for name, entry in files.items():
        if not isinstance(entry, dict):
            return f"manifest entry {name!r} is not an object"
        if type(entry.get("size")) is not int or not isinstance(entry.get("blake2b"), str):
            return f"manifest entry {name!r} lacks its size or hash"
        if "mtime_ns" in entry and type(entry["mtime_ns"]) is not int:
            return f"manifest entry {name!r} has a modification time that is not a number"
    if not isinstance(manifest.get("counts", {}), dict):
        return "manifest 'counts' is not an object"
    return None


def _remove(path: Path) -> None:
    """Remove a folder, or a file or link where a folder was expected (a damaged store)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class ArtifactError(RuntimeError):
    """An artifact that is missing, corrupted or half-written."""


@dataclass(frozen=True)
class Artifact:
    """A finished, verified stage output: a folder and its manifest."""

    stage: str
    path: Path
    manifest: Mapping[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def counts(self) -> Mapping[str, Any]:
        return self.manifest.get("counts", {})

    def file(self, name: str) -> Path:
        path = self.path / name
        if not path.exists():
            raise ArtifactError(f"artifact {self.stage!r} has no file {name!r} (in {self.path})")
        return path

    def json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def dataset(self, name: str = "data"):
        """Load a ``datasets.Dataset`` that the stage saved with ``save_to_disk``."""
        from datasets import load_from_disk

        return load_from_disk(str(self.file(name)))


class RunStore:
    """Artifacts of one profile under ``<root>/<profile>/<stage>/``.

    Besides the artifacts, a profile's store holds the only two other places a build may write:
    ``.work/<stage>-<fingerprint>/`` (what an interrupted build resumes from; removed once the
    stage is stored) and ``.cache/<name>/`` (what any build may reuse, kept until deleted).
    """

    def __init__(self, profile: str, root: Path | str | None = None):
        self.profile = profile
        self.runs_root = Path(root) if root is not None else default_runs_root()
        self.root = self.runs_root / profile

    def path(self, stage: str) -> Path:
        return self.root / stage

    def work_dir(self, stage: str, fingerprint_: str) -> Path:
        """The work folder of one build: same stage, same fingerprint, same folder."""
        return self.root / WORK / f"{stage}-{fingerprint_}"

    def cache_dir(self, name: str) -> Path:
        """A cache folder of this profile (``name`` may hold slashes: ``teacher/probes``)."""
        path = self.root / CACHE / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def of_profile(self, profile: str) -> RunStore:
        """The store of another profile under the same root (a stage comparing model sizes)."""
        return RunStore(profile, self.runs_root)

    def _manifest(self, stage: str) -> tuple[dict[str, Any] | None, str | None]:
        """The stage's manifest, or None and why it cannot be used."""
        path = self.path(stage) / MANIFEST
        try:
            manifest = json.loads(_read_regular_file(path, MAX_MANIFEST_BYTES))
        except FileNotFoundError:
            return None, "no manifest (half-written or deleted)"
        except (OSError, ValueError, RecursionError) as error:  # unreadable, not UTF-8, not JSON
            return None, f"manifest cannot be read ({type(error).__name__}: {error})"
        problem = manifest_problem(manifest)
        return (None, problem) if problem else (manifest, None)

    def read_manifest(self, stage: str) -> dict[str, Any] | None:
        """The stage's manifest when it is readable and well formed, else None."""
        return self._manifest(stage)[0]

    def problems(self, stage: str, *, deep: bool = False) -> list[str]:
        """Why the stored artifact cannot be trusted (empty when it can; ``["missing"]`` when
        there is none). Files whose size and modification time match the manifest are trusted
        without reading them unless ``deep``; every file of the folder must be in the manifest."""
        folder = self.path(stage)
        if not folder.exists():
            return ["missing"]
        manifest, problem = self._manifest(stage)
        if manifest is None:
            return [problem]
        on_disk = _artifact_files(folder)
        found = [
            f"{name}: not in the manifest" for name in on_disk if name not in manifest["files"]
        ]
        for name, expected in manifest["files"].items():
            path = on_disk.get(name)
            if path is None:
                found.append(f"{name}: missing")
                continue
            info = path.stat()
            if info.st_size != expected["size"]:
                found.append(f"{name}: size {info.st_size} != {expected['size']}")
            elif deep or info.st_mtime_ns != expected.get("mtime_ns"):
                try:
                    digest = file_digest(path)
                except OSError as error:
                    found.append(f"{name}: unreadable ({error.strerror or error})")
                    continue
                if digest != expected["blake2b"]:
                    found.append(f"{name}: content changed")
        return found

    def load(
        self, stage: str, expected_fingerprint: str | None = None, *, deep: bool = False
    ) -> Artifact | None:
        """The trusted artifact, or None when it is missing, stale or damaged."""
        manifest = self.read_manifest(stage)
        if manifest is None:
            return None
        if expected_fingerprint is not None and manifest["fingerprint"] != expected_fingerprint:
            return None
        if self.problems(stage, deep=deep):
            return None
        return Artifact(stage, self.path(stage), manifest)

    def sweep(self, stage: str) -> list[str]:
        """Remove what killed builds of ``stage`` left behind (their staging folders and retired
        artifacts); the caller holds the stage's lock, so no live build owns them."""
        if not self.root.exists():
            return []
        removed = []
        for path in self.root.iterdir():
            match = _LEFTOVER.fullmatch(path.name)
            if match and match["stage"] == stage:
                _remove(path)
                removed.append(path.name)
        return removed

    @contextlib.contextmanager
    def lock(self, stage: str) -> Iterator[None]:
        """Serialise builders of one stage across processes (two notebooks, a notebook and a CLI)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{stage}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def staging(self, stage: str) -> Iterator[Path]:
        """A scratch folder for a build; removed whatever happens unless committed."""
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = self.root / f".tmp-{stage}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir()
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def commit(
        self,
        stage: str,
        scratch: Path,
        *,
        fingerprint_: str,
        config: Mapping[str, Any],
        inputs: Mapping[str, str],
        counts: Mapping[str, Any],
        started: float,
    ) -> Artifact:
        """Write the manifest into ``scratch`` and move it into place atomically."""
        manifest = {
            "stage": stage,
            "profile": self.profile,
            "fingerprint": fingerprint_,
            "config": dict(config),
            "inputs": dict(inputs),
            "counts": dict(counts),
            "versions": library_versions(),
            "wall_time_s": round(time.time() - started, 3),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": _describe_files(scratch),
        }
        tmp_manifest = scratch / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        os.replace(tmp_manifest, scratch / MANIFEST)
        final = self.path(stage)
        retired = None
        if final.exists():
            retired = self.root / f".old-{stage}-{uuid.uuid4().hex[:8]}"
            os.replace(final, retired)
        os.replace(scratch, final)
        if retired is not None:
            _remove(retired)
        return Artifact(stage, final, manifest)
