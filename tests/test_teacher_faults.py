"""The client against a misbehaving teacher: errors, latency, kills, budgets, broken JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from phi1lib.teacher import (
    LocalTeacherServer,
    PriceTable,
    ServerConfig,
    TeacherEndpoint,
    content,
    run_requests,
    tasks,
)
from phi1lib.teacher.budget import Price
from phi1lib.teacher.cache import ResponseCache

MODEL = ServerConfig.model
FUNCTION_NAMES = ["count_vowels", "reverse_words", "is_palindrome", "sum_of_squares", "running_max"]


def exercise_requests(count: int, prefix: str = "e") -> list:
    return [
        tasks.exercise_request(
            {"function_name": FUNCTION_NAMES[i % 5], "topic": "basics", "difficulty": "easy"},
            f"{prefix}{i}",
            seed=i,
        )
        for i in range(count)
    ]


def textbook_requests(count: int) -> list:
    """Sections over the offline teacher's own topics, audiences and styles."""
    requests = []
    for i in range(count):
        topic = content.TOPICS[i % len(content.TOPICS)]
        constraints = {
            "topic": topic["topic"],
            "subtopic": topic["subtopics"][i % len(topic["subtopics"])],
            "audience": content.AUDIENCES[i % len(content.AUDIENCES)],
            "style": content.STYLES[i % len(content.STYLES)],
        }
        requests.append(tasks.textbook_request(constraints, f"t{i}", seed=i))
    return requests


def stats(server: LocalTeacherServer) -> dict:
    url = server.base_url.removesuffix("/v1") + "/phi1/stats"
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def endpoint_for(server: LocalTeacherServer, **fields) -> TeacherEndpoint:
    return TeacherEndpoint(base_url=server.base_url, model=MODEL, kind="local", **fields)


