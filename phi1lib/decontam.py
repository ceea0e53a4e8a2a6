"""Decontamination: how much of a benchmark is already in the training data (paper §5).

Two checks from the paper, both between a benchmark (HumanEval) and a training set (the
exercises of chapter 3):

* **n-gram overlap** (§5.1): a benchmark docstring and a training text that share a run of 13
  words (lower-cased, punctuation dropped) are listed as a match. The paper found 4 such
  HumanEval problems, all false positives: stock phrases attached to different tasks.
* **AST match rate** (§5.2): two snippets are parsed, their syntax trees are written out as a
  sequence of node types with every name, constant value, comment and docstring erased, and the
  match rate τ is one minus the edit distance between the two sequences divided by the longer
  one. A benchmark problem is "similar" at τ when some training item matches it at τ or more;
  the paper removed those training items (42.5K to 354K of 879.5K as τ went from 0.95 to 0.8)
  and retrained, and reported pass@1 on the similar and the non-similar problems (Table 3).

The edit distances come from ``rapidfuzz`` (C++, all cores), in chunks so that a benchmark of
hundreds and a training set of hundreds of thousands fit in memory. The paper also used an
embedding distance, which is not reproduced here. Introduced in chapter 3 (pruning the
exercises) and chapter 6 (Table 3 at our scale).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

NGRAM_SIZE = 13
# The match-rate thresholds of the paper's Table 3.
TAUS = (0.95, 0.9, 0.85, 0.8)
_WORD = re.compile(r"[a-z0-9_]+")


# --- n-gram overlap (§5.1) -------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The normalised words of a text: lower case, runs of letters, digits and underscores."""
    return _WORD.findall(text.lower())


def word_ngrams(text: str, n: int = NGRAM_SIZE) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive normalised words of ``text``."""
    tokens = words(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class NgramMatch:
    """A benchmark problem and a training item that share an ``n``-word run."""

    task_id: str
    train_index: int
    ngram: str


def ngram_overlap(
    benchmark_texts: Mapping[str, str],
    training_texts: Iterable[str],
    *,
    n: int = NGRAM_SIZE,
    progress: bool = False,
) -> list[NgramMatch]:
    """All (problem, training item) pairs sharing an ``n``-gram, with the first shared one.

    The benchmark side is small, so its n-grams go in a dict; each training text is then
    scanned once. Chapter 6 runs it between HumanEval docstrings and the exercises.
    """
    index: dict[tuple[str, ...], list[str]] = {}
    for task_id, text in benchmark_texts.items():
        for gram in word_ngrams(text, n):
            index.setdefault(gram, []).append(task_id)
    matches: list[NgramMatch] = []
    for train_index, text in enumerate(tqdm(training_texts, desc="13-grams", disable=not progress)):
        tokens = words(text)
        found: dict[str, str] = {}
        for i in range(len(tokens) - n + 1):
            gram = tuple(tokens[i : i + n])
            for task_id in index.get(gram, ()):
                found.setdefault(task_id, " ".join(gram))
        matches.extend(NgramMatch(t, train_index, g) for t, g in sorted(found.items()))
    return matches


# --- AST match rate (§5.2) -------------------------------------------------------------------

_NODE_TYPES = sorted(
    name
    for name, value in vars(ast).items()
    if isinstance(value, type) and issubclass(value, ast.AST)
)
# One character per node type (and per constant type), so that an edit of one character is an
# edit of one node; a closing mark after each node with children keeps the tree's shape.
_LABELS = _NODE_TYPES + [f"Constant:{kind}" for kind in ("str", "int", "float", "bool", "other")]
_SYMBOL = {label: chr(0x4E00 + i) for i, label in enumerate(_LABELS)}
_CLOSE = ")"
_SKIPPED = (ast.expr_context,)


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]


def _constant_label(value: object) -> str:
    for kind in (bool, int, float, str):  # bool before int: True is an int too
        if isinstance(value, kind):
            return f"Constant:{kind.__name__}"
    return "Constant:other"


def ast_signature(code: str) -> str | None:
    """The snippet's syntax tree as a string of node types, names and values erased (§5.2).

    Returns ``None`` for code that does not parse: it cannot be compared structurally.
    """
    try:
        with warnings.catch_warnings():  # training code may hold invalid escapes such as "\d"
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    _strip_docstrings(tree)
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, _SKIPPED):
            return
        label = (
            _constant_label(node.value) if isinstance(node, ast.Constant) else type(node).__name__
        )
        out.append(_SYMBOL.get(label, _SYMBOL["Constant:other"]))
        children = list(ast.iter_child_nodes(node))
        for child in children:
            visit(child)
        if children:
            out.append(_CLOSE)

    visit(tree)
    return "".join(out)


def match_rate(code_a: str, code_b: str) -> float:
    """τ between two snippets: 1 - edit distance / longer length of their AST signatures."""
    from rapidfuzz.distance import Levenshtein

    a, b = ast_signature(code_a), ast_signature(code_b)
    if a is None or b is None:
        return 0.0
    return float(Levenshtein.normalized_similarity(a, b))


@dataclass
class AstMatches:
    """Best AST match rates between a benchmark and a training set, and what they imply.

    ``best_rate[i]`` is problem ``i``'s best match rate over the training set and
    ``best_train_index[i]`` the training item achieving it (-1 when no item reached
    ``min_rate``); ``train_best_rate[j]`` is training item ``j``'s best rate over the benchmark.
    Rates below ``min_rate`` are stored as 0.
    """

    task_ids: list[str]
    best_rate: np.ndarray
    best_train_index: np.ndarray
    train_best_rate: np.ndarray
    min_rate: float
    unparsable_benchmark: list[str] = field(default_factory=list)
    unparsable_training: int = 0

    def similar(self, tau: float) -> list[str]:
        """Benchmark problems with at least one training item at match rate ``tau`` or more."""
        self._check(tau)
        return [t for t, rate in zip(self.task_ids, self.best_rate, strict=True) if rate >= tau]

    def pruned(self, tau: float) -> np.ndarray:
        """Indices of the training items the paper's pruning would remove at ``tau``."""
        self._check(tau)
        return np.flatnonzero(self.train_best_rate >= tau)

    def pruning_table(self, taus: Sequence[float] = TAUS) -> list[dict]:
        """Per τ: similar problems and pruned training items (the paper's §5.2 counts)."""
        total = len(self.train_best_rate)
        rows = []
        for tau in taus:
            pruned = len(self.pruned(tau))
            rows.append(
                {
                    "tau": tau,
                    "similar_problems": len(self.similar(tau)),
                    "pruned_training_items": pruned,
                    "pruned_fraction": pruned / total if total else 0.0,
                }
            )
        return rows

    def _check(self, tau: float) -> None:
        if tau < self.min_rate:
            raise ValueError(f"rates below min_rate={self.min_rate} were not kept; got tau={tau}")


