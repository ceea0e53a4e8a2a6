"""The Batch API path: for paper-scale jobs, half the price, answers within 24 hours.

For the phi-1-small and phi-1 profiles (hundreds of thousands of prompts) the client writes the
requests into JSONL input files (OpenAI's format: one ``{"custom_id", "method", "url", "body"}``
per line; at most 50,000 lines or ~190 MB per file), uploads them (``files.create``), starts one
batch per file (``batches.create``), polls until each ends, downloads the output and error
files, and files every answer into the same cache as the chat path, checked by the same rule.
The ids of submitted batches are appended to ``batches.jsonl`` beside the cache, so a job that
is interrupted while OpenAI works resumes by collecting those batches instead of paying twice.
Answers that come back malformed, and lines that failed transiently, go into a next, smaller
batch, up to ``malformed_retries`` more rounds; a malformed one is asked again with a
follow-up that quotes the problem, as on the chat path. Introduced in the appendix on teacher
endpoints.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from phi1lib.teacher.budget import Reservation
from phi1lib.teacher.job import TeacherJob
from phi1lib.teacher.records import TeacherResult
from phi1lib.teacher.retry import RETRYABLE_STATUS, backoff_s, describe, is_retryable

CHAT_URL = "/v1/chat/completions"
MAX_LINES = 50_000  # OpenAI's limit of requests per batch
MAX_BYTES = 190 * 2**20  # under OpenAI's 200 MB limit per input file
TERMINAL = ("completed", "failed", "expired", "cancelled")
STATE_FILE = "batches.jsonl"
VIA = "batch"


class BatchFormatError(ValueError):
    """A line of a batch output or error file that is not in OpenAI's format."""


@dataclass(frozen=True)
class BatchLine:
    """One line of a batch output (or error) file."""

    custom_id: str
    status_code: int | None
    body: dict[str, Any] | None
    error: str | None


