"""The offline teacher's "model": read the prompt contract, call the content writers, answer.

It is deterministic (the same body gives the same answer; the seed picks among variants) and
procedural: the words come from ``phi1lib.teacher.offline.content`` (templates and rules, no neural
network). It reads only the machine-readable parts of a prompt (:mod:`phi1lib.teacher.protocol`)
and answers in the form the task's template asks for. It cannot follow free-form instructions,
and its "knowledge" is whatever the content writers encode: it stands in for GPT-3.5/GPT-4 so
that every mechanism of the pipeline runs offline, not so that its data is as good.
Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import importlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import jsonschema

from phi1lib.teacher.answers import schema_validator
from phi1lib.teacher.keys import request_key
from phi1lib.teacher.offline.server_config import ServerConfig
from phi1lib.teacher.prompts import load_template
from phi1lib.teacher.protocol import TASK_PREFIX, PromptContractError, parse_prompt
from phi1lib.teacher.tasks import EXERCISE, EXERCISE_FIELDS, JUDGE, TEXTBOOK
from phi1lib.teacher.tokens import count_prompt_tokens, count_tokens, truncate_tokens

TASKS = (JUDGE, TEXTBOOK, EXERCISE)
JSON_TASKS = (JUDGE, EXERCISE)
ROLES = ("system", "developer", "user", "assistant")
CONTENT_FAULTS = ("malformed", "invalid", "truncate")


class RequestProblem(Exception):
    """A request the teacher cannot serve; becomes an OpenAI-style error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status,
            message,
            param,
            code,
            kind,
        )


@dataclass(frozen=True)
class ChatPlan:
    """A validated chat request: what to write, for whom, and within which limits."""

    key: str
    model: str
    task: str
    constraints: dict[str, str]
    code: str | None
    seed: int
    max_tokens: int | None
    schema: dict[str, Any] | None
    messages: list[dict[str, str]]


def _text_of(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" for part in content
    ):
        return "".join(str(part.get("text", "")) for part in content)
    raise RequestProblem(
        400, f"messages[{index}].content must be text", param=f"messages[{index}].content"
    )


