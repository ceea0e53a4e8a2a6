"""The pipeline: stages of the paper, their dependencies, and how they are run through the store.

A :class:`Stage` declares its name, the stages it needs, the part of the profile it depends on
and a ``build`` function that writes its artifact. :func:`run` resolves the upstream stages first
(building those that are missing or stale), so any chapter can start from a fresh clone.
A stage whose configuration and inputs are unchanged is not built again.

Adding a stage takes one module (the ``Stage`` and its build function) and one line in
:data:`STAGES`. The build gets everything it needs in its :class:`StageContext`: the profile,
its inputs, its fingerprint, the folder to write, a work folder that survives interruptions and
the profile's cache folders; it never looks them up for itself. Stage modules are imported
lazily, so this foundation imports no stage until one is asked for. Introduced in the preface
("The run store").
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phi1lib import launch
from phi1lib.profiles import Profile, load_profile
from phi1lib.runstore import Artifact, ArtifactError, RunStore, file_digest, fingerprint

log = logging.getLogger(__name__)

# The registry. Stage name -> "module:attribute" of its Stage object, in pipeline order.
STAGES: dict[str, str] = {
    # Chapter 1: filtering real code to textbook quality (phi1lib.filtering).
    "code_corpus": "phi1lib.filtering.stages:CODE_CORPUS",
    "raw_code": "phi1lib.filtering.stages:RAW_CODE",
    "code_judgements": "phi1lib.filtering.stages:CODE_JUDGEMENTS",
    "code_embeddings": "phi1lib.filtering.stages:CODE_EMBEDDINGS",
    "edu_classifier": "phi1lib.filtering.stages:EDU_CLASSIFIER",
    "filtered_code": "phi1lib.filtering.stages:FILTERED_CODE",
    # Chapters 2 and 3: synthetic textbooks and CodeExercises (phi1lib.synthesis).
    "textbooks": "phi1lib.synthesis.stages:TEXTBOOKS",
    "exercises": "phi1lib.synthesis.stages:EXERCISES",
    # Chapters 4 and 5: pretraining and fine-tuning (phi1lib.training).
    "tokenizer": "phi1lib.training.stages:TOKENIZER",
    "tokens_codetextbook": "phi1lib.training.stages:TOKENS_CODETEXTBOOK",
    "tokens_filtered_code": "phi1lib.training.stages:TOKENS_FILTERED_CODE",
    "tokens_raw_code": "phi1lib.training.stages:TOKENS_RAW_CODE",
    "tokens_exercises": "phi1lib.training.stages:TOKENS_EXERCISES",
    "pretrain": "phi1lib.training.stages:PRETRAIN",
    "pretrain_filtered": "phi1lib.training.stages:PRETRAIN_FILTERED",
    "pretrain_unfiltered": "phi1lib.training.stages:PRETRAIN_UNFILTERED",
    "finetune": "phi1lib.training.stages:FINETUNE",
    "ablation_models": "phi1lib.training.ablation_models:ABLATION_MODELS",
    "training_ablation": "phi1lib.training.ablation:TRAINING_ABLATION",
    "finetune_curve": "phi1lib.evaluation.curve:FINETUNE_CURVE",  # chapter 5's learning curve
    # Chapter 6: HumanEval, MBPP, the new problems, decontamination (phi1lib.evaluation).
    "evaluate": "phi1lib.evaluation.stage:EVALUATE",
    "robustness": "phi1lib.evaluation.robustness:ROBUSTNESS",
    # Chapters 7 and 8: the probe suite, and diversity and redundancy (phi1lib.analysis).
    "probes": "phi1lib.analysis.stages:PROBES",
    "diversity": "phi1lib.analysis.stages:DIVERSITY",
}


@dataclass(frozen=True)
class StageContext:
    """What a stage's build gets: everything it may read, and the only places it may write.

    ``out`` is the empty folder the artifact is written into (moved into place when the build
    returns). ``work`` survives an interrupted build and is handed to the next build with the
    same fingerprint (checkpoints, finished parts), then removed once the stage is stored.
    ``cache(name)`` is shared by every build of the profile (answers a teacher was paid for).
    ``main_process`` is False only in the other processes of a multi-process launch, which
    build a ``collective`` stage together with the main one but store nothing.
    """

    stage: Stage
    profile: Profile
    inputs: Mapping[str, Artifact]
    store: RunStore
    fingerprint: str
    out: Path
    work: Path
    main_process: bool = True

    def cache(self, name: str) -> Path:
        """The profile's cache folder ``name`` (created when missing)."""
        return self.store.cache_dir(name)


def _borrows_nothing(profile: Profile) -> Sequence[tuple[str, str]]:
    return ()


