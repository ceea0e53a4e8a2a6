"""Which failures are worth another try, and how long to wait before it.

Rate limits (429), server errors (5xx), timeouts and dropped connections are transient: the
client waits and tries again, doubling a random ("full jitter") wait each time so that many
workers do not retry in lockstep, and waits exactly as long as the server asks when it sends
``Retry-After`` (or OpenAI's ``retry-after-ms``). Anything else (a 400, a 401, a missing model)
will fail the same way again and is recorded at once.

What went wrong is read from the whole chain of causes, not from the SDK's class alone: the
SDK's aiohttp transport reports a refused connection and a dropped one as a timeout
(``APITimeoutError``), and its message for an error status keeps only OpenAI's
``error.message`` while servers such as ``transformers serve`` put their reason elsewhere in
the body. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Iterator

import openai

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BASE_DELAY_S = 0.5  # the first retry waits up to this long; each next one up to twice as long
MAX_DELAY_S = 8.0  # ...but never more than this (the openai SDK's own cap)
MAX_RETRY_AFTER_S = 120.0
MAX_BODY_CHARS = 400  # how much of an error body an error text quotes

# What kind of failure an exception is (``failure_kind``).
HTTP = "http"  # the server answered with an error status
TIMEOUT = "timeout"  # no answer within the client's timeout
REFUSED = "refused"  # nothing listens at the address
UNREACHABLE = "unreachable"  # the host could not be reached (DNS, routing, TLS...)
DISCONNECTED = "disconnected"  # the connection closed before an answer


def is_retryable(error: BaseException) -> bool:
    """True for rate limits, 5xx, timeouts and connection errors."""
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return isinstance(error, (openai.APIConnectionError, openai.APITimeoutError))


def retry_after_s(error: BaseException) -> float | None:
    """The wait the server asked for, from ``retry-after-ms`` or ``Retry-After``, if any."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms") is not None:
            return min(float(headers["retry-after-ms"]) / 1000.0, MAX_RETRY_AFTER_S)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return min(float(value), MAX_RETRY_AFTER_S)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value).timestamp()
            return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None


def backoff_s(
    attempt: int,
    error: BaseException | None = None,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
    asked = retry_after_s(error) if error is not None else None
    if asked is not None:
        return asked + random.uniform(0.0, 0.1 * asked + 0.01)
    return random.uniform(0.0, min(cap_s, base_s * 2**attempt))


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_kind(error: BaseException) -> str:
    """``http``, ``timeout``, ``refused``, ``unreachable``, ``disconnected`` or the class name.

    Read from the innermost causes: only a real timeout deserves to be called one (and to slow
    the client down), whatever class the transport wrapped it in.
    """
    if isinstance(error, openai.APIStatusError):
        return HTTP
    chain = list(_causes(error))
    if any(isinstance(cause, ConnectionRefusedError) for cause in chain):
        return REFUSED
    if any(isinstance(cause, TimeoutError) for cause in chain):
        return TIMEOUT
    if any(isinstance(cause, (ConnectionResetError, ConnectionAbortedError)) for cause in chain):
        return DISCONNECTED
    if any(isinstance(cause, OSError) for cause in chain[1:]):
        return UNREACHABLE
    if isinstance(error, openai.APIConnectionError):
        return DISCONNECTED
    return type(error).__name__


def _root_message(error: BaseException) -> str:
    messages = [str(cause) for cause in _causes(error) if str(cause)]
    return messages[-1] if messages else type(error).__name__


def body_text(body: object) -> str:
    """An error body as one line of at most ``MAX_BODY_CHARS`` characters."""
    if body is None:
        return ""
    if isinstance(body, dict):
        text = json.dumps(body, ensure_ascii=False, separators=(", ", ": "), default=str)
    else:
        text = " ".join(str(body).split())
    return text if len(text) <= MAX_BODY_CHARS else text[: MAX_BODY_CHARS - 3] + "..."


def describe(error: BaseException) -> str:
    """A one-line account of a failure, for the result's ``error`` field.

    An error status keeps the server's own explanation: OpenAI's ``error.message`` with its
    type and code, or the whole body when it has another shape (FastAPI's ``{"detail": ...}``,
    a plain ``Internal Server Error``). A connection error says what happened to the connection.
    """
    if isinstance(error, openai.APIStatusError):
        body = error.body
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            extra = [f"{name}={body[name]}" for name in ("type", "code", "param") if body.get(name)]
            detail = body["message"] + (f" ({', '.join(extra)})" if extra else "")
        else:
            detail = body_text(body) or error.message
        return f"HTTP {error.status_code}: {detail}"
    kind = failure_kind(error)
    request = getattr(error, "request", None)
    where = f" at {request.url.host}:{request.url.port}" if request is not None else ""
    if kind == REFUSED:
        return f"connection refused{where}: nothing is listening there (is the server running?)"
    if kind == TIMEOUT:
        return f"timed out{where}: no answer within the client's timeout"
    if kind == UNREACHABLE:
        return f"cannot connect{where}: {_root_message(error)}"
    if kind == DISCONNECTED:
        return f"connection lost{where}: {_root_message(error)}"
    return f"{type(error).__name__}: {error}"
