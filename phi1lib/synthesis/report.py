"""The tables and distributions chapters 2 and 3 show, computed from the stages' artifacts.

Everything here reads what the ``textbooks`` and ``exercises`` stages wrote (their datasets
and ``report.json``) and returns ``pandas`` tables or plain counts; the chapters only display
them. The paper's own numbers come from ``phi1lib.paper`` and sit beside ours. Introduced in
chapters 2 and 3.
"""

from __future__ import annotations

import ast
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from phi1lib.paper import DATA_BUDGET
from phi1lib.synthesis.verification import FAILURE_KINDS

FAILURE_MEANINGS = {
    "assertion": "a test's assert failed: the solution computes a wrong answer",
    "exception": "an error other than a failed assert (TypeError, IndexError...)",
    "syntax_error": "the code does not compile",
    "exit": "the program called exit() before its end",
    "timeout": "ran past the time limit (an endless loop)",
    "crashed": "killed by a signal (memory limit...)",
}


def imported_packages(code: str) -> set[str]:
    """The top-level packages a piece of code imports (``os.path`` counts as ``os``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def import_counts(codes: Iterable[str], min_count: int = 1) -> pd.Series:
    """How many items import each package, most imported first (the paper's Figure 3.1).

    The paper left out packages imported fewer than 10 times; ``min_count`` does the same.
    """
    counts = Counter(package for code in codes for package in imported_packages(code))
    kept = {name: n for name, n in counts.most_common() if n >= min_count}
    return pd.Series(kept, name="items importing it", dtype="int64")


SPLITS = ("train", "heldout", "infamily")


def size_table(textbooks: Mapping[str, Any], exercises: Mapping[str, Any]) -> pd.DataFrame:
    """Our two datasets' sizes beside the paper's (paper §2 and §2.2), from the stage reports.

    The paper gives bounds ("less than 1B tokens"), so its columns are text, not numbers.
    """
    counter = textbooks["tokens"]["counter"]
    return (
        pd.DataFrame(
            [
                {
                    "dataset": "synthetic textbooks",
                    "items (ours)": textbooks["reasons"].get("kept", 0),
                    "tokens (ours)": textbooks["tokens"]["kept"],
                    "items (paper)": "not published",
                    "tokens (paper)": f"under {DATA_BUDGET['textbook_tokens'] / 1e9:.0f}B",
                },
                {
                    "dataset": "CodeExercises (train + held out)",
                    "items (ours)": exercises["reasons"].get("kept", 0),
                    "tokens (ours)": sum(exercises["tokens"].get(k, 0) for k in SPLITS),
                    "items (paper)": f"about {DATA_BUDGET['exercise_count']:,}",
                    "tokens (paper)": f"under {DATA_BUDGET['exercise_tokens'] / 1e6:.0f}M",
                },
            ]
        )
        .set_index("dataset")
        .rename_axis(f"tokens counted with {counter}")
    )


def failure_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """The teacher's error rate by failure kind, over the exercises that were executed."""
    executed = report["verified"]
    rows = [
        {
            "failure kind": kind,
            "meaning": FAILURE_MEANINGS[kind],
            "exercises": report["failure_kinds"].get(kind, 0),
            "share of executed": report["failure_kinds"].get(kind, 0) / max(executed, 1),
        }
        for kind in FAILURE_KINDS
    ]
    failed = sum(row["exercises"] for row in rows)
    rows.append(
        {
            "failure kind": "all failures",
            "meaning": f"of {executed} executed exercises",
            "exercises": failed,
            "share of executed": failed / max(executed, 1),
        }
    )
    return pd.DataFrame(rows).set_index("failure kind")


REASON_LABELS = {
    "teacher_failed": "teacher never answered",
    "teacher_malformed": "answer malformed after retries (bad JSON, truncated)",
    "teacher_not_run": "not asked: the budget ran out",
    "invalid": "answer is not a usable exercise",
    "fails_tests": "fails its own tests in the sandbox",
    "too_few_code_blocks": "too few code blocks",
    "code_fails": "a code block fails in the sandbox",
    "exact_duplicate": "exact duplicate",
    "near_duplicate": "near duplicate (MinHash)",
    "duplicates_textbook": "duplicates a textbook section",
    "duplicates_train": "held out, but duplicates a training exercise",
    "ngram_humaneval": "13-gram overlap with HumanEval",
    "ngram_mbpp": "13-gram overlap with MBPP",
    "ast_humaneval": "AST match with HumanEval at the profile's tau",
    "ast_mbpp": "AST match with MBPP at the profile's tau",
}


def removal_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Every reason a record was left out, in pipeline order, with counts."""
    total = report["requested"]
    reasons = report["reasons"]
    rows = [
        {"step": label, "records": reasons[reason], "share of requested": reasons[reason] / total}
        for reason, label in REASON_LABELS.items()
        if reasons.get(reason)
    ]
    kept = reasons.get("kept", 0)
    rows.append({"step": "kept", "records": kept, "share of requested": kept / total})
    return pd.DataFrame(rows).set_index("step")


def ast_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Per benchmark and τ: similar problems and exercises the AST check would prune (Table 3)."""
    rows = []
    for benchmark in ("humaneval", "mbpp"):
        for row in report["ast"][benchmark]["table"]:
            rows.append({"benchmark": benchmark, **row, "tau": f"{row['tau']:.2f}"})
    frame = pd.DataFrame(rows).set_index(["benchmark", "tau"])
    return frame.rename(
        columns={
            "similar_problems": "similar problems",
            "pruned_training_items": "exercises pruned",
            "pruned_fraction": "share pruned",
        }
    )