@pytest.mark.slow
def test_500_requests_through_30_percent_errors_and_1s_latency(tmp_path):
    config = ServerConfig(latency=1.0, error_rate=0.25, drop_rate=0.05)
    requests = textbook_requests(500)
    with LocalTeacherServer(config) as server:
        endpoint = endpoint_for(server, concurrency=250, max_retries=10, retry_base_s=0.1)
        started = time.monotonic()
        report = run_requests(endpoint, requests, cache_dir=tmp_path, progress=False)
        wall = time.monotonic() - started
        served = stats(server)["counts"]
    ids = [result.id for result in report.results]
    assert ids == [request.id for request in requests]  # exactly 500, in order, none twice
    assert report.counts["ok"] + report.counts["failed"] == 500
    assert report.counts["ok"] >= 495
    assert all(result.error for result in report.results if not result.ok)
    assert report.retries > 100  # the faults really happened and were retried
    assert served["fault_rate_limit"] > 0 and served["fault_drop"] > 0
    assert len(ResponseCache(tmp_path)) == report.counts["ok"]
    assert wall < 60, f"500 requests took {wall:.1f} s"


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from phi1lib.teacher import TeacherEndpoint, run_requests, tasks
    sys.path.insert(0, {tests!r})
    from test_teacher_faults import textbook_requests
    endpoint = TeacherEndpoint(base_url=sys.argv[1], model={model!r}, concurrency=4)
    report = run_requests(endpoint, textbook_requests(240), cache_dir=sys.argv[2], progress=False)
    with open(sys.argv[3], "w") as handle:
        json.dump(report.to_dict(with_results=True), handle)
    """
)


@pytest.mark.slow
def test_a_killed_job_resumes_without_asking_twice(tmp_path):
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT.format(tests=str(Path(__file__).parent), model=MODEL))
    cache_dir, report_path = tmp_path / "cache", tmp_path / "report.json"
    config = ServerConfig(latency=0.05, error_rate=0.1)
    with LocalTeacherServer(config) as server:
        command = [sys.executable, str(script), server.base_url, str(cache_dir), str(report_path)]
        first = subprocess.Popen(command)
        responses = cache_dir / "responses.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if responses.exists() and responses.read_bytes().count(b"\n") >= 60:
                break
            time.sleep(0.02)
        assert first.poll() is None, "the job ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert not report_path.exists()
        done_before = ResponseCache(cache_dir).keys()
        asked_before = stats(server)["requests_by_key"]
        assert 60 <= len(done_before) < 240

        subprocess.run(command, check=True, timeout=240)
        asked_after = stats(server)["requests_by_key"]
        resumed = json.loads(report_path.read_text())

        uninterrupted = run_requests(
            endpoint_for(server, concurrency=8),
            textbook_requests(240),
            tmp_path / "clean",
            progress=False,
        )
    assert resumed["counts"]["ok"] == 240
    assert resumed["counts"]["cached"] == len(done_before)
    for key in done_before:  # nothing completed before the kill was asked again
        assert asked_after[key] == asked_before[key]
    texts = {r["id"]: r["text"] for r in resumed["results"]}
    assert texts == {r.id: r.text for r in uninterrupted.results}
    lines = (cache_dir / "responses.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines if line.strip().endswith("}")]
    assert len(keys) == len(set(keys)) == 240


@pytest.mark.slow
def test_a_token_budget_stops_the_job_and_reports_what_remains(tmp_path):
    requests = textbook_requests(40)
    with LocalTeacherServer(ServerConfig()) as server:
        full = run_requests(endpoint_for(server), requests, tmp_path / "full", progress=False)
        need = full.tokens
        budget = need // 3
        endpoint = endpoint_for(server, concurrency=4, budget_tokens=budget)
        stopped = run_requests(endpoint, requests, tmp_path / "budget", progress=False)
        assert stopped.stopped_by_budget
        assert stopped.tokens <= budget
        counts = stopped.counts
        assert counts["ok"] > 0 and counts["not_run"] > 0
        assert counts["ok"] + counts["not_run"] == 40
        assert stopped.not_run == [r.id for r in stopped.results if r.status == "not_run"]
        assert "not run" in stopped.summary()
        texts = {r.id: r.text for r in full.results}
        assert all(r.text == texts[r.id] for r in stopped.results if r.ok)

        # Raising the budget finishes the job: only the rest is asked, nothing is paid twice.
        finish = run_requests(
            endpoint.replace(budget_tokens=0), requests, tmp_path / "budget", progress=False
        )
        assert finish.counts["ok"] == 40 and finish.counts["cached"] == counts["ok"]
        assert finish.usage[MODEL]["requests"] == counts["not_run"]


@pytest.mark.slow
def test_a_money_budget_uses_the_price_table(tmp_path):
    prices = PriceTable(models={MODEL: Price(input=100.0, output=100.0)})
    requests = exercise_requests(30)
    with LocalTeacherServer(ServerConfig()) as server:
        endpoint = endpoint_for(server, concurrency=2, budget_usd=0.5, prices=prices)
        report = run_requests(endpoint, requests, tmp_path, progress=False)
    assert report.stopped_by_budget and 0 < report.cost_usd <= 0.5
    assert report.cost_usd == pytest.approx(report.tokens * 100 / 1e6)
    assert 0 < report.counts["ok"] < 30 and report.counts["not_run"] == 30 - report.counts["ok"]


@pytest.mark.parametrize(
    ("fault", "message"), [("malformed_rate", "not valid JSON"), ("invalid_rate", "schema")]
)
@pytest.mark.slow
def test_broken_structured_answers_are_retried_then_counted(tmp_path, fault, message):
    config = ServerConfig(**{fault: 1.0})
    with LocalTeacherServer(config) as server:
        endpoint = endpoint_for(server, malformed_retries=2)
        report = run_requests(endpoint, exercise_requests(6), tmp_path, progress=False)
    assert report.counts["malformed"] == 6
    for result in report.results:
        assert result.status == "malformed" and message in result.error
        assert result.attempts == 3 and result.text is None and result.parsed is None
    assert len(ResponseCache(tmp_path)) == 0  # a malformed answer is never stored
    assert report.usage[MODEL]["requests"] == 18  # every attempt was paid for


@pytest.mark.slow
def test_occasional_bad_json_and_truncation_are_recovered_by_retries(tmp_path):
    config = ServerConfig(malformed_rate=0.15, invalid_rate=0.1, truncate_rate=0.1)
    requests = exercise_requests(60) + textbook_requests(20)
    with LocalTeacherServer(config) as server:
        report = run_requests(
            endpoint_for(server, malformed_retries=4), requests, tmp_path, progress=False
        )
    assert report.counts["ok"] >= 78
    for result in report.ok_results():
        if result.parsed is not None:
            tasks.parse_exercise(result)


@pytest.mark.slow
def test_timeouts_are_retried_then_recorded_as_failed(tmp_path):
    with LocalTeacherServer(ServerConfig(latency=2.0)) as server:
        endpoint = endpoint_for(server, timeout_s=0.4, max_retries=1, retry_base_s=0.01)
        report = run_requests(endpoint, exercise_requests(2), tmp_path, progress=False)
    for result in report.results:
        assert result.status == "failed" and "timed out" in result.error
        assert result.attempts == 2
    assert report.retries == 2 and len(ResponseCache(tmp_path)) == 0
