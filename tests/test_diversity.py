"""Chapter 8's diversity and redundancy metrics, checked on constructed data whose answer is known."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from phi1lib.analysis.ast_shapes import (
    cluster_variants,
    function_units,
    functions_in,
    parse_python,
    shape_key,
    shape_similarity,
    shape_string,
)
from phi1lib.analysis.diversity import (
    cluster_entropy,
    distinct_n,
    nearest_topics,
    spread,
    topic_coverage,
    vendi_score,
)

# A hung sandbox or model load must fail the test, not stall the suite.
pytestmark = pytest.mark.timeout(300)

# Programs that share no structure: each is its own family at any sensible threshold.
UNRELATED_PROGRAMS = [
    "def a(x):\n    return x\n",
    "def b(xs):\n    total = 0\n    for x in xs:\n        if x > 0:\n            total += x\n"
    "    return total\n",
    "def c(s):\n    try:\n        return int(s)\n    except ValueError:\n        return None\n",
    "def d(n):\n    while n > 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        yield n\n",
    "def e(path):\n    with open(path) as handle:\n        return [line.strip() for line in handle]\n",
    "class F:\n    def g(self, key, value):\n        self.table = {**self.table, key: value}\n"
    "        del self.table['old']\n        assert key in self.table\n",
]


def _variant(index: int) -> str:
    """One exercise written with other names, constants, docstring and type hints."""
    return (
        f"def count_above_{index}(values_{index}: list, limit: int = {index}) -> int:\n"
        f'    """Variant {index}: count the values above the limit."""\n'
        f"    found_{index} = 0\n"
        f"    for item in values_{index}:\n"
        f"        if item > limit + {index * 7}:\n"
        f"            found_{index} += 1\n"
        f"    return found_{index}\n"
    )


def test_k_copies_have_vendi_score_one_and_one_cluster():
    vector = np.array([[0.3, -1.2, 0.5, 2.0]])
    copies = np.repeat(vector, 7, axis=0)
    assert vendi_score(copies) == pytest.approx(1.0, abs=1e-9)
    entropy = cluster_entropy(copies, n_clusters=4)
    assert (entropy.used, entropy.effective, entropy.evenness) == (1, pytest.approx(1.0), 0.0)


@pytest.mark.parametrize("n", [3, 10, 50])
def test_n_orthogonal_items_have_vendi_score_n(n):
    # n orthonormal rows in a 64-dimensional space (the n x n path; the d x d one is tested below).
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(64, n)))[0].T
    assert vendi_score(basis) == pytest.approx(n, rel=1e-9)


def test_vendi_score_uses_the_smaller_matrix_without_changing_the_answer():
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(40, 8))  # n > d: the d x d path
    unit = wide / np.linalg.norm(wide, axis=1, keepdims=True)
    eigenvalues = np.clip(np.linalg.eigvalsh(unit @ unit.T / len(unit)), 1e-15, None)
    expected = math.exp(-(eigenvalues * np.log(eigenvalues)).sum())
    assert vendi_score(wide) == pytest.approx(expected, rel=1e-6)
    assert 1.0 < vendi_score(wide) <= 8.0 + 1e-9  # at most the dimension


def test_vendi_score_counts_groups_of_copies():
    basis = np.eye(5)
    groups = np.repeat(basis, [4, 4, 4, 4, 4], axis=0)  # five equal groups of copies
    assert vendi_score(groups) == pytest.approx(5.0)
    uneven = np.repeat(basis[:2], [9, 1], axis=0)  # one group dominates
    p = np.array([0.9, 0.1])
    assert vendi_score(uneven) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_vendi_score_rejects_zero_and_empty_embeddings():
    with pytest.raises(ValueError, match="zero vector"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-empty"):
        vendi_score(np.zeros((0, 3)))


def test_cluster_entropy_of_well_separated_groups():
    centres = np.eye(4) * 10
    points = np.repeat(centres, 5, axis=0) + np.random.default_rng(0).normal(0, 0.01, (20, 4))
    result = cluster_entropy(points, n_clusters=4, seed=0)
    assert result.used == 4
    assert result.effective == pytest.approx(4.0)
    assert result.evenness == pytest.approx(1.0)


def test_spread_of_known_distributions():
    assert spread(["a"] * 10, 5).effective == pytest.approx(1.0)
    even = spread(["a", "b", "c", "d"], 4)
    assert (even.entropy, even.evenness) == (pytest.approx(math.log(4)), pytest.approx(1.0))
    assert spread([], 3).used == 0


def test_distinct_n_of_copies_and_of_unrelated_texts():
    text = "alpha beta gamma delta epsilon"
    assert distinct_n([text] * 4, 1) == pytest.approx(1 / 4)
    assert distinct_n([text] * 4, 2) == pytest.approx(1 / 4)
    unrelated = [f"w{i}a w{i}b w{i}c" for i in range(10)]
    assert distinct_n(unrelated, 1) == 1.0
    assert distinct_n(unrelated, 3) == 1.0
    assert distinct_n(["too short"], 3) == 0.0


def test_distinct_n_on_a_budget_counts_only_the_first_ngrams():
    texts = ["a b c d", "a b c d"]
    assert distinct_n(texts, 1, max_ngrams=4) == 1.0
    assert distinct_n(texts, 1, max_ngrams=8) == 0.5
    with pytest.raises(ValueError):
        distinct_n(texts, 0)


def test_topic_coverage_against_the_list():
    topics = ["lists", "loops", "strings", "recursion"]
    result = topic_coverage(["lists", "lists", "loops"], topics)
    assert result.coverage == 0.5
    assert result.counts == {"lists": 2, "loops": 1, "strings": 0, "recursion": 0}
    assert result.spread.evenness < 1.0
    with pytest.raises(ValueError, match="not in the topic list"):
        topic_coverage(["graphs"], topics)


def test_nearest_topics_picks_the_most_similar_direction():
    topics = np.eye(3)
    items = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 3.0], [0.1, 5.0, 0.0]])
    assert nearest_topics(items, topics).tolist() == [0, 2, 1]


def test_shape_erases_names_constant_values_and_docstrings():
    first = parse_python(_variant(1))
    second = parse_python(_variant(2))
    assert shape_string(first) == shape_string(second)
    assert shape_key(first) == shape_key(second)
    assert "count_above" not in shape_string(first)
    different = parse_python(
        "def f(values, limit):\n    return len([v for v in values if v > limit])\n"
    )
    assert shape_key(different) != shape_key(first)


def test_k_variants_form_one_family_and_duplicate_share_is_k_minus_one_over_k():
    k = 6
    units, unparsable = functions_in([_variant(i) for i in range(k)])
    assert (len(units), unparsable) == (k, 0)
    clusters = cluster_variants(units, threshold=0.9)
    summary = clusters.summary()
    assert summary["exact_families"] == summary["similar_families"] == 1
    assert clusters.family_sizes(clusters.exact_labels) == [k]
    redundancy = 1 - summary["exact_families"] / summary["functions"]
    assert redundancy == pytest.approx((k - 1) / k)


def test_n_unrelated_programs_form_n_families():
    units, _ = functions_in(UNRELATED_PROGRAMS)
    clusters = cluster_variants(units, threshold=0.8)
    assert clusters.summary()["exact_families"] == len(units)
    assert clusters.summary()["similar_families"] == len(units)
    assert clusters.summary()["similar_singleton_share"] == 1.0


def test_similar_shapes_group_only_above_the_threshold():
    base = "def f(xs):\n    s = 0\n    for x in xs:\n        if x > 2:\n            s += x\n    return s\n"
    tweak = base.replace("s += x", "s += x * 2")  # one extra BinOp: a near variant
    units, _ = functions_in([base, tweak, UNRELATED_PROGRAMS[2]])
    similarity = shape_similarity([shape_string(unit) for unit in units])
    assert 0.8 < similarity[0, 1] < 1.0
    loose = cluster_variants(units, threshold=0.8)
    strict = cluster_variants(units, threshold=0.99)
    assert loose.summary()["similar_families"] == 2
    assert strict.summary()["similar_families"] == 3
    assert loose.summary()["exact_families"] == 3
    assert [loose.families_at(t) for t in (1.0, 0.99, 0.8)] == [3, 3, 2]


def test_complete_linkage_does_not_chain_small_steps():
    # Each program adds one statement to the previous one: neighbours are similar, the ends not.
    body = [
        "    a = 1\n",
        "    b = a + 1\n",
        "    c = b * 2\n",
        "    d = c - 3\n",
        "    e = d // 4\n",
    ]
    chain = ["def f():\n" + "".join(body[: i + 1]) + "    return 0\n" for i in range(len(body))]
    units, _ = functions_in(chain)
    similarity = shape_similarity([shape_string(unit) for unit in units])
    threshold = float(np.diag(similarity, 1).min()) - 1e-6  # every neighbour pair passes
    assert similarity[0, -1] < threshold  # but the two ends do not
    clusters = cluster_variants(units, threshold=threshold)
    assert clusters.summary()["similar_families"] > 1


def test_functions_are_found_in_prose_with_fenced_code_and_in_classes():
    section = (
        "A loop adds numbers.\n\n```python\ndef total(xs):\n    return sum(xs)\n```\n\n"
        "Broken code is skipped:\n\n```python\ndef (:\n```\n"
    )
    units, unparsable = functions_in(
        [section, "no code here at all, just words", UNRELATED_PROGRAMS[5]]
    )
    assert unparsable == 1
    assert len(units) == 2  # total() and the method F.g
    assert [len(function_units(parse_python(UNRELATED_PROGRAMS[5])))] == [1]


def test_cluster_variants_rejects_a_meaningless_threshold():
    with pytest.raises(ValueError, match="threshold"):
        cluster_variants([], threshold=0.0)
    assert cluster_variants([], threshold=0.5).n_units == 0


@pytest.mark.slow
def test_diversity_stage_measures_constructed_datasets(tmp_path):
    """The stage on four small datasets whose answers are known (a real embedding model)."""
    from datasets import Dataset

    from phi1lib.analysis.stages import DATASETS, DIVERSITY, build_diversity, topic_names
    from phi1lib.embeddings import embed_texts
    from phi1lib.pipeline import StageContext
    from phi1lib.profiles import load_profile
    from phi1lib.runstore import Artifact, RunStore

    topics = topic_names()
    k = 6  # every dataset is sampled down to the smallest one: six items
    exercise = _variant(0)
    texts = {
        "raw_code": UNRELATED_PROGRAMS + [_variant(i) for i in range(4)],
        "filtered_code": UNRELATED_PROGRAMS,
        "textbooks": [
            f"## {topic}\n\nSome words about {topic}.\n\n```python\n{UNRELATED_PROGRAMS[i % 6]}```\n"
            for i, topic in enumerate(topics[:6])
        ],
        "exercises": [exercise] * k,
    }
    labels = {"textbooks": topics[:6], "exercises": [topics[0]] * k}
    exercise_families = ["counting"] * k
    inputs = {}
    for stage, _ in DATASETS:
        columns = {"text": texts[stage]}
        if stage in labels:
            columns["topic"] = labels[stage]
        if stage == "exercises":
            columns["family"] = exercise_families
        folder = tmp_path / stage
        Dataset.from_dict(columns).save_to_disk(str(folder / "data"))
        inputs[stage] = Artifact(stage, folder, {"fingerprint": stage})
    profile = load_profile("smoke", {"diversity.kmeans_clusters": 3}, use_env=False)
    # Chapter 1's artifacts the stage reuses: one embedding per raw file, and which were kept
    # (the filtered set is the six unrelated programs, the first six raw files).
    (tmp_path / "code_embeddings").mkdir()
    np.save(tmp_path / "code_embeddings/embeddings.npy", embed_texts(texts["raw_code"], profile))
    inputs["code_embeddings"] = Artifact("code_embeddings", tmp_path / "code_embeddings", {})
    kept = [True] * 6 + [False] * 4
    Dataset.from_dict({"kept": kept}).save_to_disk(str(tmp_path / "filtered_code/scores"))
    out = tmp_path / "out"
    out.mkdir()
    store = RunStore("smoke", tmp_path / "runs")
    ctx = StageContext(DIVERSITY, profile, inputs, store, "test", out, tmp_path / "work")
    counts = build_diversity(ctx)
    assert counts == {"raw code": k, "filtered code": k, "textbooks": k, "exercises": k}

    report = json.loads((out / "diversity.json").read_text())
    families = json.loads((out / "families.json").read_text())
    copies = report["datasets"]["exercises"]
    assert copies["exact_duplicate_share"] == pytest.approx((k - 1) / k)
    assert copies["vendi_score"] == pytest.approx(1.0, abs=1e-3)
    assert copies["similar_families"] == 1 and families["exercises"]["exact"] == [k]
    assert set(families["exercises"]["by_threshold"].values()) == {1}
    check = copies["family_check"]
    assert (check["known_families"], check["found_families"]) == (1, 1)
    assert families["filtered code"]["by_threshold"]["1.0"] == 6
    assert copies["assigned"] == "label" and copies["topic_coverage"] == pytest.approx(
        1 / len(topics)
    )
    unrelated = report["datasets"]["filtered code"]
    assert unrelated["exact_duplicate_share"] == 0.0
    assert unrelated["similar_families"] == unrelated["functions"] == 6
    assert 3.0 < unrelated["vendi_score"] <= 6.0
    assert unrelated["assigned"] == "nearest"
    assert (report["items"], report["functions"]) == (k, k)  # one function per item here
    raw = report["datasets"]["raw code"]
    assert raw["functions"] == k and raw["exact_families"] >= 3  # variants share one shape
    books = report["datasets"]["textbooks"]
    assert books["topic_coverage"] == pytest.approx(6 / len(topics))
    assert books["texts_without_code"] == 0
    budget = {data["ngram_budget"] for data in report["datasets"].values()}
    assert len(budget) == 1  # every dataset counted on the same number of n-grams


def test_shape_families_recover_known_families():
    from phi1lib.analysis.measure import family_agreement
    from phi1lib.profiles import load_profile

    templates = {
        "count": _variant,
        "total": lambda i: f"def total_{i}(xs):\n    return sum(x * {i} for x in xs)\n",
        "guard": lambda i: (
            f"def parse_{i}(text):\n    try:\n        return int(text) + {i}\n"
            "    except ValueError:\n        return None\n"
        ),
    }
    texts, truth = [], []
    for i in range(4):
        for name, template in templates.items():
            texts.append(template(i))
            truth.append(name)
    settings = replace(load_profile("smoke", use_env=False).diversity, ast_threshold=0.9, workers=1)
    result = family_agreement(texts, truth, settings)
    assert (result["known_families"], result["found_families"]) == (3, 3)
    assert result["adjusted_rand"] == pytest.approx(1.0)
    assert result["by_threshold"]["1.0"]["homogeneity"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        family_agreement(texts, truth[:-1], settings)
