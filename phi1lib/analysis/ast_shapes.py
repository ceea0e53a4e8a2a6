"""Program shapes: how many variants of each exercise a dataset holds.

The paper's conclusion asks how one would count "how many variants of each exercise exist and how
they are distributed" {cite}`gunasekar2023textbooks`. Two programs are variants of one exercise
when they do the same thing in the same way and differ only in what they are called: the names of
the function and its variables, the values of constants, the docstring. So we compare programs
by their abstract syntax tree with exactly those parts erased (its *shape*), the representation
the paper used for its own decontamination check (§5.2) and that chapter 3 computes with
:func:`phi1lib.decontam.ast_signature`. Two levels of "variant" are counted:

* **exact shape**: the erased trees are identical, e.g. ``def add(a, b): return a + b`` and
  ``def plus(x, y): return x + y``;
* **similar shape**: every pair in a cluster has shape similarity at least ``threshold``, where
  similarity is one minus the edit distance between the two erased trees written as strings,
  over the longer length: the paper's "match rate" τ. Complete linkage guarantees the "every
  pair" reading, so a cluster is a set of mutual variants and never a chain of small steps.

The unit is a function: exercises hold one function each, textbooks and code files hold several,
and counting functions lets the four datasets of the pipeline be compared on one scale.
Introduced in chapter 8 ("Measuring diversity and redundancy").
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_FENCED_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef)


def parse_python(text: str) -> ast.Module | None:
    """The module a text holds: the text itself when it parses, else its fenced code blocks.

    Code files and exercises are plain Python; textbook sections are prose with fenced snippets,
    of which we keep those that parse. None when no Python can be found.
    """
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        pass
    blocks = []
    for block in _FENCED_BLOCK.findall(text):
        try:
            blocks.append(ast.parse(block))
        except (SyntaxError, ValueError):
            continue
    if not blocks:
        return None
    return ast.Module(body=[node for block in blocks for node in block.body], type_ignores=[])


def function_units(tree: ast.AST) -> list[ast.AST]:
    """The outermost function definitions of a tree (methods included, nested helpers inside).

    Chapter 8 counts variants per function, so that a code file with ten functions and an
    exercise with one are measured in the same unit.
    """
    found: list[ast.AST] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _FUNCTION):
                found.append(child)
            else:
                visit(child)

    visit(tree)
    return found


def shape_string(node: ast.AST) -> str:
    """The function's AST signature: node types only, one character each (chapter 3's
    :func:`phi1lib.decontam.ast_signature`, so that τ here is the decontamination check's τ)."""
    from phi1lib.decontam import ast_signature

    signature = ast_signature(ast.unparse(node))
    if signature is None:  # unparse of a parsed tree always parses again
        raise ValueError(f"the function at line {getattr(node, 'lineno', '?')} did not round-trip")
    return signature


def shape_key(node: ast.AST) -> str:
    """A short stable hash of the shape, for grouping exact variants."""
    return hashlib.blake2b(shape_string(node).encode(), digest_size=8).hexdigest()


def shape_similarity(shapes: Sequence[str], workers: int = 1) -> np.ndarray:
    """Pairwise similarity of shape strings: ``1 - edit distance / length of the longer one``.

    This is the paper's syntax-based match rate τ (string edit distance between ASTs, §5.2):
    1 for identical shapes, near 0 for shapes that share little. ``rapidfuzz`` computes the
    matrix in C, ``workers`` threads at a time.
    """
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    if not shapes:
        return np.zeros((0, 0))
    matrix = cdist(
        shapes, shapes, scorer=Levenshtein.normalized_similarity, dtype=np.float32, workers=workers
    )
    return np.asarray(matrix, dtype=np.float64)


