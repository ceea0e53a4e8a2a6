"""Where chapter 1's datatrove pipelines run: this machine, a Slurm cluster or a Ray cluster.

A stage describes its work as :class:`Step` objects (a datatrove pipeline and how many tasks
share it) and hands them to :meth:`Engine.run`. The profile's ``[datatrove]`` section picks the
executor: ``cluster = ""`` runs the tasks here with datatrove's ``LocalPipelineExecutor``,
``workers`` at a time; ``cluster = "configs/datatrove_slurm.toml"`` (or ``..._ray.toml``) names
a cluster configuration, and the same steps run through ``SlurmPipelineExecutor`` or
``RayPipelineExecutor`` with the resources that file gives each step. Every profile runs
several tasks, so the default one exercises the sharded path that a cluster runs.

Each step logs into ``<work>/logs/<step>/``, where datatrove also leaves one completion marker
per finished task; the work folder is the stage's ``StageContext.work``, which outlives a
crashed build of the same fingerprint, so a stage started again skips every task that had
finished. On a cluster the run
store (``PHI1_RUNS``) must be a filesystem that every node mounts. Introduced in chapter 1
("At The Stack's scale").
"""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib
from datatrove.executor.local import LocalPipelineExecutor
from tqdm import tqdm

EXECUTORS = ("local", "slurm", "ray")
# Imported once by the process that forks the local workers, so that no task pays for them.
WORKER_PRELOAD = ["torch", "transformers", "datasets", "phi1lib.filtering.dedup_steps"]
# The steps of chapter 1's stages, the names a cluster configuration gives resources to.
STEP_NAMES = (
    "read",  # code_corpus
    "exact_signatures",  # raw_code ...
    "exact_buckets",
    "near_signatures",
    "near_buckets",
    "clusters",
    "filter",
    "embed",  # code_embeddings
    "score",  # filtered_code
)
CLUSTER_KEYS = {"executor", "tasks", "bucket_workers", "address", "poll_s", "slurm", "ray"}
REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Step:
    """One datatrove pipeline of a stage, run as ``tasks`` tasks (``gpu``: it embeds)."""

    name: str
    pipeline: list
    tasks: int
    gpu: bool = False

    def __post_init__(self) -> None:
        if self.name not in STEP_NAMES:
            raise ValueError(f"step {self.name!r} is not one of {STEP_NAMES}")


class ClusterConfigError(ValueError):
    """A cluster configuration file that does not say what the engine needs."""


