"""The ablation of chapters 4-5 at a fine-tuning length the 20-minute book cannot afford.

The book's own ablation (the ``training_ablation`` stage) trains nine models (three arms times
three seeds) inside the default profile's time, which leaves each fine-tune too short for the
model to learn to copy names from a signature (chapter 5). This script runs the same stage, on
the same pretrained arms and seeds, with the profile's fine-tuning as long as the chapter-5
model's, and records its result: every arm's pass@1 on each exercise split and its held-out
losses, each with the ablation's bootstrap intervals over seeds and problems. The result, with
its date, machine, command and wall time, is written to
``benchmarks/results/ablation_long.json`` and chapter 5 shows it as a recorded result.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ablation.py --set "ablation.finetune_steps=0"

(``ablation.finetune_steps = 0``: every ablation fine-tune as long as ``[finetune]``'s; the run
store keeps what the book's own build already trained, so the seed-0 models are reused.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from phi1lib import pipeline
from phi1lib.profiles import load_profile, parse_overrides
from phi1lib.training.ablation import read_ablation
from phi1lib.training.recorded import measured_now

RESULTS = Path(__file__).resolve().parent / "results" / "ablation_long.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument(
        "--set", default="ablation.finetune_steps=0", help="PHI1_SET-style overrides of the profile"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    profile = load_profile(args.profile, parse_overrides(args.set), use_env=False)
    started = time.perf_counter()
    artifact = pipeline.run("training_ablation", profile)
    record = {
        **measured_now("benchmarks/bench_ablation.py", sys.argv[1:]),
        "profile": args.profile,
        "overrides": args.set,
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "ablation": read_ablation(artifact),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out} ({record['wall_s']} s)")


if __name__ == "__main__":
    main()
