"""The offline teacher server, spoken to by stock clients: OpenAI's SDK and plain HTTP."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest

from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.teacher import LocalTeacherServer, tasks
from phi1lib.teacher.batch import parse_batch_line
from phi1lib.teacher.keys import chat_body
from phi1lib.teacher.offline import ServerConfig

CURRICULUM = load_curriculum()
MODEL = ServerConfig.model
TEXTBOOK = {  # constraints the offline teacher knows
    "topic": CURRICULUM.topics[0]["topic"],
    "subtopic": CURRICULUM.topics[0]["subtopics"][0],
    "audience": CURRICULUM.audiences[0],
    "style": CURRICULUM.styles[0],
}
EXERCISE = {"function_name": "sum_of_squares", "topic": "arithmetic", "difficulty": "easy"}


@pytest.fixture(scope="module")
def server():
    with LocalTeacherServer(ServerConfig()) as running:
        yield running


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=server.base_url, api_key="any", max_retries=0) as stock:
        yield stock


def _create(client: openai.OpenAI, request, **extra):
    body = {**chat_body(MODEL, request), **extra}
    return client.chat.completions.create(**body)


def test_a_stock_client_lists_the_model(client):
    models = client.models.list()
    assert [model.id for model in models.data] == [MODEL]
    card = models.data[0]
    assert (card.created, card.owned_by) == (0, "phi1lib")  # the same on every start
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-5")


def test_completions_answer_the_three_tasks_with_usage(client):
    judged = _create(client, tasks.judge_request("def add(a, b):\n    return a + b\n", "j"))
    verdict = json.loads(judged.choices[0].message.content)
    assert set(verdict) == {"reason", "score"} and 0 <= verdict["score"] <= 5
    assert judged.usage.prompt_tokens > 100 and judged.usage.completion_tokens > 0
    assert judged.usage.total_tokens == judged.usage.prompt_tokens + judged.usage.completion_tokens

    section = _create(client, tasks.textbook_request(TEXTBOOK, "t", seed=3))
    text = section.choices[0].message.content
    assert "```python" in text and section.choices[0].finish_reason == "stop"

    exercise = json.loads(
        _create(client, tasks.exercise_request(EXERCISE, "e", seed=1)).choices[0].message.content
    )
    assert set(exercise) == set(tasks.EXERCISE_FIELDS)
    assert exercise["function_name"] == "sum_of_squares"


def test_answers_are_deterministic_in_request_and_seed(client):
    def section(seed: int) -> str:
        request = tasks.textbook_request(TEXTBOOK, "t", seed=seed)
        return _create(client, request).choices[0].message.content

    assert section(11) == section(11)
    assert len({section(seed) for seed in range(6)}) > 1


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client):
    request = tasks.textbook_request(TEXTBOOK, "t", seed=0)
    cut = _create(client, request, max_tokens=12)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 12


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"model": "gpt-4"}, 404, "does not exist"),
        ({"messages": [{"role": "user", "content": "Write a poem."}]}, 400, "Task:"),
        ({"messages": []}, 400, "non-empty"),
        ({"stream": True}, 400, "streaming"),
        ({"seed": "seven"}, 400, "seed"),
        ({"max_tokens": 0}, 400, "max_tokens"),
    ],
)
def test_bad_requests_get_openai_style_4xx_errors(client, change, status, needle):
    body = {**chat_body(MODEL, tasks.exercise_request(EXERCISE, "e", seed=0)), **change}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.status_code == status
    assert needle in caught.value.body["message"]
    assert caught.value.body["type"] == "invalid_request_error"


def test_missing_constraints_and_wrong_formats_are_refused(client):
    request = tasks.exercise_request(EXERCISE, "e", seed=0)
    content = request.messages[-1]["content"].replace("- difficulty: easy\n", "")
    messages = [request.messages[0], {"role": "user", "content": content}]
    with pytest.raises(openai.BadRequestError, match="difficulty"):
        client.chat.completions.create(model=MODEL, messages=messages)
    textbook = tasks.textbook_request(TEXTBOOK, "t", seed=0)
    with pytest.raises(openai.BadRequestError, match="markdown"):
        _create(client, textbook, response_format={"type": "json_object"})


def test_raw_http_errors_are_json_too(server):
    with httpx2.Client(base_url=server.base_url.removesuffix("/v1")) as http:
        not_json = http.post("/v1/chat/completions", content=b"{not json")
        assert (
            not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
        )
        missing = http.get("/v1/nowhere")
        assert (
            missing.status_code == 404
            and missing.json()["error"]["type"] == "invalid_request_error"
        )
        wrong_method = http.get("/v1/chat/completions")
        assert wrong_method.status_code == 405 and "error" in wrong_method.json()
        assert http.get("/health").json()["status"] == "ok"


def test_a_deeply_nested_body_is_bad_input_not_an_internal_error(server):
    deep = b"[" * 100_000 + b"]" * 100_000  # valid JSON, too deep for Python's parser
    deep_object = b'{"model": ' * 100_000 + b"1" + b"}" * 100_000
    with httpx2.Client(base_url=server.base_url.removesuffix("/v1"), timeout=30) as http:
        for body in (deep, deep_object):
            answer = http.post("/v1/chat/completions", content=body)
            assert answer.status_code == 400
            assert "nested too deeply" in answer.json()["error"]["message"]
        batch = http.post("/v1/batches", content=deep)
        assert batch.status_code == 400 and "nested too deeply" in batch.json()["error"]["message"]
        assert http.get("/health").json()["status"] == "ok"  # it still serves
        stats = http.get("/phi1/stats").json()["counts"]
    assert stats["refused"] >= 2


def test_the_batch_api_round_trip_with_the_stock_client(client):
    requests = [
        tasks.exercise_request({**EXERCISE, "function_name": f"f{i}"}, f"e{i}", seed=i)
        for i in range(5)
    ]
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": chat_body(MODEL, r),
        }
        for i, r in enumerate(requests)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data) and uploaded.purpose == "batch"
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 30
    while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.request_counts.total == batch.request_counts.completed == 5
    output = client.files.content(batch.output_file_id).text.splitlines()
    parsed = {line.custom_id: line for line in map(parse_batch_line, output)}
    assert set(parsed) == {f"req-{i}" for i in range(5)}
    answer = json.loads(parsed["req-3"].body["choices"][0]["message"]["content"])
    assert answer["function_name"] == "f3"


def test_a_bad_batch_input_fails_with_line_errors(client):
    data = b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'
    uploaded = client.files.create(file=("bad.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for _ in range(100):
        batch = client.batches.retrieve(batch.id)
        if batch.status == "failed":
            break
        time.sleep(0.05)
    assert batch.status == "failed" and batch.errors.data[0].line == 1
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.batches.create(
            input_file_id="file-x", endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_the_phi1_command_serves_and_stops_on_sigterm():
    phi1 = shutil.which("phi1", path=str(Path(sys.executable).parent))
    command = [phi1] if phi1 else [sys.executable, "-m", "phi1lib.cli"]
    process = subprocess.Popen(
        [*command, "teacher", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="x") as stock:
            assert stock.models.list().data[0].id == MODEL
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()


def test_invalid_fault_settings_are_refused():
    with pytest.raises(ValueError, match="add up"):
        ServerConfig(error_rate=0.8, drop_rate=0.5)
    result = subprocess.run(
        [sys.executable, "-m", "phi1lib.teacher.offline", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "error_rate" in result.stderr


def test_run_requests_works_inside_a_running_event_loop(server):
    """Jupyter's kernel runs an event loop; the sync call must still work there."""
    import asyncio

    from phi1lib.teacher import TeacherEndpoint, run_requests

    endpoint = TeacherEndpoint(base_url=server.base_url, model=MODEL)
    requests = [tasks.judge_request(f"x = {i}\nprint(x)\n", f"j{i}") for i in range(3)]

    async def inside_a_loop():
        return run_requests(endpoint, requests, progress=False)

    report = asyncio.run(inside_a_loop())
    assert report.counts["ok"] == 3
    assert all(0 <= tasks.parse_judgement(result)[0] <= 5 for result in report.results)


