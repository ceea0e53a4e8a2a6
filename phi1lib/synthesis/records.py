"""What every synthetic record carries besides its content: who wrote it, from which prompt.

A record of either dataset keeps the teacher's provenance (endpoint kind, model, prompt
template and version, sampling seed, the request's cache key, and the full provenance as JSON)
so that any item can be traced back to the exact prompt that produced it, and a ``rejected``
reason that stays empty while the record is kept. Chapters 2 and 3 share these helpers.
"""

from __future__ import annotations

import json
from typing import Any

from phi1lib.teacher.records import TeacherResult

KEPT = ""


def provenance_columns(result: TeacherResult) -> dict[str, Any]:
    """The flat provenance columns of a record, from the teacher's result."""
    provenance = result.provenance
    return {
        "teacher_model": str(provenance.get("model", "")),
        "endpoint_kind": str(provenance.get("endpoint_kind", "")),
        "template": str(provenance.get("template", "")),
        "template_version": int(provenance.get("template_version") or 0),
        "seed": int(provenance.get("seed") or 0),
        "request_key": str(provenance.get("request_key", "")),
        "provenance": json.dumps(provenance, sort_keys=True, default=str),
    }


def rejection(result: TeacherResult) -> str:
    """Why a teacher result yields no record (``teacher_<status>``), or :data:`KEPT`."""
    return KEPT if result.ok else f"teacher_{result.status}"


def split_kept(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """The records still kept, and the rejected ones, each in their original order."""
    kept = [record for record in records if record["rejected"] == KEPT]
    rejected = [record for record in records if record["rejected"] != KEPT]
    return kept, rejected


def reject(records: list[dict[str, Any]], indices: list[int] | set[int], reason: str) -> int:
    """Mark ``records[i]`` rejected for ``reason`` (unless already rejected); how many were."""
    marked = 0
    for index in sorted(indices):
        if records[index]["rejected"] == KEPT:
            records[index]["rejected"] = reason
            marked += 1
    return marked
