"""The held-out exercises: a deterministic slice of whole task families, never trained on.

The training chapters measure how well a model completes exercises it has not seen. A random
slice of single exercises would not do: the same family of task (``sum_of_squares``,
``count_vowels``...) would be in both halves with other wording and values. So the slice holds
out whole *families* (an exercise without a family is its own), chosen by a hash of the family's
name: the same families whatever the dataset's size or order, at least one of them. Held-out
exercises that near-duplicate a training exercise are dropped as well.

The *in-family* split asks the other question: new instances of the training families, written
with function and parameter names, task wordings and constants that no training exercise uses
(``synthesis.names``, the families' ``task_reserved``), and kept apart from training by the
book's own checks (:func:`separate_infamily`). A model that solves them has learnt the tasks,
not the names. Introduced in chapter 3.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Sequence
from typing import Any

from phi1lib.decontam import TAUS, ast_matches, ngram_overlap
from phi1lib.synthesis.cleaning import CleaningSettings, remove_duplicates
from phi1lib.synthesis.records import KEPT, reject


def unit_position(unit: str) -> float:
    """A stable pseudo-random number in [0, 1) for a family name."""
    digest = hashlib.sha256(f"heldout|{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def heldout_units(units: Sequence[str], fraction: float) -> set[str]:
    """The families held out: those whose position is below ``fraction``, and at least one."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"exercises.heldout_fraction must lie in [0, 1), got {fraction}")
    distinct = sorted(set(units), key=unit_position)
    chosen = {unit for unit in distinct if unit_position(unit) < fraction}
    if not chosen and distinct and fraction > 0:
        chosen = {distinct[0]}
    return chosen


def signature_names(signature: str) -> set[str]:
    """The function name and parameter names of a ``def`` line (empty if it does not parse)."""
    try:
        tree = ast.parse(signature.rstrip() + "\n    pass\n")
    except SyntaxError:
        return set()
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not functions:
        return set()
    arguments = functions[0].args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return {functions[0].name, *(a.arg for a in every)}


def separate_infamily(
    infamily: list[dict[str, Any]], train: list[dict[str, Any]], cleaning: CleaningSettings
) -> dict[str, Any]:
    """Reject in-family exercises that are not kept apart from the training exercises.

    Four checks, each rejecting what it finds: a family that no kept training exercise has
    (``family_not_in_train``); a function or parameter name that some training signature uses
    (``name_in_train``); a near or exact copy of a training text, by the book's
    MinHash deduplication (``duplicates_train``); a docstring sharing a 13-word run with a
    training docstring, the paper's n-gram check (``ngram_train``). The AST match rate is
    measured, not used to reject: an in-family exercise is by design a training task with new
    surface (names, wording, constants), so its solution's tree matches one of its family's at
    τ near 1, which is what distinguishes this split from the held-out families (the paper's
    §5.2 split HumanEval the same way into problems similar and not similar to the exercises).
    Returns the report's ``infamily`` checks (chapter 3).
    """
    trained = {r["family"] for r in train}
    orphans = {i for i, r in enumerate(infamily) if r["family"] not in trained}
    families = reject(infamily, orphans, "family_not_in_train")
    seen = set().union(*(signature_names(r["signature"]) for r in train)) if train else set()
    clashes = {
        i
        for i, r in enumerate(infamily)
        if r["rejected"] == KEPT and signature_names(r["signature"]) & seen
    }
    names = reject(infamily, clashes, "name_in_train")
    dedup = remove_duplicates(
        infamily, cleaning, against=[r["text"] for r in train], against_name="train"
    )
    kept = [i for i, r in enumerate(infamily) if r["rejected"] == KEPT]
    matches = ngram_overlap(
        {str(i): infamily[i]["docstring"] for i in kept},
        [r["docstring"] for r in train],
        n=cleaning.ngram_size,
    )
    ngram = reject(infamily, {int(m.task_id) for m in matches}, "ngram_train")
    kept = [i for i, r in enumerate(infamily) if r["rejected"] == KEPT]
    report: dict[str, Any] = {
        "family_not_in_train": families,
        "names_in_train": names,
        "dedup_against_train": dedup,
        "ngram_against_train": {
            "n": cleaning.ngram_size,
            "removed": ngram,
            "examples": [
                {"id": infamily[int(m.task_id)]["id"], "ngram": m.ngram} for m in matches[:5]
            ],
        },
    }
    if kept and train:
        rates = ast_matches(
            {str(i): infamily[i]["text"] for i in kept},
            [r["text"] for r in train],
            min_rate=min(TAUS),
            workers=cleaning.workers,
        )
        report["ast_against_train"] = {
            "table": rates.pruning_table(sorted(TAUS, reverse=True)),
            "note": "measured, not pruned: the same tasks with new names and wording",
        }
    return report
