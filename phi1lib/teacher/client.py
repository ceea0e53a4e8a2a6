"""Run a list of teacher requests against an endpoint: the one call every stage makes.

``run_requests(endpoint, requests, cache_dir=...)`` first checks that the endpoint serves the
model (:mod:`phi1lib.teacher.served`: it fails at once, with the server's reason, when not),
answers what the cache already holds, sends the rest (through the chat endpoint, or through
the Batch API when ``endpoint.batch``), and returns a
:class:`~phi1lib.teacher.records.JobReport` with one result per request, in order. Run it
again after an interruption and it asks only for what is missing. A caller that can tell a
useless answer from a good one passes ``accept``: what it refuses is asked again (and a cached
answer it refuses is withdrawn), never kept as ``ok``. Introduced in chapter 2 and the
appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from phi1lib.teacher.endpoint import TeacherEndpoint
from phi1lib.teacher.job import Accept, TeacherJob
from phi1lib.teacher.records import JobReport, TeacherRequest
from phi1lib.teacher.served import check_served_model


async def run_requests_async(
    endpoint: TeacherEndpoint,
    requests: Sequence[TeacherRequest],
    cache_dir: Path | str | None = None,
    progress: bool = True,
    accept: Accept | None = None,
) -> JobReport:
    """The asynchronous form of :func:`run_requests`, for callers that have an event loop."""
    job = TeacherJob(endpoint, list(requests), cache_dir, progress, accept)
    if not job.requests:
        return job.report()
    client = endpoint.client()
    try:
        job.bind(await check_served_model(endpoint, client))
        await job.start_writer()
        try:
            pending = job.answer_from_cache()
            if pending and endpoint.batch:
                from phi1lib.teacher.batch import run_batches

                await run_batches(job, pending, client)
            elif pending:
                from phi1lib.teacher.online import run_online

                await run_online(job, pending, client)
        finally:
            await job.close_writer()
    finally:
        job.bar.close()
        await client.close()
    return job.report()


def run_requests(
    endpoint: TeacherEndpoint,
    requests: Sequence[TeacherRequest],
    cache_dir: Path | str | None = None,
    progress: bool = True,
    accept: Accept | None = None,
) -> JobReport:
    """Answer ``requests`` through ``endpoint``; cached answers are reused (chapter 2).

    Raises :class:`~phi1lib.teacher.served.TeacherUnavailable` before anything is sent when
    nothing answers at the endpoint, the key is refused, or the model is not served there.
    ``accept(result)`` raising ``ValueError`` refuses an answer (see the module doc).

    Works from plain scripts and from Jupyter, whose kernel already runs an event loop: there
    the job runs on its own loop in a worker thread. Interrupting it (Ctrl-C, or the kernel's
    stop button) cancels the requests in flight; every answer received so far is in the cache.
    """
    coroutine = run_requests_async(endpoint, requests, cache_dir, progress, accept)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return _run_in_worker_thread(coroutine)


def _run_in_worker_thread(coroutine: Coroutine[Any, Any, JobReport]) -> JobReport:
    loop = asyncio.new_event_loop()
    job = loop.create_task(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(loop.run_until_complete, job)
        try:
            return future.result()
        except KeyboardInterrupt:
            loop.call_soon_threadsafe(job.cancel)
            concurrent.futures.wait([future])
            raise
        finally:
            concurrent.futures.wait([future])
            loop.close()
