"""The cost of a cached lookup against the size of the data: it should not grow.

A small pipeline shaped like the book's (a corpus stage, four stages that each read it, one that
reads all of them, as ``training_ablation`` reads the training runs) is built once per corpus
size in a temporary run store. Then a fully cached ``pipeline.run`` of the top stage is timed,
and every file and byte the run store hashes meanwhile is counted. A cached lookup trusts the sizes and
modification times the manifests recorded, so both figures stay flat as the corpus grows; the
deep check (``phi1 status --deep``), which hashes every file, is timed beside it for contrast
and grows with the data. Ratios within one run, so the machine's load matters little.

    .venv/bin/python benchmarks/bench_runstore.py [--sizes-mb 1 8 64 256] [--files 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

from phi1lib import pipeline
from phi1lib import runstore as store_module
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore

# Filled in per corpus size before the corpus stage is built.
CORPUS = {"files": 8, "bytes": 0}


def _write_corpus(ctx: pipeline.StageContext) -> dict:
    per_file = CORPUS["bytes"] // CORPUS["files"]
    for index in range(CORPUS["files"]):
        (ctx.out / f"shard-{index:05d}.bin").write_bytes(os.urandom(per_file))
    return {"bytes": per_file * CORPUS["files"]}


def _write_summary(ctx: pipeline.StageContext) -> dict:
    (ctx.out / "summary.json").write_text(str(sorted(ctx.inputs)))
    return {}


STAGES = {
    "corpus": pipeline.Stage("corpus", _write_corpus, config=lambda p: dict(CORPUS)),
    **{
        f"reader_{i}": pipeline.Stage(
            f"reader_{i}", _write_summary, config=lambda p: {}, needs=("corpus",)
        )
        for i in range(4)
    },
}
STAGES["top"] = pipeline.Stage(
    "top", _write_summary, config=lambda p: {}, needs=(*STAGES, "corpus")
)


def _register() -> None:
    module = types.ModuleType("bench_runstore_stages")
    for name, stage in STAGES.items():
        setattr(module, name.upper(), stage)
    sys.modules[module.__name__] = module
    pipeline.STAGES.clear()
    pipeline.STAGES.update({name: f"{module.__name__}:{name.upper()}" for name in STAGES})


def _count_hashed_bytes() -> list[int]:
    hashed: list[int] = []
    original = store_module.file_digest

    def counting(path: Path, *args, **kwargs) -> str:
        hashed.append(path.stat().st_size)
        return original(path, *args, **kwargs)

    store_module.file_digest = counting
    return hashed


def _median_s(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--files", type=int, default=8, help="files of the corpus artifact")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    _register()
    hashed = _count_hashed_bytes()
    profile = load_profile("smoke", use_env=False)
    print(
        f"Cached lookup of a 6-stage pipeline ({args.files} corpus files), median of {args.repeats}"
    )
    print(
        f"{'corpus MB':>10} {'lookup ms':>10} {'files hashed':>13} {'MB hashed':>10}"
        f" {'deep check ms':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="phi1-bench-runstore-") as root:
        for size in args.sizes_mb:
            CORPUS.update(files=args.files, bytes=int(size * 2**20))
            store = RunStore(profile.name, Path(root) / f"{size:g}MB")
            pipeline.run("top", profile, store=store)  # built once, not timed
            hashed.clear()
            lookup = _median_s(lambda s=store: pipeline.run("top", profile, store=s), args.repeats)
            lookup_files = len(hashed) / args.repeats
            lookup_mb = sum(hashed) / 2**20 / args.repeats
            deep = _median_s(
                lambda s=store: pipeline.status(profile, store=s, deep=True), args.repeats
            )
            print(
                f"{size:10g} {1000 * lookup:10.1f} {lookup_files:13g} {lookup_mb:10.2f}"
                f" {1000 * deep:14.1f}"
            )


if __name__ == "__main__":
    main()
