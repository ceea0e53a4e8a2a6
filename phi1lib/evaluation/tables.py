"""Chapter 6's tables: our scores beside the paper's, how samples ended, Table 3 at our scale.

Every table puts what our run computed next to the number the paper printed, from
``phi1lib.paper``, in columns whose names say which is which. Introduced in chapter 6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from phi1lib.evaluation.exercises import benchmark_name, split_label
from phi1lib.paper import PHI1_FAMILY, PRUNED_EXERCISES, TABLE2, TABLE3

STATUS_ORDER = ("passed", "failed", "timeout", "crashed")
BENCHMARK_LABELS = {"humaneval": "HumanEval", "mbpp": "MBPP", "new": "new problems"}
BENCHMARK_LABELS.update({"humaneval+": "HumanEval+", "mbpp+": "MBPP+"})
for _split in ("data", "infamily", "heldout"):
    BENCHMARK_LABELS[benchmark_name(_split)] = f"exercises: {split_label(_split)}"


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 1)


def scores_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """pass@1 (%) of our phi-1-base and phi-1 on the three benchmarks, beside the paper's.

    The paper's new-problem score is GPT-4's grade (Table 2), not pass@1: our judge score sits
    beside it when the stage ran the judge, our pass@1 on the new problems always. HumanEval+
    and MBPP+ get columns when the profile ran them (``eval.plus``); the paper predates them.
    """
    paper_judge = {row["model"]: row["gpt4_score"] for row in TABLE2}
    rows = []
    for model, entry in summary["models"].items():
        benchmarks = entry["benchmarks"]
        rows.append(
            {
                "model": model,
                "HumanEval (ours)": _percent(benchmarks["humaneval"]["pass@1"]),
                "HumanEval (paper)": PHI1_FAMILY[model]["humaneval"],
                "MBPP (ours)": _percent(benchmarks["mbpp"]["pass@1"]),
                "MBPP (paper)": PHI1_FAMILY[model]["mbpp"],
                "new problems pass@1 (ours)": _percent(benchmarks["new"]["pass@1"]),
                "new problems judge (ours)": benchmarks["new"].get("judge_score"),
                "50 new problems, GPT-4 (paper)": paper_judge.get(model),
                **{
                    f"{name} (ours)": _percent(benchmarks[key]["pass@1"])
                    for key, name in (("humaneval+", "HumanEval+"), ("mbpp+", "MBPP+"))
                    if key in benchmarks
                },
            }
        )
    return pd.DataFrame(rows).set_index("model")


def benchmark_label(benchmark: str) -> str:
    """How a table names a benchmark or an exercise split."""
    return BENCHMARK_LABELS.get(benchmark, benchmark)


def pass_rates_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Every model on every benchmark and exercise split: passed of problems, pass@1 and its
    95% Wilson interval, in percent (chapters 5 and 6). A rate of 0 of 100 still has an upper
    end near 4%: the interval, not the point, is what the run can claim."""
    rows = []
    for model, entry in summary["models"].items():
        for benchmark, result in entry["benchmarks"].items():
            low, high = result["pass@1_interval"]
            rows.append(
                {
                    "model": model,
                    "benchmark": benchmark_label(benchmark),
                    "passed": result["statuses"].get("passed", 0),
                    "problems": result["problems"],
                    "pass@1 (%)": _percent(result["pass@1"]),
                    "95% interval (%)": f"{100 * low:.1f}-{100 * high:.1f}",
                }
            )
    return pd.DataFrame(rows).set_index(["model", "benchmark"])


def status_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """How every sample ended, per model and benchmark: passed, failed, timeout, crashed."""
    rows = []
    for model, entry in summary["models"].items():
        for benchmark, result in entry["benchmarks"].items():
            statuses = result["statuses"]
            rows.append(
                {
                    "model": model,
                    "benchmark": benchmark,
                    **{status: statuses.get(status, 0) for status in STATUS_ORDER},
                    "problems": result["problems"],
                }
            )
    return pd.DataFrame(rows).set_index(["model", "benchmark"])


def verdict_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Who decided each sample's verdict, per model and benchmark: the parent, comparing the
    values a split test's calls sent back, or the program's own in-process check (chapter 6)."""
    rows = []
    for model, entry in summary["models"].items():
        for benchmark, result in entry["benchmarks"].items():
            verdicts = result.get("verdicts", {})
            rows.append(
                {
                    "model": model,
                    "benchmark": benchmark,
                    "judged outside": verdicts.get("parent", 0),
                    "judged in-process": verdicts.get("in-process", 0),
                    "problems judged in-process": result.get("in_process_problems", 0),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "benchmark"])


def canonical_table(reports: Sequence[Any]) -> pd.DataFrame:
    """The reference solutions' own pass rate per benchmark (``evaluate_canonical`` reports)."""
    rows = []
    for report in reports:
        rows.append(
            {
                "benchmark": report.benchmark,
                "problems": report.summary["problems"],
                "references passing": report.summary["solved_problems"],
                "pass@1 (%)": _percent(report.summary["pass@1"]),
                "failing": ", ".join(
                    f"{r.task_id} ({r.samples[0].status})" for r in report.results if r.c == 0
                )
                or "-",
            }
        )
    return pd.DataFrame(rows).set_index("benchmark")


