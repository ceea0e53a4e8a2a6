"""How diverse and how redundant is a dataset? Metrics for the paper's open problem.

The paper closes by saying that there is no good way to measure the diversity and redundancy of
a dataset {cite}`gunasekar2023textbooks`. No single number can, so chapter 8 reports several,
each answering one question, each with a known answer on constructed data (see
``tests/test_diversity.py``):

* **Duplicates** (how much is repeated verbatim or almost): the share of items that are an exact
  or near copy of an earlier item, ``(n - families) / n``. ``k`` copies of one text give
  ``(k - 1) / k``. The detection itself is :mod:`phi1lib.dedup` (MinHash LSH).
* **Distinct-n** (how varied is the wording) {cite}`li2016diversity`: distinct n-grams over all
  n-grams, counted on an equal budget of n-grams for every dataset, since the ratio falls as text
  grows. ``k`` copies give ``1 / k`` (for texts whose n-grams are all different).
* **Vendi score** (how many really different items are there) {cite}`friedman2023vendi`: the
  exponential of the Shannon entropy of the eigenvalues of ``K / n``, for the cosine-similarity
  kernel ``K`` of the items' embeddings. Because ``K`` has ones on its diagonal, the eigenvalues
  of ``K / n`` are non-negative and sum to one, so they form a distribution; ``k`` copies give one
  eigenvalue 1 (score 1), ``n`` orthogonal items give ``n`` eigenvalues ``1/n`` (score ``n``). It
  is an *effective number* of distinct items, like the perplexity of a distribution.
* **Cluster entropy** (how evenly is the embedding space used): k-means into ``c`` clusters, and
  the entropy of the cluster sizes, reported as the effective number of clusters ``exp(H)``
  (between 1 and ``c``) and as evenness ``H / log c`` (between 0 and 1).
* **Program shapes** (how many variants of each exercise): :mod:`phi1lib.analysis.ast_shapes`.
* **Topic coverage** (is the intended curriculum covered, and evenly): the share of the topic list
  that appears at all, and the evenness of the topic distribution. Items without a topic label
  are assigned the nearest topic in embedding space.

Introduced in chapter 8 ("Measuring diversity and redundancy").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens_of(text: str) -> list[str]:
    """Words, numbers and single punctuation marks: a tokenizer that treats code and prose alike."""
    return _TOKEN.findall(text)


def distinct_n(texts: Iterable[str], n: int, max_ngrams: int | None = None) -> float:
    """Distinct n-grams over all n-grams in the texts (n-grams never cross two texts).

    With ``max_ngrams`` only the first that many n-grams count, in the order of the texts, so
    datasets of long and short items can be compared on the same budget; the caller shuffles.
    Returns 0 when the texts hold no n-gram.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = tokens_of(text)
        for start in range(len(words) - n + 1):
            if max_ngrams is not None and total >= max_ngrams:
                return len(seen) / total
            seen.add(tuple(words[start : start + n]))
            total += 1
    return len(seen) / total if total else 0.0


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) == 0:
        raise ValueError(
            f"expected a non-empty (items, dimensions) array, got shape {matrix.shape}"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("an embedding is the zero vector; cosine similarity is undefined for it")
    return matrix / norms


def vendi_score(embeddings: np.ndarray) -> float:
    """The Vendi score of items under the cosine-similarity kernel {cite}`friedman2023vendi`.

    ``K = X Xᵀ`` for unit rows ``X`` (n × d). The non-zero eigenvalues of ``K / n`` equal those of
    ``Xᵀ X / n`` (d × d), so the score costs one eigen-decomposition of the smaller of the two:
    for 5,000 items of a 384-dimensional embedding that is a 384 × 384 matrix instead of a
    5,000 × 5,000 one.
    """
    unit = _unit_rows(embeddings)
    n, d = unit.shape
    small = unit @ unit.T if n <= d else unit.T @ unit
    eigenvalues = np.clip(np.linalg.eigvalsh(small / n), 0.0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    eigenvalues /= eigenvalues.sum()
    return float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))


@dataclass(frozen=True)
class Spread:
    """How evenly items fall into categories (clusters or topics)."""

    categories: int  # categories available (k-means clusters asked for, topics listed)
    used: int  # categories holding at least one item
    entropy: float  # Shannon entropy of the category shares, in nats
    effective: float  # exp(entropy): the number of equally used categories with that entropy
    evenness: float  # entropy / log(categories), 0 (all in one) to 1 (perfectly even)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def spread(labels: Sequence[Hashable], categories: int) -> Spread:
    """The entropy of the label distribution, and what it means in counts (see :class:`Spread`)."""
    if categories < 1:
        raise ValueError(f"categories must be at least 1, got {categories}")
    counts = np.array(list(Counter(labels).values()), dtype=np.float64)
    if not len(counts):
        return Spread(categories, 0, 0.0, 0.0, 0.0)
    shares = counts / counts.sum()
    entropy = max(0.0, float(-(shares * np.log(shares)).sum()))  # no "-0.0" for one category
    evenness = entropy / math.log(categories) if categories > 1 else 1.0
    return Spread(categories, len(counts), entropy, math.exp(entropy), evenness)


def cluster_entropy(embeddings: np.ndarray, n_clusters: int, seed: int = 0) -> Spread:
    """k-means over unit-length embeddings, then the :func:`spread` of the cluster sizes.

    With fewer distinct items than clusters, only as many clusters as distinct items are formed
    (k copies of one item always land in one cluster: entropy 0, one effective cluster).
    """
    from sklearn.cluster import KMeans

    unit = _unit_rows(embeddings)
    distinct = len(np.unique(unit.round(6), axis=0))
    k = max(1, min(n_clusters, distinct))
    if k == 1:
        return spread([0] * len(unit), n_clusters)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(unit)
    return spread(labels.tolist(), n_clusters)


def nearest_topics(embeddings: np.ndarray, topic_embeddings: np.ndarray) -> np.ndarray:
    """For each item, the index of the topic whose embedding is most cosine-similar to it."""
    return np.argmax(_unit_rows(embeddings) @ _unit_rows(topic_embeddings).T, axis=1)


@dataclass(frozen=True)
class TopicCoverage:
    """Which part of a topic list a dataset covers, and how evenly."""

    coverage: float  # share of the listed topics that appear at least once
    spread: Spread
    counts: dict[str, int]  # items per listed topic (zeros included)

    def to_dict(self) -> dict:
        return {"coverage": self.coverage, **self.spread.to_dict(), "counts": self.counts}


def topic_coverage(labels: Sequence[str], topics: Sequence[str]) -> TopicCoverage:
    """Coverage and evenness of item topics against the intended topic list.

    Labels outside the list are an error: they mean the dataset and the list disagree, and
    silently dropping them would overstate coverage.
    """
    listed = list(dict.fromkeys(topics))
    if not listed:
        raise ValueError("the topic list is empty")
    unknown = sorted(set(labels) - set(listed))
    if unknown:
        shown = ", ".join(map(repr, unknown[:5]))
        raise ValueError(f"{len(unknown)} topic labels are not in the topic list, e.g. {shown}")
    counts = Counter(labels)
    covered = sum(1 for topic in listed if counts[topic])
    return TopicCoverage(
        coverage=covered / len(listed),
        spread=spread(list(labels), len(listed)),
        counts={topic: counts[topic] for topic in listed},
    )
