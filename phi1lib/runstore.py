"""The run store: artifacts on disk, the contract between the stages of the pipeline.

Each stage writes one folder, ``runs/<profile>/<stage>/``, holding whatever it produced
(``datasets`` saved to disk, ``save_pretrained`` folders, JSON) and a ``manifest.json`` that
records the configuration, the fingerprints of its inputs, counts, library versions, wall time
and the size and hash of every file. A stage is built in a temporary folder and moved into place
only when it finished, so a crash never leaves a half-written artifact that a later run trusts;
an artifact whose files no longer match its manifest is treated as missing and rebuilt.
Introduced in the preface ("The run store").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
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


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            files[path.relative_to(folder).as_posix()] = {
                "size": path.stat().st_size,
                "blake2b": file_digest(path),
            }
    return files


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

    def read_manifest(self, stage: str) -> dict[str, Any] | None:
        path = self.path(stage) / MANIFEST
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def problems(self, stage: str) -> list[str]:
        """Why the stored artifact cannot be trusted (empty when it can)."""
        folder = self.path(stage)
        if not folder.exists():
            return ["missing"]
        manifest = self.read_manifest(stage)
        if manifest is None:
            return ["no readable manifest (half-written or corrupted)"]
        found = []
        for name, expected in manifest.get("files", {}).items():
            path = folder / name
            if not path.is_file():
                found.append(f"{name}: missing")
            elif path.stat().st_size != expected["size"]:
                found.append(f"{name}: size {path.stat().st_size} != {expected['size']}")
            elif file_digest(path) != expected["blake2b"]:
                found.append(f"{name}: content changed")
        return found

    def load(self, stage: str, expected_fingerprint: str | None = None) -> Artifact | None:
        """The verified artifact, or None when it is missing, stale or corrupted."""
        manifest = self.read_manifest(stage)
        if manifest is None:
            return None
        if expected_fingerprint is not None and manifest.get("fingerprint") != expected_fingerprint:
            return None
        if self.problems(stage):
            return None
        return Artifact(stage, self.path(stage), manifest)

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
            shutil.rmtree(retired, ignore_errors=True)
        return Artifact(stage, final, manifest)