def ast_matches(
    benchmark_codes: Mapping[str, str],
    training_codes: Sequence[str],
    *,
    min_rate: float = min(TAUS),
    chunk_size: int = 20_000,
    workers: int = -1,
    progress: bool = False,
) -> AstMatches:
    """Compare every benchmark snippet with every training snippet by AST match rate (§5.2).

    ``rapidfuzz.process.cdist`` computes the normalised edit distances in C++ on all cores,
    skipping pairs that cannot reach ``min_rate`` (their length ratio alone rules them out).
    """
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    task_ids = list(benchmark_codes)
    queries = [ast_signature(benchmark_codes[t]) for t in task_ids]
    unparsable = [t for t, q in zip(task_ids, queries, strict=True) if q is None]
    queries = [q or "" for q in queries]
    best_rate = np.zeros(len(task_ids), dtype=np.float32)
    best_index = np.full(len(task_ids), -1, dtype=np.int64)
    train_best = np.zeros(len(training_codes), dtype=np.float32)
    unparsable_training = 0
    starts = range(0, len(training_codes), chunk_size)
    for start in tqdm(starts, desc="AST match", unit="chunk", disable=not progress):
        signatures = [ast_signature(code) for code in training_codes[start : start + chunk_size]]
        unparsable_training += sum(s is None for s in signatures)
        scores = process.cdist(
            queries,
            [s or "" for s in signatures],
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=min_rate,
            dtype=np.float32,
            workers=workers,
        )
        # Empty signatures (unparsable code) must never match each other.
        scores[[i for i, q in enumerate(queries) if not q], :] = 0.0
        scores[:, [j for j, s in enumerate(signatures) if not s]] = 0.0
        if scores.size == 0:
            continue
        chunk_best = scores.argmax(axis=1)
        chunk_rate = scores[np.arange(len(queries)), chunk_best]
        better = chunk_rate > best_rate
        best_rate[better] = chunk_rate[better]
        best_index[better] = chunk_best[better] + start
        train_best[start : start + len(signatures)] = scores.max(axis=0, initial=0.0)
    return AstMatches(
        task_ids=task_ids,
        best_rate=best_rate,
        best_train_index=best_index,
        train_best_rate=train_best,
        min_rate=min_rate,
        unparsable_benchmark=unparsable,
        unparsable_training=unparsable_training,
    )


# --- Table 3 at our scale ----------------------------------------------------------------------


def _mean_percent(values: list[float]) -> float | None:
    return 100.0 * float(np.mean(values)) if values else None


def similarity_split_table(
    matches: AstMatches,
    scores: Mapping[str, Mapping[str, float]],
    taus: Sequence[float] = TAUS,
    task_ids: Sequence[str] | None = None,
) -> list[dict]:
    """The paper's Table 3 for our models: pass@1 on similar, non-similar and all problems.

    ``scores`` maps a model name to its per-problem pass@1 (``task_id -> 0..1``), as the
    ``evaluate`` stage writes them. The problems are ``task_ids`` (default: all of
    ``matches``); a subset with no problems has pass@1 ``None``. Introduced in chapter 6.
    """
    chosen = list(matches.task_ids if task_ids is None else task_ids)
    unknown = set(chosen) - set(matches.task_ids)
    if unknown:
        raise ValueError(f"problems without match rates: {sorted(unknown)[:5]}")
    rows = []
    for tau in taus:
        similar = set(matches.similar(tau))
        subsets = {
            "similar": [t for t in chosen if t in similar],
            "non-similar": [t for t in chosen if t not in similar],
            "total": chosen,
        }
        for subset, ids in subsets.items():
            row: dict = {"tau": tau, "subset": subset, "problems": len(ids)}
            for model, per_problem in scores.items():
                row[model] = _mean_percent([per_problem[t] for t in ids if t in per_problem])
            rows.append(row)
    return rows
