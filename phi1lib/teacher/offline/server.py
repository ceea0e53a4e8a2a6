"""The offline teacher server: an OpenAI-compatible HTTP API on aiohttp.

Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``, the Batch
API's ``/v1/files`` and ``/v1/batches`` (see :mod:`phi1lib.teacher.offline.server_batch`), and two of its
own: ``GET /health`` and ``GET /phi1/stats`` (how many requests it saw, answered and refused,
and how many times it was asked and answered each request key). Anything it cannot serve gets an OpenAI-style
JSON error with a 4xx status; a bug inside becomes a 500 JSON error, never a crash. Being
asynchronous, it holds thousands of slow (``--latency``) requests at almost no cost.
Run it with ``phi1 teacher serve`` (or ``python -m phi1lib.teacher``); it prints its base URL
on the first line. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from phi1lib.teacher.offline.coverage import curriculum_gaps
from phi1lib.teacher.offline.procedural import ProceduralTeacher, RequestProblem
from phi1lib.teacher.offline.server_batch import add_batch_routes
from phi1lib.teacher.offline.server_config import CONTENT_MODULE, ServerConfig
from phi1lib.teacher.offline.server_service import (
    TEACHER,
    TeacherService,
    openai_error,
    problem_error,
    read_json,
)

log = logging.getLogger(__name__)


async def list_models(request: web.Request) -> web.Response:
    service = request.app[TEACHER]
    return web.json_response({"object": "list", "data": [service.model_card()]})


async def get_model(request: web.Request) -> web.Response:
    service = request.app[TEACHER]
    if request.match_info["model"] != service.config.model:
        return openai_error(
            404,
            f"The model `{request.match_info['model']}` does not exist.",
            param="model",
            code="model_not_found",
        )
    return web.json_response(service.model_card())


async def chat_completions(request: web.Request) -> web.StreamResponse:
    service = request.app[TEACHER]
    service.counts["chat_requests"] += 1
    try:
        body = await read_json(request)
    except RequestProblem as problem:
        service.counts["refused"] += 1
        return openai_error(problem.status, problem.message)
    try:
        plan = service.teacher.plan(body)
    except RequestProblem as problem:
        service.counts["refused"] += 1
        return problem_error(problem)
    service.requests_by_key[plan.key] += 1
    fault = service.draw_fault()
    config = service.config
    if fault == "rate_limit":
        service.counts["fault_rate_limit"] += 1
        wait = config.retry_after
        return openai_error(
            429,
            f"Rate limit reached (injected fault). Please try again in {wait:.2f}s.",
            kind="rate_limit_error",
            code="rate_limit_exceeded",
            headers={
                "retry-after": str(max(1, round(wait))),
                "retry-after-ms": str(int(wait * 1000)),
            },
        )
    async with service.slot():
        if config.latency:
            await asyncio.sleep(config.latency)
    if fault == "server_error":
        service.counts["fault_server_error"] += 1
        status = service.dice.choice((500, 503))
        return openai_error(
            status, "The server had an error (injected fault).", kind="server_error"
        )
    if fault == "drop":
        service.counts["fault_drop"] += 1
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more is written on a dropped connection
    if fault is not None:
        service.counts[f"fault_{fault}"] += 1
    try:
        completion = service.answer(plan, fault)
    except RequestProblem as problem:
        return problem_error(problem)
    return web.json_response(completion)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "model": request.app[TEACHER].config.model})


async def stats(request: web.Request) -> web.Response:
    service = request.app[TEACHER]
    return web.json_response(
        {
            "counts": dict(service.counts),
            "requests_by_key": dict(service.requests_by_key),
            "answered_by_key": dict(service.answered_by_key),
            "uptime_s": time.time() - service.started,
        }
    )


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure leaves as an OpenAI-style JSON error; nothing takes the server down."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        return openai_error(
            error.status, f"{error.reason}: {request.method} {request.path}", kind=kind
        )
    except asyncio.CancelledError:
        raise
    except Exception as error:  # a bug in the content writers must not take the server down
        log.exception("error while answering %s %s", request.method, request.path)
        return openai_error(500, f"internal error: {error!r}", kind="server_error")


def create_app(config: ServerConfig, teacher: ProceduralTeacher | None = None) -> web.Application:
    """The aiohttp application of the offline teacher (chapter 2 and the appendix)."""
    app = web.Application(middlewares=[errors_as_json], client_max_size=512 * 2**20)
    app[TEACHER] = TeacherService(config, teacher)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/health", health)
    app.router.add_get("/phi1/stats", stats)
    add_batch_routes(app)
    return app


async def serve(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM; print the base URL on the first line of stdout."""
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    listener = socket.create_server((config.host, config.port), backlog=1024)
    port = listener.getsockname()[1]  # the real port when asked for port 0
    await web.SockSite(runner, listener).start()
    print(f"http://{config.host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":  # Windows: Ctrl-C raises KeyboardInterrupt, terminate() kills
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m phi1lib.teacher.offline [flags]``: the same as ``phi1 teacher serve``."""
    parser = argparse.ArgumentParser(
        prog="phi1 teacher serve", description="Serve the offline procedural teacher."
    )
    ServerConfig.add_arguments(parser)
    return run_server(parser.parse_args(argv))


def run_server(args: argparse.Namespace) -> int:
    try:
        config = ServerConfig.from_args(args)
    except ValueError as error:
        print(f"phi1 teacher serve: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="teacher server: %(message)s")
    try:
        importlib.import_module(config.content_module)
    except ImportError as error:
        print(f"phi1 teacher serve: cannot import the content module: {error}", file=sys.stderr)
        return 2
    if config.content_module == CONTENT_MODULE:
        for gap in curriculum_gaps():
            logging.warning(
                "the curriculum asks for what the offline teacher cannot write: %s", gap
            )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
    return 0
