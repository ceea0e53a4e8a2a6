"""The Batch API, minimally: ``/v1/files`` and ``/v1/batches`` as OpenAI serves them.

Enough of the real protocol for the client's paper-scale path to run end to end offline: upload
a JSONL input file (``purpose=batch``), create a batch over it, poll it, download the output
and error files. Input lines are validated like OpenAI does (a bad line fails the whole batch
with per-line errors); each request is answered by the same procedural teacher as the chat
route, with the same content faults; injected rate limits and server errors become failed lines
in the error file. Files and batches live in memory for the server's lifetime. Introduced in
the appendix on teacher endpoints.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from phi1lib.teacher.offline.procedural import RequestProblem
from phi1lib.teacher.offline.server_service import TEACHER, openai_error, read_json

CHAT_URL = "/v1/chat/completions"
PURPOSES = ("batch", "batch_output", "fine-tune", "assistants", "user_data", "vision", "evals")
STORE = web.AppKey("batch_store", "BatchStore")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class BatchStore:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task] = field(default_factory=set)

    def add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        meta = {
            "id": _new_id("file"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[meta["id"]] = meta
        self.contents[meta["id"]] = data
        return meta


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    return openai_error(status, message, param=param)


async def create_file(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if not request.content_type.startswith("multipart/"):
        return _error(400, "upload files as multipart/form-data with fields file and purpose")
    try:
        form = await request.post()
    except ValueError as error:  # no boundary where the header says, a part without a name
        return _error(400, f"the multipart body cannot be read ({error})")
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, web.FileField):
        return _error(400, "missing the multipart field 'file'", param="file")
    if purpose not in PURPOSES:
        return _error(400, f"purpose must be one of {PURPOSES}, got {purpose!r}", param="purpose")
    meta = store.add_file(upload.file.read(), upload.filename or "upload.jsonl", str(purpose))
    return web.json_response(meta)


def _file_or_404(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    store = request.app[STORE]
    file_id = request.match_info["file_id"]
    if file_id not in store.files:
        return None, _error(404, f"No such File object: {file_id}", param="file_id")
    return store.files[file_id], None


async def get_file(request: web.Request) -> web.Response:
    meta, problem = _file_or_404(request)
    return problem or web.json_response(meta)


async def file_content(request: web.Request) -> web.Response:
    meta, problem = _file_or_404(request)
    if problem is not None:
        return problem
    data = request.app[STORE].contents[meta["id"]]
    return web.Response(body=data, content_type="application/octet-stream")


def _parse_input(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input lines, or the problems that fail the batch (as OpenAI reports them)."""
    lines, problems, seen = [], [], set()
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as error:
            problems.append({"line": number, "message": f"invalid JSON: {error.msg}"})
            continue
        except RecursionError:
            problems.append({"line": number, "message": "invalid JSON: nested too deeply"})
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            problems.append({"line": number, "message": "each line needs a string custom_id"})
        elif line["custom_id"] in seen:
            problems.append(
                {"line": number, "message": f"duplicate custom_id {line['custom_id']!r}"}
            )
        elif line.get("method") != "POST" or line.get("url") != CHAT_URL:
            problems.append({"line": number, "message": f"method must be POST and url {CHAT_URL}"})
        elif not isinstance(line.get("body"), dict):
            problems.append({"line": number, "message": "body must be a JSON object"})
        else:
            seen.add(line["custom_id"])
            lines.append(line)
    if not lines and not problems:
        problems.append({"line": None, "message": "the input file has no requests"})
    return lines, problems


