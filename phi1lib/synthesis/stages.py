"""The run-store stages of chapters 2 and 3: ``textbooks`` and ``exercises``.

``textbooks`` writes ``data`` (the kept sections: ``text``, the constraints ``topic``,
``subtopic``, ``audience``, ``style``, ``level``, ``n_tokens``, code-block counts and
provenance), ``rejected`` (every other section, with its ``rejected`` reason) and
``report.json``. ``exercises`` (which needs ``textbooks``, for the duplicates across the two
datasets) writes ``data`` (training exercises), ``heldout`` (whole held-out families, see
``split.py``), ``infamily`` (new instances of training families with unseen names, wordings
and constants, see ``split.py``), ``rejected`` and ``report.json``. Exercise columns: ``function_name``, ``family``,
``topic``, ``difficulty``, ``signature``, ``docstring``, ``prompt``, ``solution``, ``tests``,
``text``, ``entry_point``, ``n_tokens``, ``verification`` and provenance.

The teacher's answers and the sandbox's verdicts live outside the stage folders, in the
profile's cache (``runs/<profile>/.cache/synthesis/``): a build that is interrupted, or a stage
rebuilt with other cleaning settings, asks the teacher only for what is missing. ``report.json`` holds only what the
data determines, so that ``phi1 verify`` can rebuild a stage byte for byte; what a particular
build cost (answers from the cache, HTTP requests, wall time) goes to the manifest's counts.
Introduced in chapters 2 and 3.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import fingerprint
from phi1lib.sandbox.layers import require_isolation
from phi1lib.synthesis.cleaning import (
    CleaningSettings,
    ast_decontamination,
    benchmark_problems,
    ngram_decontamination,
    remove_duplicates,
)
from phi1lib.synthesis.constraints import coverage
from phi1lib.synthesis.curriculum import CURRICULUM_DIR, load_curriculum
from phi1lib.synthesis.exercises import exercise_plan, generate_exercises
from phi1lib.synthesis.records import KEPT, split_kept
from phi1lib.synthesis.split import separate_infamily
from phi1lib.synthesis.textbooks import generate_textbooks
from phi1lib.synthesis.tokens import token_counter
from phi1lib.teacher import JobReport, tasks
from phi1lib.teacher.prompts import load_template

REPORT_FILE = "report.json"
# Columns that only say why a record was rejected; the kept datasets leave them out.
REJECTION_COLUMNS = ("rejected", "teacher_error", "code_failures", "verification_message")
_PACKAGE = Path(__file__).resolve().parent.parent
_TEACHER_CODE = _PACKAGE / "teacher" / "offline"


@functools.lru_cache(maxsize=1)
def _content_digest() -> str:
    """A hash of the offline teacher's code and of the curriculum and naming scheme it reads:
    its answers change when these do (read once per process: the code a process runs does not
    change under it)."""
    digest = hashlib.sha256()
    files = [
        _TEACHER_CODE / "procedural.py",
        *sorted((_TEACHER_CODE / "content").rglob("*")),
        *sorted(CURRICULUM_DIR.glob("*.toml")),
        _PACKAGE / "synthesis" / "names.py",
    ]
    for path in files:
        if path.is_file() and path.suffix in (".py", ".toml", ".json"):
            digest.update(path.relative_to(_PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def teacher_identity(profile: Profile) -> dict[str, Any]:
    """What decides the teacher's answers: endpoint and model; for the offline teacher, also
    its mistake rate and the hash of its code."""
    teacher = profile.teacher
    identity: dict[str, Any] = {"endpoint": teacher.endpoint, "model": teacher.model}
    if teacher.endpoint == "local":
        identity.update(mistake_rate=teacher.mistake_rate, code=_content_digest())
    return identity


def cache_dir(ctx: StageContext) -> Path:
    """Where a stage keeps the teacher's answers and the sandbox's verdicts between builds: one
    folder per stage and teacher, since another teacher gives other answers."""
    teacher = fingerprint(teacher_identity(ctx.profile))[:12]
    return ctx.cache(f"synthesis/{ctx.stage.name}-{teacher}")


def _save(records: list[dict[str, Any]], path: Path, drop: tuple[str, ...] = ()) -> None:
    from datasets import Dataset

    rows = [{k: v for k, v in record.items() if k not in drop} for record in records]
    Dataset.from_list(rows).save_to_disk(str(path))


def _count_tokens(records: list[dict[str, Any]], counter_name: str) -> None:
    counts = token_counter(counter_name)([record["text"] for record in records])
    for record, count in zip(records, counts, strict=True):
        record["n_tokens"] = count


def _reasons(records: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(record["rejected"] or "kept" for record in records).most_common())


def _write_report(ctx: StageContext, report: dict[str, Any]) -> None:
    (ctx.out / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))


def _teacher_summary(job: JobReport) -> dict[str, Any]:
    """What the teacher answered, independent of which build asked (for ``report.json``)."""
    counts = {k: v for k, v in job.counts.items() if k != "cached"}
    endpoint = dict(job.endpoint)
    if endpoint.get("kind") == "local":
        endpoint.pop("base_url", None)  # a fresh port every time the local teacher starts
    return {"endpoint": endpoint, "counts": counts}


def _teacher_costs(job: JobReport) -> dict[str, Any]:
    """What this build cost (for the manifest's counts)."""
    return {
        "teacher_cached": job.counts["cached"],
        "teacher_http_requests": job.http_requests,
        "teacher_retries": job.retries,
        "teacher_tokens": job.tokens,
        "teacher_cost_usd": round(job.cost_usd, 4),
        "teacher_wall_s": round(job.wall_s, 2),
    }


def _require(kept: list[dict[str, Any]], what: str, reasons: dict[str, int]) -> None:
    if not kept:
        raise RuntimeError(
            f"no {what} survived generation and cleaning ({reasons}); the teacher's answers are "
            "cached, so fix the cause and run the stage again"
        )


# --- chapter 2: textbooks ----------------------------------------------------------------------


def _textbooks_config(profile: Profile) -> dict[str, Any]:
    return {
        "textbooks": profile.section("textbooks"),
        "cleaning": profile.section("cleaning"),
        "teacher": teacher_identity(profile),
        "template_version": load_template(tasks.TEXTBOOK).version,
    }


def build_textbooks(ctx: StageContext) -> dict[str, Any]:
    """Generate, execute, count, deduplicate and decontaminate the textbook sections."""
    curriculum = load_curriculum()
    sandbox = require_isolation(ctx.profile.sandbox)
    settings = ctx.profile.textbooks
    cleaning = ctx.profile.cleaning
    records, job = generate_textbooks(ctx.profile, cache_dir=cache_dir(ctx))
    _count_tokens(records, settings.token_counter)
    generated = _reasons(records)
    dedup = remove_duplicates(records, cleaning)
    ngrams = ngram_decontamination(records, "text", benchmark_problems(), cleaning)
    kept, rejected = split_kept(records)
    reasons = _reasons(records)
    _require(kept, "textbook section", reasons)
    _save(kept, ctx.out / "data", drop=REJECTION_COLUMNS)
    _save(rejected, ctx.out / "rejected")
    blocks = sum(r["code_blocks"] for r in records)
    failed_blocks = sum(r["code_blocks_failed"] for r in records)
    report = {
        "teacher": _teacher_summary(job),
        "requested": len(records),
        "after_generation": generated,
        "reasons": reasons,
        "code_blocks": {"total": blocks, "failed": failed_blocks},
        "dedup": dedup,
        "ngram": ngrams,
        "tokens": {
            "counter": settings.token_counter,
            "kept": sum(r["n_tokens"] for r in kept),
            "all_answers": sum(r["n_tokens"] for r in records),
        },
        "coverage": {
            "topic": coverage([r["topic"] for r in kept], [t["topic"] for t in curriculum.topics]),
            "audience": coverage([r["audience"] for r in kept], curriculum.audiences),
            "style": coverage([r["style"] for r in kept], curriculum.styles),
        },
    }
    _write_report(ctx, report)
    return {
        "requested": len(records),
        "kept": len(kept),
        "rejected": len(rejected),
        "tokens": report["tokens"]["kept"],
        **_teacher_costs(job),
        "sandbox": sandbox,
    }


TEXTBOOKS = Stage(
    name="textbooks",
    build=build_textbooks,
    config=_textbooks_config,
    version=1,
    description="synthetic textbook sections, their code executed, deduplicated (chapter 2)",
)


# --- chapter 3: exercises ----------------------------------------------------------------------


def _exercises_config(profile: Profile) -> dict[str, Any]:
    return {
        "exercises": profile.section("exercises"),
        "cleaning": profile.section("cleaning"),
        "teacher": teacher_identity(profile),
        "template_version": load_template(tasks.EXERCISE).version,
    }


def _split_heldout(records: list[dict[str, Any]], units: set[str], cleaning: CleaningSettings):
    kept = [r for r in records if r["rejected"] == KEPT and r["split"] != "infamily"]
    train = [r for r in kept if r["family"] not in units]
    heldout = [r for r in kept if r["family"] in units]
    dedup = remove_duplicates(
        heldout, cleaning, against=[r["text"] for r in train], against_name="train"
    )
    for record in heldout:
        if record["rejected"] == KEPT:
            record["split"] = "heldout"
    for record in train:
        record["split"] = "train"
    return dedup


def build_exercises(ctx: StageContext) -> dict[str, Any]:
    """Generate and verify the exercises, clean them, and split off the held-out families."""
    sandbox = require_isolation(ctx.profile.sandbox)
    settings = ctx.profile.exercises
    cleaning = ctx.profile.cleaning
    records, job = generate_exercises(ctx.profile, cache_dir=cache_dir(ctx))
    _count_tokens(records, settings.token_counter)
    answered = [r for r in records if not r["rejected"].startswith("teacher_")]
    verified = [r for r in answered if r["verification"]]
    generated = _reasons(records)
    dedup = remove_duplicates(records, cleaning)
    textbooks = ctx.inputs["textbooks"].dataset("data")["text"]
    across = remove_duplicates(records, cleaning, against=textbooks, against_name="textbook")
    problems = benchmark_problems()
    ngrams = ngram_decontamination(records, "docstring", problems, cleaning)
    ast = ast_decontamination(records, problems, cleaning)
    units = exercise_plan(settings).heldout_families
    heldout_dedup = _split_heldout(records, set(units), cleaning)
    train = [r for r in records if r["rejected"] == KEPT and r["split"] == "train"]
    infamily_checks = separate_infamily(
        [r for r in records if r["split"] == "infamily"], train, cleaning
    )
    kept, rejected = split_kept(records)
    reasons = _reasons(records)
    heldout = [r for r in kept if r["split"] == "heldout"]
    infamily = [r for r in kept if r["split"] == "infamily"]
    _require(train, "training exercise", reasons)
    _require(heldout, "held-out exercise", reasons)
    if settings.infamily_exercises:
        _require(infamily, "in-family exercise", reasons)
    _save(train, ctx.out / "data", drop=(*REJECTION_COLUMNS, "split"))
    _save(heldout, ctx.out / "heldout", drop=(*REJECTION_COLUMNS, "split"))
    _save(infamily, ctx.out / "infamily", drop=(*REJECTION_COLUMNS, "split"))
    _save(rejected, ctx.out / "rejected")
    failures = Counter(r["verification"] for r in verified if r["verification"] != "passed")
    report = {
        "teacher": _teacher_summary(job),
        "requested": len(records),
        "answered": len(answered),
        "invalid": sum(r["rejected"] == "invalid" for r in records),
        "verified": len(verified),
        "passed": sum(r["verification"] == "passed" for r in verified),
        "failure_kinds": dict(failures.most_common()),
        "error_types": dict(
            Counter(r["error_type"] for r in verified if r["error_type"]).most_common()
        ),
        "after_generation": generated,
        "reasons": reasons,
        "dedup": dedup,
        "dedup_against_textbooks": across,
        "ngram": ngrams,
        "ast": ast,
        "heldout": {
            "families": units,
            "exercises": len(heldout),
            "dedup_against_train": heldout_dedup,
        },
        "infamily": {
            "families": sorted({r["family"] for r in infamily}),
            "requested": sum(r["split"] == "infamily" for r in records),
            "exercises": len(infamily),
            **infamily_checks,
        },
        "tokens": {
            "counter": settings.token_counter,
            "train": sum(r["n_tokens"] for r in train),
            "heldout": sum(r["n_tokens"] for r in heldout),
            "infamily": sum(r["n_tokens"] for r in infamily),
        },
    }
    _write_report(ctx, report)
    return {
        "requested": len(records),
        "train": len(train),
        "heldout": len(heldout),
        "infamily": len(infamily),
        "rejected": len(rejected),
        "failed_tests": sum(failures.values()),
        "tokens": report["tokens"]["train"],
        **_teacher_costs(job),
        "sandbox": sandbox,
    }


EXERCISES = Stage(
    name="exercises",
    build=build_exercises,
    config=_exercises_config,
    needs=("textbooks",),
    version=2,  # 2: the in-family split
    description="synthetic CodeExercises, each executed against its tests, cleaned (chapter 3)",
)
