"""Teacher client throughput against the offline server: achieved requests/s vs the latency bound.

With ``concurrency`` requests in flight and every answer taking ``latency`` seconds, no client
can do better than ``concurrency / latency`` requests per second (32 / 0.2 s = 160/s). The
book's target is at least 90% of that bound: the client's own overhead (HTTP,
JSON, validation, the fsync'd cache, the progress bar) must stay small next to the latency.
The figure printed is the ratio achieved / bound, measured in one run. On a shared machine the
client and the server compete with everything else for the CPU, so the script also prints the
CPU each side spends per request: ``1 / (client + server CPU)`` is the rate the pair could keep
up on one free core, a figure that does not depend on the machine's load.

    .venv/bin/python benchmarks/bench_teacher.py [--requests 1600] [--latency 0.2] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from phi1lib.teacher import LocalTeacherServer, TeacherEndpoint, run_requests, tasks
from phi1lib.teacher.offline import ServerConfig

SNIPPETS = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    print(i * i)\n",
    'def is_even(n):\n    """True when n is even."""\n    return n % 2 == 0\n',
    "import os\nCONFIG = os.environ.get('APP_CONFIG', 'default')\n",
]


def judge_requests(count: int) -> list:
    """Distinct judge prompts (the cheapest task to write, so the client is what is measured)."""
    return [
        tasks.judge_request(SNIPPETS[i % len(SNIPPETS)] + f"# variant {i}\n", f"bench{i}")
        for i in range(count)
    ]


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--content-module", default=ServerConfig.content_module)
    args = parser.parse_args()

    config = ServerConfig(latency=args.latency, content_module=args.content_module)
    requests = judge_requests(args.requests)
    with LocalTeacherServer(config) as server, tempfile.TemporaryDirectory() as cache:
        endpoint = TeacherEndpoint(
            base_url=server.base_url, model=config.model, kind="local", concurrency=args.concurrency
        )
        run_requests(endpoint, judge_requests(args.concurrency), progress=False)  # warm up
        load = os.getloadavg()[0]
        server_before = process_cpu_s(server.process.pid)
        cpu_before = time.process_time()
        started = time.perf_counter()
        report = run_requests(endpoint, requests, cache_dir=cache, progress=False)
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_before
        server_after = process_cpu_s(server.process.pid)
    assert report.counts["ok"] == args.requests, report.summary()
    achieved = args.requests / wall
    bound = args.concurrency / args.latency
    print(f"requests: {args.requests}, concurrency: {args.concurrency}, latency: {args.latency} s")
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPUs")
    client_ms = 1000 * client_cpu / args.requests
    print(f"client CPU: {client_ms:.2f} ms per request")
    if server_before is not None and server_after is not None:
        server_ms = 1000 * (server_after - server_before) / args.requests
        print(f"server CPU: {server_ms:.2f} ms per request")
        print(f"one free core could drive {1000 / (client_ms + server_ms):.0f} requests/s")
    print(f"achieved: {achieved:.1f} requests/s; bound: {bound:.1f} requests/s")
    print(f"ratio achieved/bound: {achieved / bound:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
