"""Run programs in the sandbox, one or many at a time: the interface other areas call.

A :class:`SandboxPool` owns up to N zygote processes (``zygote.py``) and hands each program to
an idle one from a thread, so at most N programs run at once; results come back in input
order. ``run_program`` and ``run_programs`` use one shared pool that lives as long as the
Python process, so repeated calls do not pay for starting interpreters again. Introduced in
chapter 2 ("Executing the textbooks"); the evaluation chapters run every completion through it.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from tqdm import tqdm

from phi1lib.sandbox.client import RunRefused, ZygoteDied, ZygoteProcess
from phi1lib.sandbox.limits import SandboxLimits
from phi1lib.sandbox.result import SandboxResult, classify, unrun_result
from phi1lib.sandbox.split import TestSplit


class SandboxPool:
    """Up to ``workers`` zygotes, started when first needed and reused until :meth:`close`.

    ``namespaces=False`` keeps to the layers that need no namespace (resource limits, a
    separate user id when root, the guard) and ``cgroup=False`` does without the memory
    cgroup; the tests use them to check those fallbacks.
    """

    def __init__(self, workers: int = 2, *, namespaces: bool = True, cgroup: bool = True) -> None:
        if workers < 1:
            raise ValueError(f"a sandbox pool needs at least one worker, got {workers}")
        if not sys.platform.startswith("linux"):
            raise RuntimeError(
                "the sandbox needs Linux (namespaces, /proc, pidfd); on another system run the "
                "notebooks in a Linux container or a cloud notebook"
            )
        self.workers = workers
        self.namespaces = namespaces
        self.cgroup = cgroup
        self._idle: queue.SimpleQueue[ZygoteProcess] = queue.SimpleQueue()
        self._started: list[ZygoteProcess] = []
        self._lock = threading.Lock()
        self._owner = os.getpid()

    def _forget_zygotes_after_fork(self) -> None:
        """A forked copy of the caller must not talk to its parent's zygotes: start its own."""
        if os.getpid() != self._owner:
            self._lock = threading.Lock()
            self._idle = queue.SimpleQueue()
            self._started = []
            self._owner = os.getpid()

    def _acquire(self) -> ZygoteProcess:
        """An idle zygote, or a new one while fewer than ``workers`` run.

        Waits in short steps, so that a zygote that died and could not be replaced at once is
        started again by the next thread that needs one instead of leaving it waiting forever.
        """
        self._forget_zygotes_after_fork()
        while True:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                if len(self._started) < self.workers:
                    zygote = ZygoteProcess(self.namespaces, self.cgroup)
                    self._started.append(zygote)
                    return zygote
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                continue

    def start(self) -> SandboxPool:
        """Start all ``workers`` zygotes now (else each starts on first use)."""
        self._forget_zygotes_after_fork()
        with self._lock:
            missing = self.workers - len(self._started)
            for _ in range(missing):
                zygote = ZygoteProcess(self.namespaces, self.cgroup)
                self._started.append(zygote)
                self._idle.put(zygote)
        return self

    def _replace(self, dead: ZygoteProcess) -> None:
        """Retire a dead zygote and start its successor (a waiting thread may take it)."""
        with self._lock:
            self._started.remove(dead)
            dead.close()
            try:
                successor = ZygoteProcess(self.namespaces, self.cgroup)
            except ZygoteDied:
                return  # the next run that needs one tries again
            self._started.append(successor)
            self._idle.put(successor)

    def isolation(self) -> dict[str, Any]:
        """Which layers the kernel allows here (starts a zygote if none runs yet)."""
        zygote = self._acquire()
        try:
            return dict(zygote.isolation)
        finally:
            self._idle.put(zygote)

    def layers(self) -> tuple[str, ...]:
        """The layers a run without network gets here (starts a zygote if none runs yet)."""
        zygote = self._acquire()
        try:
            return zygote.layers
        finally:
            self._idle.put(zygote)

    def run(
        self,
        source: str,
        limits: SandboxLimits | None = None,
        *,
        tests: TestSplit | None = None,
        as_main: bool = True,
    ) -> SandboxResult:
        """Run one program; see :func:`run_program`.

        With ``tests`` (a split test, ``split.py``) only the test's calls enter the sandbox
        after ``source``, and the verdict is this process's comparison of their values.
        ``as_main=False`` runs the program under another name than ``__main__``.
        """
        if not isinstance(source, str):
            raise TypeError(f"a program's source must be a str, got {type(source).__name__}")
        limits = limits or SandboxLimits()
        try:
            zygote = self._acquire()
        except ZygoteDied as error:
            return unrun_result(str(error))
        try:
            raw = zygote.run(source, limits, tests.calls() if tests else None, as_main)
        except RunRefused as error:
            self._idle.put(zygote)
            return unrun_result(str(error))
        except BaseException as error:
            # The zygote's state is unknown (it died, or the exchange broke off): replace it.
            self._replace(zygote)
            if not isinstance(error, Exception):
                raise
            return unrun_result(f"{error}" if isinstance(error, ZygoteDied) else repr(error))
        self._idle.put(zygote)
        return classify(raw, source, limits, tests)

    def run_many(
        self,
        sources: Sequence[str],
        limits: SandboxLimits | None = None,
        *,
        workers: int | None = None,
        progress: bool = False,
        tests: Sequence[TestSplit | None] | None = None,
        as_main: bool = True,
    ) -> list[SandboxResult]:
        """Run programs with at most ``workers`` (default: the pool's size) at a time.

        ``tests[i]``, when given, is program ``i``'s split test (see :meth:`run`).
        """
        for index, source in enumerate(sources):
            if not isinstance(source, str):
                raise TypeError(f"program {index} must be a str, got {type(source).__name__}")
        if tests is not None and len(tests) != len(sources):
            raise ValueError(f"{len(sources)} programs but {len(tests)} split tests")
        splits = list(tests) if tests is not None else [None] * len(sources)
        workers = min(workers or self.workers, self.workers)
        results: list[SandboxResult | None] = [None] * len(sources)
        with (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as executor,
            tqdm(total=len(sources), desc="sandbox", unit="program", disable=not progress) as bar,
        ):
            futures = {
                executor.submit(self.run, source, limits, tests=splits[i], as_main=as_main): i
                for i, source in enumerate(sources)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        return [result for result in results if result is not None]

    def close(self) -> None:
        with self._lock:
            zygotes, self._started = self._started, []
        for zygote in zygotes:
            zygote.close()
        self._idle = queue.SimpleQueue()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_shared: SandboxPool | None = None
_shared_lock = threading.Lock()


def shared_pool(workers: int = 1) -> SandboxPool:
    """The process-wide pool behind ``run_program``/``run_programs``, grown to ``workers``."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SandboxPool(workers)
            atexit.register(_shared.close)
        _shared.workers = max(_shared.workers, workers)
        return _shared


def run_program(source: str, *, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run one Python program (typically solution + tests) in the sandbox.

    Introduced in chapter 2 ("Executing the textbooks"); the evaluation chapters call it (through
    :func:`run_programs`) for every HumanEval and MBPP completion.
    """
    return shared_pool(1).run(source, limits)


def run_programs(
    sources: list[str],
    *,
    limits: SandboxLimits | None = None,
    workers: int = 2,
    progress: bool = False,
    tests: Sequence[TestSplit | None] | None = None,
    as_main: bool = True,
) -> list[SandboxResult]:
    """Run many programs, at most ``workers`` at a time; results in input order.

    ``tests[i]`` is program ``i``'s split test, or None to judge it in-process (``split.py``).
    """
    return shared_pool(workers).run_many(
        sources, limits, workers=workers, progress=progress, tests=tests, as_main=as_main
    )
