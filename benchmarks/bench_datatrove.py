"""Chapter 1 on datatrove against the in-memory path: files/s per step, and dedup's peak memory.

Part 1 (``rates``) times each step of chapter 1 both ways on the profile's corpus sample, one
after the other in one process, so that load from other users of the machine hits both alike:

* read      ``local_records`` in one process  vs  the ``read`` step's datatrove tasks
* dedup     ``phi1lib.dedup.deduplicate`` + token counting  vs  raw_code's datatrove steps
* embed     one embedder over every file  vs  the ``embed`` step's tasks
* score     the forest over every embedding  vs  the ``score`` step's tasks

The datatrove steps run as the profile's ``datatrove.tasks`` tasks, ``datatrove.workers`` at a
time (the default profile: 4 and 2), so their figures include what running tasks costs (the
worker processes, one model load per task) on a corpus small enough for that to show.

Part 2 (``memory``) measures the peak resident memory of deduplication alone (no token counts) in
a fresh process for growing samples of the local corpus: the in-memory path holds every
signature in one process; datatrove's tasks (one per 1,000 files, run one at a time here, so
the process's peak is the largest task's) hold one task's share, and the clusters step only the
files that have a duplicate. The peak is VmHWM, which counts the pages of the memory-mapped
corpus that a task has read.

    python benchmarks/bench_datatrove.py [--profile tiny] [--sizes 1000,4000,12000] [--skip-rates]

A recorded run of part 2 is ``benchmarks/results/datatrove_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _save(records: list[dict], folder: Path) -> Path:
    from datasets import Dataset

    columns = ["text", "path", "package", "source", "size", "skip_reason"]
    Dataset.from_dict({c: [r[c] for r in records] for c in columns}).save_to_disk(str(folder))
    return folder


def rates(profile_name: str, work: Path) -> dict:
    """Files per second of each step, today's single process against datatrove's tasks."""
    import numpy as np
    from datasets import load_from_disk

    from phi1lib.dedup import deduplicate
    from phi1lib.embeddings import load_embedder, token_counter
    from phi1lib.filtering.classifier import (
        educational_probability,
        save_classifier,
        train_classifier,
    )
    from phi1lib.filtering.corpus import local_python_files, local_records, sample_files
    from phi1lib.filtering.dedup_steps import dedup_steps
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.scoring import embedding_view
    from phi1lib.filtering.steps import embedding_steps, reading_steps, scoring_steps
    from phi1lib.profiles import load_profile

    profile = load_profile(profile_name)
    corpus = profile.section("corpus")
    engine = Engine.from_profile(profile)
    files = sample_files(local_python_files(), corpus["max_files"], corpus["seed"])
    rows: dict[str, dict] = {}

    records, seconds = timed(
        lambda: list(local_records(files, max_file_bytes=corpus["max_file_bytes"]))
    )
    rows["read"] = {"files": len(records), "in_memory_s": seconds}
    _, seconds = timed(
        engine.run,
        reading_steps(corpus, files, work / "read", engine),
        work / "read",
        stage="bench",
    )
    rows["read"]["datatrove_s"] = seconds

    corpus_path = _save(records, work / "corpus")
    readable = [r["text"] for r in records if r["skip_reason"] is None]
    dedup = profile.section("dedup")
    count = token_counter(corpus["token_counter"])

    def in_memory_dedup():
        result = deduplicate(readable, threshold=dedup["threshold"], num_perm=dedup["num_perm"])
        kept = [readable[i] for i in result.kept]
        return [n for start in range(0, len(kept), 256) for n in count(kept[start : start + 256])]

    _, seconds = timed(in_memory_dedup)
    rows["dedup"] = {"files": len(readable), "in_memory_s": seconds}
    steps = dedup_steps(
        corpus_path, work / "dedup", dedup, engine=engine, token_counter=corpus["token_counter"]
    )
    _, seconds = timed(engine.run, steps, work / "dedup", stage="bench")
    rows["dedup"]["datatrove_s"] = seconds
    kept_files = sorted((work / "dedup" / "kept").glob("*.parquet"))
    from datasets import Dataset

    raw = Dataset.from_parquet([str(f) for f in kept_files], cache_dir=str(work / "arrow"))
    raw.save_to_disk(str(work / "raw"))
    raw = load_from_disk(str(work / "raw"))

    embed = profile.section("embed")
    embedder = load_embedder(
        embed["model"],
        max_tokens=embed["max_tokens"],
        max_chunks=embed["max_chunks"],
        batch_size=embed["batch_size"],
    )
    views = [embedding_view(t) for t in raw["text"]]
    embedder.embed(views[:8])  # warm-up: first-call allocations are not throughput
    vectors, seconds = timed(embedder.embed, views)
    rows["embed"] = {"files": len(views), "in_memory_s": seconds}
    steps = embedding_steps(work / "raw", work / "embed", embed, engine)
    _, seconds = timed(engine.run, steps, work / "embed", stage="bench")
    rows["embed"]["datatrove_s"] = seconds

    labels = np.asarray(["def " in t and '"""' in t for t in raw["text"]], dtype=int)
    settings = profile.section("classifier")
    trained = train_classifier(
        vectors,
        labels,
        n_estimators=settings["n_estimators"],
        test_fraction=0.25,
        threshold_rule="fixed",
        threshold=0.5,
        seed=0,
    )  # stand-in labels (a docstring?): only the timing uses this forest
    save_classifier(trained.model, work / "model.pkl")
    np.save(work / "embeddings.npy", vectors)
    _, seconds = timed(educational_probability, trained.model, vectors)
    rows["score"] = {"files": len(vectors), "in_memory_s": seconds}
    steps = scoring_steps(
        work / "raw", work / "embeddings.npy", work / "model.pkl", 0.5, {}, work / "score", engine
    )
    _, seconds = timed(engine.run, steps, work / "score", stage="bench")
    rows["score"]["datatrove_s"] = seconds
    for row in rows.values():
        row["in_memory_files_per_s"] = round(row["files"] / row.pop("in_memory_s"), 1)
        row["datatrove_files_per_s"] = round(row["files"] / row.pop("datatrove_s"), 1)
        row["datatrove_vs_in_memory"] = round(
            row["datatrove_files_per_s"] / row["in_memory_files_per_s"], 2
        )
    return {"tasks": engine.tasks, "workers": engine.workers, "steps": rows}


