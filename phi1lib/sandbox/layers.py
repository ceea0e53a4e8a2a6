"""Never silently weaker: which isolation layers a run had, what a missing one exposes.

The sandbox uses every layer the machine allows (``isolation.py``) and records them in each
run's result. This module compares them with full isolation: :func:`missing_layers` names
what is absent, :func:`warn_if_weaker` says so once per process, plainly, with what each gap
exposes, and :func:`require_isolation` is what every stage that executes code calls first: it
returns the layers for the stage's manifest, and with the profile's
``sandbox.require_full_isolation`` refuses to run on a weaker machine instead.

The default profiles do not refuse (``require_full_isolation = false``): the book must build on
a reader's laptop or in a container that forbids namespaces, where the Python guard and
resource limits are all there is; the warning, the manifests and the line each chapter prints
say which promises then do not hold. Set it to true on a machine known to allow everything
(this project's build machines do) to make a weaker sandbox an error, not a footnote.
Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from typing import Any

# Every layer of full isolation, and what a program can do when that one is missing.
EXPOSURES = {
    "pid-namespace": "it sees and may signal this user's other processes, and a daemon it "
    "starts is only ended by the zygote's clean-up",
    "network-namespace": "it can open network connections with ctypes or _socket (only "
    "Python's socket functions are blocked)",
    "private-filesystem": "it sees the whole filesystem: only file permissions and the Python "
    "guard stop it reading secrets or changing files outside its scratch folder",
    "private-proc": "it can read other processes' details (command lines, and environments "
    "where permissions allow) under /proc",
    "ipc-namespace": "it can reach other processes' System V shared memory and message queues",
    "separate-uid": "it runs as the zygote's own user, so whatever that user may write it may "
    "write too (everything, where that user is root)",
    "process-limit": "nothing caps how many processes it starts (a fork bomb)",
    "memory-cgroup": "memory is capped per process only: shared memory, memfd and many "
    "processes together can take more than the limit",
    "no-new-privileges": "a setuid binary it runs could give it more privileges",
}
FULL_ISOLATION = (*EXPOSURES, "python-guard")
# An unprivileged user's zygote cannot hand out fresh user ids; its user namespace keeps runs
# from the machine's real root, so the uid layer counts as present there.
_EQUIVALENT = {"separate-uid": "user-namespace"}

_warned = False
_lock = threading.Lock()


class SandboxIsolationWarning(UserWarning):
    """The sandbox runs with fewer layers than full isolation on this machine."""


class IsolationRefused(RuntimeError):
    """The profile requires full isolation and this machine does not allow it."""


def missing_layers(layers: Iterable[str]) -> list[str]:
    """The layers of full isolation that ``layers`` (a run's ``isolation``) lacks."""
    present = set(layers)
    return [
        name
        for name in FULL_ISOLATION
        if name not in present and _EQUIVALENT.get(name) not in present
    ]


def describe_missing(layers: Iterable[str]) -> str:
    """One plain paragraph: what is missing and what a program can therefore do."""
    missing = missing_layers(layers)
    if not missing:
        return "The sandbox has every layer of full isolation on this machine."
    gaps = "; ".join(
        f"without {name}, {EXPOSURES.get(name, 'it is unguarded')}" for name in missing
    )
    return (
        f"The sandbox runs untrusted programs with fewer layers than full isolation here "
        f"(missing: {', '.join(missing)}). A program can do more than the book promises: {gaps}. "
        "Set sandbox.require_full_isolation = true in the profile to refuse instead."
    )


def warn_if_weaker(layers: Iterable[str]) -> None:
    """Warn once per process when ``layers`` fall short of full isolation."""
    global _warned
    layers = list(layers)
    if not missing_layers(layers):
        return
    with _lock:
        if _warned:
            return
        _warned = True
    warnings.warn(describe_missing(layers), SandboxIsolationWarning, stacklevel=3)


def machine_layers() -> list[str]:
    """The layers a run gets on this machine now (starts the shared pool's zygote if needed)."""
    from phi1lib.sandbox.pool import shared_pool

    return list(shared_pool(1).layers())


def require_isolation(settings: Any) -> dict[str, Any]:
    """Check the machine against the profile's ``sandbox`` settings; what the manifest records.

    Raises :class:`IsolationRefused` when ``settings.require_full_isolation`` is set and a
    layer is missing. Every stage that executes code calls it before the first program runs.
    """
    layers = machine_layers()
    missing = missing_layers(layers)
    if missing and settings.require_full_isolation:
        raise IsolationRefused(
            describe_missing(layers).replace(
                "Set sandbox.require_full_isolation = true in the profile to refuse instead.",
                "The profile sets sandbox.require_full_isolation, so nothing was run.",
            )
        )
    return {"layers": layers, "missing": missing, "full": not missing}


def isolation_report(record: dict[str, Any] | None = None) -> str:
    """The line a chapter prints: the layers its programs ran under (from a manifest's
    ``sandbox`` record, else this machine's now)."""
    layers = record["layers"] if record else machine_layers()
    missing = missing_layers(layers)
    head = f"sandbox layers: {', '.join(layers)}"
    if not missing:
        return head + " (full isolation)"
    return head + "\n" + describe_missing(layers)
