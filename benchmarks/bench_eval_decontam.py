"""How fast is the AST decontamination check? Prints rates, a speed-up and a projection.

The paper compared 164 HumanEval solutions with 879.5K exercises by AST edit distance (§5.2).
This script compares all of HumanEval with a stand-in training set (MBPP's 974 reference
solutions, repeated to ``--items``) and measures, in one run:

* parsing: AST signatures computed per second (``phi1lib.decontam.ast_signature``);
* distances: snippet pairs per second with rapidfuzz's ``cdist`` and the 0.8 score cutoff, as
  ``ast_matches`` runs it, against a plain Python loop calling the same edit distance per pair;
* the naive way, ``match_rate`` per pair (both snippets parsed again for every pair);
* ``ast_matches`` end to end, and the time it would need for the paper's 164 x 879.5K pairs.

    .venv/bin/python benchmarks/bench_eval_decontam.py --items 20000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from phi1lib.decontam import TAUS, ast_matches, ast_signature, match_rate
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.evaluation.mbpp import load_mbpp
from phi1lib.paper import PRUNED_EXERCISES


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="training snippets")
    parser.add_argument("--loop-items", type=int, default=1_000, help="snippets for the loop")
    args = parser.parse_args()

    humaneval = {p.task_id: p.reference_code() for p in load_humaneval()}
    mbpp = [p.canonical_solution for split in ("train", "test", "validation", "prompt")
            for p in load_mbpp(split)]  # fmt: skip
    training = (mbpp * (args.items // len(mbpp) + 1))[: args.items]
    queries = [ast_signature(code) or "" for code in humaneval.values()]

    started = time.perf_counter()
    signatures = [ast_signature(code) or "" for code in training]
    parse_s = time.perf_counter() - started

    started = time.perf_counter()
    process.cdist(
        queries,
        signatures,
        scorer=Levenshtein.normalized_similarity,
        score_cutoff=min(TAUS),
        dtype=np.float32,
        workers=-1,
    )
    cdist_s = time.perf_counter() - started
    pairs = len(queries) * len(signatures)

    few = signatures[: args.loop_items]
    started = time.perf_counter()
    for query in queries:
        for choice in few:
            Levenshtein.normalized_similarity(query, choice)
    loop_s = time.perf_counter() - started

    naive = training[: max(args.loop_items // 20, 1)]
    started = time.perf_counter()
    for code in humaneval.values():
        for other in naive:
            match_rate(code, other)
    naive_s = time.perf_counter() - started

    started = time.perf_counter()
    result = ast_matches(humaneval, training)
    end_to_end_s = time.perf_counter() - started

    paper_items = PRUNED_EXERCISES["total"]
    projected = paper_items * parse_s / len(training) + len(queries) * paper_items * cdist_s / pairs
    loop_rate = len(queries) * len(few) / loop_s
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"parsing: {len(training)} AST signatures in {parse_s:.1f} s = "
          f"{_rate(len(training), parse_s)}")  # fmt: skip
    print(f"distances, cdist with cutoff {min(TAUS)}: {_rate(pairs, cdist_s)} pairs")
    print(f"distances, Python loop: {loop_rate:,.0f}/s pairs")
    print(f"speed-up of cdist over the loop: {pairs / cdist_s / loop_rate:.1f}x")
    print(f"naive match_rate per pair: {_rate(len(humaneval) * len(naive), naive_s)} pairs "
          f"(ast_matches end to end is {pairs / end_to_end_s / (len(humaneval) * len(naive) / naive_s):.0f}x faster)")  # fmt: skip
    print(f"ast_matches end to end: {pairs:,} pairs in {end_to_end_s:.1f} s")
    print(f"projected for the paper's 164 x {paper_items:,} pairs: {projected / 60:.1f} min")
    print(f"HumanEval problems similar to an MBPP solution at tau=0.8: {len(result.similar(0.8))}")


if __name__ == "__main__":
    main()
