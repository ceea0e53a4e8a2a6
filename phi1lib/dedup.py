"""Exact and near-duplicate detection over lists of texts.

Duplicates waste training steps and make a model recite what it saw many times, so every dataset
of the book goes through the same two passes before anything else looks at it:

1. **Exact duplicates.** Texts are normalised (line endings unified, trailing whitespace of every
   line and blank lines at both ends removed) and hashed with SHA-256; equal hashes are one
   group. CodeGen deduplicated its training files with SHA-256 the same way.
2. **Near duplicates.** Each remaining text becomes a set of *shingles*: runs of ``ngram_size``
   consecutive alphanumeric tokens. A MinHash signature of ``num_perm`` permutations estimates the
   Jaccard similarity of two such sets, and locality-sensitive hashing (LSH) finds the candidate
   pairs without comparing every pair. Candidates whose estimated similarity reaches
   ``threshold`` are joined into clusters (union-find), and each cluster keeps one member.

The defaults are the parameters BigCode used to near-deduplicate The Stack: 256 permutations,
5-gram shingles over tokens split at non-alphanumeric characters, Jaccard threshold 0.7 (the
"Large-scale Near-deduplication Behind BigCode" post, huggingface.co/blog/dedup, and the defaults of
``near_deduplication/minhash_deduplication.py`` in bigcode-project/bigcode-dataset). The LSH
bands and rows are the ones ``datasketch`` derives from the threshold and the number of
permutations, weighting false positives and false negatives equally, as BigCode's script does.

A text kept from a group or cluster is always its first member (the lowest index), so the result
does not depend on anything but the order of the input. :func:`deduplicate` also removes texts
that duplicate any text of a second, *reference* list (for duplicates across two datasets).
Introduced in chapter 1 ("Filtering code to textbook quality"); chapters 2, 3 and 8 reuse it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

# BigCode's near-deduplication parameters for The Stack (see the module docstring).
NUM_PERM = 256
NGRAM_SIZE = 5
THRESHOLD = 0.7
SEED = 42

_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z_0-9]+")


def normalise(text: str) -> str:
    """The form of a text that exact deduplication compares (chapter 1).

    Line endings become ``\\n``, trailing whitespace on each line goes, and blank lines at the
    start and end go: two copies of a file saved by different editors are the same file.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def content_hash(text: str) -> str:
    """SHA-256 of the normalised text (chapter 1)."""
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()


def exact_duplicates(texts: Sequence[str]) -> list[list[int]]:
    """Groups of indices whose normalised texts are identical; only groups of two or more.

    Each group is sorted, and the groups are ordered by their first member (chapter 1).
    """
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        groups.setdefault(content_hash(text), []).append(index)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def code_tokens(text: str) -> list[str]:
    """The words of a text for near-deduplication: runs of letters, digits and underscores."""
    return [t for t in _NON_ALPHANUMERIC.split(text) if t]


