"""What goes into the teacher and what comes out: requests, results and the report of a job.

A caller renders its prompts into :class:`TeacherRequest` objects (``phi1lib.teacher.tasks`` does
this for the paper's three tasks) and gets back one :class:`TeacherResult` per request, in
request order, inside a :class:`JobReport` that also says what the job cost and where it stopped.
Introduced in chapter 2 (synthetic textbooks) and the appendix on teacher endpoints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

OK = "ok"
FAILED = "failed"  # the endpoint never answered usefully (errors, timeouts, dropped connections)
MALFORMED = "malformed"  # it answered, but not in the asked form (bad JSON, schema, truncated)
NOT_RUN = "not_run"  # never sent: the budget would have been passed
STATUSES = (OK, FAILED, MALFORMED, NOT_RUN)


@dataclass(frozen=True)
class TeacherRequest:
    """One prompt for the teacher.

    ``id`` is chosen by the caller and must be stable across runs (it names the record in
    reports); the cache, however, is keyed by the request's content, so two runs that render the
    same prompt with the same parameters share the answer. ``constraints`` are the diversity knobs
    the prompt was rendered from (topic, audience, function name...); they travel into every
    result's provenance. ``json_schema`` asks for a structured answer (sent as OpenAI's
    ``response_format``, checked on arrival); with ``text_fallback`` an answer that is not JSON of
    that schema is still accepted as text, for a caller that can read a free-text form too (the
    solution judge's "Grade: 7/10"): many open servers ignore ``response_format``. Introduced in
    chapter 2.
    """

    id: str
    template: str
    template_version: int
    messages: list[dict[str, str]]
    params: dict[str, Any] = field(default_factory=dict)
    json_schema: dict[str, Any] | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    text_fallback: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"a teacher request needs a non-empty string id, got {self.id!r}")
        if not self.messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role")
            for m in self.messages
        ):
            raise ValueError(
                f"request {self.id!r}: messages must be a non-empty list of "
                "{'role': ..., 'content': str} dicts"
            )

    @property
    def seed(self) -> int | None:
        return self.params.get("seed")


@dataclass
class TeacherResult:
    """The outcome of one request.

    ``status`` is one of ``ok``, ``failed``, ``malformed`` or ``not_run``; only ``ok`` results
    carry ``text`` (and ``parsed``, the schema-validated JSON, for structured requests) and only
    they are ever served from the cache. A ``malformed`` result keeps what the teacher said last
    in ``raw_text``, so that a reader can see why it was refused. ``usage`` is what this request
    consumed when it was answered (for a cached result: when it was first answered).
    Introduced in chapter 2.
    """

    id: str
    status: str
    text: str | None = None
    parsed: Any = None
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    attempts: int = 0
    raw_text: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobReport:
    """Everything a job produced and spent.

    ``results`` holds one entry per request, in request order. ``usage`` counts the tokens this
    run paid for, per model (cached answers cost nothing and are not counted); ``cost_usd`` is
    the estimate from the price table. When the budget stopped the job, ``stopped_by_budget`` is
    true and the requests never sent are the ``not_run`` ones. Introduced in chapter 2.
    """

    results: list[TeacherResult]
    usage: dict[str, dict[str, int]]
    cost_usd: float
    budget_tokens: int
    budget_usd: float
    stopped_by_budget: bool
    http_requests: int
    retries: int
    wall_s: float
    endpoint: dict[str, Any] = field(default_factory=dict)
    concurrency: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(result.status for result in self.results)
        counts = {
            "total": len(self.results),
            **{status: tally.get(status, 0) for status in STATUSES},
        }
        counts["cached"] = sum(result.cached for result in self.results)
        return counts

    @property
    def tokens(self) -> int:
        return sum(m["prompt_tokens"] + m["completion_tokens"] for m in self.usage.values())

    @property
    def not_run(self) -> list[str]:
        return [result.id for result in self.results if result.status == NOT_RUN]

    @property
    def failed(self) -> list[TeacherResult]:
        return [result for result in self.results if result.status in (FAILED, MALFORMED)]

    def ok_results(self) -> list[TeacherResult]:
        return [result for result in self.results if result.ok]

    def summary(self) -> str:
        """One paragraph a chapter can print: what was done, what it cost, where it stopped."""
        c = self.counts
        lines = [
            f"{c['ok']} of {c['total']} requests answered ({c['cached']} from the cache), "
            f"{c['failed']} failed, {c['malformed']} malformed, {c['not_run']} not run; "
            f"{self.tokens:,} tokens this run (~${self.cost_usd:.4f}), "
            f"{self.http_requests} HTTP requests, {self.retries} retries, {self.wall_s:.1f} s."
        ]
        if self.concurrency.get("lowered"):
            lines.append(
                f"Concurrency went down from {self.concurrency['max']} to as few as "
                f"{self.concurrency['lowest']} requests in flight ({self.concurrency['lowered']} "
                "times) as answers came close to the timeout."
            )
        if self.stopped_by_budget:
            limits = []
            if self.budget_tokens:
                limits.append(f"{self.tokens:,} of {self.budget_tokens:,} tokens")
            if self.budget_usd:
                limits.append(f"${self.cost_usd:.4f} of ${self.budget_usd:.2f}")
            lines.append(
                f"Stopped by the budget ({', '.join(limits)} spent) after "
                f"{c['total'] - c['not_run']} of {c['total']} requests; "
                f"{c['not_run']} requests were not run."
            )
        return " ".join(lines)

    def to_dict(self, *, with_results: bool = False) -> dict[str, Any]:
        data = {
            "counts": self.counts,
            "usage": self.usage,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "budget_tokens": self.budget_tokens,
            "budget_usd": self.budget_usd,
            "stopped_by_budget": self.stopped_by_budget,
            "not_run": self.not_run,
            "http_requests": self.http_requests,
            "retries": self.retries,
            "wall_s": self.wall_s,
            "endpoint": self.endpoint,
            "concurrency": self.concurrency,
        }
        if with_results:
            data["results"] = [result.to_dict() for result in self.results]
        return data
