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

from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.teacher import (
    LocalTeacherServer,
    PriceTable,
    TeacherEndpoint,
    TeacherUnavailable,
    run_requests,
    tasks,
)
from phi1lib.teacher.budget import Price
from phi1lib.teacher.cache import ResponseCache
from phi1lib.teacher.offline import ServerConfig

CURRICULUM = load_curriculum()
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
        topic = CURRICULUM.topics[i % len(CURRICULUM.topics)]
        constraints = {
            "topic": topic["topic"],
            "subtopic": topic["subtopics"][i % len(topic["subtopics"])],
            "audience": CURRICULUM.audiences[i % len(CURRICULUM.audiences)],
            "style": CURRICULUM.styles[i % len(CURRICULUM.styles)],
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
        cached = ResponseCache(cache_dir)
        # The server counts bodies; the cache names them with the model card besides.
        done_before = {cached.get(key)["provenance"]["request_key"] for key in cached}
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
        asked = stats(server)["requests_by_key"]
    assert report.counts["malformed"] == 6
    for result in report.results:
        assert result.status == "malformed" and message in result.error
        assert result.attempts == 3 and result.text is None and result.parsed is None
        assert result.raw_text and result.raw_text[:20] in result.error  # what it said, kept
        assert result.provenance["reasks"] == 2
    cache = ResponseCache(tmp_path)
    assert len(cache) == 0  # a malformed answer is never served from the cache...
    assert cache.malformed_lines == 18  # ...but every one is kept there for a reader
    assert report.usage[MODEL]["requests"] == 18  # every attempt was paid for
    # No re-ask sent the same body again: 18 different bodies, each asked once.
    assert len(asked) == 18 and set(asked.values()) == {1}


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


def test_concurrency_adapts_to_a_server_that_answers_one_request_at_a_time(tmp_path):
    # One slot and 0.25 s per answer: sixteen requests in flight would make the last one wait
    # 4 s, twice the timeout. The client must keep few enough in flight that none times out.
    config = ServerConfig(latency=0.25, slots=1)
    with LocalTeacherServer(config) as server:
        endpoint = endpoint_for(server, concurrency=16, timeout_s=2.0, max_retries=0)
        report = run_requests(endpoint, exercise_requests(24), tmp_path, progress=False)
    assert report.counts["ok"] == 24, report.summary()
    assert report.retries == 0 and report.http_requests == 24
    pacing = report.concurrency
    assert pacing["max"] == 16 and pacing["lowered"] >= 1 and pacing["highest"] < 16
    assert "Concurrency went down from 16" in report.summary()


def test_an_unknown_model_fails_before_the_job_with_the_servers_reason(tmp_path):
    with LocalTeacherServer(ServerConfig()) as server:
        endpoint = TeacherEndpoint(base_url=server.base_url, model="gpt-5-turbo", max_retries=6)
        started = time.monotonic()
        with pytest.raises(TeacherUnavailable) as raised:
            run_requests(endpoint, exercise_requests(30), tmp_path, progress=False)
        elapsed = time.monotonic() - started
        served = stats(server)["counts"]
    message = str(raised.value)
    assert "does not serve model 'gpt-5-turbo'" in message
    assert f"lists 1 model(s): {MODEL}" in message
    assert "HTTP 404" in message and "does not exist" in message  # the server's own words
    assert served["chat_requests"] == 1  # one probe of one token, no retries, no job
    assert elapsed < 10
    assert not (tmp_path / "responses.jsonl").exists()


def test_a_refused_connection_is_reported_as_refused(tmp_path):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = TeacherEndpoint(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL)
    with pytest.raises(TeacherUnavailable, match=f"connection refused at 127.0.0.1:{port}"):
        run_requests(endpoint, exercise_requests(3), tmp_path, progress=False)


def test_a_caller_refuses_answers_and_a_refused_cached_answer_is_asked_again(tmp_path):
    requests = textbook_requests(6)

    def needs_an_impossible_word(result):
        if "xylophone-quartz" not in result.text:
            raise ValueError("the section never mentions xylophone-quartz")

    with LocalTeacherServer(ServerConfig()) as server:
        endpoint = endpoint_for(server, malformed_retries=1)
        first = run_requests(endpoint, requests, tmp_path, progress=False)
        assert first.counts["ok"] == 6 and len(ResponseCache(tmp_path)) == 6

        # A stage that now refuses those answers: the cached ones are withdrawn and asked
        # again (twice each: once, then one follow-up), and nothing refused is served later.
        refused = run_requests(
            endpoint, requests, tmp_path, progress=False, accept=needs_an_impossible_word
        )
        assert refused.counts["malformed"] == 6 and refused.counts["cached"] == 0
        assert refused.http_requests == 12
        for result in refused.results:
            assert "refused by the caller: the section never mentions" in result.error
            assert result.raw_text.startswith("## ")
        assert len(ResponseCache(tmp_path)) == 0

        again = run_requests(endpoint, requests, tmp_path, progress=False)
        assert again.counts["ok"] == 6 and again.counts["cached"] == 0
    assert [r.text for r in again.results] == [r.text for r in first.results]


def test_the_cache_key_follows_what_the_server_says_it_serves(tmp_path):
    requests = exercise_requests(5)
    with LocalTeacherServer(ServerConfig()) as server:
        first = run_requests(endpoint_for(server), requests, tmp_path, progress=False)
    with LocalTeacherServer(ServerConfig()) as restarted:  # the same model again
        same = run_requests(endpoint_for(restarted), requests, tmp_path, progress=False)
    with LocalTeacherServer(ServerConfig(mistake_rate=0.5)) as replaced:  # another model card
        other = run_requests(endpoint_for(replaced), requests, tmp_path, progress=False)
    assert first.counts["cached"] == 0 and same.counts["cached"] == 5
    assert other.counts["cached"] == 0 and other.http_requests == 5
    assert other.results[0].provenance["served"]["meta"]["mistake_rate"] == 0.5
