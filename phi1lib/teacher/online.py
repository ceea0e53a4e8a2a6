"""The chat-completions path: N requests in flight, each retried until answered or given up.

Workers take requests in order from one queue, so at most ``endpoint.concurrency`` are in
flight. Each request first reserves its worst-case cost with the budget guard, then is sent
with the official ``openai`` client; transient failures are retried with backoff (see
:mod:`phi1lib.teacher.retry`), unusable answers are asked again up to
``endpoint.malformed_retries`` times. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import openai

from phi1lib.teacher.answers import Answer, read_answer
from phi1lib.teacher.job import TeacherJob
from phi1lib.teacher.records import TeacherResult
from phi1lib.teacher.retry import backoff_s, describe, is_retryable

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


async def ask(job: TeacherJob, client: Any, index: int) -> TeacherResult:
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
            try:
                completion = await _call(client, body)
                choice = completion["choices"][0]
                content = choice["message"].get("content")
                break
            except openai.APIError as error:
                if is_retryable(error) and errors < endpoint.max_retries:
                    errors += 1
                    job.retries += 1
                    wait = backoff_s(errors - 1, error, endpoint.retry_base_s, endpoint.retry_cap_s)
                    await asyncio.sleep(wait)
                    continue
                await job.guard.settle(reservation, None, billed=False)
                return job.failed(index, f"{describe(error)} (after {attempts} attempts)", attempts)
            except (AttributeError, LookupError, TypeError, ValueError) as error:
                await job.guard.settle(reservation, None, billed=False)
                return job.failed(index, f"unreadable response: {error!r}", attempts, via=VIA)
        usage = completion.get("usage") or None  # none reported: charged the worst case
        await job.guard.settle(reservation, usage)
        answer: Answer = read_answer(request, content, choice.get("finish_reason"))
        last = job.answered(index, answer, usage, attempts, **_details(completion))
        if answer.usable or malformed >= endpoint.malformed_retries:
            return last
        malformed += 1
        job.retries += 1


async def run_online(job: TeacherJob, pending: list[int]) -> None:
    """Resolve every pending request through the chat endpoint, ``concurrency`` at a time."""
    queue = deque(pending)
    client = job.endpoint.client()

    async def worker() -> None:
        while queue:
            index = queue.popleft()
            if job.guard.stopped:
                job.finish(index, job.not_run(index))
                continue
            job.finish(index, await ask(job, client, index))

    try:
        workers = min(job.endpoint.concurrency, len(queue))
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await client.close()
