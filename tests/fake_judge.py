"""A fake LLM judge for tests: an OpenAI-compatible chat endpoint on 127.0.0.1.

It reads chapter 6's judge prompt and grades 10 when the candidate code equals the reference,
``wrong_grade`` otherwise, so a test knows every grade in advance and can count the requests
that reached it (``requests``). It lists one model, ``judge``, at ``/v1/models``. With
``answer_as="text"`` it answers as a model that ignores ``response_format`` would, in prose
ending with "Grade: N/10".
"""

from __future__ import annotations

import asyncio
import json
import re
import threading

from aiohttp import web


class JudgeServer:
    """Start with ``with JudgeServer(wrong_grade=2) as server:``; the endpoint is
    ``http://127.0.0.1:{server.port}/v1``."""

    def __init__(self, wrong_grade: int, answer_as: str = "json"):
        self.wrong_grade = wrong_grade
        self.answer_as = answer_as
        self.requests: list[dict] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        user = next(m["content"] for m in body["messages"] if "<reference>" in m["content"])
        reference = re.search(r"<reference>\n(.*)\n</reference>", user, re.S).group(1)
        candidate = re.search(r"<code>\n(.*)\n</code>", user, re.S).group(1)
        grade = 10 if candidate == reference else self.wrong_grade
        answer = json.dumps({"assessment": f"graded {grade}", "grade": grade})
        if self.answer_as == "text":
            answer = f"The candidate was compared with the reference.\n\nGrade: {grade}/10"
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        card = {"id": "judge", "object": "model", "created": 1700000000, "owned_by": "tests"}
        return web.json_response({"object": "list", "data": [card]})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> JudgeServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the judge server did not start"
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
