"""The offline teacher server's settings, shared by ``phi1 teacher serve`` and the client.

Kept apart from the server itself so that starting a server (a subprocess) does not import the
web framework into the caller. The fault knobs exist for tests and demonstrations: they make
the offline teacher misbehave the way real endpoints do (rate limits, 5xx, dropped connections,
slow answers, broken or truncated JSON). Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any

from phi1lib.teacher.settings import TeacherSettings

LOCAL_MODEL = "phi1-procedural-teacher"
CONTENT_MODULE = "phi1lib.teacher.offline.content"


@dataclass(frozen=True)
class ServerConfig:
    """How the offline teacher listens, answers and misbehaves."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; the chosen one is printed on the first line
    model: str = LOCAL_MODEL
    latency: float = 0.0  # seconds added to every chat answer
    slots: int = 0  # answers written at once (0: any number); the rest wait their turn
    error_rate: float = 0.0  # fraction answered 429 (with Retry-After) or 500/503
    drop_rate: float = 0.0  # fraction whose connection is closed without an answer
    malformed_rate: float = 0.0  # fraction of JSON answers with broken JSON syntax
    invalid_rate: float = 0.0  # fraction of JSON answers that break the schema
    truncate_rate: float = 0.0  # fraction of answers cut short (finish_reason "length")
    mistake_rate: float = 0.0  # fraction of exercises whose solution carries a plausible bug
    retry_after: float = 0.2  # seconds a 429 asks the client to wait
    fault_seed: int = 0
    content_module: str = CONTENT_MODULE  # the module that writes the answers

    def __post_init__(self) -> None:
        rates = ("error_rate", "drop_rate", "malformed_rate", "invalid_rate", "truncate_rate")
        for name in (*rates, "mistake_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if sum(getattr(self, name) for name in rates) > 1.0:
            raise ValueError(f"the fault rates {rates} must add up to at most 1")
        if self.latency < 0 or self.retry_after < 0:
            raise ValueError("latency and retry_after must be >= 0")
        if self.slots < 0:
            raise ValueError(f"slots must be >= 0, got {self.slots}")

    def to_args(self) -> list[str]:
        """The ``phi1 teacher serve`` flags that reproduce this configuration."""
        args: list[str] = []
        for item in fields(self):
            args += [f"--{item.name.replace('_', '-')}", str(getattr(self, item.name))]
        return args

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        helps = {
            "port": "port to listen on (0: a free one)",
            "latency": "seconds added to every chat answer",
            "slots": "answers written at once, as a one-GPU server (0: any number)",
            "error_rate": "fraction of requests answered 429 (with Retry-After) or 500/503",
            "drop_rate": "fraction of requests whose connection is dropped",
            "malformed_rate": "fraction of JSON answers with broken syntax",
            "invalid_rate": "fraction of JSON answers that break the schema",
            "truncate_rate": "fraction of answers cut short (finish_reason=length)",
            "mistake_rate": "fraction of exercises whose solution has a plausible bug",
            "retry_after": "seconds a 429 asks the client to wait",
            "content_module": "module with write_textbook_section, write_exercise, judge_code",
        }
        for item in fields(cls):
            parser.add_argument(
                f"--{item.name.replace('_', '-')}",
                type=type(item.default),
                default=item.default,
                help=helps.get(item.name),
            )

    @classmethod
    def from_args(cls, namespace: argparse.Namespace) -> ServerConfig:
        return cls(**{item.name: getattr(namespace, item.name) for item in fields(cls)})

    @classmethod
    def for_teacher(cls, teacher: TeacherSettings, **changes: Any) -> ServerConfig:
        """The server a profile's ``[teacher]`` section asks for: its model, mistakes and
        faults; the fault knobs the profile does not name stay off."""
        values = {
            "model": teacher.model,
            "latency": teacher.latency_s,
            "error_rate": teacher.error_rate,
            "malformed_rate": teacher.malformed_rate,
            "mistake_rate": teacher.mistake_rate,
        }
        return cls(**{**values, **changes})
