"""Where the teacher lives: a profile's ``[teacher]`` section turned into a usable endpoint.

``teacher.endpoint = "local"`` starts the book's offline teacher server in a subprocess on a free
port of 127.0.0.1, waits until it answers, and stops it when the ``with`` block ends. Any other
value is the base URL of an OpenAI-compatible API (OpenAI, Azure OpenAI's ``/openai/v1/``, vLLM,
Ollama, llama.cpp's server), with the key read from the environment variable the profile names.
Override single fields without editing files, e.g.
``PHI1_SET="teacher.endpoint=http://localhost:8000/v1;teacher.model=Qwen/Qwen2.5-7B-Instruct"``.
Introduced in chapter 2 and the appendix on teacher endpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from phi1lib.profiles import Profile
from phi1lib.teacher.budget import PriceTable
from phi1lib.teacher.offline.server_config import ServerConfig
from phi1lib.teacher.retry import BASE_DELAY_S, MAX_DELAY_S
from phi1lib.teacher.settings import TeacherSettings

LOCAL = "local"
LOCAL_API_KEY = "phi1-offline"
START_TIMEOUT_S = 60.0


class TeacherServerError(RuntimeError):
    """The offline teacher server did not start or answer."""


class EndpointError(ValueError):
    """A teacher endpoint that cannot be used as configured (no key, bad URL...)."""


def endpoint_kind(base_url: str) -> str:
    """``openai``, ``azure`` or ``openai-compatible`` (vLLM, Ollama, llama.cpp...)."""
    host = urlparse(base_url).hostname or ""
    if host == "api.openai.com":
        return "openai"
    if host.endswith(
        (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
    ):
        return "azure"
    return "openai-compatible"


@dataclass(frozen=True)
class TeacherEndpoint:
    """Everything the client needs to talk to one teacher, and how hard to try.

    Build one with :func:`teacher_endpoint` (from a profile) or directly, e.g.
    ``TeacherEndpoint(base_url="http://127.0.0.1:8000/v1", model="my-model")``.
    """

    base_url: str
    model: str
    api_key: str = LOCAL_API_KEY
    kind: str = "openai-compatible"
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 6
    retry_base_s: float = BASE_DELAY_S
    retry_cap_s: float = MAX_DELAY_S
    malformed_retries: int = 2
    budget_tokens: int = 0
    budget_usd: float = 0.0
    batch: bool = False
    batch_poll_s: float = 30.0
    prices: PriceTable = field(default_factory=PriceTable.load, repr=False)

    def __post_init__(self) -> None:
        if urlparse(self.base_url).scheme not in ("http", "https"):
            raise EndpointError(f"teacher base URL {self.base_url!r} is not an http(s) URL")
        if self.concurrency < 1:
            raise EndpointError(f"concurrency must be >= 1, got {self.concurrency}")

    def replace(self, **changes: Any) -> TeacherEndpoint:
        """A copy with some fields changed (``endpoint.replace(budget_tokens=10_000)``)."""
        return dataclasses.replace(self, **changes)

    def client(self) -> Any:
        """A fresh ``openai.AsyncOpenAI`` for this endpoint (retries are ours, not the SDK's).

        It sends through the SDK's aiohttp transport, which costs about a quarter less CPU per
        request than the default httpx one (``benchmarks/bench_teacher.py``).
        """
        import openai

        try:
            http_client = openai.DefaultAioHttpClient()  # the SDK's aiohttp transport: less CPU
        except (AttributeError, RuntimeError):  # an older SDK, or one without its aiohttp extra
            http_client = None
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            max_retries=0,
            timeout=self.timeout_s,
            http_client=http_client,
        )

    def describe(self) -> dict[str, Any]:
        """The endpoint as provenance records it (never the key)."""
        return {"kind": self.kind, "base_url": self.base_url, "model": self.model}

    @classmethod
    def from_profile(
        cls, profile: Profile, base_url: str | None = None, kind: str | None = None
    ) -> TeacherEndpoint:
        """The endpoint of the profile's ``[teacher]`` section (``base_url``: a running server)."""
        teacher = profile.teacher
        url = base_url or teacher.endpoint
        kind = kind or (LOCAL if url == LOCAL else endpoint_kind(url))
        if url == LOCAL:
            raise EndpointError(
                "a local endpoint needs the running server's URL (teacher_endpoint)"
            )
        return cls(
            base_url=url,
            model=teacher.model,
            api_key=_api_key(teacher, kind),
            kind=kind,
            concurrency=teacher.concurrency,
            timeout_s=teacher.timeout_s,
            max_retries=teacher.max_retries,
            malformed_retries=teacher.malformed_retries,
            budget_tokens=teacher.budget_tokens,
            budget_usd=teacher.budget_usd,
            batch=teacher.batch,
            batch_poll_s=teacher.batch_poll_s,
        )


def _api_key(teacher: TeacherSettings, kind: str) -> str:
    if kind == LOCAL:
        return LOCAL_API_KEY
    variable = teacher.api_key_env
    key = os.environ.get(variable)
    if key:
        return key
    if kind in ("openai", "azure"):
        raise EndpointError(
            f"the {kind} teacher needs an API key in ${variable} (profile field teacher.api_key_env)"
        )
    return "not-needed"  # vLLM, Ollama and llama.cpp accept any key unless started with one


class LocalTeacherServer:
    """The offline teacher in a subprocess: started on a free port, stopped on exit."""

    def __init__(self, config: ServerConfig | None = None, **changes: Any):
        self.config = dataclasses.replace(config or ServerConfig(), **changes)
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> LocalTeacherServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        command = [sys.executable, "-m", "phi1lib.teacher.offline", *self.config.to_args()]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: lines.put(self.process.stdout.readline()), daemon=True
        ).start()
        try:
            first = lines.get(timeout=START_TIMEOUT_S).strip()
        except queue.Empty:
            self.stop()
            raise TeacherServerError(
                f"the offline teacher printed nothing in {START_TIMEOUT_S}s"
            ) from None
        if not first.startswith("http"):
            code = self.process.wait(timeout=10)
            raise TeacherServerError(
                f"the offline teacher exited with code {code} before serving; see its stderr above"
            )
        self.base_url = first
        self.wait_healthy()
        return self.base_url

    def wait_healthy(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """Poll ``/v1/models`` until the server lists its model."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    return json.load(response)
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TeacherServerError(
                        f"the offline teacher at {self.base_url} does not answer: {error}"
                    ) from error
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def teacher_endpoint(profile: Profile, **changes: Any) -> Iterator[TeacherEndpoint]:
    """The profile's teacher, ready to use inside the ``with`` block (chapter 2).

    With ``teacher.endpoint = "local"`` this starts the offline server (with the profile's
    ``mistake_rate``, ``error_rate``, ``malformed_rate`` and ``latency_s``) and stops it
    afterwards; otherwise it only checks the configuration. ``changes`` override endpoint
    fields (``concurrency=64``).
    """
    if profile.teacher.endpoint != LOCAL:
        yield TeacherEndpoint.from_profile(profile).replace(**changes)
        return
    with LocalTeacherServer(ServerConfig.for_teacher(profile.teacher)) as server:
        yield TeacherEndpoint.from_profile(profile, base_url=server.base_url, kind=LOCAL).replace(
            **changes
        )
