"""The bookkeeping of one teacher job, shared by the chat path and the Batch API path.

A job knows every request's body and key, answers what it can from the cache, lets identical
requests share one answer, checks each answer (the client's rule, then the caller's own
``accept``), builds the follow-up that asks again after a refused answer, turns answers into
results with provenance, writes each accepted answer to the cache as soon as it arrives
(grouping the disk flushes of answers that arrive together) and each refused one beside it for
a reader, keeps the progress bar, and assembles the :class:`JobReport`. Introduced in the
appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from phi1lib.teacher.answers import Answer, read_answer
from phi1lib.teacher.budget import BudgetGuard
from phi1lib.teacher.cache import MALFORMED as MALFORMED_LINE
from phi1lib.teacher.cache import ResponseCache
from phi1lib.teacher.endpoint import TeacherEndpoint
from phi1lib.teacher.keys import cache_key, chat_body, request_key
from phi1lib.teacher.records import (
    FAILED,
    MALFORMED,
    NOT_RUN,
    OK,
    JobReport,
    TeacherRequest,
    TeacherResult,
)

Accept = Callable[[TeacherResult], object]
"""A caller's own check of an answer: it raises ``ValueError`` (or a subclass, such as the
tasks' ``TeacherOutputError``) to refuse it; whatever it returns is ignored."""

QUOTED_ANSWER_CHARS = 2000  # how much of a refused answer a follow-up quotes back
SHOWN_ANSWER_CHARS = 120  # how much of it an error text shows
FOLLOW_UP = (
    "Your answer above could not be used: {problem}. Answer the task again, exactly in the "
    "form it asks for and with nothing else."
)