def _variant_tree(similarity: np.ndarray) -> np.ndarray | None:
    """The complete-linkage tree over distinct shapes (None for fewer than two shapes)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    if len(similarity) < 2:
        return None
    distance = 1.0 - similarity
    np.fill_diagonal(distance, 0.0)
    return linkage(squareform(distance, checks=False), method="complete")


def _cut(tree: np.ndarray | None, threshold: float, n: int) -> np.ndarray:
    """Families whose every pair of members has match rate at least ``threshold``."""
    from scipy.cluster.hierarchy import fcluster

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if tree is None:
        return np.zeros(n, dtype=np.int64)
    return fcluster(tree, t=1.0 - threshold + 1e-9, criterion="distance") - 1


def _distinct_shapes(units: Sequence[ast.AST]) -> tuple[np.ndarray, list[str]]:
    """Exact-shape label per unit, and the distinct shapes in order of first appearance."""
    keys = [shape_string(unit) for unit in units]
    distinct: dict[str, int] = {}
    for key in keys:
        distinct.setdefault(key, len(distinct))
    return np.array([distinct[key] for key in keys], dtype=np.int64), list(distinct)


@dataclass(frozen=True)
class VariantClusters:
    """Functions grouped into families of variants, by exact shape and by similar shape."""

    exact_labels: np.ndarray
    similar_labels: np.ndarray
    threshold: float
    tree: np.ndarray | None = None  # complete-linkage tree over the distinct shapes

    @property
    def n_units(self) -> int:
        return len(self.exact_labels)

    def labels_at(self, threshold: float) -> np.ndarray:
        """The family of every function at another match-rate threshold (same tree, new cut)."""
        if not self.n_units:
            return self.exact_labels.copy()
        shapes = int(self.exact_labels.max()) + 1
        return _cut(self.tree, threshold, shapes)[self.exact_labels]

    def families_at(self, threshold: float) -> int:
        """How many families the functions form at another match-rate threshold."""
        return int(len(np.unique(self.labels_at(threshold))))

    @staticmethod
    def family_sizes(labels: np.ndarray) -> list[int]:
        """Sizes of the families, largest first."""
        return sorted(np.bincount(labels).tolist(), reverse=True) if len(labels) else []

    def summary(self) -> dict[str, float | int]:
        """Counts a chapter table shows: families, the largest one, and how many stand alone."""
        summary: dict[str, float | int] = {"functions": self.n_units, "threshold": self.threshold}
        for name, labels in (("exact", self.exact_labels), ("similar", self.similar_labels)):
            sizes = np.asarray(self.family_sizes(labels), dtype=np.float64)
            if not len(sizes):
                continue
            share = sizes / sizes.sum()
            summary[f"{name}_families"] = len(sizes)
            summary[f"{name}_largest_share"] = float(share[0])
            summary[f"{name}_singleton_share"] = float((sizes == 1).sum() / sizes.sum())
            effective = float(np.exp(-(share * np.log(share)).sum()))
            summary[f"{name}_effective_families"] = effective
            summary[f"{name}_effective_share"] = effective / self.n_units
        return summary


def cluster_variants(
    units: Sequence[ast.AST], threshold: float = 0.9, workers: int = 1
) -> VariantClusters:
    """Group functions into families of exact-shape and similar-shape variants.

    Identical shapes are collapsed first: complete linkage ignores duplicates, so clustering the
    distinct shapes and expanding the labels gives the same answer at a fraction of the cost.
    """
    exact, shapes = _distinct_shapes(units)
    tree = _variant_tree(shape_similarity(shapes, workers))
    family_of_shape = _cut(tree, threshold, len(shapes))
    similar = family_of_shape[exact] if len(exact) else exact
    return VariantClusters(exact, similar, threshold, tree)


def functions_in(texts: Iterable[str]) -> tuple[list[ast.AST], int]:
    """Every function found in the texts, and how many texts held no parsable Python at all."""
    units: list[ast.AST] = []
    unparsable = 0
    for text in texts:
        tree = parse_python(text)
        if tree is None:
            unparsable += 1
            continue
        units.extend(function_units(tree))
    return units, unparsable
