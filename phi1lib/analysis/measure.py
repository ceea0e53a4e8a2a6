"""Every metric of chapter 8 applied to one dataset, on a fixed-size sample.

The four datasets of the pipeline differ in size by orders of magnitude, and most diversity
metrics grow or shrink with the number of items (a larger sample holds more distinct n-grams in
total but a smaller share of them, more room for Vendi score and clusters, and more chances for
a function to meet its variants). So every dataset is measured on a deterministic sample of the
same number of items (the smaller of ``max_items`` and the smallest dataset), the program shapes
on the same number of functions, and distinct-n on the same number of n-grams. Introduced in chapter 8 ("Measuring diversity and redundancy").
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from phi1lib.analysis.ast_shapes import (
    cluster_variants,
    function_units,
    functions_in,
    parse_python,
)
from phi1lib.analysis.diversity import (
    cluster_entropy,
    distinct_n,
    nearest_topics,
    tokens_of,
    topic_coverage,
    vendi_score,
)

DISTINCT_NS = (1, 2, 3)
# Match rates at which family counts are reported: exact, and the paper's Table 3 values (§5.2).
THRESHOLDS = (1.0, 0.95, 0.9, 0.85, 0.8)


@dataclass(frozen=True)
class DiversitySettings:
    """The knobs of chapter 8; the profile's ``[diversity]`` section fills them."""

    max_items: int  # items sampled from each dataset
    max_functions: int  # functions sampled for the shape clustering
    max_ngrams: int  # n-gram budget of distinct-n (lowered to the smallest dataset's)
    kmeans_clusters: int
    ast_threshold: float  # the match rate τ above which two functions are variants
    near_duplicate_threshold: float  # MinHash Jaccard threshold of near duplicates
    workers: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_indices(total: int, size: int, seed: int) -> list[int]:
    """A deterministic random sample of ``size`` indices out of ``total``, in random order.

    The order matters for distinct-n on a budget: the first n-grams counted must not all come
    from the first files of a dataset.
    """
    indices = list(range(total))
    random.Random(seed).shuffle(indices)
    return indices[: min(size, total)]


def duplicate_shares(texts: Sequence[str], threshold: float) -> dict[str, float]:
    """Share of items that are exact copies, and near copies, of an earlier item (chapter 1's
    deduplication: SHA-256 of the normalised text, then MinHash LSH at ``threshold``)."""
    from phi1lib.dedup import deduplicate

    result = deduplicate(list(texts), threshold=threshold)
    removed = result.removed_by_reason()
    n = max(len(texts), 1)
    return {
        "exact_duplicate_share": removed["exact"] / n,
        "near_duplicate_share": removed["near"] / n,
        "duplicate_share": (removed["exact"] + removed["near"]) / n,
    }


def ngram_count(texts: Sequence[str], n: int) -> int:
    """How many n-grams the texts hold (what bounds an equal distinct-n budget)."""
    return sum(max(len(tokens_of(text)) - n + 1, 0) for text in texts)


def text_metrics(texts: Sequence[str], settings: DiversitySettings, budget: int) -> dict:
    """Duplicate shares and distinct-1/2/3 on ``budget`` n-grams."""
    metrics: dict[str, Any] = duplicate_shares(texts, settings.near_duplicate_threshold)
    for n in DISTINCT_NS:
        metrics[f"distinct_{n}"] = distinct_n(texts, n, max_ngrams=budget)
    metrics["ngram_budget"] = budget
    return metrics


def embedding_metrics(embeddings: np.ndarray, settings: DiversitySettings) -> dict:
    """Vendi score and k-means cluster spread of the items' embeddings."""
    spread = cluster_entropy(embeddings, settings.kmeans_clusters, settings.seed)
    vendi = vendi_score(embeddings)
    return {
        "vendi_score": vendi,
        "vendi_per_item": vendi / len(embeddings),
        "cluster_effective": spread.effective,
        "cluster_evenness": spread.evenness,
        "clusters_used": spread.used,
    }


def shape_metrics(
    functions: tuple[list[ast.AST], int],
    texts: int,
    settings: DiversitySettings,
    max_functions: int | None = None,
) -> tuple[dict, dict]:
    """Family counts of program shapes over at most ``max_functions`` sampled functions (the
    settings' cap by default); the family sizes and the family count at each of
    :data:`THRESHOLDS` (for the chapter's figures). ``functions`` is what :func:`functions_in`
    found in the ``texts`` texts, parsed once by the caller."""
    units, unparsable = functions
    limit = settings.max_functions if max_functions is None else max_functions
    if len(units) > limit:
        keep = sorted(sample_indices(len(units), limit, settings.seed))
        units = [units[i] for i in keep]
    clusters = cluster_variants(units, settings.ast_threshold, workers=settings.workers)
    summary = {
        **clusters.summary(),
        "texts_without_code": unparsable,
        "share_without_code": unparsable / max(texts, 1),
    }
    sizes = {
        "exact": clusters.family_sizes(clusters.exact_labels),
        "similar": clusters.family_sizes(clusters.similar_labels),
        "by_threshold": {str(t): clusters.families_at(t) for t in THRESHOLDS},
    }
    return summary, sizes