def _dedup_peak(path: str, corpus: str) -> None:
    """In a fresh process: deduplicate ``corpus`` one way and print the peak memory in MiB."""
    from datasets import load_from_disk

    from phi1lib.dedup import deduplicate
    from phi1lib.filtering.dedup_steps import dedup_steps
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.steps import TokenCounter

    settings = {"near": True, "threshold": 0.7, "num_perm": 256, "ngram_size": 5}
    before = _peak_mib()
    if path == "in_memory":
        texts = load_from_disk(corpus)["text"]
        started = time.perf_counter()
        deduplicate(texts, **settings)
    else:
        work = Path(tempfile.mkdtemp())
        files = len(load_from_disk(corpus))
        # A task per 1,000 files, as a cluster run keeps each task's share fixed; one task at a
        # time, in this process, so that its peak is the largest task's.
        engine = Engine(tasks=max(1, round(files / 1000)), workers=1)
        steps = dedup_steps(Path(corpus), work, settings, engine=engine, token_counter="unused")
        filtering = steps[-1].pipeline  # without its token counter: deduplication alone
        filtering[:] = [step for step in filtering if not isinstance(step, TokenCounter)]
        started = time.perf_counter()
        engine.run(steps, work, stage="bench")
        shutil.rmtree(work)
    seconds = time.perf_counter() - started
    print(
        json.dumps({"peak_mib": _peak_mib(), "after_imports_mib": before, "s": round(seconds, 1)})
    )


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def memory(sizes: list[int], work: Path) -> list[dict]:
    """Peak memory of each path as the corpus grows (readable files of the local corpus)."""
    from phi1lib.filtering.corpus import local_python_files, local_records, sample_files

    everything = local_python_files()
    results = []
    for size in sizes:
        files = sample_files(everything, min(size, len(everything)), seed=0)
        records = [
            r for r in local_records(files, max_file_bytes=200_000) if r["skip_reason"] is None
        ]
        corpus = _save(records, work / f"memory-{size}")
        row = {"files": len(records)}
        for path in ("in_memory", "datatrove"):
            done = subprocess.run(
                [sys.executable, __file__, "--_dedup-peak", path, str(corpus)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )
            row[path] = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--sizes", default="1000,4000,12000")
    parser.add_argument("--skip-rates", action="store_true")
    parser.add_argument("--_dedup-peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args._dedup_peak:
        _dedup_peak(*args._dedup_peak)
        return
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "command": "python " + " ".join(["benchmarks/bench_datatrove.py", *sys.argv[1:]]),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_rates:
            report["rates"] = rates(args.profile, Path(folder))
        report["dedup_peak_memory"] = memory([int(s) for s in args.sizes.split(",")], Path(folder))
    report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