@dataclass(frozen=True)
class Stage:
    """One step of the paper's recipe, built through the run store.

    ``config`` picks the part of the profile this stage depends on: changing anything else does
    not invalidate it. ``build`` writes files into ``ctx.out`` and returns counts for the manifest.
    Bump ``version`` when the code changes what a stage produces. ``borrows`` names artifacts of
    other profiles, ``(profile, stage)``, that the build reads when they are built there (they
    are never built from here); they arrive in ``ctx.inputs`` as ``"stage@profile"``. A
    ``collective`` stage is built by every process of a multi-process launch at once (training).
    """

    name: str
    build: Callable[[StageContext], Mapping[str, Any]]
    config: Callable[[Profile], Mapping[str, Any]]
    needs: tuple[str, ...] = ()
    version: int = 1
    description: str = ""
    borrows: Callable[[Profile], Sequence[tuple[str, str]]] = _borrows_nothing
    collective: bool = False


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        known = ", ".join(STAGES) or "none"
        raise KeyError(f"unknown stage {name!r}; known stages: {known}")
    module_name, attribute = STAGES[name].split(":")
    stage = getattr(importlib.import_module(module_name), attribute)
    if stage.name != name:
        raise RuntimeError(f"stage registered as {name!r} calls itself {stage.name!r}")
    return stage


def _as_profile(profile: Profile | str | None) -> Profile:
    return profile if isinstance(profile, Profile) else load_profile(profile)


def stage_fingerprint(stage: Stage, profile: Profile, inputs: Mapping[str, Artifact]) -> str:
    """What a stored artifact must match to be reused: code version, configuration, inputs."""
    return _fingerprint(stage, profile, {name: a.fingerprint for name, a in inputs.items()})


def _fingerprint(stage: Stage, profile: Profile, inputs: Mapping[str, str | None]) -> str:
    return fingerprint(
        {
            "stage": stage.name,
            "version": stage.version,
            "config": stage.config(profile),
            "inputs": dict(inputs),
        }
    )


def borrowed(stage: Stage, profile: Profile, store: RunStore) -> dict[str, Artifact]:
    """The artifacts of other profiles that ``stage`` borrows and that are built there."""
    found = {}
    for other, name in stage.borrows(profile):
        artifact = store.of_profile(other).load(name)
        if artifact is not None:
            found[f"{name}@{other}"] = artifact
    return found


def build_stage(
    stage: Stage, profile: Profile, inputs: Mapping[str, Artifact], store: RunStore
) -> Artifact:
    """Build ``stage`` from these inputs and store it, whatever the store holds already.

    :func:`run` calls this for stages that are missing or stale; tests call it with stand-in
    inputs. The work folder is removed once the artifact is stored, and kept if the build fails.
    """
    expected = stage_fingerprint(stage, profile, inputs)
    with store.lock(stage.name):
        return _build_and_store(stage, profile, inputs, store, expected)


def _build_and_store(
    stage: Stage,
    profile: Profile,
    inputs: Mapping[str, Artifact],
    store: RunStore,
    expected: str,
    *,
    main_process: bool = True,
) -> Artifact:
    """The build itself; the caller holds the stage's lock."""
    for leftover in store.sweep(stage.name):
        log.info("removed %s, left by a build of %s that was killed", leftover, stage.name)
    started = time.time()
    work = store.work_dir(stage.name, expected)
    work.mkdir(parents=True, exist_ok=True)
    with store.staging(stage.name) as scratch:
        ctx = StageContext(stage, profile, inputs, store, expected, scratch, work, main_process)
        counts = stage.build(ctx) or {}
        artifact = store.commit(
            stage.name,
            scratch,
            fingerprint_=expected,
            config=stage.config(profile),
            inputs={need: artifact.fingerprint for need, artifact in inputs.items()},
            counts=counts,
            started=started,
        )
    shutil.rmtree(work, ignore_errors=True)
    return artifact


class _Run:
    """One call of :func:`run`: every stage is looked up once, however many stages need it."""

    def __init__(self, profile: Profile, store: RunStore):
        self.profile = profile
        self.store = store
        self.resolved: dict[str, Artifact] = {}

    def inputs(self, stage: Stage) -> dict[str, Artifact]:
        inputs = {need: self.artifact(need) for need in stage.needs}
        inputs.update(borrowed(stage, self.profile, self.store))
        return inputs

    def artifact(self, name: str, force: bool = False) -> Artifact:
        if name in self.resolved and not force:
            return self.resolved[name]
        stage = get_stage(name)
        inputs = self.inputs(stage)
        expected = stage_fingerprint(stage, self.profile, inputs)
        if stage.collective and launch.world_size() > 1:
            artifact = self._build_collectively(stage, inputs, expected, force)
        else:
            artifact = self._load_or_build(stage, inputs, expected, force)
        self.resolved[name] = artifact
        return artifact

    def _load_or_build(
        self, stage: Stage, inputs: dict[str, Artifact], expected: str, force: bool
    ) -> Artifact:
        store = self.store
        with store.lock(stage.name):
            if not force and (cached := store.load(stage.name, expected)) is not None:
                store.sweep(stage.name)
                log.info("stage %s is up to date (%s)", stage.name, expected)
                return cached
            problems = store.problems(stage.name)
            if problems not in ([], ["missing"]):
                log.warning(
                    "stage %s on disk cannot be trusted (%s); rebuilding",
                    stage.name,
                    "; ".join(problems),
                )
            return _build_and_store(stage, self.profile, inputs, store, expected)

    def _build_collectively(
        self, stage: Stage, inputs: dict[str, Artifact], expected: str, force: bool
    ) -> Artifact:
        """Every process of the launch builds (trains) together; the main one stores the result."""
        store = self.store
        if not force and (cached := store.load(stage.name, expected)) is not None:
            return cached
        if launch.is_main_process():
            with store.lock(stage.name):
                artifact = _build_and_store(stage, self.profile, inputs, store, expected)
            launch.wait_for_everyone()
            return artifact
        work = store.work_dir(stage.name, expected)
        with tempfile.TemporaryDirectory(prefix=f"phi1-{stage.name}-rank{launch.rank()}-") as out:
            ctx = StageContext(
                stage, self.profile, inputs, store, expected, Path(out), work, main_process=False
            )
            stage.build(ctx)
        launch.wait_for_everyone()
        artifact = store.load(stage.name, expected)
        if artifact is None:
            raise ArtifactError(f"the main process did not store stage {stage.name!r}")
        return artifact


