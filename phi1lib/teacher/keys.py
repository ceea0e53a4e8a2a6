"""The exact body sent to ``/v1/chat/completions``, the key that names it, and the cache key.

The request key is a hash of the whole body (model, messages, every sampling parameter, the
seed and the response format). The offline server hashes the body it receives with the same
function, which lets tests count at the server how many times each item was asked.

The cache key adds what the server says it serves under that model name (its ``/v1/models``
card: see :mod:`phi1lib.teacher.served`) and which answers the request accepts, so a cached
answer is reused only for exactly the same question put to the same model: a model replaced
behind the same name, with a new date or owner on its card, is asked afresh.
Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from phi1lib.teacher.records import TeacherRequest

# Fields that change how an answer is delivered, not what it is.
_DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})


def response_format(request: TeacherRequest) -> dict[str, Any] | None:
    """OpenAI's structured-output request for a JSON schema, or None for free text."""
    if request.json_schema is None:
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": request.template, "schema": request.json_schema, "strict": True},
    }


def chat_body(model: str, request: TeacherRequest) -> dict[str, Any]:
    """The JSON body of the chat-completions call for ``request``."""
    body: dict[str, Any] = {"model": model, "messages": request.messages, **request.params}
    structured = response_format(request)
    if structured is not None:
        body["response_format"] = structured
    return body


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_key(body: dict[str, Any]) -> str:
    """A stable hex digest of a chat-completions body (delivery-only fields left out)."""
    return _digest({k: v for k, v in body.items() if k not in _DELIVERY_FIELDS and v is not None})


def cache_key(body_key: str, served: dict[str, Any], request: TeacherRequest) -> str:
    """The cache's name for the answer to the body ``body_key`` names (its
    :func:`request_key`), from the model ``served`` describes."""
    accepts = "json-or-text" if request.text_fallback else "as-asked"
    return _digest({"request": body_key, "served": served, "accepts": accepts})