def follow_up_body(body: dict[str, Any], text: str | None, problem: str) -> dict[str, Any]:
    """The body that asks again after ``body`` got the refused answer ``text``.

    It is never the same body as before: at temperature 0 that would buy the same answer. The
    conversation grows by the answer and a message naming the problem with it, so the model
    sees each of its refused answers, and the seed (when there is one) moves on by one so that
    a sampling model draws afresh.
    """
    quoted = (text or "").strip()[:QUOTED_ANSWER_CHARS] or "(an empty answer)"
    messages = [
        *body["messages"],
        {"role": "assistant", "content": quoted},
        {"role": "user", "content": FOLLOW_UP.format(problem=problem.rstrip("."))},
    ]
    changed = {**body, "messages": messages}
    if isinstance(body.get("seed"), int):
        changed["seed"] = body["seed"] + 1
    return changed


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _usage(raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    get = raw.get if isinstance(raw, dict) else lambda name, default=0: getattr(raw, name, default)
    return {
        "prompt_tokens": int(get("prompt_tokens", 0) or 0),
        "completion_tokens": int(get("completion_tokens", 0) or 0),
    }


class TeacherJob:
    """One list of requests on its way through an endpoint."""

    def __init__(
        self,
        endpoint: TeacherEndpoint,
        requests: list[TeacherRequest],
        cache_dir: Path | str | None,
        progress: bool,
        accept: Accept | None = None,
    ):
        counts = Counter(request.id for request in requests)
        repeated = sorted(rid for rid, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"request ids must be unique; repeated: {repeated[:10]}")
        self.endpoint = endpoint
        self.requests = list(requests)
        self.accept = accept
        self.bodies = [chat_body(endpoint.model, request) for request in self.requests]
        self.request_keys = [request_key(body) for body in self.bodies]
        self.keys = list(self.request_keys)  # cache keys, once the served model is known
        self.served: dict[str, Any] = {}
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.guard = BudgetGuard(
            model=endpoint.model,
            prices=endpoint.prices,
            budget_tokens=endpoint.budget_tokens,
            budget_usd=endpoint.budget_usd,
            batch=endpoint.batch,
        )
        for index, body in enumerate(self.bodies):  # fail fast on an unbounded request
            self.guard.estimate(body, self.requests[index].id)
        self.results: list[TeacherResult | None] = [None] * len(self.requests)
        self.http_requests = 0
        self.retries = 0
        self.concurrency: dict[str, Any] = {}
        self.tally: Counter[str] = Counter()
        self.started = time.monotonic()
        self._writes: asyncio.Queue[dict[str, Any] | None] | None = None
        self._writer: asyncio.Task | None = None
        self.bar = tqdm(
            total=len(self.requests),
            desc=f"teacher {endpoint.model}",
            unit="req",
            file=sys.stderr,
            disable=not progress,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        self.leaders: dict[str, int] = {}
        self.followers: dict[str, list[int]] = {}
        self._group()

    def _group(self) -> None:
        self.leaders, self.followers = {}, {}
        for index, key in enumerate(self.keys):
            if key in self.leaders:
                self.followers.setdefault(key, []).append(index)
            else:
                self.leaders[key] = index

    def bind(self, served: Any) -> None:
        """Key the cache by what the endpoint serves (a :class:`~phi1lib.teacher.served.ServedModel`)."""
        self.served = served.describe()
        self.keys = [
            cache_key(body_key, served.identity, request)
            for body_key, request in zip(self.request_keys, self.requests, strict=True)
        ]
        self._group()
        self.http_requests += served.probe_requests
        if served.probe_usage:
            self.guard.record_spent(served.probe_usage)

    # ---- the queue of work -------------------------------------------------------------------

    def answer_from_cache(self) -> list[int]:
        """Fill the results the cache already holds; return the indices still to ask, in order.

        A cached answer that the caller's ``accept`` now refuses is withdrawn from the cache and
        asked again.
        """
        pending, revoked = [], []
        for key, index in self.leaders.items():
            record = self.cache.get(key) if self.cache is not None else None
            if record is None:
                pending.append(index)
                continue
            request = self.requests[index]
            result = TeacherResult(
                id=request.id,
                status=OK,
                text=record["text"],
                parsed=record.get("parsed"),
                usage=record.get("usage", {}),
                provenance=record.get("provenance", {}),
                cached=True,
                attempts=0,
            )
            problem = self._refusal(result)
            if problem is not None:
                revoked.append(ResponseCache.revocation(key, record, problem))
                pending.append(index)
                continue
            self.finish(index, result, store=False)
        if revoked:
            self.cache.append_many(revoked)
        return sorted(pending)

    # ---- checking an answer ------------------------------------------------------------------

    def _refusal(self, result: TeacherResult) -> str | None:
        if self.accept is None:
            return None
        try:
            self.accept(result)
        except ValueError as error:
            return f"refused by the caller: {error}"
        return None

    def read(
        self, index: int, content: str | None, finish_reason: str | None, usage: Any
    ) -> Answer:
        """The client's check of one answer, then the caller's ``accept``."""
        answer = read_answer(self.requests[index], content, finish_reason)
        if not answer.usable or self.accept is None:
            return answer
        candidate = TeacherResult(
            id=self.requests[index].id,
            status=OK,
            text=answer.text,
            parsed=answer.parsed,
            usage=_usage(usage),
            provenance=self.provenance(index),
        )
        problem = self._refusal(candidate)
        return answer if problem is None else Answer(answer.text, answer.parsed, problem)

    def follow_up(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        """The next body to send after ``body`` got the refused ``answer``."""
        return follow_up_body(body, answer.text, answer.problem or "")

    # ---- turning answers into results ----------------------------------------------------------

    def provenance(self, index: int, **details: Any) -> dict[str, Any]:
        request = self.requests[index]
        sampling = {k: v for k, v in request.params.items() if k != "seed"}
        return {
            "endpoint_kind": self.endpoint.kind,
            "base_url": self.endpoint.base_url,
            "model": self.endpoint.model,
            "template": request.template,
            "template_version": request.template_version,
            "constraints": dict(request.constraints),
            "seed": request.seed,
            "params": sampling,
            "request_key": self.request_keys[index],
            "cache_key": self.keys[index],
            "served": self.served.get("identity", {}),
            "time": _now(),
            **details,
        }

    def answered(
        self,
        index: int,
        answer: Answer,
        usage: Any,
        attempts: int,
        **details: Any,
    ) -> TeacherResult:
        """The result for an answer (usable or not) that the endpoint returned."""
        request = self.requests[index]
        error = answer.problem
        if error is not None:
            shown = (answer.text or "")[:SHOWN_ANSWER_CHARS]
            error = f"{error}; the answer began {shown!r}" if shown else error
        return TeacherResult(
            id=request.id,
            status=OK if answer.usable else MALFORMED,
            text=answer.text if answer.usable else None,
            parsed=answer.parsed if answer.usable else None,
            error=error,
            usage=_usage(usage),
            provenance=self.provenance(index, attempts=attempts, **details),
            attempts=attempts,
            raw_text=None if answer.usable else answer.text,
        )

    def failed(self, index: int, error: str, attempts: int, **details: Any) -> TeacherResult:
        return TeacherResult(
            id=self.requests[index].id,
            status=FAILED,
            error=error,
            provenance=self.provenance(index, attempts=attempts, **details),
            attempts=attempts,
        )

    def not_run(self, index: int) -> TeacherResult:
        return TeacherResult(
            id=self.requests[index].id,
            status=NOT_RUN,
            error="not run: the next request could have passed the budget",
            provenance=self.provenance(index, attempts=0),
        )

    def finish(self, index: int, result: TeacherResult, *, store: bool = True) -> None:
        """Record a leader's result, share it with identical requests, persist it if accepted."""
        self.results[index] = result
        key = self.keys[index]
        for other in self.followers.get(key, []):
            request = self.requests[other]
            shared = dataclasses.replace(
                result,
                id=request.id,
                cached=result.cached or result.ok,
                provenance={**result.provenance, "constraints": dict(request.constraints)},
            )
            self.results[other] = shared
        group = 1 + len(self.followers.get(key, []))
        self.tally[result.status] += group
        if result.cached:
            self.tally["cached"] += group
        elif result.ok:
            self.tally["cached"] += group - 1
        if store and result.ok and self._writes is not None:
            self._writes.put_nowait(
                {
                    "key": key,
                    "id": result.id,
                    "text": result.text,
                    "parsed": result.parsed,
                    "usage": result.usage,
                    "provenance": result.provenance,
                }
            )
        tokens = self.guard.spent_tokens
        self.bar.set_postfix_str(
            f"ok={self.tally[OK]} failed={self.tally[FAILED]} malformed={self.tally[MALFORMED]} "
            f"cached={self.tally['cached']} tokens={tokens:,}",
            refresh=False,
        )
        self.bar.update(group)

    def keep_refused(self, index: int, result: TeacherResult) -> None:
        """Write a refused answer (every one, re-asked or final) into the cache file, for a
        reader: it is never served."""
        if self._writes is None or result.raw_text is None:
            return
        self._writes.put_nowait(
            {
                "key": self.keys[index],
                "id": result.id,
                "status": MALFORMED_LINE,
                "problem": result.error,
                "text": result.raw_text,
                "usage": result.usage,
                "provenance": result.provenance,
            }
        )

    # ---- the cache writer --------------------------------------------------------------------

    async def start_writer(self) -> None:
        if self.cache is None:
            return
        self._writes = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        assert self._writes is not None and self.cache is not None
        done = False
        while not done:
            group = [await self._writes.get()]
            while not self._writes.empty():
                group.append(self._writes.get_nowait())
            done = None in group
            records = [record for record in group if record is not None]
            if records:
                await asyncio.to_thread(self.cache.append_many, records)

    async def close_writer(self) -> None:
        if self._writer is None or self._writes is None:
            return
        self._writes.put_nowait(None)
        await self._writer

    # ---- the report --------------------------------------------------------------------------

    def report(self) -> JobReport:
        for index, result in enumerate(self.results):
            if result is None:  # never reached: the budget stopped the job first
                self.results[index] = self.not_run(index)
        self.bar.close()
        return JobReport(
            results=[result for result in self.results if result is not None],
            usage=self.guard.usage,
            cost_usd=self.guard.spent_usd,
            budget_tokens=self.endpoint.budget_tokens,
            budget_usd=self.endpoint.budget_usd,
            stopped_by_budget=self.guard.stopped,
            http_requests=self.http_requests,
            retries=self.retries,
            wall_s=time.monotonic() - self.started,
            endpoint={**self.endpoint.describe(), "served": self.served},
            concurrency=self.concurrency,
        )
