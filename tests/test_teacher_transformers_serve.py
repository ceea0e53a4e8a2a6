"""The teacher client and a pipeline stage against a real third-party server: ``transformers serve``.

The server is Hugging Face's own OpenAI-compatible one, started on 127.0.0.1 with a tiny random
Llama built here (``tests/transformers_server.py``). It is nothing like the book's offline
teacher: it ignores ``response_format``, names a missing model with a bare HTTP 500, generates one
answer at a time, and its model writes garbage. Each test counts what reached the server from
its access log.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict

import pytest
from transformers_server import TransformersServer, build_tiny_model

from phi1lib import pipeline
from phi1lib.filtering.stages import JUDGE_CACHE
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore
from phi1lib.teacher import TeacherEndpoint, TeacherUnavailable, run_requests, tasks
from phi1lib.teacher.cache import ResponseCache

pytestmark = pytest.mark.slow  # about two minutes on 2 CPU cores, most of it starting the server

TEXTBOOK = {
    "topic": "recursion",
    "subtopic": "base cases",
    "audience": "beginners",
    "style": "terse",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with TransformersServer(tmp_path_factory.mktemp("transformers-serve")) as running:
        yield running


def textbook_requests(count: int) -> list:
    return [tasks.textbook_request(TEXTBOOK, f"t{i}", seed=i) for i in range(count)]


def judge_requests(count: int) -> list:
    return [tasks.judge_request(f"x = {i}\nprint(x * 2)\n", f"j{i}") for i in range(count)]


def test_an_unknown_model_fails_fast_with_the_servers_own_words(server, tmp_path):
    endpoint = TeacherEndpoint(base_url=server.base_url, model="no-such-org/no-such-model")
    before = server.chat_requests()
    started = time.monotonic()
    with pytest.raises(TeacherUnavailable) as raised:
        run_requests(endpoint, textbook_requests(150), tmp_path, progress=False)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "does not serve model 'no-such-org/no-such-model'" in message
    assert "HTTP 500: Internal Server Error" in message  # the body, not just "Error code: 500"
    assert "some servers say the model does not exist" in message
    assert server.chat_requests() - before == 1  # one probe, where 150 x 7 attempts used to go
    assert elapsed < 60, f"failing took {elapsed:.1f} s"


def test_the_client_answers_counts_and_caches_against_transformers_serve(
    server, tiny_model, tmp_path
):
    from transformers import AutoTokenizer

    endpoint = TeacherEndpoint(base_url=server.base_url, model=str(tiny_model), concurrency=8)
    requests = textbook_requests(12)
    before = server.chat_requests()
    report = run_requests(endpoint, requests, tmp_path, progress=False)
    assert report.counts["ok"] == 12, report.summary()
    assert [r.id for r in report.results] == [r.id for r in requests]
    sent = server.chat_requests() - before
    assert sent == report.http_requests and report.retries == 0
    served = report.results[0].provenance["served"]
    assert served == {"id": str(tiny_model), "created": 0, "owned_by": "local"}

    # Usage is the server's exact count: the chat template's tokens, then the answer's.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for request, result in zip(requests, report.results, strict=True):
        prompt = tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, return_dict=True
        )["input_ids"]
        assert result.usage["prompt_tokens"] == len(prompt)
        assert 0 < result.usage["completion_tokens"] < 100  # the length penalty ends it
    answered = sum(r.usage["prompt_tokens"] + r.usage["completion_tokens"] for r in report.results)
    probe = report.http_requests - 12  # a one-token probe when the model was not loaded yet
    assert report.tokens >= answered and (probe == 1 or report.tokens == answered)

    again = run_requests(endpoint, requests, tmp_path, progress=False)
    assert again.counts["cached"] == 12 and again.http_requests == 0
    assert server.chat_requests() - before == sent  # nothing more reached the server
    assert [r.text for r in again.results] == [r.text for r in report.results]


def test_garbage_is_re_asked_with_a_different_body_and_kept_for_reading(
    server, tiny_model, tmp_path
):
    # The judge asks at temperature 0: the same body twice would buy the same garbage twice.
    endpoint = TeacherEndpoint(
        base_url=server.base_url, model=str(tiny_model), concurrency=4, malformed_retries=2
    )
    before = server.chat_requests()
    report = run_requests(endpoint, judge_requests(4), tmp_path, progress=False)
    assert report.counts["malformed"] == 4 and server.chat_requests() - before == 12
    for result in report.results:
        assert result.attempts == 3 and result.text is None and result.raw_text
        assert "not valid JSON" in result.error and "the answer began" in result.error
    cache = ResponseCache(tmp_path)
    assert len(cache) == 0 and cache.malformed_lines == 12
    # This model writes the same garbage whatever it is asked; the server's own token counts
    # show that each re-ask was a longer body (the answer and the problem quoted back).
    prompts = defaultdict(list)
    for line in (tmp_path / "responses.jsonl").read_text().splitlines():
        record = json.loads(line)
        prompts[record["key"]].append(record["usage"]["prompt_tokens"])
        assert record["text"] and record["status"] == "malformed"
    assert len(prompts) == 4
    for counts in prompts.values():
        assert len(counts) == 3 and counts[0] < counts[1] < counts[2]


def test_a_judge_stage_with_garbage_answers_fails_counted_and_stores_no_label(
    server, tiny_model, runs_root
):
    profile = load_profile(
        "smoke",
        {
            "teacher.endpoint": server.base_url,
            "teacher.model": str(tiny_model),
            "teacher.api_key_env": "PHI1_NO_KEY_FOR_TRANSFORMERS_SERVE",
            "teacher.concurrency": 4,
            "judge.sample_size": 5,
            # Files cut to fit the tiny model's 4,096 positions: a longer prompt is refused by
            # the server (a failed request), and this test is about answers that are garbage.
            "judge.max_chars": 1500,
            "corpus.max_files": 60,
        },
        use_env=False,
    )
    pipeline.run("raw_code", profile)
    before = server.chat_requests()
    with pytest.raises(
        RuntimeError, match=r"the judge answered only 0 of 5 files usably"
    ) as raised:
        pipeline.run("code_judgements", profile)
    message = str(raised.value)
    assert "0 of 5 requests answered" in message and "5 malformed" in message
    assert "not valid JSON" in message
    # 5 files, each asked 1 + 2 times, plus any request retried after a transient error (this
    # server generates one answer at a time, so a loaded machine can time one out): the
    # client's count of HTTP requests is the server's own.
    sent = int(re.search(r"([\d,]+) HTTP requests", message).group(1).replace(",", ""))
    assert server.chat_requests() - before == sent >= 15
    store = RunStore(profile.name)
    assert store.read_manifest("code_judgements") is None  # no labels were stored
    cache = ResponseCache(store.cache_dir(JUDGE_CACHE))
    assert len(cache) == 0 and cache.malformed_lines == 15
