"""The client's Batch API path, end to end against the offline server's /v1/files and /v1/batches."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from phi1lib.teacher import LocalTeacherServer, TeacherEndpoint, run_requests, tasks
from phi1lib.teacher.batch import BatchLedger, BatchRun
from phi1lib.teacher.job import TeacherJob
from phi1lib.teacher.offline import ServerConfig
from phi1lib.teacher.served import check_served_model

pytestmark = pytest.mark.slow  # batch jobs through a slow, faulty offline server

MODEL = ServerConfig.model
NAMES = ["count_vowels", "reverse_words", "is_palindrome", "sum_of_squares", "running_max"]


def exercise_requests(count: int) -> list:
    return [
        tasks.exercise_request(
            {"function_name": NAMES[i % 5], "topic": "basics", "difficulty": "easy"},
            f"e{i}",
            seed=i,
        )
        for i in range(count)
    ]


def requests_by_key(server: LocalTeacherServer) -> dict[str, int]:
    url = server.base_url.removesuffix("/v1") + "/phi1/stats"
    with urllib.request.urlopen(url) as response:
        return json.load(response)["requests_by_key"]


@pytest.fixture(scope="module")
def faulty_server():
    config = ServerConfig(latency=0.2, malformed_rate=0.1, error_rate=0.1)
    with LocalTeacherServer(config) as server:
        yield server


def batch_endpoint(server: LocalTeacherServer, **fields) -> TeacherEndpoint:
    return TeacherEndpoint(
        base_url=server.base_url, model=MODEL, kind="local", batch=True, batch_poll_s=0.05, **fields
    )


def test_a_batch_job_answers_everything_through_rounds(faulty_server, tmp_path):
    requests = exercise_requests(40)
    endpoint = batch_endpoint(faulty_server, malformed_retries=4)
    report = run_requests(endpoint, requests, cache_dir=tmp_path, progress=False)
    assert [r.id for r in report.results] == [r.id for r in requests]
    assert report.counts["ok"] == 40
    for result in report.results:
        assert result.provenance["via"] == "batch"
        assert result.provenance["batch_id"].startswith("batch_")
        tasks.parse_exercise(result)
    ledger = BatchLedger(tmp_path)
    assert ledger.submitted and not ledger.open_batches()  # every batch was collected
    inputs = sorted((tmp_path / "batch_inputs").glob("*.jsonl"))
    first = [json.loads(line) for line in inputs[0].read_text().splitlines()]
    assert first[0]["url"] == "/v1/chat/completions" and first[0]["method"] == "POST"

    again = run_requests(endpoint, requests, cache_dir=tmp_path, progress=False)
    assert again.counts["cached"] == 40 and again.http_requests == 0


def test_an_interrupted_batch_job_collects_its_batch_instead_of_paying_twice(tmp_path):
    requests = exercise_requests(12)
    with LocalTeacherServer(ServerConfig(latency=0.5)) as server:
        endpoint = batch_endpoint(server)

        async def submit_then_crash() -> None:
            job = TeacherJob(endpoint, requests, tmp_path, progress=False)
            client = endpoint.client()
            try:
                job.bind(await check_served_model(endpoint, client))
                await BatchRun(job, client).submit(job.answer_from_cache())
            finally:
                await client.close()

        asyncio.run(submit_then_crash())  # the notebook died while the batch was running
        assert len(BatchLedger(tmp_path).open_batches()) == 1
        report = run_requests(endpoint, requests, cache_dir=tmp_path, progress=False)
        asked = requests_by_key(server)
    assert report.counts["ok"] == 12
    assert len({r.provenance["batch_id"] for r in report.results}) == 1
    assert sorted(asked.values()) == [1] * 12  # each request went to the server once
    assert not BatchLedger(tmp_path).open_batches()


def test_a_batch_job_stays_within_its_token_budget(faulty_server, tmp_path):
    requests = exercise_requests(30)
    endpoint = batch_endpoint(faulty_server, budget_tokens=12_000)
    report = run_requests(endpoint, requests, cache_dir=tmp_path, progress=False)
    assert report.stopped_by_budget and report.tokens <= 12_000
    assert report.counts["not_run"] > 0
    assert report.counts["ok"] + report.counts["malformed"] + report.counts["failed"] > 0
    assert report.counts["total"] == 30