def _result_line(custom_id: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _new_id("batch_req"),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": _new_id("req"), "body": body},
        "error": None,
    }


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def _process(app: web.Application, batch: dict[str, Any]) -> None:
    store, service = app[STORE], app[TEACHER]
    lines, problems = _parse_input(store.contents[batch["input_file_id"]])
    now = int(time.time())
    if problems:
        batch.update(status="failed", failed_at=now)
        batch["errors"] = {
            "object": "list",
            "data": [
                {
                    "code": "invalid_request",
                    "message": p["message"],
                    "param": None,
                    "line": p["line"],
                }
                for p in problems
            ],
        }
        return
    batch.update(status="in_progress", in_progress_at=now)
    batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": 0}
    if service.config.latency:
        await asyncio.sleep(service.config.latency)
    output, errors = [], []
    for number, line in enumerate(lines):
        if batch["status"] == "cancelling":
            break
        service.counts["batch_requests"] += 1
        fault = service.draw_fault()
        try:
            plan = service.teacher.plan(line["body"])
            service.requests_by_key[plan.key] += 1
            if fault in ("rate_limit", "server_error", "drop"):
                service.counts[f"fault_{fault}"] += 1
                raise RequestProblem(
                    500, "The server had an error (injected fault).", kind="server_error"
                )
            output.append(_result_line(line["custom_id"], 200, service.answer(plan, fault)))
            batch["request_counts"]["completed"] += 1
        except RequestProblem as problem:
            body = _error_body(problem.message, problem.kind)
            errors.append(_result_line(line["custom_id"], problem.status, body))
            batch["request_counts"]["failed"] += 1
        if number % 64 == 63:
            await asyncio.sleep(0)  # let polls and other requests through
    batch.update(status="finalizing", finalizing_at=int(time.time()))
    for records, key, suffix in (
        (output, "output_file_id", "output"),
        (errors, "error_file_id", "errors"),
    ):
        if records:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
            batch[key] = store.add_file(data, f"{batch['id']}_{suffix}.jsonl", "batch_output")["id"]
    if batch["status"] == "cancelling":
        batch.update(status="cancelled", cancelled_at=int(time.time()))
    else:
        batch.update(status="completed", completed_at=int(time.time()))


async def create_batch(request: web.Request) -> web.Response:
    store = request.app[STORE]
    try:
        body = await read_json(request)
    except RequestProblem as problem:
        return _error(problem.status, problem.message)
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object")
    file_id = body.get("input_file_id")
    if file_id not in store.files:
        return _error(400, f"input file {file_id!r} does not exist", param="input_file_id")
    if store.files[file_id]["purpose"] != "batch":
        return _error(
            400, "the input file must be uploaded with purpose 'batch'", param="input_file_id"
        )
    if body.get("endpoint") != CHAT_URL:
        return _error(400, f"the offline teacher batches only {CHAT_URL}", param="endpoint")
    if body.get("completion_window") != "24h":
        return _error(400, "completion_window must be '24h'", param="completion_window")
    now = int(time.time())
    batch = {
        "id": _new_id("batch"),
        "object": "batch",
        "endpoint": CHAT_URL,
        "errors": None,
        "input_file_id": file_id,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 24 * 3600,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
    }
    store.batches[batch["id"]] = batch
    task = asyncio.create_task(_process(request.app, batch))
    store.tasks.add(task)
    task.add_done_callback(store.tasks.discard)
    return web.json_response(batch)


def _batch_or_404(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    batch_id = request.match_info["batch_id"]
    batch = request.app[STORE].batches.get(batch_id)
    if batch is None:
        return None, _error(404, f"No such Batch object: {batch_id}", param="batch_id")
    return batch, None


async def get_batch(request: web.Request) -> web.Response:
    batch, problem = _batch_or_404(request)
    return problem or web.json_response(batch)


async def cancel_batch(request: web.Request) -> web.Response:
    batch, problem = _batch_or_404(request)
    if problem is not None:
        return problem
    if batch["status"] in ("validating", "in_progress"):
        batch.update(status="cancelling", cancelling_at=int(time.time()))
    return web.json_response(batch)


async def list_batches(request: web.Request) -> web.Response:
    data = list(request.app[STORE].batches.values())[::-1]
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
    )


def add_batch_routes(app: web.Application) -> None:
    """Mount the files and batches routes on the teacher's app."""
    app[STORE] = BatchStore()
    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files/{file_id}", get_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_post("/v1/batches", create_batch)
    app.router.add_get("/v1/batches", list_batches)
    app.router.add_get("/v1/batches/{batch_id}", get_batch)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel_batch)
