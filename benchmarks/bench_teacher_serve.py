"""The teacher client against ``transformers serve``: failing fast, and concurrency that adapts.

Starts Hugging Face's OpenAI-compatible server on 127.0.0.1 with the tiny random Llama of the
test suite (``tests/transformers_server.py``) and measures, in one run:

1. an unknown model name: how long a job of ``--requests`` requests takes to fail, and how many
   requests reached the server (the server answers a bare HTTP 500);
2. a server that generates one answer at a time, asked for ``--paced`` requests with
   ``concurrency = 16`` and a timeout of ``--timeout`` seconds, once with the adaptive gate and
   once with sixteen requests always in flight (the client before the gate): requests sent,
   timeouts, failures, wall time, and the width the gate settled at.

Timings depend on the machine's load; the comparison of the two pacing runs is made within one
run, against the same server.

    .venv/bin/python benchmarks/bench_teacher_serve.py [--requests 150] [--paced 32] [--timeout 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the shared server

from transformers_server import TransformersServer, build_tiny_model  # noqa: E402

from phi1lib.teacher import TeacherEndpoint, TeacherUnavailable, online, run_requests, tasks  # noqa: E402
from phi1lib.teacher.pacing import AdaptiveLimit  # noqa: E402

TEXTBOOK = {"topic": "loops", "subtopic": "while", "audience": "beginners", "style": "terse"}


class FixedLimit(AdaptiveLimit):
    """The gate without adapting: ``ceiling`` requests always in flight."""

    def __init__(self, ceiling: int, timeout_s: float):
        super().__init__(ceiling, timeout_s, start=ceiling)

    def _decrease(self) -> None:
        return None

    def _increase(self) -> None:
        return None


def requests(count: int, prefix: str) -> list:
    return [tasks.textbook_request(TEXTBOOK, f"{prefix}{i}", seed=i) for i in range(count)]


def unknown_model(server: TransformersServer, count: int, cache: Path) -> None:
    endpoint = TeacherEndpoint(base_url=server.base_url, model="no-such-org/no-such-model")
    before, started = server.chat_requests(), time.monotonic()
    try:
        run_requests(endpoint, requests(count, "u"), cache, progress=False)
    except TeacherUnavailable as error:
        message = str(error)
    else:
        raise SystemExit("the job with an unknown model did not fail")
    print(
        f"unknown model, {count} requests: failed after {time.monotonic() - started:.1f} s, "
        f"{server.chat_requests() - before} chat request(s) reached the server\n  {message}"
    )


def paced(
    server: TransformersServer, model: Path, count: int, timeout_s: float, fixed: bool, cache: Path
) -> None:
    endpoint = TeacherEndpoint(
        base_url=server.base_url,
        model=str(model),
        concurrency=16,
        timeout_s=timeout_s,
        max_retries=2,
        retry_base_s=0.2,
    )
    gate = online.AdaptiveLimit
    online.AdaptiveLimit = FixedLimit if fixed else AdaptiveLimit
    try:
        before, started = server.chat_requests(), time.monotonic()
        report = run_requests(endpoint, requests(count, "p"), cache, progress=False)
        wall = time.monotonic() - started
    finally:
        online.AdaptiveLimit = gate
    timeouts = sum("timed out" in (r.error or "") for r in report.results)
    label = "16 always in flight" if fixed else "adaptive, at most 16"
    print(
        f"{label:>21}: {report.counts['ok']} ok, {report.counts['failed']} failed "
        f"({timeouts} by timeouts), {report.http_requests} sent, {report.retries} retries, "
        f"{server.chat_requests() - before} at the server, {wall:.1f} s; gate {report.concurrency}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--paced", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model = build_tiny_model(root / "tiny-llama")
        started = time.monotonic()
        with TransformersServer(root / "serve") as server:
            print(f"transformers serve answered after {time.monotonic() - started:.1f} s")
            unknown_model(server, args.requests, root / "cache-unknown")
            endpoint = TeacherEndpoint(base_url=server.base_url, model=str(model))
            warm = run_requests(endpoint, requests(3, "w"), root / "cache-warm", progress=False)
            per_answer = warm.wall_s / 3
            print(f"one answer at a time: about {per_answer:.2f} s each ({warm.summary()})")
            for fixed in (True, False):
                cache = root / f"cache-{'fixed' if fixed else 'adaptive'}"
                paced(server, model, args.paced, args.timeout, fixed, cache)


if __name__ == "__main__":
    main()
