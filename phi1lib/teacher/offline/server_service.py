"""The offline teacher server's state and its error format, shared by all its routes.

:class:`TeacherService` holds the procedural teacher, the dice that inject faults and the
counters that ``/phi1/stats`` reports; :func:`openai_error` shapes every refusal the way OpenAI
does, so that any client reports it properly. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from typing import Any

from aiohttp import web

from phi1lib.teacher.offline.procedural import ChatPlan, ProceduralTeacher, RequestProblem
from phi1lib.teacher.offline.server_config import ServerConfig


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; raises a 400 :class:`RequestProblem` for one that is not JSON.

    A body nested too deeply for Python's parser (``[[[[...]]]]`` a hundred thousand levels
    deep) is bad input like any other, not an internal error.
    """
    try:
        return json.loads(await request.text())
    except UnicodeDecodeError:
        raise RequestProblem(400, "the request body is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise RequestProblem(400, f"the request body is not valid JSON ({error.msg})") from None
    except RecursionError:
        raise RequestProblem(400, "the request body is not valid JSON: nested too deeply") from None


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


def problem_error(problem) -> web.Response:
    """A ``RequestProblem`` raised while reading or answering a request, as OpenAI's error."""
    return openai_error(
        problem.status, problem.message, kind=problem.kind, param=problem.param, code=problem.code
    )


class TeacherService:
    """The server's state: the procedural teacher, the fault dice and the counters."""

    def __init__(self, config: ServerConfig, teacher: ProceduralTeacher | None = None):
        self.config = config
        self.teacher = teacher or ProceduralTeacher(config)
        self.dice = random.Random(config.fault_seed)
        self._slots = asyncio.Semaphore(config.slots) if config.slots else None
        self.counts: Counter[str] = Counter()
        self.requests_by_key: Counter[str] = Counter()  # every valid request, answered or not
        self.answered_by_key: Counter[str] = Counter()
        self.started = time.time()

    def slot(self) -> contextlib.AbstractAsyncContextManager:
        """Room to write one answer: with ``slots`` set, requests queue for it as they do in a
        server that generates one batch at a time (the client's timeout counts the wait)."""
        return self._slots if self._slots is not None else contextlib.nullcontext()

    def draw_fault(self) -> str | None:
        """One of rate_limit, server_error, drop, malformed, invalid, truncate, or None."""
        c = self.config
        roll = self.dice.random()
        for name, rate in (
            ("rate_limit", c.error_rate / 2),
            ("server_error", c.error_rate / 2),
            ("drop", c.drop_rate),
            ("malformed", c.malformed_rate),
            ("invalid", c.invalid_rate),
            ("truncate", c.truncate_rate),
        ):
            if roll < rate:
                return name
            roll -= rate
        return None

    def model_card(self) -> dict[str, Any]:
        """The ``/v1/models`` card: the same on every start of the same configuration.

        Clients key their caches by it, so it names what shapes the answers (the content
        module and the planted mistakes) and carries no start time: the procedural teacher has
        no training date, hence ``created`` 0.
        """
        return {
            "id": self.config.model,
            "object": "model",
            "created": 0,
            "owned_by": "phi1lib",
            "meta": {
                "content_module": self.config.content_module,
                "mistake_rate": self.config.mistake_rate,
            },
        }

    def answer(self, plan: ChatPlan, fault: str | None) -> dict[str, Any]:
        completion = self.teacher.complete(plan, fault)
        self.answered_by_key[plan.key] += 1
        self.counts["answered"] += 1
        return completion


TEACHER = web.AppKey("teacher", TeacherService)
