"""Tables of probe outcomes: pass rates per category with intervals, and paired differences.

Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from phi1lib.analysis.intervals import paired_bootstrap_difference, wilson_interval


@dataclass(frozen=True)
class ProbeOutcome:
    """One model's answer to one probe, and what the checks made of it."""

    model: str
    probe_id: str
    category: str
    completion: str
    passed: bool
    status: str  # the sandbox's status, or what the structural check missed ("ok" when passed)
    group: str = ""
    perturbation: str = ""
    grade: float | None = None  # the LLM judge's 0-10 grade; None without a judge

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ProbeOutcome:
        return cls(**record)


def _models(outcomes: Sequence[ProbeOutcome]) -> list[str]:
    return list(dict.fromkeys(outcome.model for outcome in outcomes))


def rates_by(outcomes: Sequence[ProbeOutcome], key: str = "category") -> list[dict[str, Any]]:
    """Pass rate with a 95% Wilson interval per model and per value of ``key``.

    ``key`` is ``"category"`` or ``"perturbation"`` (robustness probes only), or ``"all"`` for
    one row per model over every probe.
    """
    rows = []
    for model in _models(outcomes):
        mine = [o for o in outcomes if o.model == model]
        if key == "all":
            values = ["all"]
        else:
            values = list(dict.fromkeys(getattr(o, key) for o in mine if getattr(o, key)))
        for value in values:
            chosen = [o for o in mine if key == "all" or getattr(o, key) == value]
            passed = sum(o.passed for o in chosen)
            low, high = wilson_interval(passed, len(chosen))
            grades = [o.grade for o in chosen if o.grade is not None]
            rows.append(
                {
                    "model": model,
                    key: value,
                    "passed": passed,
                    "probes": len(chosen),
                    "rate": passed / len(chosen),
                    "low": low,
                    "high": high,
                    "judge_grade": float(np.mean(grades)) if grades else None,
                }
            )
    return rows


def paired_differences(
    outcomes: Sequence[ProbeOutcome],
    first: str,
    second: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per category (and overall), ``second``'s pass rate minus ``first``'s on the same probes,
    with a paired bootstrap 95% interval. An interval that excludes 0 is a difference the probe
    suite can see; one that includes it is not, whatever the point estimate says."""
    by_model = {
        model: {o.probe_id: o for o in outcomes if o.model == model} for model in (first, second)
    }
    missing = set(by_model[first]) ^ set(by_model[second])
    if missing:
        raise ValueError(f"{first} and {second} answered different probes: {sorted(missing)[:5]}")
    categories = list(dict.fromkeys(o.category for o in by_model[first].values()))
    rows = []
    for category in [*categories, "all"]:
        ids = [pid for pid, o in by_model[first].items() if category in ("all", o.category)]
        a = [float(by_model[first][pid].passed) for pid in ids]
        b = [float(by_model[second][pid].passed) for pid in ids]
        difference, low, high = paired_bootstrap_difference(a, b, resamples=resamples, seed=seed)
        rows.append(
            {
                "category": category,
                "probes": len(ids),
                "difference": difference,
                "low": low,
                "high": high,
                "only_second": int(sum(y > x for x, y in zip(a, b, strict=True))),
                "only_first": int(sum(x > y for x, y in zip(a, b, strict=True))),
            }
        )
    return rows


def side_by_side(
    outcomes: Sequence[ProbeOutcome], probe_ids: Sequence[str], max_chars: int | None = None
) -> list[dict[str, Any]]:
    """One row per probe: every model's completion and verdict next to each other.

    ``max_chars`` shortens long completions at a line break, so a reader sees whole lines.
    """
    rows = []
    for probe_id in probe_ids:
        row: dict[str, Any] = {"probe": probe_id}
        for outcome in outcomes:
            if outcome.probe_id == probe_id:
                verdict = "pass" if outcome.passed else f"fail ({outcome.status})"
                completion = outcome.completion
                if max_chars is not None:
                    completion = clip_at_line(completion, max_chars)
                row[outcome.model] = f"{verdict}\n{completion}"
        rows.append(row)
    return rows


def clip_at_line(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` at the end of a line, saying how much was left out.

    A single first line longer than ``max_chars`` is cut inside the line.
    """
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars + 1)
    kept = text[:cut] if cut > 0 else text[:max_chars]
    return f"{kept.rstrip()}\n... ({len(text) - len(kept):,} more characters)"
