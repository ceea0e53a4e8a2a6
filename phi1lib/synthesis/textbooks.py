"""Synthetic textbooks: sections written by the teacher from balanced constraints, then executed.

The paper's textbooks are under 1B tokens of GPT-3.5 prose with code woven in; their diversity
comes from constraints on the topic and the audience (paper §2.2). Here each section is
asked for with four constraints (topic, subtopic, audience, style; see ``constraints.py``)
through the teacher's versioned ``textbook_section`` template, and every Python block of the
answer is executed in the sandbox (``code_blocks.py``). Sections with too few code blocks, or
(by default) with a block that fails, are counted and left out. Introduced in chapter 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phi1lib.profiles import Profile
from phi1lib.sandbox import SandboxLimits
from phi1lib.synthesis.code_blocks import python_blocks, runnable_source, with_context
from phi1lib.synthesis.constraints import request_seed, textbook_constraints
from phi1lib.synthesis.records import KEPT, provenance_columns, rejection
from phi1lib.synthesis.verification import verify_programs
from phi1lib.teacher import JobReport, TeacherRequest, run_requests, tasks, teacher_endpoint

REQUEST_CONSTRAINTS = ("topic", "subtopic", "audience", "style")


@dataclass(frozen=True)
class TextbookSettings:
    """The profile's ``[textbooks]`` section (chapter 2)."""

    n_sections: int
    seed: int
    min_code_blocks: int
    drop_failing: bool
    block_timeout_s: float
    workers: int
    token_counter: str


def textbook_requests(constraints: Sequence[dict[str, str]], seed: int) -> list[TeacherRequest]:
    """One ``textbook_section`` request per constraint set; ids ``textbook-0000000``... (ch. 2)."""
    return [
        tasks.textbook_request(
            {key: item[key] for key in REQUEST_CONSTRAINTS},
            id=f"textbook-{index:07d}",
            seed=request_seed("textbook", seed, index),
        )
        for index, item in enumerate(constraints)
    ]


@dataclass
class SectionCheck:
    """How the code of one section fared: Python blocks, failing blocks and why they failed."""

    blocks: int
    failed: int
    failures: list[dict[str, Any]]


def check_sections(
    texts: Sequence[str],
    *,
    limits: SandboxLimits,
    workers: int,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[SectionCheck]:
    """Execute every Python block of every section: alone first, then after its predecessors.

    Introduced in chapter 2 ("Executing the textbooks").
    """
    sources = [[runnable_source(block.code) for block in python_blocks(text)] for text in texts]
    flat = [(s, b) for s, blocks in enumerate(sources) for b in range(len(blocks))]
    alone = verify_programs(
        [sources[s][b] for s, b in flat],
        limits=limits,
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
        desc="textbook code blocks",
    )
    verdicts = dict(zip(flat, alone, strict=True))
    retry = [(s, b) for (s, b), verdict in verdicts.items() if not verdict.passed and b > 0]
    in_context = verify_programs(
        [with_context(sources[s][:b], sources[s][b]) for s, b in retry],
        limits=limits,
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
        desc="blocks after their predecessors",
    )
    # A retried block is judged by its run in context: its failure alone is often a NameError.
    verdicts.update(zip(retry, in_context, strict=True))
    checks = []
    for s, blocks in enumerate(sources):
        failures = [
            {"block": b, "code": blocks[b], **verdicts[(s, b)].to_dict()}
            for b in range(len(blocks))
            if not verdicts[(s, b)].passed
        ]
        checks.append(SectionCheck(blocks=len(blocks), failed=len(failures), failures=failures))
    return checks


def generate_textbooks(
    profile: Profile,
    *,
    cache_dir: Path,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], JobReport]:
    """Ask the teacher for the profile's sections and execute their code (chapter 2).

    Returns one record per request, in request order, with ``rejected`` empty for a usable
    section, else the reason (``teacher_failed``, ``teacher_malformed``, ``too_few_code_blocks``,
    ``code_fails``); and the teacher's job report. ``cache_dir`` holds the teacher's answers
    (``teacher/``) and the sandbox verdicts (``sandbox/``), so an interrupted run resumes.
    """
    settings = profile.textbooks
    constraints = textbook_constraints(settings.n_sections, settings.seed)
    requests = textbook_requests(constraints, settings.seed)
    with teacher_endpoint(profile) as endpoint:
        report = run_requests(
            endpoint, requests, cache_dir=cache_dir / "teacher", progress=progress
        )
    answered = [index for index, result in enumerate(report.results) if result.ok]
    checks = check_sections(
        [report.results[index].text for index in answered],
        limits=SandboxLimits(timeout_s=settings.block_timeout_s),
        workers=settings.workers,
        cache_dir=cache_dir / "sandbox",
        progress=progress,
    )
    check_of = dict(zip(answered, checks, strict=True))
    records = []
    for index, (item, result) in enumerate(zip(constraints, report.results, strict=True)):
        check = check_of.get(index, SectionCheck(0, 0, []))
        reason = rejection(result)
        if reason == KEPT and check.blocks < settings.min_code_blocks:
            reason = "too_few_code_blocks"
        elif reason == KEPT and check.failed and settings.drop_failing:
            reason = "code_fails"
        records.append(
            {
                "id": result.id,
                "text": result.text or "",
                **item,
                "code_blocks": check.blocks,
                "code_blocks_failed": check.failed,
                "code_failures": json.dumps(check.failures),
                "teacher_error": result.error or "",
                **provenance_columns(result),
                "rejected": reason,
            }
        )
    return records, report
