"""The profile's ``[teacher]`` section: which teacher answers, how hard the client tries, what
it may spend, and how the offline stand-in misbehaves. The meaning of each value is written
beside it in ``profiles.toml``. Introduced in chapter 2 and the appendix on teacher endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TeacherSettings:
    """Endpoint and model, the client's retries and budgets, the offline server's faults."""

    endpoint: str  # "local" (the offline teacher) or the base URL of an OpenAI-compatible API
    model: str
    api_key_env: str
    concurrency: int
    max_retries: int
    timeout_s: float
    budget_tokens: int
    budget_usd: float
    malformed_retries: int
    batch: bool
    batch_poll_s: float
    mistake_rate: float  # offline teacher only, as the three below
    error_rate: float
    malformed_rate: float
    latency_s: float
