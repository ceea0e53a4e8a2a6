"""``phi1 teacher ...``: serve the offline teacher from the shell.

``phi1 teacher serve [--port N] [--latency S] [--error-rate X] [--mistake-rate X] ...`` prints
its base URL on the first line and serves until interrupted; point any OpenAI client at that
URL. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import argparse

from phi1lib.teacher.offline.server_config import ServerConfig


def _serve(args: argparse.Namespace) -> int:
    from phi1lib.teacher.offline.server import run_server

    return run_server(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``phi1 teacher serve`` to the ``phi1`` command line."""
    teacher = subparsers.add_parser("teacher", help="the LLM teacher (offline server)")
    commands = teacher.add_subparsers(dest="teacher_command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the offline procedural teacher (OpenAI-compatible) until interrupted",
        description="Serve the offline procedural teacher; the first line printed is its base URL.",
    )
    ServerConfig.add_arguments(serve)
    serve.set_defaults(handler=_serve)
