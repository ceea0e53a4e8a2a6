"""The educational-value judge: a teacher labels a sample of the corpus (paper §2.1).

The paper asked GPT-4 how much each of ~100k files would help "a student whose goal is to learn
basic coding concepts". We send the same question, as the teacher package's versioned
``judge_educational_value`` prompt (an additive 0-5 rubric), for a deterministic sample of the
deduplicated corpus, and call a file educational when its score is at least 3. Which judge
answers is the profile's choice: offline the book's procedural teacher (a documented rubric over
code features, a stand-in), online a real LLM. Answers are cached by prompt, so an interrupted
run asks only for what is missing. Introduced in chapter 1.
"""

from __future__ import annotations

import ast
import random
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phi1lib.teacher import JobReport, run_requests, teacher_endpoint
from phi1lib.teacher.tasks import (
    EDUCATIONAL_THRESHOLD,
    TeacherOutputError,
    judge_request,
    parse_judgement,
)

CUT_MARKER = "\n# ... (file cut here for the judge)\n"
MAX_CUT_TRIES = 25  # statement ends tried, from the longest head down, before a plain line cut


def sample_indices(n_items: int, sample_size: int, seed: int) -> list[int]:
    """A deterministic sample of ``sample_size`` indices out of ``n_items``, in ascending order."""
    if sample_size >= n_items:
        return list(range(n_items))
    return sorted(random.Random(seed).sample(range(n_items), sample_size))


def _statement_ends(text: str) -> list[int]:
    """Line numbers (1-based) where some statement of the file ends, largest first."""
    tree = _tree(text)
    if tree is None:
        return []
    ends = {node.end_lineno for node in ast.walk(tree) if isinstance(node, ast.stmt)}
    return sorted((end for end in ends if end), reverse=True)


def cut_for_judge(text: str, max_chars: int) -> str:
    """The text the judge reads: whole, or its longest head of at most ``max_chars`` that parses.

    A long file is cut just after a statement (at any depth), so that what the judge reads is
    still valid Python: a cut inside a string or a bracket would make good code look broken. When
    no such head exists, the cut falls at the last line break. A cut is marked with a comment,
    so that neither an LLM nor a reader mistakes it for the end of the file.
    """
    if not max_chars or len(text) <= max_chars:
        return text
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    tries = 0
    for end in _statement_ends(text):
        if offsets[end] > max_chars:
            continue
        head = text[: offsets[end]]
        tries += 1
        if _tree(head) is not None:
            return head.rstrip("\n") + CUT_MARKER
        if tries == MAX_CUT_TRIES:
            break
    head = text[:max_chars]
    line_end = head.rfind("\n")
    return (head[:line_end] if line_end > 0 else head) + CUT_MARKER


def _tree(text: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            return None


def judge_texts(
    texts: Sequence[str],
    ids: Sequence[str],
    profile: Any,
    *,
    cache_dir: Path | None,
    max_chars: int,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], JobReport]:
    """Ask the profile's teacher to judge each text; one row per text plus the job report.

    Every row has ``id``, ``status`` and, when the answer was usable, ``score`` (0-5),
    ``reason`` and ``educational`` (score >= 3); otherwise ``error`` says why (quoting the
    start of what the teacher said). An answer that is not a judgement is refused, so the
    client asks again and never caches it; a file it never judges gets no label, never a
    made-up one. A teacher that fails on some files never stops the others. (chapter 1)
    """
    requests = [
        judge_request(cut_for_judge(text, max_chars), id=request_id)
        for text, request_id in zip(texts, ids, strict=True)
    ]
    with teacher_endpoint(profile) as endpoint:
        report = run_requests(
            endpoint, requests, cache_dir=cache_dir, progress=progress, accept=parse_judgement
        )
    rows: list[dict[str, Any]] = []
    for result in report.results:
        row: dict[str, Any] = {"id": result.id, "status": result.status, "error": result.error}
        try:
            score, reason = parse_judgement(result)
        except TeacherOutputError as error:
            row.update(score=None, reason=None, educational=None, error=str(error))
            if row["status"] == "ok":
                row["status"] = "malformed"
        else:
            row.update(score=score, reason=reason, educational=score >= EDUCATIONAL_THRESHOLD)
        rows.append(row)
    return rows, report


def score_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many rows got each score 0-5, and how many got none, by status."""
    scores = Counter(row["score"] for row in rows if row["score"] is not None)
    statuses = Counter(row["status"] for row in rows if row["score"] is None)
    return {
        **{f"score_{s}": scores.get(s, 0) for s in range(6)},
        **{f"unlabelled_{status}": n for status, n in sorted(statuses.items())},
    }