@dataclass(frozen=True)
class Engine:
    """The executor of a profile's datatrove pipelines and its resources (chapter 1).

    ``tasks`` shares every per-file step; ``bucket_workers`` tasks split each LSH band of the
    bucket stage; ``workers`` tasks run at once on this machine; ``options`` are the executor's
    keyword arguments for every step, and ``step_options`` those of single steps (by step name).
    """

    tasks: int
    workers: int = 1
    executor: str = "local"
    bucket_workers: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    step_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    address: str = ""
    poll_s: float = 60.0

    @classmethod
    def from_profile(cls, profile: Any) -> Engine:
        """The engine of a profile's ``[datatrove]`` section (and of its cluster file, if any)."""
        section = profile.section("datatrove")
        if not section["cluster"]:
            return cls(tasks=section["tasks"], workers=section["workers"])
        return cls.from_cluster_file(section["cluster"])

    @classmethod
    def from_cluster_file(cls, path: str | Path) -> Engine:
        """An engine described by a cluster configuration (``configs/datatrove_*.toml``)."""
        location = Path(path)
        if not location.is_absolute() and not location.exists():
            location = REPOSITORY / location
        try:
            settings = tomllib.loads(location.read_text())
        except FileNotFoundError:
            raise ClusterConfigError(f"datatrove.cluster: no file {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ClusterConfigError(f"{location}: not valid TOML ({error})") from None
        unknown = set(settings) - CLUSTER_KEYS
        if unknown:
            raise ClusterConfigError(f"{location}: unknown keys {sorted(unknown)}")
        executor = settings.get("executor")
        if executor not in ("slurm", "ray"):
            raise ClusterConfigError(f"{location}: executor must be 'slurm' or 'ray'")
        if not isinstance(settings.get("tasks"), int) or settings["tasks"] < 1:
            raise ClusterConfigError(f"{location}: tasks must be a whole number >= 1")
        table = dict(settings.get(executor, {}))
        step_options = {k: v for k, v in table.items() if isinstance(v, dict)}
        options = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if unknown := set(step_options) - set(STEP_NAMES):
            raise ClusterConfigError(
                f"{location}: no step is called {sorted(unknown)}; the steps: {STEP_NAMES}"
            )
        for name, given in [("every step", options), *step_options.items()]:
            _check_options(executor, given, f"{location} [{executor}] ({name})")
        return cls(
            tasks=settings["tasks"],
            executor=executor,
            bucket_workers=settings.get("bucket_workers", 1),
            options=options,
            step_options=step_options,
            address=settings.get("address", ""),
            poll_s=settings.get("poll_s", 60.0),
        )

    def threads_per_task(self) -> int:
        """CPU threads one local task may use so that ``workers`` tasks fill the machine."""
        return max(1, (os.cpu_count() or 1) // self.workers) if self.executor == "local" else 0

    def run(self, steps: Sequence[Step], work: Path, *, stage: str) -> None:
        """Run the steps one after the other; return when every task of every step finished."""
        runner = {"local": self._run_local, "slurm": self._run_slurm, "ray": self._run_ray}
        runner[self.executor](steps, Path(work), stage)

    def _run_local(self, steps: Sequence[Step], work: Path, stage: str) -> None:
        import multiprocess

        multiprocess.set_forkserver_preload(WORKER_PRELOAD)  # no effect once the server runs
        for step in steps:
            workers = min(self.workers, step.tasks)
            if step.gpu:
                workers = min(workers, _gpus() or workers)
            executor = _QuietLocalExecutor(
                step.pipeline,
                tasks=step.tasks,
                workers=workers,
                logging_dir=str(work / "logs" / step.name),
            )
            with _progress([executor], f"{stage}: {step.name}"), _datatrove_log(work):
                executor.run()
            _check_finished(executor, step.name, stage)

    def _run_slurm(self, steps: Sequence[Step], work: Path, stage: str) -> None:
        from datatrove.executor.slurm import SlurmPipelineExecutor

        if "SLURM_ARRAY_TASK_ID" in os.environ:
            raise RuntimeError(
                "a stage launches its own Slurm jobs: run `phi1 run` on a login node, "
                "not inside a Slurm job"
            )
        executors: list[Any] = []
        for step in steps:
            executors.append(
                SlurmPipelineExecutor(
                    step.pipeline,
                    tasks=step.tasks,
                    logging_dir=str(work / "logs" / step.name),
                    job_name=f"phi1-{stage}-{step.name}",
                    depends=executors[-1] if executors else None,
                    **self._options(step),
                )
            )
        with _datatrove_log(work):
            executors[-1].run()  # submits the chain, each job after the one before
        self._wait_for_slurm(executors, stage)

    def _wait_for_slurm(self, executors: Sequence[Any], stage: str) -> None:
        job_ids = [str(e.job_id) for e in executors if e.job_id not in (None, -1)]
        with _progress(executors, f"{stage}: Slurm jobs {','.join(job_ids)}") as unfinished:
            while unfinished():
                time.sleep(self.poll_s)
                if unfinished() and not _slurm_jobs_alive(job_ids):
                    break
        for executor, step_name in zip(executors, _step_names(executors), strict=True):
            _check_finished(executor, step_name, stage)

    def _run_ray(self, steps: Sequence[Step], work: Path, stage: str) -> None:
        import ray
        from datatrove.executor.ray import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(address=self.address or "auto", log_to_driver=False)
        for step in steps:
            executor = RayPipelineExecutor(
                step.pipeline,
                tasks=step.tasks,
                logging_dir=str(work / "logs" / step.name),
                **self._options(step),
            )
            with _progress([executor], f"{stage}: {step.name}"), _datatrove_log(work):
                executor.run()
            _check_finished(executor, step.name, stage)

    def _options(self, step: Step) -> dict[str, Any]:
        return {**self.options, **self.step_options.get(step.name, {})}


class _QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor with every task's console output at ERROR level.

    datatrove prints one task's progress to the console at INFO level; here it would mix with
    the stage's progress bar and a notebook's output. Each task's full log is still written to
    ``logs/<step>/logs/task_NNNNN.log`` (``local_rank`` only chooses the console's level).
    """

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        return super()._run_for_rank(rank, local_rank=1, node_rank=node_rank)


def _check_options(executor: str, options: Mapping[str, Any], where: str) -> None:
    if executor == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor as cls
    else:
        from datatrove.executor.ray import RayPipelineExecutor as cls
    known = set(inspect.signature(cls.__init__).parameters) - {
        "self",
        "pipeline",
        "tasks",
        "logging_dir",
        "depends",
        "job_name",
    }
    unknown = set(options) - known
    if unknown:
        raise ClusterConfigError(f"{where}: {cls.__name__} takes no {sorted(unknown)}")


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _completed(executor: Any) -> int:
    return executor.world_size - len(executor.get_incomplete_ranks(skip_completed=True))


def _step_names(executors: Sequence[Any]) -> list[str]:
    return [Path(executor.logging_dir.path).name for executor in executors]


def _check_finished(executor: Any, step_name: str, stage: str) -> None:
    missing = executor.get_incomplete_ranks(skip_completed=True)
    if missing:
        raise RuntimeError(
            f"{stage}: {len(missing)} of {executor.world_size} tasks of step {step_name!r} did not "
            f"finish (tasks {missing[:10]}); their logs are in "
            f"{executor.logging_dir.path}/logs. Run the stage again to redo only those."
        )


def _slurm_jobs_alive(job_ids: Sequence[str]) -> bool:
    """Whether Slurm still knows any of the jobs (queued or running)."""
    if not job_ids:
        return False
    listed = subprocess.run(
        ["squeue", "--noheader", "--format=%i", f"--jobs={','.join(job_ids)}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(listed.stdout.strip())


@contextlib.contextmanager
def _progress(executors: Sequence[Any], description: str) -> Iterator[Any]:
    """A progress bar of finished tasks, fed by the executors' completion markers.

    Yields a function that counts the tasks not finished yet.
    """
    total = sum(e.world_size for e in executors)
    done = threading.Event()

    def finished() -> int:
        return sum(_completed(e) for e in executors)

    with tqdm(
        total=total, initial=finished(), desc=description, unit="task", file=sys.stderr
    ) as bar:

        def follow() -> None:
            while not done.wait(0.5):
                if (now := finished()) != bar.n:
                    bar.update(now - bar.n)

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        try:
            yield lambda: total - finished()
        finally:
            done.set()
            watcher.join()
            bar.update(finished() - bar.n)


@contextlib.contextmanager
def _datatrove_log(work: Path) -> Iterator[None]:
    """Send what datatrove prints in this process to ``<work>/datatrove.log``.

    datatrove logs with loguru to the standard error stream of the moment; while a pipeline
    runs, that is the log file, and afterwards datatrove's own default again.
    """
    from datatrove.utils.logging import logger, setup_default_logger

    work.mkdir(parents=True, exist_ok=True)
    with (work / "datatrove.log").open("a") as sink, contextlib.redirect_stderr(sink):
        logger.remove()
        logger.add(sink, level="INFO")
        try:
            yield
        finally:
            logger.remove()
    setup_default_logger()