def shingles(text: str, ngram_size: int = NGRAM_SIZE) -> set[str]:
    """The set of word n-grams that near-deduplication compares (chapter 1).

    Tokens are :func:`code_tokens`, so code that differs only in punctuation, spacing or layout
    has the same shingles. A text with fewer tokens than ``ngram_size`` is one shingle of all its
    tokens; a text without tokens has none.
    """
    tokens = code_tokens(text)
    if not tokens:
        return set()
    if len(tokens) < ngram_size:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + ngram_size]) for i in range(len(tokens) - ngram_size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity of two shingle sets (what MinHash estimates)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def minhash_signatures(
    texts: Sequence[str],
    *,
    num_perm: int = NUM_PERM,
    ngram_size: int = NGRAM_SIZE,
    seed: int = SEED,
    progress: bool = False,
    desc: str = "MinHash",
) -> list[Any]:
    """One ``datasketch.MinHash`` per text, or None for a text without tokens (chapter 1)."""
    from datasketch import MinHash

    template = MinHash(num_perm=num_perm, seed=seed)
    signatures: list[Any] = []
    for text in tqdm(texts, desc=desc, disable=not progress, unit="text"):
        grams = shingles(text, ngram_size)
        if not grams:
            signatures.append(None)
            continue
        signature = template.copy()
        signature.update_batch([g.encode("utf-8", "surrogatepass") for g in grams])
        signatures.append(signature)
    return signatures


class _UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for item in range(len(self.parent)):
            members.setdefault(self.find(item), []).append(item)
        return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


def _similar_pairs(signatures: Sequence[Any], threshold: float, num_perm: int) -> Iterable:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for index, signature in enumerate(signatures):
        if signature is None:
            continue
        for other in lsh.query(signature):
            if signature.jaccard(signatures[other]) >= threshold:
                yield other, index
        lsh.insert(index, signature, check_duplication=False)


def near_duplicate_clusters(
    texts: Sequence[str],
    *,
    threshold: float = THRESHOLD,
    num_perm: int = NUM_PERM,
    ngram_size: int = NGRAM_SIZE,
    seed: int = SEED,
    progress: bool = False,
) -> list[list[int]]:
    """Clusters of indices whose texts are near duplicates of each other (chapter 1).

    Two texts are linked when LSH makes them candidates and their MinHash estimate of the
    Jaccard similarity of their shingle sets is at least ``threshold``; clusters are the
    connected components of these links, so two members of one cluster may be less similar than
    the threshold through a chain of others. Only clusters of two or more are returned.
    """
    signatures = minhash_signatures(
        texts, num_perm=num_perm, ngram_size=ngram_size, seed=seed, progress=progress
    )
    union = _UnionFind(len(texts))
    for a, b in _similar_pairs(signatures, threshold, num_perm):
        union.union(a, b)
    return union.groups()


@dataclass
class DedupResult:
    """What :func:`deduplicate` found: the indices kept and why each other index was removed."""

    kept: list[int]
    exact_groups: list[list[int]]  # groups of identical texts (indices into texts, 2 or more)
    near_clusters: list[list[int]]  # clusters of near duplicates among exact survivors
    removed: dict[int, str] = field(default_factory=dict)  # index -> "exact" | "near" | "reference"
    duplicate_of: dict[int, int] = field(default_factory=dict)  # index -> kept index
    reference_matches: dict[int, int] = field(default_factory=dict)  # index -> reference index
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_input(self) -> int:
        return len(self.kept) + len(self.removed)

    def removed_by_reason(self) -> dict[str, int]:
        counts = Counter(self.removed.values())
        return {reason: counts.get(reason, 0) for reason in ("exact", "near", "reference")}

    def cluster_sizes(self) -> dict[int, int]:
        """How many duplicate clusters (exact and near merged) have each size, ascending."""
        members_removed = Counter(self.duplicate_of.values())
        sizes = Counter(count + 1 for count in members_removed.values())
        return dict(sorted(sizes.items()))

    def summary(self) -> dict[str, Any]:
        """Counts for a manifest or a table."""
        return {
            "input": self.n_input,
            "kept": len(self.kept),
            **{f"removed_{reason}": n for reason, n in self.removed_by_reason().items()},
            "exact_groups": len(self.exact_groups),
            "near_clusters": len(self.near_clusters),
            "largest_cluster": max(self.cluster_sizes(), default=1),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (integer keys become strings)."""
        return {
            "summary": self.summary(),
            "params": self.params,
            "cluster_sizes": {str(k): v for k, v in self.cluster_sizes().items()},
            "exact_groups": self.exact_groups,
            "near_clusters": self.near_clusters,
            "duplicate_of": {str(k): v for k, v in sorted(self.duplicate_of.items())},
            "reference_matches": {str(k): v for k, v in sorted(self.reference_matches.items())},
        }


def deduplicate(
    texts: Sequence[str],
    *,
    against: Sequence[str] = (),
    near: bool = True,
    threshold: float = THRESHOLD,
    num_perm: int = NUM_PERM,
    ngram_size: int = NGRAM_SIZE,
    seed: int = SEED,
    progress: bool = False,
) -> DedupResult:
    """Remove exact, then near duplicates from ``texts``; also any text that duplicates ``against``.

    Exact groups keep their first member. Near-duplicate search then runs over the survivors
    only (cheaper, and an exact copy adds nothing to a cluster). Texts in ``against`` are never
    removed; they only remove texts of ``texts`` that duplicate them (reason ``"reference"``).
    Use it for duplicates across two datasets, e.g. exercises against textbooks (chapter 3).
    Introduced in chapter 1.
    """
    n_ref = len(against)
    combined: list[str] = [*against, *texts]
    result = DedupResult(
        kept=[],
        exact_groups=[],
        near_clusters=[],
        params={
            "normalisation": "line endings, trailing whitespace, blank lines at both ends",
            "hash": "sha256",
            "near": near,
            "threshold": threshold,
            "num_perm": num_perm,
            "ngram_size": ngram_size,
            "seed": seed,
            "reference_texts": n_ref,
        },
    )

    def mark(index: int, representative: int, reason: str) -> None:
        """Record that combined[index] (a text, not a reference) duplicates combined[representative]."""
        own = index - n_ref
        if representative < n_ref:
            result.removed[own] = "reference"
            result.reference_matches[own] = representative
        else:
            result.removed[own] = reason
            result.duplicate_of[own] = representative - n_ref

    survivors: list[int] = []
    representative_of: dict[int, int] = {}
    for group in exact_duplicates(combined):
        for member in group[1:]:
            representative_of[member] = group[0]
        own = [m - n_ref for m in group if m >= n_ref]
        if len(own) > 1:
            result.exact_groups.append(own)
    for index in range(len(combined)):
        if index in representative_of:
            if index >= n_ref:
                mark(index, representative_of[index], "exact")
        else:
            survivors.append(index)

    if near:
        clusters = near_duplicate_clusters(
            [combined[i] for i in survivors],
            threshold=threshold,
            num_perm=num_perm,
            ngram_size=ngram_size,
            seed=seed,
            progress=progress,
        )
        for cluster in clusters:
            members = [survivors[i] for i in cluster]
            for member in members[1:]:
                if member >= n_ref:
                    mark(member, members[0], "near")
            own = [m - n_ref for m in members if m >= n_ref]
            if len(own) > 1:
                result.near_clusters.append(own)

    # An exact copy of a text that was later removed as a near duplicate points at the kept one.
    for own, representative in list(result.duplicate_of.items()):
        while representative in result.duplicate_of:
            representative = result.duplicate_of[representative]
        if representative in result.removed:  # the chain ends in a reference match
            result.removed[own] = "reference"
            result.reference_matches[own] = result.reference_matches[representative]
            del result.duplicate_of[own]
        else:
            result.duplicate_of[own] = representative
    result.kept = [i for i in range(len(texts)) if i not in result.removed]
    return result
