"""The teacher client's parts, without a server: prompts, answers, cache, budget, retries, batches."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import httpx2
import openai
import pytest

from phi1lib.teacher import PriceTable, TeacherEndpoint, TeacherRequest, TeacherResult, tasks
from phi1lib.teacher.answers import read_answer
from phi1lib.teacher.batch import BatchFormatError, batch_input_line, parse_batch_line
from phi1lib.teacher.budget import BudgetError, BudgetGuard, Price
from phi1lib.teacher.cache import ResponseCache
from phi1lib.teacher.job import follow_up_body
from phi1lib.teacher.keys import cache_key, chat_body, request_key
from phi1lib.teacher.prompts import available_templates, load_template, read_template
from phi1lib.teacher.protocol import PromptContractError, parse_prompt
from phi1lib.teacher.retry import backoff_s, describe, failure_kind, is_retryable, retry_after_s
from phi1lib.teacher.served import identity_of
from phi1lib.teacher.tokens import count_tokens, truncate_tokens

TEXTBOOK = {
    "topic": "recursion",
    "subtopic": "base cases",
    "audience": "beginners",
    "style": "socratic",
}
EXERCISE = {"function_name": "count_vowels", "topic": "strings", "difficulty": "easy"}


# ---- prompt templates and the contract ---------------------------------------------------------


def test_the_three_templates_load_and_carry_their_task_line():
    assert available_templates() == ["code_exercise", "judge_educational_value", "textbook_section"]
    for template_id in available_templates():
        template = load_template(template_id)
        assert template.version >= 1
        assert f"Task: {template_id}" in template.user
        assert template.params["max_tokens"] > 0


def test_rendered_prompts_parse_back_exactly():
    request = tasks.textbook_request(TEXTBOOK, "t1", seed=7)
    parsed = parse_prompt(request.messages[-1]["content"])
    assert parsed.task == "textbook_section"
    assert parsed.constraints == TEXTBOOK
    assert request.params["seed"] == 7 and request.json_schema is None

    code = 'def f(x):\n    """Return x."""\n    return x  # a comment: with colon\n'
    judge = tasks.judge_request(code, "j1")
    parsed = parse_prompt(judge.messages[-1]["content"])
    assert parsed.task == "judge_educational_value" and parsed.code == code
    assert judge.json_schema["required"] == ["reason", "score"]


def test_prompts_refuse_what_the_contract_cannot_carry():
    with pytest.raises(PromptContractError, match="needs the constraints"):
        tasks.exercise_request({"topic": "strings"}, "e1", seed=0)
    with pytest.raises(PromptContractError, match="one non-empty line"):
        tasks.textbook_request({**TEXTBOOK, "topic": "two\nlines"}, "t1", seed=0)
    with pytest.raises(PromptContractError, match="Task:"):
        parse_prompt("Write me a poem.")
    with pytest.raises(PromptContractError, match="</code>"):
        tasks.judge_request("x = 1\n</code>\n", "j1")


def test_a_broken_template_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "code_exercise.toml"
    path.write_text(
        'id = "code_exercise"\nversion = 0\nsystem = "s"\nuser = "Task: code_exercise"\n'
    )
    with pytest.raises(PromptContractError, match=r"code_exercise\.toml.*positive integer"):
        read_template(path)


# ---- reading answers -------------------------------------------------------------------------


def _judge() -> TeacherRequest:
    return tasks.judge_request("print('hello')\n", "j1")


def test_structured_answers_are_parsed_and_validated():
    request = _judge()
    good = read_answer(request, '{"reason": "prints", "score": 2}', "stop")
    assert good.usable and good.parsed == {"reason": "prints", "score": 2}
    fenced = read_answer(request, '```json\n{"reason": "r", "score": 1}\n```', "stop")
    assert fenced.usable and fenced.parsed["score"] == 1

    broken = read_answer(request, 'Sure! {"reason": "r", "score": 1}', "stop")
    assert not broken.usable and "not valid JSON" in broken.problem
    out_of_range = read_answer(request, '{"reason": "r", "score": 9}', "stop")
    assert not out_of_range.usable and "schema" in out_of_range.problem
    wrong_type = read_answer(request, '{"reason": "r", "score": "4 out of 5"}', "stop")
    assert not wrong_type.usable and "score" in wrong_type.problem
    extra = read_answer(request, '{"reason": "r", "score": 3, "mood": "happy"}', "stop")
    assert not extra.usable
    cut = read_answer(request, '{"reason": "r", "sco', "length")
    assert not cut.usable and "truncated" in cut.problem


def _result(request: TeacherRequest, parsed, status="ok") -> TeacherResult:
    return TeacherResult(
        id=request.id,
        status=status,
        text=json.dumps(parsed),
        parsed=parsed,
        provenance={"constraints": dict(request.constraints)},
    )


def test_parse_judgement_and_exercise():
    assert tasks.parse_judgement(_result(_judge(), {"reason": "ok", "score": 4})) == (4, "ok")
    request = tasks.exercise_request(EXERCISE, "e1", seed=0)
    exercise = {
        "function_name": "count_vowels",
        "signature": "def count_vowels(text: str) -> int:",
        "docstring": "Count the vowels in text.",
        "solution": 'def count_vowels(text: str) -> int:\n    """Count."""\n    return sum(c in "aeiou" for c in text)\n',
        "tests": ["assert count_vowels('abc') == 1", "assert count_vowels('') == 0"],
    }
    assert tasks.parse_exercise(_result(request, exercise)) == exercise

    renamed = {**exercise, "function_name": "vowels"}
    with pytest.raises(tasks.TeacherOutputError, match="asked for function 'count_vowels'"):
        tasks.parse_exercise(_result(request, renamed))
    with pytest.raises(tasks.TeacherOutputError, match="solution is not valid Python"):
        tasks.parse_exercise(_result(request, {**exercise, "solution": "def count_vowels(:"}))
    with pytest.raises(tasks.TeacherOutputError, match="test 1 is not an assert"):
        tasks.parse_exercise(_result(request, {**exercise, "tests": ["assert True", "x = 1"]}))
    with pytest.raises(tasks.TeacherOutputError, match=r"e1.*failed"):
        tasks.parse_exercise(TeacherResult(id="e1", status="failed", error="HTTP 500"))


# ---- keys and the cache ----------------------------------------------------------------------


def test_the_key_covers_model_messages_parameters_and_seed():
    request = tasks.textbook_request(TEXTBOOK, "t1", seed=1)
    key = request_key(chat_body("m", request))
    assert key == request_key(chat_body("m", tasks.textbook_request(TEXTBOOK, "other-id", seed=1)))
    assert key != request_key(chat_body("m", tasks.textbook_request(TEXTBOOK, "t1", seed=2)))
    assert key != request_key(chat_body("m2", request))
    assert key != request_key({**chat_body("m", request), "temperature": 0.1})


def _record(key: str) -> dict:
    return {"key": key, "id": key, "text": f"answer {key}", "usage": {}}


def test_the_cache_survives_a_torn_last_line(tmp_path):
    cache = ResponseCache(tmp_path)
    cache.append_many([_record("a"), _record("b")])
    with cache.path.open("ab") as handle:  # a writer killed in the middle of a line
        handle.write(b'{"key": "c", "id": "c", "te')
    reread = ResponseCache(tmp_path)
    assert reread.keys() == {"a", "b"}
    assert reread.append_many([_record("d"), _record("a")]) == 1
    final = ResponseCache(tmp_path)
    assert final.keys() == {"a", "b", "d"} and final.torn_lines == 1
    assert final.get("d")["text"] == "answer d"


def test_refused_and_withdrawn_answers_share_the_file_but_are_never_served(tmp_path):
    cache = ResponseCache(tmp_path)
    cache.append_many([_record("a"), _record("b")])
    refused = {"key": "c", "id": "c", "status": "malformed", "problem": "p", "text": "junk"}
    assert cache.append_many([refused, refused]) == 2  # every refused answer is kept
    stale = ResponseCache.revocation("b", {"text": "an answer somebody else wrote"}, "r")
    cache.append_many([ResponseCache.revocation("a", cache.get("a"), "refused"), stale])
    assert cache.keys() == {"b"}  # a revocation withdraws only the answer it names
    assert cache.append_many([{**_record("a"), "text": "asked again"}]) == 1
    reread = ResponseCache(tmp_path)
    assert reread.keys() == {"a", "b"} and reread.get("a")["text"] == "asked again"
    assert reread.malformed_lines == 2 and reread.get("c") is None


def _append_from_process(folder: str, keys: list[str]) -> None:
    cache = ResponseCache(folder)
    for key in keys:
        cache.append_many([_record(key)])


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(tmp_path):
    shared = [f"shared{i}" for i in range(40)]
    jobs = [shared + [f"p{p}-{i}" for i in range(80)] for p in range(3)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    processes = [
        context.Process(target=_append_from_process, args=(str(tmp_path), keys)) for keys in jobs
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    lines = (tmp_path / "responses.jsonl").read_bytes().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 40 + 3 * 80


# ---- the budget --------------------------------------------------------------------------------


def test_prices_come_from_the_table_with_dated_snapshots():
    table = PriceTable.load()
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")
    assert table.price("gpt-4o-mini").input == pytest.approx(0.15)
    assert table.price("gpt-4o-pro") is None  # a different model, not a snapshot
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert table.cost("gpt-4o", 1_000_000, 1_000_000, batch=True) == pytest.approx(6.25)


def test_a_money_budget_needs_a_price_and_a_budget_needs_max_tokens():
    with pytest.raises(BudgetError, match="needs a price"):
        BudgetGuard(model="my-vllm-model", prices=PriceTable.load(), budget_usd=1.0)
    guard = BudgetGuard(model="gpt-4o", prices=PriceTable.load(), budget_tokens=1000)
    body = chat_body("gpt-4o", _judge())
    body.pop("max_tokens")
    with pytest.raises(BudgetError, match="no max_tokens"):
        guard.estimate(body, "j1")


def test_the_guard_reserves_the_worst_case_and_stops_before_the_budget():
    table = PriceTable(models={"m": Price(input=1000.0, output=2000.0)})
    guard = BudgetGuard(model="m", prices=table, budget_usd=3.0)
    body = chat_body("m", _judge())
    estimate = guard.estimate(body, "j1")
    assert estimate.tokens > body["max_tokens"]
    admitted = 0
    while guard.try_reserve(guard.estimate(body, "j1")) is not None:
        admitted += 1
    assert admitted >= 1 and guard.stopped
    assert admitted * estimate.usd <= 3.0 < (admitted + 1) * estimate.usd


# ---- retries -----------------------------------------------------------------------------------


def _status_error(status: int, headers: dict[str, str]) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://teacher/v1/chat/completions")
    response = httpx2.Response(status, headers=headers, request=request)
    return openai.APIStatusError("boom", response=response, body=None)


def test_what_is_retried_and_how_long_it_waits():
    assert is_retryable(_status_error(429, {}))
    assert is_retryable(_status_error(503, {}))
    assert not is_retryable(_status_error(400, {}))
    assert not is_retryable(_status_error(401, {}))
    request = httpx2.Request("POST", "http://teacher/v1/chat/completions")
    assert is_retryable(openai.APIConnectionError(request=request))
    assert is_retryable(openai.APITimeoutError(request=request))

    assert retry_after_s(_status_error(429, {"retry-after-ms": "250"})) == pytest.approx(0.25)
    assert retry_after_s(_status_error(429, {"retry-after": "3"})) == pytest.approx(3.0)
    assert 1.0 <= backoff_s(0, _status_error(429, {"retry-after": "1"})) <= 1.2
    waits = [backoff_s(attempt, base_s=0.5, cap_s=8.0) for attempt in range(12)]
    assert all(0 <= wait <= 8.0 for wait in waits)


def _error_with_body(status: int, body: object) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://teacher/v1/chat/completions")
    response = httpx2.Response(status, request=request)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=body)


def test_error_texts_keep_the_servers_explanation():
    openai_style = {"message": "The model `x` does not exist", "type": "invalid_request_error"}
    assert describe(_error_with_body(404, openai_style)) == (
        "HTTP 404: The model `x` does not exist (type=invalid_request_error)"
    )
    fastapi = {"detail": "Unexpected fields in the request: {'foo'}"}
    assert "Unexpected fields in the request" in describe(_error_with_body(422, fastapi))
    assert describe(_error_with_body(500, "Internal Server Error")) == (
        "HTTP 500: Internal Server Error"
    )
    long = describe(_error_with_body(500, "x" * 5000))
    assert len(long) < 500 and long.endswith("...")


def test_a_refused_connection_is_not_called_a_timeout():
    import asyncio
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = TeacherEndpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m")

    async def post() -> BaseException:
        client = endpoint.client()  # the SDK's aiohttp transport, as the jobs use it
        try:
            await client.post("/chat/completions", cast_to=object, body={})
        except openai.APIError as error:
            return error
        finally:
            await client.close()
        raise AssertionError("nothing listens there, yet the request went through")

    error = asyncio.run(post())
    assert isinstance(error, openai.APITimeoutError)  # what the transport calls it...
    assert failure_kind(error) == "refused"  # ...and what it is
    assert describe(error).startswith(f"connection refused at 127.0.0.1:{port}")
    assert is_retryable(error)


def test_a_re_ask_is_never_the_same_body():
    body = chat_body("m", _judge())
    first = follow_up_body(body, "Sure! {score: 3", "not valid JSON (Expecting value)")
    second = follow_up_body(first, "Sure! {score: 3", "not valid JSON (Expecting value)")
    assert first["messages"][:2] == body["messages"]
    assert first["messages"][2] == {"role": "assistant", "content": "Sure! {score: 3"}
    assert "could not be used: not valid JSON" in first["messages"][3]["content"]
    assert second["messages"][:4] == first["messages"] and len(second["messages"]) == 6
    assert (first["seed"], second["seed"]) == (body["seed"] + 1, body["seed"] + 2)
    assert len({request_key(b) for b in (body, first, second)}) == 3
    assert body["messages"] == _judge().messages  # the original is left as it was


def test_a_text_fallback_request_takes_prose_a_strict_one_refuses_it():
    strict = _judge()
    lenient = TeacherRequest(**{**strict.__dict__, "text_fallback": True})
    prose = "The snippet prints a greeting.\nScore: 2"
    assert not read_answer(strict, prose, "stop").usable
    taken = read_answer(lenient, prose, "stop")
    assert taken.usable and taken.parsed is None and taken.text == prose
    assert read_answer(lenient, '{"reason": "r", "score": 1}', "stop").parsed["score"] == 1
    assert not read_answer(lenient, prose, "length").usable  # truncated is still refused
    key = request_key(chat_body("m", strict))
    assert key == request_key(chat_body("m", lenient))  # the same body is sent...
    served = {"id": "m"}
    assert cache_key(key, served, strict) != cache_key(key, served, lenient)  # ...but what
    # was accepted differs, so the cache keeps them apart; and so does another model card
    assert cache_key(key, served, strict) != cache_key(key, {"id": "m", "created": 1}, strict)


def test_the_identity_leaves_out_a_date_stamped_at_listing_time():
    now = 1_800_000_000.0
    card = {"id": "m", "object": "model", "created": 1_700_000_000, "owned_by": "org"}
    assert identity_of(card, now) == {"id": "m", "created": 1_700_000_000, "owned_by": "org"}
    vllm = {"id": "m", "created": int(now) - 3, "owned_by": "vllm", "root": "/models/m"}
    assert identity_of(vllm, now) == {"id": "m", "owned_by": "vllm", "root": "/models/m"}
    served = {"status": {"value": "loaded"}, "id": "m", "created": 0, "owned_by": "local"}
    assert identity_of(served, now) == {"id": "m", "created": 0, "owned_by": "local"}


def test_the_gate_starts_small_grows_on_quick_answers_and_halves_on_slow_ones(monkeypatch):
    import asyncio

    from phi1lib.teacher import pacing

    clock = [0.0]
    monkeypatch.setattr(pacing.time, "monotonic", lambda: clock[0])

    async def scenario() -> None:
        gate = pacing.AdaptiveLimit(ceiling=16, timeout_s=10.0)
        assert gate.width == 4
        for _ in range(4):  # one round of quick answers doubles the width
            await gate.release(await gate.acquire(), pacing.ANSWER)
        assert gate.width == 8
        tickets = [await gate.acquire() for _ in range(8)]
        clock[0] += 6.0  # the whole round answered after 6 s of a 10 s timeout
        for ticket in tickets:
            await gate.release(ticket, pacing.ANSWER)
        assert gate.width == 4 and gate.lowered == 1  # halved once, not once per answer
        await gate.release(await gate.acquire(), pacing.ERROR)
        assert gate.width == 4  # an error status says nothing about queueing
        await gate.release(await gate.acquire(), pacing.TIMEOUT)
        assert gate.width == 2
        for _ in range(40):
            await gate.release(await gate.acquire(), pacing.ANSWER)
        assert 2 < gate.width <= 16 and gate.summary()["lowest"] == 2

    asyncio.run(scenario())


# ---- Batch API files, in OpenAI's exact format -----------------------------------------------

OUTPUT_LINE = (
    '{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, '
    '"request_id": "req_123", "body": {"id": "chatcmpl-123", "object": "chat.completion", '
    '"created": 1711652795, "model": "gpt-4o-mini", "choices": [{"index": 0, "message": '
    '{"role": "assistant", "content": "Hello."}, "logprobs": null, "finish_reason": "stop"}], '
    '"usage": {"prompt_tokens": 22, "completion_tokens": 2, "total_tokens": 24}, '
    '"system_fingerprint": "fp_123"}}, "error": null}'
)
ERROR_LINE = (
    '{"id": "batch_req_456", "custom_id": "request-1", "response": null, '
    '"error": {"code": "invalid_prompt", "message": "Your prompt was flagged."}}'
)


def test_batch_input_and_output_lines_follow_openai_format():
    body = chat_body("gpt-4o-mini", _judge())
    line = batch_input_line("key-1", body)
    assert line == {
        "custom_id": "key-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }

    answered = parse_batch_line(OUTPUT_LINE)
    assert answered.custom_id == "request-2" and answered.status_code == 200
    assert answered.body["choices"][0]["message"]["content"] == "Hello."
    assert answered.body["usage"]["prompt_tokens"] == 22
    failed = parse_batch_line(ERROR_LINE)
    assert failed.status_code is None and "invalid_prompt" in failed.error
    with pytest.raises(BatchFormatError, match="custom_id"):
        parse_batch_line('{"response": {}}', "out.jsonl")


# ---- token counting and endpoints ------------------------------------------------------------


def test_token_pieces_cover_the_text_and_truncate_cleanly():
    text = "def add(a, b):\n    return a + b  # sum_of_two\n\nprint(add(1, 22))\n"
    assert truncate_tokens(text, 10_000) == text
    assert 15 <= count_tokens(text) <= len(text) / 1.5
    assert count_tokens(truncate_tokens(text, 7)) == 7


def test_endpoints_refuse_bad_settings_and_never_record_the_key():
    with pytest.raises(ValueError, match="not an http"):
        TeacherEndpoint(base_url="localhost:8000", model="m")
    endpoint = TeacherEndpoint(base_url="http://127.0.0.1:8000/v1", model="m", api_key="secret")
    assert "secret" not in json.dumps(endpoint.describe())


def test_run_requests_refuses_repeated_ids(tmp_path):
    from phi1lib.teacher import run_requests

    endpoint = TeacherEndpoint(base_url="http://127.0.0.1:9/v1", model="m")
    request = _judge()
    with pytest.raises(ValueError, match="repeated"):
        run_requests(endpoint, [request, request], cache_dir=tmp_path, progress=False)
    assert (
        not Path(tmp_path, "responses.jsonl").exists()
        or os.path.getsize(Path(tmp_path, "responses.jsonl")) == 0
    )


def test_endpoints_from_profiles_read_the_key_from_the_named_variable(monkeypatch):
    from phi1lib.profiles import load_profile
    from phi1lib.teacher.endpoint import EndpointError, endpoint_kind

    assert endpoint_kind("https://api.openai.com/v1") == "openai"
    assert endpoint_kind("https://my-res.openai.azure.com/openai/v1/") == "azure"
    assert endpoint_kind("http://localhost:8000/v1") == "openai-compatible"

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EndpointError, match=r"\$OPENAI_API_KEY"):
        TeacherEndpoint.from_profile(load_profile("gpu", use_env=False))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    endpoint = TeacherEndpoint.from_profile(load_profile("gpu", use_env=False))
    assert (endpoint.kind, endpoint.model, endpoint.api_key) == ("openai", "gpt-4o-mini", "sk-test")
    assert endpoint.budget_usd == 20.0 and not endpoint.batch
    assert TeacherEndpoint.from_profile(load_profile("phi-1-small", use_env=False)).batch

    vllm = load_profile(
        "tiny",
        {"teacher.endpoint": "http://localhost:8000/v1", "teacher.api_key_env": "NO_SUCH_VAR"},
    )
    assert TeacherEndpoint.from_profile(vllm).kind == "openai-compatible"


def test_answers_without_usage_are_charged_the_worst_case():
    import asyncio

    guard = BudgetGuard(model="m", prices=PriceTable(models={}), budget_tokens=100_000)
    body = chat_body("m", _judge())

    async def settle_three() -> None:
        reported = await guard.reserve(guard.estimate(body, "a"))
        await guard.settle(reported, {"prompt_tokens": 400, "completion_tokens": 20})
        silent = await guard.reserve(guard.estimate(body, "b"))
        await guard.settle(silent, None)
        failed = await guard.reserve(guard.estimate(body, "c"))
        await guard.settle(failed, None, billed=False)
        assert guard.spent_tokens == 420 + silent.tokens

    asyncio.run(settle_three())
    assert guard.usage["m"]["requests"] == 2