class ProceduralTeacher:
    """Turns chat-completion bodies into chat-completion answers, offline."""

    def __init__(self, config: ServerConfig, engine: ModuleType | None = None):
        self.config = config
        self.engine = engine or importlib.import_module(config.content_module)
        self.fingerprint = f"fp_phi1_{config.content_module.rsplit('.', 1)[-1]}"

    # ---- reading a request ---------------------------------------------------------------------

    def plan(self, body: Any) -> ChatPlan:
        """Check a chat-completions body; raise RequestProblem saying what is wrong."""
        if not isinstance(body, dict):
            raise RequestProblem(400, "the request body must be a JSON object")
        model = body.get("model")
        if model != self.config.model:
            raise RequestProblem(
                404,
                f"The model `{model}` does not exist; this server serves `{self.config.model}`.",
                param="model",
                code="model_not_found",
            )
        if body.get("stream"):
            raise RequestProblem(
                400, "streaming is not supported by the offline teacher", param="stream"
            )
        if body.get("n", 1) != 1:
            raise RequestProblem(400, "the offline teacher answers with n=1 only", param="n")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise RequestProblem(400, "messages must be a non-empty list", param="messages")
        messages = []
        for index, message in enumerate(raw_messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise RequestProblem(
                    400, f"messages[{index}] needs a role among {ROLES}", param=f"messages[{index}]"
                )
            messages.append(
                {"role": message["role"], "content": _text_of(message.get("content"), index)}
            )
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users:
            raise RequestProblem(400, "there is no user message", param="messages")
        # The task is the last user message that states one: a follow-up after a refused
        # answer ("that could not be used, answer again") asks for the same task.
        tasked = [
            text
            for text in users
            if any(line.startswith(TASK_PREFIX) for line in text.splitlines())
        ]
        try:
            prompt = parse_prompt(tasked[-1] if tasked else users[-1])
        except PromptContractError as error:
            raise RequestProblem(400, str(error), param="messages") from None
        if prompt.task not in TASKS:
            raise RequestProblem(
                400,
                f"unknown task {prompt.task!r}; the offline teacher knows {TASKS}",
                param="messages",
            )
        template = load_template(prompt.task)
        missing = [k for k in template.required_constraints if k not in prompt.constraints]
        if missing:
            raise RequestProblem(
                400, f"task {prompt.task!r} needs the constraints {missing}", param="messages"
            )
        if template.needs_code and prompt.code is None:
            raise RequestProblem(
                400, f"task {prompt.task!r} needs a <code> block", param="messages"
            )
        return ChatPlan(
            key=request_key(body),
            model=model,
            task=prompt.task,
            constraints=prompt.constraints,
            code=prompt.code,
            seed=self._seed(body),
            max_tokens=self._max_tokens(body),
            schema=self._schema(body, prompt.task),
            messages=messages,
        )

    @staticmethod
    def _seed(body: dict[str, Any]) -> int:
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestProblem(400, f"seed must be an integer, got {seed!r}", param="seed")
        return seed

    @staticmethod
    def _max_tokens(body: dict[str, Any]) -> int | None:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise RequestProblem(
                400, f"max_tokens must be a positive integer, got {limit!r}", param="max_tokens"
            )
        return limit

    @staticmethod
    def _schema(body: dict[str, Any], task: str) -> dict[str, Any] | None:
        form = body.get("response_format")
        if form is None:
            return None
        kind = form.get("type") if isinstance(form, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise RequestProblem(
                400, f"unsupported response_format {form!r}", param="response_format"
            )
        if kind != "text" and task not in JSON_TASKS:
            raise RequestProblem(
                400,
                f"{task} answers are markdown; ask without a JSON response_format",
                param="response_format",
            )
        if kind != "json_schema":
            return None
        schema = (form.get("json_schema") or {}).get("schema")
        try:
            schema_validator(json.dumps(schema, sort_keys=True))
        except jsonschema.SchemaError as error:
            raise RequestProblem(
                400, f"response_format schema is invalid: {error.message}", param="response_format"
            ) from None
        return schema

    # ---- writing an answer ---------------------------------------------------------------------

    def _draft(self, plan: ChatPlan) -> str | dict[str, Any]:
        """The content writers' answer: markdown for a textbook, a dict for JSON tasks."""
        if plan.task == TEXTBOOK:
            return self.engine.write_textbook_section(dict(plan.constraints), plan.seed)
        if plan.task == JUDGE:
            verdict = self.engine.judge_code(plan.code)
            return {"reason": str(verdict["reason"]), "score": int(verdict["score"])}
        exercise = self.engine.write_exercise(dict(plan.constraints), plan.seed)
        mistakes = random.Random(f"mistake:{plan.key}")
        if mistakes.random() < self.config.mistake_rate:
            exercise = self.engine.inject_mistake(exercise, plan.seed)
        return {name: exercise[name] for name in EXERCISE_FIELDS}

    def write(self, plan: ChatPlan) -> str:
        """The answer's text; a request the content writers reject becomes a 400 error."""
        try:
            answer = self._draft(plan)
        except ValueError as error:  # e.g. constraints the writers cannot satisfy
            raise RequestProblem(
                400,
                f"the offline teacher cannot answer this request: {error}",
                code="content_error",
            ) from None
        if isinstance(answer, str):
            return answer
        if plan.schema is not None:
            validator = schema_validator(json.dumps(plan.schema, sort_keys=True))
            errors = list(validator.iter_errors(answer))
            if errors:
                raise RequestProblem(
                    500,
                    f"the procedural teacher wrote an answer outside the requested schema: {errors[0].message}",
                    kind="server_error",
                )
        return json.dumps(answer, ensure_ascii=False)

    @staticmethod
    def spoil(text: str, fault: str, task: str) -> tuple[str, str]:
        """Damage an answer the way real models sometimes do; returns (text, finish_reason)."""
        if fault == "truncate":
            return truncate_tokens(text, max(count_tokens(text) // 2, 1)), "length"
        if task in JSON_TASKS and fault == "malformed":
            return "Here is the JSON you asked for:\n" + text.rstrip("}") + ",\n", "stop"
        if task in JSON_TASKS and fault == "invalid":
            answer = json.loads(text)
            if task == JUDGE:
                answer["score"] = str(answer["score"]) + " out of 5"
            else:
                answer.pop("tests", None)
            return json.dumps(answer), "stop"
        return text, "stop"

    def complete(self, plan: ChatPlan, fault: str | None = None) -> dict[str, Any]:
        """A full ``chat.completion`` object for the plan (``fault``: a content fault to inject)."""
        text = self.write(plan)
        finish_reason = "stop"
        if fault in CONTENT_FAULTS:
            text, finish_reason = self.spoil(text, fault, plan.task)
        completion_tokens = count_tokens(text)
        if plan.max_tokens is not None and completion_tokens > plan.max_tokens:
            text, finish_reason = truncate_tokens(text, plan.max_tokens), "length"
            completion_tokens = plan.max_tokens
        prompt_tokens = count_prompt_tokens(plan.messages)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": plan.model,
            "system_fingerprint": self.fingerprint,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