def batch_input_line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """One line of a batch input file, exactly as OpenAI's Batch API expects it."""
    return {"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body}


def parse_batch_line(text: str, where: str = "batch output") -> BatchLine:
    """Read one output/error-file line; raise BatchFormatError naming the file and problem."""
    try:
        line = json.loads(text)
    except json.JSONDecodeError as error:
        raise BatchFormatError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        raise BatchFormatError(f"{where}: a line without a string custom_id")
    response, error = line.get("response"), line.get("error")
    message = None
    if isinstance(error, dict):
        message = f"{error.get('code')}: {error.get('message')}"
    if response is None:
        return BatchLine(line["custom_id"], None, None, message or "no response")
    if not isinstance(response, dict) or not isinstance(response.get("status_code"), int):
        raise BatchFormatError(f"{where}: custom_id {line['custom_id']!r} has no status_code")
    body = response.get("body")
    if response["status_code"] != 200 and message is None:
        inner = body.get("error") if isinstance(body, dict) else None
        detail = inner.get("message") if isinstance(inner, dict) else body
        message = f"HTTP {response['status_code']}: {detail}"
    return BatchLine(line["custom_id"], response["status_code"], body, message)


class BatchLedger:
    """``batches.jsonl``: which batches were submitted for which keys, and which were collected."""

    def __init__(self, folder: Path | None):
        self.path = folder / STATE_FILE if folder is not None else None
        self.submitted: dict[str, dict[str, Any]] = {}
        self.collected: set[str] = set()
        if self.path is not None and self.path.exists():
            for raw in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    event = json.loads(raw)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash
                if event.get("event") == "submitted":
                    self.submitted[event["batch_id"]] = event
                elif event.get("event") == "collected":
                    self.collected.add(event["batch_id"])

    def open_batches(self) -> list[dict[str, Any]]:
        return [e for b, e in self.submitted.items() if b not in self.collected]

    def append(self, event: dict[str, Any]) -> None:
        if event["event"] == "submitted":
            self.submitted[event["batch_id"]] = event
        else:
            self.collected.add(event["batch_id"])
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _chunks(lines: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    chunks: list[list[tuple[int, bytes]]] = [[]]
    size = 0
    for item in lines:
        if chunks[-1] and (len(chunks[-1]) >= MAX_LINES or size + len(item[1]) > MAX_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item[1])
    return [chunk for chunk in chunks if chunk]


class BatchRun:
    """The Batch API rounds of one job."""

    def __init__(self, job: TeacherJob, client: Any):
        self.job = job
        self.client = client
        folder = job.cache.folder if job.cache is not None else None
        self.ledger = BatchLedger(folder)
        self.inputs = folder / "batch_inputs" if folder is not None else None
        self.by_key = {key: i for key, i in job.leaders.items() if job.results[i] is None}
        self.reservations: dict[int, Reservation] = {}
        self.last: dict[int, TeacherResult] = {}  # the latest unusable outcome per request
        self.retry: set[int] = set()  # unresolved requests worth another round
        self.tries: dict[int, int] = {}
        self.bodies: dict[int, dict[str, Any]] = {}  # the follow-up to send, after a refusal
        self.reasks: dict[int, int] = {}

    async def _with_retries(self, call: Any, what: str) -> Any:
        endpoint = self.job.endpoint
        for attempt in range(endpoint.max_retries + 1):
            self.job.http_requests += 1
            try:
                return await call()
            except openai.APIError as error:
                if not is_retryable(error) or attempt == endpoint.max_retries:
                    raise
                self.job.retries += 1
                await asyncio.sleep(
                    backoff_s(attempt, error, endpoint.retry_base_s, endpoint.retry_cap_s)
                )
        raise AssertionError(f"unreachable: {what}")

    async def submit(self, indices: list[int]) -> list[str]:
        """Upload the input file(s) for ``indices`` and start their batches; return batch ids."""
        job = self.job
        lines = [
            (i, json.dumps(batch_input_line(job.keys[i], self.body(i))).encode() + b"\n")
            for i in indices
        ]
        batch_ids = []
        for number, chunk in enumerate(_chunks(lines)):
            data = b"".join(line for _, line in chunk)
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
            name = f"teacher_{stamp}_{uuid.uuid4().hex[:8]}_{number}.jsonl"
            if self.inputs is not None:  # kept for audit: exactly what was sent
                self.inputs.mkdir(parents=True, exist_ok=True)
                (self.inputs / name).write_bytes(data)
            uploaded = await self._with_retries(
                lambda data=data, name=name: self.client.files.create(
                    file=(name, data, "application/jsonl"), purpose="batch"
                ),
                "upload",
            )
            batch = await self._with_retries(
                lambda uploaded=uploaded: self.client.batches.create(
                    input_file_id=uploaded.id, endpoint=CHAT_URL, completion_window="24h"
                ),
                "create",
            )
            keys = [job.keys[i] for i, _ in chunk]
            self.ledger.append(
                {
                    "event": "submitted",
                    "batch_id": batch.id,
                    "input_file_id": uploaded.id,
                    "keys": keys,
                }
            )
            batch_ids.append(batch.id)
        return batch_ids

    def body(self, index: int) -> dict[str, Any]:
        return self.bodies.get(index, self.job.bodies[index])

    async def wait(self, batch_id: str) -> Any:
        """Poll one batch until it reaches a terminal state."""
        while True:
            batch = await self._with_retries(
                lambda: self.client.batches.retrieve(batch_id), "retrieve"
            )
            counts = batch.request_counts
            done = f"{counts.completed + counts.failed}/{counts.total}" if counts else ""
            self.job.bar.set_description(f"batch {batch.status} {done}", refresh=True)
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(self.job.endpoint.batch_poll_s)

    async def _download(self, file_id: str | None) -> list[str]:
        if not file_id:
            return []
        content = await self._with_retries(lambda: self.client.files.content(file_id), "download")
        return [line for line in content.text.splitlines() if line.strip()]

    def _spend(self, index: int, usage: dict[str, int] | None, billed: bool = False) -> None:
        """Settle a line's reservation: its usage, the worst case if billed without one, or 0."""
        reservation = self.reservations.pop(index, None)
        if reservation is not None and billed and usage is None:
            self.job.guard.charge_worst_case_now(reservation)
        elif reservation is not None:
            self.job.guard.settle_now(reservation, usage)
        elif usage:  # a batch submitted by an earlier, interrupted run
            self.job.guard.record_spent(usage)

    def _accept(self, index: int, line: BatchLine, batch_id: str) -> None:
        job = self.job
        self.tries[index] = self.tries.get(index, 0) + 1
        details = {"via": VIA, "batch_id": batch_id}
        if line.status_code != 200 or not isinstance(line.body, dict):
            self._spend(index, None)
            self.last[index] = job.failed(
                index, line.error or "no answer", self.tries[index], **details
            )
            if (
                line.status_code is None
                or line.status_code in RETRYABLE_STATUS
                or line.status_code >= 500
            ):
                self.retry.add(index)
            return
        body = line.body
        usage = body.get("usage") or None
        self._spend(index, usage, billed=True)
        try:
            choice = body["choices"][0]
            content, finish = choice["message"].get("content"), choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            self.last[index] = job.failed(
                index, "a batch answer without choices", self.tries[index], **details
            )
            return
        details.update(
            response_model=body.get("model"),
            completion_id=body.get("id"),
            system_fingerprint=body.get("system_fingerprint"),
            finish_reason=finish,
        )
        answer = job.read(index, content, finish, usage)
        reasks = self.reasks.get(index, 0)
        result = job.answered(index, answer, usage, self.tries[index], **details, reasks=reasks)
        if answer.usable:
            self.last.pop(index, None)
            self.retry.discard(index)
            job.finish(index, result)
            del self.by_key[job.keys[index]]
        else:
            job.keep_refused(index, result)
            self.last[index] = result
            self.retry.add(index)
            self.reasks[index] = reasks + 1
            self.bodies[index] = job.follow_up(self.body(index), answer)

    async def collect(self, batch_id: str, keys: list[str]) -> None:
        """Wait for a batch, then file its answers; unanswered keys become retryable failures."""
        batch = await self.wait(batch_id)
        seen = set()
        for file_id, where in ((batch.output_file_id, "output"), (batch.error_file_id, "error")):
            for text in await self._download(file_id):
                line = parse_batch_line(text, f"batch {batch_id} {where} file")
                index = self.by_key.get(line.custom_id)
                if index is not None and line.custom_id not in seen:
                    seen.add(line.custom_id)
                    self._accept(index, line, batch_id)
        reason = f"batch {batch_id} ended {batch.status} without answering"
        if batch.errors and batch.errors.data:
            reason += ": " + "; ".join(str(e.message) for e in batch.errors.data[:3])
        for key in keys:
            index = self.by_key.get(key)
            if index is not None and key not in seen:
                self._accept(index, BatchLine(key, None, None, reason), batch_id)
        self.ledger.append({"event": "collected", "batch_id": batch_id})

    async def run(self, pending: list[int]) -> None:
        job = self.job
        for submitted in self.ledger.open_batches():  # resume what an earlier run left at OpenAI
            keys = [key for key in submitted["keys"] if key in self.by_key]
            if keys:
                await self.collect(submitted["batch_id"], keys)
            else:
                self.ledger.append({"event": "collected", "batch_id": submitted["batch_id"]})
        todo = [i for i in pending if job.keys[i] in self.by_key]
        for _ in range(1 + job.endpoint.malformed_retries):
            admitted = []
            for index in todo:
                reservation = job.guard.try_reserve(
                    job.guard.estimate(self.body(index), job.requests[index].id)
                )
                if reservation is None:
                    break
                self.reservations[index] = reservation
                admitted.append(index)
            if not admitted:
                break
            submitted = await self.submit(admitted)
            for batch_id in submitted:
                keys = self.ledger.submitted[batch_id]["keys"]
                await self.collect(batch_id, keys)
            todo = [i for i in admitted if i in self.retry]
            if not todo:
                break
        for key, index in list(self.by_key.items()):
            outcome = self.last.get(index)
            job.finish(index, outcome if outcome is not None else job.not_run(index))
            del self.by_key[key]


async def run_batches(job: TeacherJob, pending: list[int], client: Any) -> None:
    """Resolve the pending requests through the Batch API (``endpoint.batch = true``)."""
    try:
        await BatchRun(job, client).run(pending)
    except (openai.APIError, BatchFormatError) as error:
        message = f"the Batch API failed: {describe(error)}"
        for index in job.leaders.values():
            if job.results[index] is None:
                job.finish(index, job.failed(index, message, 0, via=VIA))
