"""The LLM teacher: one client for any OpenAI-compatible endpoint (and, apart, an offline stand-in).

The paper's data came from LLMs: GPT-4 judged the educational value of code, GPT-3.5 wrote the
textbooks and the exercises. Every chapter that needs a teacher goes through this package::

    from phi1lib.teacher import teacher_endpoint, run_requests, tasks

    with teacher_endpoint(profile) as endpoint:
        report = run_requests(endpoint, requests, cache_dir=path)

With the ``tiny`` profile the endpoint is the book's own offline, procedural teacher server, a
stand-in kept apart in :mod:`phi1lib.teacher.offline` (its settings: ``offline.ServerConfig``);
point the profile at OpenAI, Azure OpenAI, vLLM, Ollama or llama.cpp for a real one. What the
prompts ask for (topics, audiences, styles, exercise names) is synthesis data, the curriculum
(:mod:`phi1lib.synthesis.curriculum`), not something the teacher decides.
Introduced in chapter 2 (synthetic textbooks) and the appendix on teacher endpoints.
"""

from phi1lib.teacher import tasks
from phi1lib.teacher.budget import BudgetError, PriceTable
from phi1lib.teacher.client import run_requests, run_requests_async
from phi1lib.teacher.endpoint import (
    EndpointError,
    LocalTeacherServer,
    TeacherEndpoint,
    TeacherServerError,
    teacher_endpoint,
)
from phi1lib.teacher.records import JobReport, TeacherRequest, TeacherResult
from phi1lib.teacher.served import TeacherUnavailable

__all__ = [
    "BudgetError",
    "EndpointError",
    "JobReport",
    "LocalTeacherServer",
    "PriceTable",
    "TeacherEndpoint",
    "TeacherRequest",
    "TeacherResult",
    "TeacherServerError",
    "TeacherUnavailable",
    "run_requests",
    "run_requests_async",
    "tasks",
    "teacher_endpoint",
]