def topic_metrics(
    topics: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    topic_embeddings: np.ndarray | None = None,
) -> dict:
    """Coverage of the topic list: from the items' own topic labels when they have them, else
    from the nearest topic in embedding space (then marked ``"assigned": "nearest"``)."""
    if labels is None:
        if embeddings is None or topic_embeddings is None:
            raise ValueError("topic coverage needs labels, or embeddings of items and topics")
        labels = [topics[i] for i in nearest_topics(embeddings, topic_embeddings)]
        how = "nearest"
    else:
        how = "label"
    coverage = topic_coverage(labels, topics)
    return {
        "assigned": how,
        "topic_coverage": coverage.coverage,
        "topic_effective": coverage.spread.effective,
        "topic_evenness": coverage.spread.evenness,
        "topic_counts": coverage.counts,
    }


def measure_texts(
    texts: Sequence[str],
    settings: DiversitySettings,
    embed_with,
    *,
    vectors: np.ndarray | None = None,
    budget: int | None = None,
) -> dict[str, Any]:
    """Every metric that needs no topic list, for one list of texts (chapter 8's checks on
    constructed data). ``embed_with`` is a profile or an embedding model name; ``vectors`` skips
    the embedding when the texts were embedded already."""
    from phi1lib.embeddings import embed_texts

    if vectors is None:
        vectors = embed_texts(list(texts), embed_with)
    budget = budget or ngram_count(texts, max(DISTINCT_NS))
    shapes, _ = shape_metrics(functions_in(texts), len(texts), settings)
    return {
        "items": len(texts),
        **text_metrics(texts, settings, budget),
        **embedding_metrics(vectors, settings),
        **shapes,
    }


def largest_families(
    texts: Sequence[str], settings: DiversitySettings, *, families: int = 2, members: int = 3
) -> list[list[str]]:
    """Source of a few members of the largest families of similar-shape functions in ``texts``
    (names and docstrings as written; comments are lost in the round trip through the AST)."""
    units, _ = functions_in(texts)
    clusters = cluster_variants(units, settings.ast_threshold, workers=settings.workers)
    sizes = np.bincount(clusters.similar_labels) if len(units) else np.zeros(0, dtype=int)
    chosen = np.argsort(-sizes, kind="stable")[:families]
    return [
        [ast.unparse(units[i]) for i in np.flatnonzero(clusters.similar_labels == f)[:members]]
        for f in chosen
    ]


def family_agreement(
    texts: Sequence[str], families: Sequence[str], settings: DiversitySettings
) -> dict[str, Any]:
    """How well shape families recover the families a generator says it used.

    The procedural teacher writes every exercise from one of its templates ("families"), so for
    its exercises the true number of variants of each exercise is known: a check of the shape
    clustering on real pipeline data. Each item's first function is clustered, and the found
    families are compared with the known ones by the adjusted Rand index (1 = the same
    partition, about 0 = no better than chance) and by homogeneity (each found family holds one
    known family) and completeness (each known family sits in one found family).
    """
    from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure

    units, truth = [], []
    for text, family in zip(texts, families, strict=True):
        tree = parse_python(text)
        found = function_units(tree) if tree is not None else []
        if found:
            units.append(found[0])
            truth.append(family)
    clusters = cluster_variants(units, settings.ast_threshold, workers=settings.workers)
    by_threshold = {}
    for threshold in sorted({*THRESHOLDS, float(settings.ast_threshold)}, reverse=True):
        labels = clusters.labels_at(threshold)
        homogeneity, completeness, _ = homogeneity_completeness_v_measure(truth, labels)
        by_threshold[str(threshold)] = {
            "found_families": int(len(np.unique(labels))),
            "adjusted_rand": float(adjusted_rand_score(truth, labels)),
            "homogeneity": float(homogeneity),
            "completeness": float(completeness),
        }
    return {
        "items": len(units),
        "known_families": len(set(truth)),
        "threshold": settings.ast_threshold,
        **by_threshold[str(float(settings.ast_threshold))],
        "by_threshold": by_threshold,
    }
