"""Chapter 1's throughput: files per second for each stage, and the chapter's wall time at tiny.

Stages are timed on the same deterministic sample of the local corpus, one after the other in
one process, so that load from other users of the machine hits them alike:

* read      open, decode and ``ast.parse`` each file (``code_corpus``)
* dedup     exact hashes, MinHash signatures and LSH (``raw_code``; BigCode's parameters)
* embed     the profile's embedder over the readable files (``code_embeddings``)
* classify  the forest's probabilities over those embeddings (``filtered_code``); the forest is
            trained on stand-in labels (does the file have a docstring?), which only the timing uses
* judge     the profile's teacher on ``--judge`` files (``code_judgements``; no cache)

The share of the per-file time each stage takes says where a larger run would spend its time.
``--chapter`` also executes notebooks/01_filtering.ipynb at the profile with a fresh run store
(stages and local teacher included) and prints its wall time; the target at tiny is 3 minutes.

    python benchmarks/bench_filtering.py [--profile tiny] [--files 300] [--judge 100] [--chapter]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
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


def stage_rates(profile_name: str, n_files: int, n_judge: int) -> dict:
    from phi1lib.dedup import deduplicate
    from phi1lib.embeddings import load_embedder
    from phi1lib.filtering.classifier import educational_probability, train_classifier
    from phi1lib.filtering.corpus import local_python_files, local_records, sample_files
    from phi1lib.filtering.judge import judge_texts
    from phi1lib.profiles import load_profile

    profile = load_profile(profile_name)
    files = sample_files(local_python_files(), n_files, seed=profile.corpus.seed)
    records, read_s = timed(
        lambda: list(local_records(files, max_file_bytes=profile.corpus.max_file_bytes))
    )
    texts = [r["text"] for r in records if r["skip_reason"] is None]
    dedup = profile.section("dedup")
    _, dedup_s = timed(
        deduplicate,
        texts,
        threshold=dedup["threshold"],
        num_perm=dedup["num_perm"],
        ngram_size=dedup["ngram_size"],
    )
    embed = profile.section("embed")
    embedder = load_embedder(
        embed["model"],
        max_tokens=embed["max_tokens"],
        max_chunks=embed["max_chunks"],
        batch_size=embed["batch_size"],
    )
    embedder.embed(texts[:8])  # warm-up: first-call allocations are not throughput
    vectors, embed_s = timed(embedder.embed, texts)
    labels = [int(ast.get_docstring(ast.parse(t)) is not None) for t in texts]
    settings = profile.section("classifier")
    trained = train_classifier(
        vectors,
        labels,
        n_estimators=settings["n_estimators"],
        test_fraction=0.25,
        threshold_rule=settings["threshold_rule"],
        threshold=settings["threshold"],
        seed=settings["seed"],
    )
    _, classify_s = timed(educational_probability, trained.model, vectors)
    rows = {
        "read": (len(records), read_s),
        "dedup": (len(texts), dedup_s),
        "embed": (len(texts), embed_s),
        "classify": (len(texts), classify_s),
    }
    if n_judge:
        sample = texts[:n_judge]
        ids = [f"bench/{i}" for i in range(len(sample))]
        _, judge_s = timed(
            judge_texts,
            sample,
            ids,
            profile,
            cache_dir=None,
            max_chars=profile.judge.max_chars,
            progress=False,
        )
        rows["judge"] = (len(sample), judge_s)
    per_file = {name: seconds / count for name, (count, seconds) in rows.items()}
    total = sum(per_file[name] for name in ("read", "dedup", "embed", "classify"))
    return {
        "profile": profile.name,
        "embed_model": embed["model"],
        "max_tokens": embed["max_tokens"],
        "stages": {
            name: {
                "files": count,
                "seconds": round(seconds, 3),
                "files_per_s": round(count / seconds, 1),
                "share_of_pipeline_time": round(per_file[name] / total, 3)
                if name != "judge"
                else None,
            }
            for name, (count, seconds) in rows.items()
        },
    }


def chapter_wall_time(profile_name: str) -> dict:
    """Execute the chapter with a fresh run store, as a reader's first run would."""
    notebook = REPO / "notebooks" / "01_filtering.ipynb"
    with tempfile.TemporaryDirectory() as runs, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PHI1_PROFILE": profile_name, "PHI1_RUNS": runs}
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("HF_DATASETS_OFFLINE", "1")
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=1200",
            "--output-dir",
            out,
            str(notebook),
        ]
        _, seconds = timed(subprocess.run, command, env=env, check=True, capture_output=True)
        manifests = {
            path.parent.name: json.loads(path.read_text())["wall_time_s"]
            for path in Path(runs, profile_name).glob("*/manifest.json")
        }
    return {"chapter_wall_s": round(seconds, 1), "stage_wall_s": manifests, "target_s": 180}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--judge", type=int, default=100, help="files to judge (0: skip)")
    parser.add_argument("--chapter", action="store_true", help="also time the whole chapter")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    load = os.getloadavg()[0]
    report = {"load_average_1min_at_start": round(load, 2), "cpus": os.cpu_count()}
    report.update(stage_rates(args.profile, args.files, args.judge))
    if args.chapter:
        report.update(chapter_wall_time(args.profile))
    report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