def test_the_mistake_rate_plants_bugs_in_solutions(server):
    requests = [tasks.exercise_request(EXERCISE, f"e{seed}", seed=seed) for seed in range(4)]
    buggy_config = ServerConfig(mistake_rate=1.0)
    with (
        LocalTeacherServer(buggy_config) as buggy,
        openai.OpenAI(base_url=buggy.base_url, api_key="x") as stock,
    ):
        planted = [json.loads(_create(stock, r).choices[0].message.content) for r in requests]
    with openai.OpenAI(base_url=server.base_url, api_key="x") as stock:
        clean = [json.loads(_create(stock, r).choices[0].message.content) for r in requests]
    for bad, good in zip(planted, clean, strict=True):
        assert bad["signature"] == good["signature"] and bad["tests"] == good["tests"]
        assert bad["solution"] != good["solution"]


def test_teacher_endpoint_starts_and_stops_the_local_server():
    from phi1lib.profiles import load_profile
    from phi1lib.teacher import run_requests, teacher_endpoint

    profile = load_profile("smoke", use_env=False)
    with teacher_endpoint(profile) as endpoint:
        assert endpoint.kind == "local" and endpoint.base_url.startswith("http://127.0.0.1:")
        report = run_requests(endpoint, [tasks.judge_request("print(1)\n", "j")], progress=False)
        assert report.results[0].ok
        assert report.results[0].provenance["endpoint_kind"] == "local"
        url = endpoint.base_url
    with pytest.raises(httpx2.HTTPError):
        httpx2.get(f"{url}/models", timeout=2)
