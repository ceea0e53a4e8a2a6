"""Exact and near-duplicate detection (phi1lib.dedup) on real code and small edits of it."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from phi1lib import dedup

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def real_code() -> list[str]:
    """Four unrelated real files of the standard library."""
    names = ["json/decoder.py", "json/encoder.py", "textwrap.py", "fractions.py"]
    return [(STDLIB / name).read_text() for name in names]


def edited(text: str, every: int = 40) -> str:
    """The text with every ``every``-th line changed: a light edit, still a near duplicate."""
    lines = text.splitlines()
    return "\n".join(
        f"{line}  # edited {i}" if i % every == 0 else line for i, line in enumerate(lines)
    )


def test_normalisation_ignores_line_endings_and_trailing_space():
    a = "def f():\n    return 1\n"
    b = "\n\ndef f():   \r\n    return 1\r\n\r\n"
    assert dedup.normalise(a) == dedup.normalise(b) == "def f():\n    return 1"
    assert dedup.content_hash(a) == dedup.content_hash(b)
    assert dedup.content_hash(a) != dedup.content_hash("def f():\n    return 2\n")


def test_exact_duplicates_groups_identical_texts_in_order():
    texts = ["x = 1", "y = 2", "x = 1  ", "z", "y = 2\r\n", "x = 1"]
    assert dedup.exact_duplicates(texts) == [[0, 2, 5], [1, 4]]


def test_shingles_are_five_token_windows_over_alphanumeric_runs():
    grams = dedup.shingles("def add(a, b):\n    return a + b")
    assert grams == {"def add a b return", "add a b return a", "a b return a b"}
    assert dedup.shingles("x=1") == {"x 1"}  # shorter than five tokens: one shingle
    assert dedup.shingles("+-*/ ()") == set()


def test_minhash_estimates_jaccard(real_code):
    original = real_code[0]
    variants = [edited(original, 40), edited(original, 5), real_code[1]]
    signatures = dedup.minhash_signatures([original, *variants])
    for variant, signature in zip(variants, signatures[1:], strict=True):
        exact = dedup.jaccard(dedup.shingles(original), dedup.shingles(variant))
        assert signatures[0].jaccard(signature) == pytest.approx(exact, abs=0.1)


def test_near_duplicates_cluster_edits_not_unrelated_files(real_code):
    texts = [*real_code, edited(real_code[0], 40), edited(real_code[2], 40)]
    assert dedup.near_duplicate_clusters(texts) == [[0, 4], [2, 5]]


def test_threshold_decides_borderline_pairs(real_code):
    original = real_code[3]
    variant = edited(original, 4)  # a quarter of the lines touched
    similarity = dedup.jaccard(dedup.shingles(original), dedup.shingles(variant))
    assert 0.3 < similarity < 0.8
    below = round(similarity - 0.2, 2)
    above = round(min(similarity + 0.15, 0.99), 2)
    assert dedup.near_duplicate_clusters([original, variant], threshold=below) == [[0, 1]]
    assert dedup.near_duplicate_clusters([original, variant], threshold=above) == []


def test_deduplicate_keeps_first_members_and_explains_every_removal(real_code):
    a, b, c, _ = real_code
    texts = [a, b, a + "\n\n", edited(a, 40), c, edited(a, 40)]
    result = dedup.deduplicate(texts)
    assert result.kept == [0, 1, 4]
    assert result.removed == {2: "exact", 3: "near", 5: "exact"}
    # The exact copy of a near duplicate points at the file that was kept.
    assert result.duplicate_of == {2: 0, 3: 0, 5: 0}
    assert result.exact_groups == [[0, 2], [3, 5]]
    assert result.near_clusters == [[0, 3]]
    assert result.cluster_sizes() == {4: 1}
    summary = result.summary()
    assert summary["input"] == 6 and summary["kept"] == 3 and summary["largest_cluster"] == 4
    json.dumps(result.to_dict())  # JSON-ready


def test_deduplicate_against_a_reference_dataset(real_code):
    textbooks = [real_code[0], real_code[1]]
    exercises = [edited(real_code[1], 40), real_code[2], real_code[0], real_code[2]]
    result = dedup.deduplicate(exercises, against=textbooks)
    assert result.kept == [1]
    assert result.removed == {0: "reference", 2: "reference", 3: "exact"}
    assert result.reference_matches == {0: 1, 2: 0}
    assert result.removed_by_reason() == {"exact": 1, "near": 0, "reference": 2}


def test_exact_only_mode_and_empty_input(real_code):
    texts = [real_code[0], edited(real_code[0], 40), real_code[0]]
    result = dedup.deduplicate(texts, near=False)
    assert result.kept == [0, 1] and result.near_clusters == []
    assert dedup.deduplicate([]).kept == []