def run(
    name: str,
    profile: Profile | str | None = None,
    *,
    store: RunStore | None = None,
    force: bool = False,
) -> Artifact:
    """Return the artifact of a stage, building it (and what it needs) when missing or stale.

    Under a multi-process launch every process calls this; a ``collective`` stage is then
    trained by all of them and stored by the first (chapter 4).
    """
    profile = _as_profile(profile)
    return _Run(profile, store or RunStore(profile.name)).artifact(name, force=force)


def status(
    profile: Profile | str | None = None, *, store: RunStore | None = None, deep: bool = False
) -> list[dict]:
    """One row per registered stage: is it built, and is it up to date with the profile?

    ``deep`` hashes every file of every artifact instead of trusting the files whose size and
    modification time the manifest recorded (``phi1 status --deep``).
    """
    profile = _as_profile(profile)
    store = store or RunStore(profile.name)
    rows: list[dict] = []
    fingerprints: dict[str, str | None] = {}
    for name in STAGES:
        stage = get_stage(name)
        manifest = store.read_manifest(name)
        upstream = {need: fingerprints.get(need) for need in stage.needs}
        upstream.update({key: a.fingerprint for key, a in borrowed(stage, profile, store).items()})
        expected = None
        if all(value is not None for value in upstream.values()):
            expected = _fingerprint(stage, profile, upstream)
        problems = store.problems(name, deep=deep)
        if problems == ["missing"]:
            state = "missing"
        elif problems:
            state = "damaged"
        elif expected is not None and manifest and manifest.get("fingerprint") == expected:
            state = "done"
        else:
            state = "stale"
        fingerprints[name] = manifest.get("fingerprint") if state == "done" and manifest else None
        rows.append(
            {
                "stage": name,
                "state": state,
                "needs": ", ".join(stage.needs),
                "built": (manifest or {}).get("created", ""),
                "wall_time_s": (manifest or {}).get("wall_time_s"),
                "description": stage.description,
                "problems": [] if state == "missing" else problems,
            }
        )
    return rows


def verify(
    name: str, profile: Profile | str | None = None, *, store: RunStore | None = None
) -> dict:
    """Build a stage again from its stored inputs and compare every file with the stored artifact.

    This is the book's reproducibility check: a stage is reproducible when the same configuration
    and the same inputs give byte-identical files. The stored artifact is left untouched.
    Introduced in the appendix "Reproducibility".
    """
    profile = _as_profile(profile)
    store = store or RunStore(profile.name)
    stage = get_stage(name)
    resolver = _Run(profile, store)
    stored = resolver.artifact(name)
    inputs = resolver.inputs(stage)
    started = time.time()
    label = f"verify-{name}"
    work = store.work_dir(label, stored.fingerprint)
    work.mkdir(parents=True, exist_ok=True)
    with store.lock(label):
        store.sweep(label)
        with store.staging(label) as scratch:
            stage.build(
                StageContext(stage, profile, inputs, store, stored.fingerprint, scratch, work)
            )
            rebuilt = {
                path.relative_to(scratch).as_posix(): file_digest(path)
                for path in sorted(scratch.rglob("*"))
                if path.is_file()
            }
    shutil.rmtree(work, ignore_errors=True)
    expected = {name_: entry["blake2b"] for name_, entry in stored.manifest["files"].items()}
    differing = sorted(
        f for f in expected.keys() | rebuilt.keys() if expected.get(f) != rebuilt.get(f)
    )
    return {
        "stage": name,
        "files": len(expected),
        "identical": len(expected) - len([f for f in differing if f in expected]),
        "differing": differing,
        "reproduced": not differing,
        "rebuild_s": round(time.time() - started, 2),
    }