def table3_beside_paper(rows: Sequence[Mapping[str, Any]], models: Sequence[str]) -> pd.DataFrame:
    """Our Table 3 (HumanEval split by AST similarity to our exercises) beside the paper's."""
    paper = {(row["tau"], row["subset"]): row for row in TABLE3}
    records = []
    for row in rows:
        theirs = paper.get((row["tau"], row["subset"]), {})
        record = {
            "τ": f"{row['tau']:.2f}",
            "subset": row["subset"],
            "problems (ours)": row["problems"],
        }
        for model in models:
            value = row.get(model)
            record[f"{model} (ours)"] = None if value is None else round(value, 1)
        record["problems (paper)"] = theirs.get("problems")
        record["phi-1 (paper)"] = theirs.get("phi1")
        record["phi-1 retrained on pruned data (paper)"] = theirs.get("phi1_pruned")
        record["StarCoder-Prompted (paper)"] = theirs.get("starcoder_prompted")
        records.append(record)
    table = pd.DataFrame(records).set_index(["τ", "subset"])
    return _counts_as_integers(table, ["problems (ours)", "problems (paper)"])


def _counts_as_integers(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Counts with gaps stay integers (pandas' nullable Int64), so a styled table shows 42500."""
    for column in columns:
        table[column] = table[column].astype("Int64")
    return table


def pruning_beside_paper(pruning: Sequence[Mapping[str, Any]], training_items: int) -> pd.DataFrame:
    """Exercises the AST check would prune at each τ, ours beside the paper's two figures."""
    paper = {0.95: PRUNED_EXERCISES["tau_0.95"], 0.8: PRUNED_EXERCISES["tau_0.80"]}
    records = []
    for row in pruning:
        theirs = paper.get(row["tau"])
        records.append(
            {
                "τ": f"{row['tau']:.2f}",
                "HumanEval problems similar (ours)": row["similar_problems"],
                "exercises pruned (ours)": row["pruned_training_items"],
                "of our exercises (%)": round(100 * row["pruned_fraction"], 2),
                "exercises pruned (paper)": theirs,
                "of the paper's 879.5K (%)": None
                if theirs is None
                else round(100 * theirs / PRUNED_EXERCISES["total"], 1),
            }
        )
    table = pd.DataFrame(records).set_index("τ")
    table.attrs["training_items"] = training_items
    counts = ["HumanEval problems similar (ours)", "exercises pruned (ours)"]
    return _counts_as_integers(table, [*counts, "exercises pruned (paper)"])


def benchmark_overview(benchmarks: Mapping[str, Sequence]) -> pd.DataFrame:
    """Per benchmark: problems, asserts per problem, the median prompt length and where
    generation stops (chapter 6)."""
    rows = []
    for name, problems in benchmarks.items():
        rows.append(
            {
                "benchmark": name,
                "problems": len(problems),
                "asserts per problem": round(
                    sum(p.test.count("assert ") for p in problems) / len(problems), 1
                ),
                "prompt length (chars)": int(pd.Series([len(p.prompt) for p in problems]).median()),
                "stops generation at": " ".join(repr(s) for s in problems[0].stop_sequences[:4]),
            }
        )
    return pd.DataFrame(rows).set_index("benchmark")


def new_problems_table(problems: Sequence) -> pd.DataFrame:
    """The book's new problems: function, number of asserts and the task's first words."""
    return pd.DataFrame(
        [
            {
                "task_id": p.task_id,
                "function": p.entry_point,
                "asserts": p.test.count("assert "),
                "task": p.description.split("\n>>>")[0].replace("\n", " ")[:110] + "...",
            }
            for p in problems
        ]
    ).set_index("task_id")


def table2_paper() -> pd.DataFrame:
    """The paper's Table 2: GPT-4's grade of 50 new problems beside HumanEval, per model."""
    return (
        pd.DataFrame(TABLE2)
        .set_index("model")
        .rename(
            columns={"gpt4_score": "GPT-4 score (paper, %)", "humaneval": "HumanEval (paper, %)"}
        )
    )
