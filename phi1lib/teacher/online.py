"""The chat-completions path: N requests in flight, each retried until answered or given up.

Workers take requests in order from one queue; an adaptive gate keeps as many in flight as
the server answers well within the timeout, never more than ``endpoint.concurrency`` (see
:mod:`phi1lib.teacher.pacing`). Each request first reserves its worst-case cost with the
budget guard, then is sent with the official ``openai`` client; transient failures are retried
with backoff (see :mod:`phi1lib.teacher.retry`), unusable answers are asked again up to
``endpoint.malformed_retries`` times, each time with a follow-up that quotes the problem.
Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import openai

from phi1lib.teacher.answers import Answer
from phi1lib.teacher.job import TeacherJob
from phi1lib.teacher.pacing import ANSWER, ERROR, TIMEOUT, AdaptiveLimit
from phi1lib.teacher.records import TeacherResult
from phi1lib.teacher.retry import TIMEOUT as TIMED_OUT
from phi1lib.teacher.retry import backoff_s, describe, failure_kind, is_retryable

VIA = "chat.completions"


async def _call(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """POST the body exactly as built (and keyed) through the SDK; the answer as a plain dict.

    ``client.post`` is the SDK's documented way to send a request it does not need to type:
    authentication, timeouts and error classes are the SDK's, while the body is sent byte for
    byte as :func:`~phi1lib.teacher.keys.chat_body` made it, and the answer is read as the same
    dict the Batch API path reads. Skipping the typed parameters and response objects of
    ``chat.completions.create`` takes about a third off the client's CPU time per request,
    which is what lets one process keep hundreds of requests in flight.
    """
    return await client.post("/chat/completions", cast_to=object, body=body)


def _details(completion: dict[str, Any]) -> dict[str, Any]:
    return {
        "via": VIA,
        "response_model": completion.get("model"),
        "completion_id": completion.get("id"),
        "system_fingerprint": completion.get("system_fingerprint"),
        "finish_reason": completion["choices"][0].get("finish_reason"),
    }


def _failure(error: openai.APIError, attempts: int, gate: AdaptiveLimit, timeout_s: float) -> str:
    text = f"{describe(error)} (after {attempts} attempts)"
    if failure_kind(error) == TIMED_OUT:
        text += (
            f"; the timeout is {timeout_s:g} s with {gate.width} request(s) let in flight (a "
            "server that answers one request at a time counts its queue in it): raise "
            "teacher.timeout_s if one answer alone can take that long"
        )
    return text


async def ask(job: TeacherJob, client: Any, index: int, gate: AdaptiveLimit) -> TeacherResult:
    """Ask one request until it is answered, fails for good, or the budget says stop."""
    request, body = job.requests[index], job.bodies[index]
    endpoint = job.endpoint
    attempts = errors = malformed = 0
    last: TeacherResult | None = None
    while True:
        reservation = await job.guard.reserve(job.guard.estimate(body, request.id))
        if reservation is None:
            if last is None:
                return job.not_run(index)
            last.error = f"{last.error}; the budget left no room to ask again"
            return last
        while True:
            attempts += 1
            job.http_requests += 1
            ticket = await gate.acquire()
            try:
                completion = await _call(client, body)
                choice = completion["choices"][0]
                content = choice["message"].get("content")
            except openai.APIError as error:
                timed_out = failure_kind(error) == TIMED_OUT
                await gate.release(ticket, TIMEOUT if timed_out else ERROR)
                if is_retryable(error) and errors < endpoint.max_retries:
                    errors += 1
                    job.retries += 1
                    wait = backoff_s(errors - 1, error, endpoint.retry_base_s, endpoint.retry_cap_s)
                    await asyncio.sleep(wait)
                    continue
                await job.guard.settle(reservation, None, billed=False)
                message = _failure(error, attempts, gate, endpoint.timeout_s)
                return job.failed(index, message, attempts)
            except (AttributeError, LookupError, TypeError, ValueError) as error:
                await gate.release(ticket, ERROR)
                await job.guard.settle(reservation, None, billed=False)
                return job.failed(index, f"unreadable response: {error!r}", attempts, via=VIA)
            await gate.release(ticket, ANSWER)
            break
        usage = completion.get("usage") or None  # none reported: charged the worst case
        await job.guard.settle(reservation, usage)
        answer: Answer = job.read(index, content, choice.get("finish_reason"), usage)
        last = job.answered(
            index, answer, usage, attempts, **_details(completion), reasks=malformed
        )
        if answer.usable:
            return last
        job.keep_refused(index, last)
        if malformed >= endpoint.malformed_retries:
            return last
        malformed += 1
        job.retries += 1
        body = job.follow_up(body, answer)


async def run_online(job: TeacherJob, pending: list[int], client: Any) -> None:
    """Resolve every pending request through the chat endpoint, as many at a time as the
    adaptive gate lets in (at most ``concurrency``)."""
    queue = deque(pending)
    gate = AdaptiveLimit(job.endpoint.concurrency, job.endpoint.timeout_s)

    async def worker() -> None:
        while queue:
            index = queue.popleft()
            if job.guard.stopped:
                job.finish(index, job.not_run(index))
                continue
            job.finish(index, await ask(job, client, index, gate))

    try:
        workers = min(job.endpoint.concurrency, len(queue))
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        job.concurrency = gate.summary()
