"""How fast are chapter 8's heavy steps? Prints rates and speed-ups measured within one run.

* **Vendi score.** The eigenvalues of ``K / n`` for n unit embeddings of width d. The score
  decomposes the d x d matrix ``XᵀX / n`` when n > d instead of the n x n ``XXᵀ / n``; the two
  have the same non-zero eigenvalues. Timed against the n x n way, with the scores compared.
* **Program-shape clustering.** Functions of the interpreter's standard library (the local
  corpus of the ``tiny`` profile), each repeated as ``--variants`` renamed copies, as a
  generated exercise set repeats its templates: AST signatures per second, edit-distance pairs
  per second, and ``cluster_variants`` end to end against clustering every function without
  first collapsing identical shapes (complete linkage gives the same families either way).
* **Probe checks.** The probe suite's reference answers checked per second (sandbox runs and
  structural checks together), the cost of chapter 7 beyond generation.

    .venv/bin/python benchmarks/bench_analysis.py --items 5000 --functions 600 --variants 4
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sysconfig
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _seconds(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def bench_vendi(items: int, width: int) -> None:
    from phi1lib.analysis.diversity import vendi_score

    rng = np.random.default_rng(0)
    # Clustered embeddings, like real ones: 50 centres with noise.
    centres = rng.normal(size=(50, width))
    vectors = centres[rng.integers(0, 50, items)] + 0.5 * rng.normal(size=(items, width))
    fast_s, fast = _seconds(vendi_score, vectors)

    def gram_way(x: np.ndarray) -> float:
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        values = np.clip(np.linalg.eigvalsh(unit @ unit.T / len(unit)), 0, None)
        values = values[values > 1e-12] / values[values > 1e-12].sum()
        return math.exp(-(values * np.log(values)).sum())

    slow_s, slow = _seconds(gram_way, vectors)
    print(f"Vendi score, {items:,} x {width} embeddings")
    print(f"  d x d way : {fast_s * 1e3:9.1f} ms  (score {fast:.4f})")
    print(f"  n x n way : {slow_s * 1e3:9.1f} ms  (score {slow:.4f})")
    print(f"  speed-up  : {slow_s / fast_s:9.1f}x, scores differ by {abs(fast - slow):.2e}")


def stdlib_functions(count: int) -> list[ast.AST]:
    """The first ``count`` functions of the standard library's modules, in a fixed order."""
    from phi1lib.analysis.ast_shapes import function_units, parse_python

    units: list[ast.AST] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        tree = parse_python(path.read_text(encoding="utf-8", errors="replace"))
        units.extend(function_units(tree) if tree is not None else [])
        if len(units) >= count:
            break
    return units[:count]


class _Renamer(ast.NodeTransformer):
    """A variant of a function: every name and argument gets a suffix."""

    def __init__(self, suffix: str):
        self.suffix = suffix

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(node.id + self.suffix, node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg += self.suffix
        return node


def bench_shapes(functions: int, variants: int, workers: int) -> None:
    import copy

    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    from phi1lib.analysis.ast_shapes import cluster_variants, shape_similarity, shape_string

    base = stdlib_functions(functions)
    units = [_Renamer(f"_{i}").visit(copy.deepcopy(unit)) for unit in base for i in range(variants)]
    signature_s, shapes = _seconds(lambda: [shape_string(unit) for unit in units])
    distinct = len(set(shapes))
    pairs_s, _ = _seconds(shape_similarity, shapes[: min(len(shapes), 1500)], workers)
    pairs = min(len(shapes), 1500) ** 2
    fast_s, clusters = _seconds(cluster_variants, units, 0.9, workers)

    def without_collapse() -> int:
        distance = 1.0 - shape_similarity(shapes, workers)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method="complete")
        return len(np.unique(fcluster(tree, t=0.1 + 1e-9, criterion="distance")))

    slow_s, slow_families = _seconds(without_collapse)
    fast_families = clusters.summary()["similar_families"]
    print(
        f"\nProgram shapes: {len(units):,} functions ({len(base)} stdlib functions x "
        f"{variants} renamed variants, {distinct:,} distinct shapes), {workers} worker(s)"
    )
    print(f"  AST signatures   : {len(units) / signature_s:9,.0f} functions/s")
    print(f"  edit distances   : {pairs / pairs_s:9,.0f} pairs/s")
    print(f"  cluster_variants : {fast_s:9.2f} s  ({fast_families} families at τ = 0.9)")
    print(f"  without collapse : {slow_s:9.2f} s  ({slow_families} families)")
    print(f"  speed-up         : {slow_s / fast_s:9.1f}x")


def bench_probe_checks(workers: int) -> None:
    from phi1lib.analysis.probes.runner import check_completions
    from phi1lib.analysis.probes.suite import load_suite
    from phi1lib.profiles import load_profile

    probes = load_suite()
    answers = [probe.reference for probe in probes]
    settings = replace(load_profile("tiny", use_env=False).probes, workers=workers)
    check_completions(probes[:2], answers[:2], settings)  # warm the pool
    seconds, verdicts = _seconds(check_completions, probes, answers, settings)
    print(f"\nProbe checks: {len(probes)} reference answers, {workers} sandbox worker(s)")
    print(f"  {len(probes) / seconds:,.1f} probes/s, {sum(ok for ok, _ in verdicts)} passed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000, help="embeddings for the Vendi score")
    parser.add_argument("--width", type=int, default=384, help="embedding width (MiniLM: 384)")
    parser.add_argument("--functions", type=int, default=600, help="stdlib functions")
    parser.add_argument("--variants", type=int, default=4, help="renamed copies of each")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_vendi(args.items, args.width)
    bench_shapes(args.functions, args.variants, args.workers)
    bench_probe_checks(args.workers)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
