"""Decontamination: 13-gram overlap and the AST match rate of the paper's §5."""

from __future__ import annotations

import numpy as np
import pytest

from phi1lib.decontam import (
    TAUS,
    ast_matches,
    ast_signature,
    match_rate,
    ngram_overlap,
    similarity_split_table,
    word_ngrams,
    words,
)
from phi1lib.evaluation.humaneval import load_humaneval

SUM_EVENS = '''def sum_evens(numbers):
    """Add up the even numbers."""
    total = 0
    for n in numbers:  # every number
        if n % 2 == 0:
            total += n
    return total
'''
# The same program with other names, another docstring, comments and constants.
SUM_EVENS_RENAMED = """def add_multiples(values):
    '''Something else entirely.'''
    # a comment
    acc = 10
    for v in values:
        if v % 3 == 1:
            acc += v
    return acc
"""
DIFFERENT = """class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)
        return len(self.items)
"""


def test_words_are_lower_case_and_without_punctuation():
    assert words("The frequency of an integer, i.e. How OFTEN it appears!") == [
        "the", "frequency", "of", "an", "integer", "i", "e", "how", "often", "it", "appears",
    ]  # fmt: skip
    assert len(word_ngrams("a b c d", 3)) == 2 and word_ngrams("a b", 3) == set()


def test_ngram_overlap_lists_the_shared_13_gram():
    phrase = "return the frequency of an integer which is the number of times it appears"
    benchmark = {"HE/1": f"Given a list, {phrase}.", "HE/2": "Sort the list in place."}
    training = [
        "Unrelated text about strings.",
        f"Write code that will {phrase.upper()} in the list",
        "return the frequency of an integer which is the number of times",  # only 12 words
    ]
    matches = ngram_overlap(benchmark, training)
    assert [(m.task_id, m.train_index) for m in matches] == [("HE/1", 1)]
    assert len(matches[0].ngram.split()) == 13
    assert matches[0].ngram in phrase
    assert ngram_overlap(benchmark, training, n=12)[-1].train_index == 2


def test_ast_signature_ignores_names_comments_docstrings_and_values():
    assert ast_signature(SUM_EVENS) == ast_signature(SUM_EVENS_RENAMED)
    assert match_rate(SUM_EVENS, SUM_EVENS_RENAMED) == 1.0
    assert match_rate(SUM_EVENS, DIFFERENT) < 0.6
    # A changed operator is a changed node: a high rate, but not a perfect one.
    assert 0.9 < match_rate(SUM_EVENS, SUM_EVENS.replace("total += n", "total -= n")) < 1.0


def test_unparsable_code_matches_nothing():
    assert ast_signature("def broken(:\n") is None
    assert match_rate("def broken(:\n", "def broken(:\n") == 0.0
    result = ast_matches({"a": "def broken(:\n"}, ["def broken(:\n", SUM_EVENS])
    assert result.best_rate[0] == 0.0 and result.best_train_index[0] == -1
    assert result.unparsable_benchmark == ["a"] and result.unparsable_training == 1


def test_ast_matches_finds_best_matches_and_what_pruning_removes():
    benchmark = {"sum": SUM_EVENS, "stack": DIFFERENT}
    training = [DIFFERENT.replace("push", "add"), "x = 1\n", SUM_EVENS_RENAMED, "print('hi')\n"]
    result = ast_matches(benchmark, training)
    assert result.best_rate.tolist() == [1.0, 1.0]
    assert result.best_train_index.tolist() == [2, 0]
    assert result.similar(0.95) == ["sum", "stack"]
    assert result.pruned(0.8).tolist() == [0, 2]
    table = result.pruning_table()
    assert [row["tau"] for row in table] == list(TAUS)
    assert table[0]["pruned_training_items"] == 2 and table[0]["pruned_fraction"] == 0.5
    with pytest.raises(ValueError, match="min_rate"):
        result.similar(0.5)


def test_ast_matches_agree_with_pairwise_rates_and_do_not_depend_on_chunking():
    """cdist with a cutoff must give exactly the pairwise best rates the slow loop gives."""
    problems = load_humaneval(limit=30)
    benchmark = {p.task_id: p.reference_code() for p in problems}
    training = [p.reference_code().replace("(", "( ") for p in load_humaneval()[20:60]]
    training += [SUM_EVENS, SUM_EVENS_RENAMED, DIFFERENT]
    whole = ast_matches(benchmark, training, min_rate=0.5)
    chunked = ast_matches(benchmark, training, min_rate=0.5, chunk_size=7, workers=1)
    np.testing.assert_array_equal(whole.best_rate, chunked.best_rate)
    np.testing.assert_array_equal(whole.train_best_rate, chunked.train_best_rate)
    for i, code in enumerate(benchmark.values()):
        rates = [match_rate(code, other) for other in training]
        best = max(rates)
        expected = best if best >= 0.5 else 0.0
        assert whole.best_rate[i] == pytest.approx(expected, abs=1e-6)
    # HumanEval/20..29 appear (reformatted) in the training list: a perfect match each.
    assert whole.similar(0.95) == [f"HumanEval/{i}" for i in range(20, 30)]


def test_similarity_split_table_is_table_3_at_our_scale():
    benchmark = {"sum": SUM_EVENS, "stack": DIFFERENT, "other": "def f():\n    return 1\n"}
    result = ast_matches(benchmark, [SUM_EVENS_RENAMED])
    scores = {"phi-1": {"sum": 1.0, "stack": 0.0, "other": 1.0}, "base": {"sum": 0.0}}
    rows = similarity_split_table(result, scores, taus=(0.9,))
    assert [(r["subset"], r["problems"]) for r in rows] == [
        ("similar", 1),
        ("non-similar", 2),
        ("total", 3),
    ]
    assert [r["phi-1"] for r in rows] == [100.0, 50.0, pytest.approx(200 / 3)]
    assert [r["base"] for r in rows] == [0.0, None, 0.0]
