"""The offline teacher server's state and its error format, shared by all its routes.

:class:`TeacherService` holds the procedural teacher, the dice that inject faults and the
counters that ``/phi1/stats`` reports; :func:`openai_error` shapes every refusal the way OpenAI
does, so that any client reports it properly. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from aiohttp import web

from phi1lib.teacher.procedural import ChatPlan, ProceduralTeacher
from phi1lib.teacher.server_config import ServerConfig


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


class TeacherService:
    """The server's state: the procedural teacher, the fault dice and the counters."""

    def __init__(self, config: ServerConfig, teacher: ProceduralTeacher | None = None):
        self.config = config
        self.teacher = teacher or ProceduralTeacher(config)
        self.dice = random.Random(config.fault_seed)
        self.counts: Counter[str] = Counter()
        self.requests_by_key: Counter[str] = Counter()  # every valid request, answered or not
        self.answered_by_key: Counter[str] = Counter()
        self.started = time.time()

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
        return {
            "id": self.config.model,
            "object": "model",
            "created": int(self.started),
            "owned_by": "phi1lib",
        }

    def answer(self, plan: ChatPlan, fault: str | None) -> dict[str, Any]:
        completion = self.teacher.complete(plan, fault)
        self.answered_by_key[plan.key] += 1
        self.counts["answered"] += 1
        return completion


TEACHER = web.AppKey("teacher", TeacherService)
