"""Exercise verification throughput: exercises verified per second, and the stage wall times.

Verification runs every exercise (training text + tests) in the sandbox, so its speed sets how
large a CodeExercises the book can verify: the paper's 880K at 100 exercises/s is 2.4 hours of
one machine. This benchmark takes the exercises of a profile's ``exercises`` stage (built
first if missing, with the local teacher), and verifies all of them twice in one run, with the
same number of workers:

* **ours**: ``phi1lib.synthesis.verification.verify_programs`` (the sandbox's pre-warmed
  zygotes; no verdict cache, so every program really runs);
* **baseline**: what a simple script does, one fresh ``python -c`` subprocess per program.

It prints exercises verified per second for both and their ratio (measured in one run, so the
machine's other load hits both), and the wall time of the two stages from their manifests (the
chapters' own build time; the target is 4 minutes for both chapters together at ``tiny``).

    python benchmarks/bench_synthesis.py [--profile tiny] [--workers 2] [--limit 600]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from phi1lib import pipeline
from phi1lib.profiles import load_profile
from phi1lib.sandbox import SandboxLimits
from phi1lib.synthesis.exercises import check_program
from phi1lib.synthesis.verification import verify_programs


def exercise_programs(profile, limit: int) -> list[str]:
    """A fixed random sample of the exercises the stage executed (kept and failing alike), each
    as the program that checks it."""
    artifact = pipeline.run("exercises", profile)
    programs = [
        check_program(row["text"], row["tests"])
        for split in ("data", "heldout", "rejected")
        for row in artifact.dataset(split)
        if row["text"] and row["tests"]
    ]
    return random.Random(0).sample(programs, min(limit, len(programs)))


def baseline(programs: list[str], workers: int, timeout_s: float) -> list[bool]:
    def run(source: str) -> bool:
        try:
            done = subprocess.run(
                [sys.executable, "-c", source], capture_output=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, programs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("PHI1_PROFILE", "tiny"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=600, help="exercises timed (both sides)")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    programs = exercise_programs(profile, args.limit)
    limits = SandboxLimits(timeout_s=profile.exercises.timeout_s)
    verify_programs(programs[:8], limits=limits, workers=args.workers, progress=False)  # warm up

    started = time.perf_counter()
    ours = verify_programs(programs, limits=limits, workers=args.workers, progress=False)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = baseline(programs, args.workers, profile.exercises.timeout_s)
    baseline_s = time.perf_counter() - started
    agree = sum(v.passed == ok for v, ok in zip(ours, theirs, strict=True))

    stages = {}
    for name in ("textbooks", "exercises"):
        manifest = pipeline.run(name, profile).manifest
        stages[f"{name}_stage_wall_s"] = manifest.get("wall_time_s")
    result = {
        "profile": profile.name,
        "workers": args.workers,
        "exercises": len(programs),
        "passed": sum(v.passed for v in ours),
        "verdicts_agree_with_baseline": agree,
        "ours_exercises_per_s": round(len(programs) / ours_s, 1),
        "baseline_exercises_per_s": round(len(programs) / baseline_s, 1),
        "speedup": round(baseline_s / ours_s, 2),
        **stages,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
