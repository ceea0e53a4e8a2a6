"""The pipeline: stages of the paper, their dependencies, and how they are run through the store.

A :class:`Stage` declares its name, the stages it needs, the part of the profile it depends on
and a ``build`` function that writes its artifact. :func:`run` resolves the upstream stages first
(building those that are missing or stale), so any chapter can start from a fresh clone.
A stage whose configuration and inputs are unchanged is not built again.
Stage modules register here by name; they are imported lazily, so this foundation imports no
stage until one is asked for. Introduced in the preface ("The run store").
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phi1lib.profiles import Profile, load_profile
from phi1lib.runstore import Artifact, RunStore, file_digest, fingerprint

log = logging.getLogger(__name__)

# Stage name -> "module:attribute" of its Stage object, in pipeline order.
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
    "training_ablation": "phi1lib.training.ablation:TRAINING_ABLATION",
    # Chapter 6: HumanEval, MBPP, the new problems, decontamination (phi1lib.evaluation).
    "evaluate": "phi1lib.evaluation.stage:EVALUATE",
    # Chapters 7 and 8: the probe suite, and diversity and redundancy (phi1lib.analysis).
    "probes": "phi1lib.analysis.stages:PROBES",
    "diversity": "phi1lib.analysis.stages:DIVERSITY",
}


@dataclass
class StageContext:
    """What a stage's build function gets: the profile, its inputs and the folder to write."""

    profile: Profile
    out: Path
    inputs: Mapping[str, Artifact]
    store: RunStore


@dataclass(frozen=True)
class Stage:
    """One step of the paper's recipe, built through the run store.

    ``config`` picks the part of the profile this stage depends on: changing anything else does
    not invalidate it. ``build`` writes files into ``ctx.out`` and returns counts for the manifest.
    Bump ``version`` when the code changes what a stage produces.
    """

    name: str
    build: Callable[[StageContext], Mapping[str, Any]]
    config: Callable[[Profile], Mapping[str, Any]]
    needs: tuple[str, ...] = ()
    version: int = 1
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def register(name: str, target: str) -> None:
    """Register a stage by import path (``"package.module:STAGE"``)."""
    STAGES[name] = target


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
    return fingerprint(
        {
            "stage": stage.name,
            "version": stage.version,
            "config": stage.config(profile),
            "inputs": {name: artifact.fingerprint for name, artifact in inputs.items()},
        }
    )


def run(
    name: str,
    profile: Profile | str | None = None,
    *,
    store: RunStore | None = None,
    force: bool = False,
) -> Artifact:
    """Return the artifact of a stage, building it (and what it needs) when missing or stale."""
    profile = _as_profile(profile)
    store = store or RunStore(profile.name)
    stage = get_stage(name)
    inputs = {need: run(need, profile, store=store) for need in stage.needs}
    expected = stage_fingerprint(stage, profile, inputs)
    with store.lock(name):
        if not force and (cached := store.load(name, expected)) is not None:
            log.info("stage %s is up to date (%s)", name, expected)
            return cached
        problems = store.problems(name)
        if problems not in ([], ["missing"]):
            log.warning(
                "stage %s on disk cannot be trusted (%s); rebuilding", name, "; ".join(problems)
            )
        started = time.time()
        with store.staging(name) as scratch:
            counts = stage.build(StageContext(profile, scratch, inputs, store)) or {}
            return store.commit(
                name,
                scratch,
                fingerprint_=expected,
                config=stage.config(profile),
                inputs={need: artifact.fingerprint for need, artifact in inputs.items()},
                counts=counts,
                started=started,
            )


def status(profile: Profile | str | None = None, *, store: RunStore | None = None) -> list[dict]:
    """One row per registered stage: is it built, and is it up to date with the profile?"""
    profile = _as_profile(profile)
    store = store or RunStore(profile.name)
    rows: list[dict] = []
    fingerprints: dict[str, str | None] = {}
    for name in STAGES:
        stage = get_stage(name)
        manifest = store.read_manifest(name)
        upstream = {need: fingerprints.get(need) for need in stage.needs}
        if any(value is None for value in upstream.values()):
            expected = None
        else:
            expected = fingerprint(
                {
                    "stage": stage.name,
                    "version": stage.version,
                    "config": stage.config(profile),
                    "inputs": upstream,
                }
            )
        problems = store.problems(name)
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
    stored = run(name, profile, store=store)
    inputs = {need: run(need, profile, store=store) for need in stage.needs}
    started = time.time()
    with store.staging(f"verify-{name}") as scratch:
        stage.build(StageContext(profile, scratch, inputs, store))
        rebuilt = {
            path.relative_to(scratch).as_posix(): file_digest(path)
            for path in sorted(scratch.rglob("*"))
            if path.is_file()
        }
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
