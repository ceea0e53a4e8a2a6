"""Before a job sends anything: does the endpoint serve the model, and what exactly is it?

An OpenAI-compatible server that is asked for a model it does not have may answer with a 500
(``transformers serve`` does, after trying to download it), which the client would take for a
passing fault and retry for minutes. So every job first reads ``GET /v1/models``:

* the model is listed: its card (id, date, owner, and the ``root``/``parent``/``meta`` fields
  that vLLM and llama.cpp add) says what is served under that name, and goes into every cache
  key, so a model replaced behind the same name is asked afresh;
* it is not listed (servers that load models on demand, Azure deployments) or the server has
  no list: one answer of one token is asked for; when that fails, the job stops before it
  starts, with the server's own explanation;
* nothing listens there, or the key is refused: the job stops at once, saying so.

A ``created`` date within ten minutes of now is left out of the identity: vLLM and llama.cpp
stamp their list with the time of the call, which would make every run a new model.
Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from phi1lib.teacher.retry import (
    HTTP,
    REFUSED,
    backoff_s,
    describe,
    failure_kind,
    is_retryable,
)

IDENTITY_FIELDS = ("id", "created", "owned_by", "root", "parent", "meta")
STAMPED_WITHIN_S = (
    600.0  # a `created` this close to now is the time of the listing, not the model's
)
NO_LIST_STATUS = frozenset({404, 405, 501})  # the server has no model list
SHOWN_MODELS = 8  # how many listed models an error message names
PROBE_MESSAGES = [{"role": "user", "content": "Reply with the word OK."}]
PREFLIGHT_RETRIES = 2  # rate limits and 503s at the first contact: tried this often more


class TeacherUnavailable(RuntimeError):
    """The endpoint cannot answer this job at all: nothing listens, the key is refused, or the
    model is not served. Raised before any request of the job is sent."""


@dataclass(frozen=True)
class ServedModel:
    """What the endpoint serves under the configured model name, as far as it tells."""

    model: str
    identity: dict[str, Any]
    listed: bool
    probe_usage: dict[str, int] = field(default_factory=dict)
    probe_requests: int = 0

    def describe(self) -> dict[str, Any]:
        return {"listed": self.listed, "identity": self.identity, "probed": self.probe_requests}


def identity_of(card: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The fields of a ``/v1/models`` card that name what is served (see the module doc)."""
    now = time.time() if now is None else now
    identity = {name: card[name] for name in IDENTITY_FIELDS if card.get(name) is not None}
    created = identity.get("created")
    if isinstance(created, (int, float)) and abs(now - created) < STAMPED_WITHIN_S:
        del identity["created"]
    return identity


async def _ask(endpoint: Any, call: Any, what: str) -> Any:
    """One preflight call, retried only for rate limits and unavailability (not for a 500)."""
    for attempt in range(PREFLIGHT_RETRIES + 1):
        try:
            return await call()
        except openai.APIError as error:
            status = getattr(error, "status_code", None)
            if failure_kind(error) == REFUSED:
                raise TeacherUnavailable(
                    f"the teacher at {endpoint.base_url} cannot be reached: {describe(error)}"
                ) from None
            if status in (401, 403):
                raise TeacherUnavailable(
                    f"the teacher at {endpoint.base_url} refused the API key ({what}): "
                    f"{describe(error)}"
                ) from None
            transient = status in (429, 503) or (status is None and is_retryable(error))
            if not transient or attempt == PREFLIGHT_RETRIES:
                raise
            await asyncio.sleep(backoff_s(attempt, error, endpoint.retry_base_s, 2.0))
    raise AssertionError("unreachable")


async def list_models(endpoint: Any, client: Any) -> list[dict[str, Any]] | None:
    """The cards of ``GET /v1/models``, or None for a server without a usable list."""
    try:
        listing = await _ask(
            endpoint, lambda: client.get("/models", cast_to=object), "GET /v1/models"
        )
    except openai.APIStatusError as error:
        if error.status_code in NO_LIST_STATUS or 400 <= error.status_code < 500:
            return None
        raise TeacherUnavailable(
            f"the teacher at {endpoint.base_url} fails to list its models: {describe(error)}"
        ) from None
    except openai.APIError as error:
        raise TeacherUnavailable(
            f"the teacher at {endpoint.base_url} cannot be reached: {describe(error)}"
        ) from None
    cards = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(cards, list):
        return None
    return [card for card in cards if isinstance(card, dict) and isinstance(card.get("id"), str)]


async def _probe(endpoint: Any, client: Any, listing: list[dict[str, Any]] | None) -> dict:
    body = {"model": endpoint.model, "messages": PROBE_MESSAGES, "max_tokens": 1}
    try:
        return await _ask(
            endpoint,
            lambda: client.post("/chat/completions", cast_to=object, body=body),
            "a one-token test request",
        )
    except openai.APIError as error:
        if listing is None:
            known = "the server lists no models"
        else:
            names = [card["id"] for card in listing]
            shown = ", ".join(names[:SHOWN_MODELS]) + (", ..." if len(names) > SHOWN_MODELS else "")
            known = f"/v1/models lists {len(names)} model(s): {shown or 'none'}"
        hint = " (a 500 here is how some servers say the model does not exist)"
        raise TeacherUnavailable(
            f"the teacher at {endpoint.base_url} does not serve model {endpoint.model!r}: "
            f"{known}, and a one-token test request failed with {describe(error)}"
            f"{hint if failure_kind(error) == HTTP and error.status_code >= 500 else ''}. "
            "Check teacher.model (and teacher.endpoint)."
        ) from None


def _usage(completion: Any) -> dict[str, int]:
    usage = completion.get("usage") if isinstance(completion, dict) else None
    if not isinstance(usage, dict):
        return {}
    return {
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
    }


async def check_served_model(endpoint: Any, client: Any) -> ServedModel:
    """What ``endpoint`` serves as ``endpoint.model``; raises :class:`TeacherUnavailable`."""
    listing = await list_models(endpoint, client)
    card = _card(listing, endpoint.model)
    if card is not None:
        return ServedModel(endpoint.model, identity_of(card), listed=True)
    completion = await _probe(endpoint, client, listing)
    if listing is not None:  # a server that loads on demand lists the model once it is loaded
        card = _card(await list_models(endpoint, client), endpoint.model)
    identity = identity_of(card) if card is not None else {"id": endpoint.model}
    return ServedModel(
        endpoint.model,
        identity,
        listed=card is not None,
        probe_usage=_usage(completion),
        probe_requests=1,
    )


def _card(listing: list[dict[str, Any]] | None, model: str) -> dict[str, Any] | None:
    return next((card for card in listing or [] if card["id"] == model), None)
