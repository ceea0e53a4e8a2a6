"""Tables and figures of chapter 1, computed from the stages' artifacts.

The chapter stays thin: it calls these functions on what ``pipeline.run`` returns and shows the
result. Nothing here changes an artifact. Introduced in chapter 1.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from phi1lib.paper import DATA_BUDGET
from phi1lib.plotting import OTHER_COLOR, OURS_COLOR, PHI1_COLOR

SKIP_EXPLANATIONS = {
    "not_found": "the path does not exist",
    "unreadable": "the file could not be read (permissions, I/O error)",
    "too_large": "larger than corpus.max_file_bytes",
    "binary": "holds NUL bytes, or is no regular file (a FIFO, socket or device): not text",
    "undecodable": "not valid text in its declared encoding",
    "empty": "nothing but whitespace",
    "syntax": "Python that ast.parse rejects (e.g. Python 2, deliberate test errors)",
}


def skip_table(counts: Mapping[str, Any]) -> pd.DataFrame:
    """Files read, kept and skipped by reason, from the ``code_corpus`` manifest counts."""
    rows = [{"outcome": "readable", "files": counts["readable"], "meaning": "kept for dedup"}]
    for reason, meaning in SKIP_EXPLANATIONS.items():
        rows.append(
            {
                "outcome": f"skipped: {reason}",
                "files": counts[f"skipped_{reason}"],
                "meaning": meaning,
            }
        )
    table = pd.DataFrame(rows)
    table["share"] = (table["files"] / max(counts["files"], 1)).map("{:.1%}".format)
    return table.set_index("outcome")


def package_shares(packages: Sequence[str], tokens: Sequence[int], top: int = 12) -> pd.DataFrame:
    """Files and tokens per package, largest first, with the rest summed as "other packages"."""
    frame = pd.DataFrame({"package": packages, "tokens": tokens})
    table = frame.groupby("package").agg(files=("tokens", "size"), tokens=("tokens", "sum"))
    table = table.sort_values("tokens", ascending=False)
    head, rest = table.iloc[:top], table.iloc[top:]
    if len(rest):
        other = pd.DataFrame(
            {"files": [rest["files"].sum()], "tokens": [rest["tokens"].sum()]},
            index=[f"other packages ({len(rest)})"],
        )
        head = pd.concat([head, other])
    head["token share"] = head["tokens"] / table["tokens"].sum()
    return head


def plot_package_shares(shares: pd.DataFrame, ax=None):
    """Horizontal bars: each package's share of the corpus's tokens."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    ordered = shares.iloc[::-1]
    colors = [OTHER_COLOR if name.startswith("other") else OURS_COLOR for name in ordered.index]
    ax.barh(ordered.index, ordered["token share"] * 100, color=colors)
    ax.set_xlabel("share of the corpus's tokens (%)")
    ax.set_title("Where the tokens come from")
    return ax


def plot_lsh_curve(b: int, r: int, threshold: float, ax=None):
    """Probability that two texts of Jaccard similarity s become LSH candidates: 1-(1-s^r)^b."""
    ax = ax or plt.subplots()[1]
    s = np.linspace(0, 1, 201)
    ax.plot(s, 1 - (1 - s**r) ** b, color=OURS_COLOR, label=f"{b} bands x {r} rows")
    ax.axvline(threshold, color=PHI1_COLOR, linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("Jaccard similarity of two files' 5-gram sets")
    ax.set_ylabel("probability of sharing a band: a pair")
    ax.set_title("Locality-sensitive hashing as a soft threshold")
    ax.legend(loc="upper left")
    return ax


def largest_cluster(clusters: Any, kind: str = "near") -> list[str]:
    """The paths of the largest cluster of one kind in ``raw_code``'s ``clusters``, kept one first."""
    sizes = [
        size if k == kind else 0 for k, size in zip(clusters["kind"], clusters["size"], strict=True)
    ]
    if not any(sizes):
        return []
    return list(clusters[int(np.argmax(sizes))]["paths"])


def plot_judge_scores(scores: Sequence[int], ax=None):
    """How many judged files got each score 0-5; educational ones (>= 3) highlighted."""
    ax = ax or plt.subplots()[1]
    counts = np.bincount(np.asarray(scores, dtype=int), minlength=6)[:6]
    colors = [PHI1_COLOR if s >= 3 else OTHER_COLOR for s in range(6)]
    ax.bar(range(6), counts, color=colors)
    ax.set_xticks(range(6))
    ax.set_xlabel("judge's score (0-5; red: educational, score >= 3)")
    ax.set_ylabel("files")
    ax.set_title("The judge's labels")
    return ax


def metrics_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The held-out metrics of the forest as a one-column table."""
    names = {
        "train": "files trained on",
        "test": "files held out",
        "positives": "educational among held out",
        "accuracy": "accuracy",
        "roc_auc": "ROC AUC",
        "precision": "precision (at threshold)",
        "recall": "recall (at threshold)",
        "f1": "F1 (at threshold)",
        "threshold": "threshold",
    }
    rows = {}
    for key, label in names.items():
        value = metrics[key]
        rows[label] = (
            "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else value)
        )
    return pd.DataFrame({"value": rows})


def plot_confusion(confusion: Sequence[Sequence[int]], ax=None):
    """The 2x2 confusion matrix, judge's labels down, classifier's verdicts across."""
    ax = ax or plt.subplots(figsize=(4, 3.6))[1]
    matrix = np.asarray(confusion)
    ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    labels = ["not educational", "educational"]
    ax.set_xticks([0, 1], labels)
    ax.set_yticks([0, 1], labels)
    ax.set_xlabel("classifier says")
    ax.set_ylabel("judge says")
    for (row, col), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(col, row, str(value), ha="center", va="center", color=color, fontsize=13)
    ax.set_title("Held-out files")
    return ax


def plot_threshold_sweep(sweep: Sequence[Mapping[str, float]], threshold: float, ax=None):
    """Precision, recall and the share of files kept as the keep threshold moves."""
    ax = ax or plt.subplots()[1]
    frame = pd.DataFrame(sweep)
    ax.plot(frame["threshold"], frame["precision"], label="precision", color=OURS_COLOR)
    ax.plot(frame["threshold"], frame["recall"], label="recall", color=PHI1_COLOR)
    ax.plot(frame["threshold"], frame["kept_fraction"], label="share kept", color=OTHER_COLOR)
    ax.axvline(threshold, color="grey", linestyle="--", label=f"chosen threshold {threshold:.2f}")
    ax.set_xlabel("keep a file when its score is at least")
    ax.set_ylim(0, 1.02)
    ax.set_title("Choosing the threshold (held-out files)")
    ax.legend(loc="best")
    return ax


def plot_score_histogram(scores: Sequence[float], threshold: float, ax=None):
    """The classifier's scores over the whole corpus, with the keep threshold."""
    ax = ax or plt.subplots()[1]
    scores = np.asarray(scores)
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[scores < threshold], bins=bins, color=OTHER_COLOR, label="filtered out")
    ax.hist(scores[scores >= threshold], bins=bins, color=PHI1_COLOR, label="kept")
    ax.axvline(threshold, color="grey", linestyle="--")
    ax.set_xlabel("educational-value score (the forest's probability)")
    ax.set_ylabel("files")
    ax.set_title("Every file of the corpus, scored")
    ax.legend()
    return ax


def agreement_table(heldout: Mapping[str, Sequence]) -> pd.DataFrame:
    """For each judge score, how many held-out files and the classifier's mean score on them."""
    frame = pd.DataFrame({"judge score": heldout["judge_score"], "edu_score": heldout["edu_score"]})
    return frame.groupby("judge score")["edu_score"].agg(files="size", mean_edu_score="mean")


def side_by_side(left_title: str, left: str, right_title: str, right: str) -> str:
    """Two code excerpts next to each other, as HTML for ``IPython.display.HTML``."""

    def column(title: str, code: str) -> str:
        return (
            '<div style="flex:1;min-width:0">'
            f"<p><b>{html.escape(title)}</b></p>"
            f'<pre style="font-size:11px;overflow-x:auto;white-space:pre">{html.escape(code)}</pre>'
            "</div>"
        )

    return f'<div style="display:flex;gap:1.5em">{column(left_title, left)}{column(right_title, right)}</div>'


def token_accounting(
    raw_counts: Mapping[str, Any], filtered_counts: Mapping[str, Any]
) -> pd.DataFrame:
    """Files and tokens before and after filtering, beside the paper's 35B -> 6B (paper §2)."""
    paper_before = DATA_BUDGET["raw_stack_and_so_tokens"]
    paper_after = DATA_BUDGET["filtered_tokens"]
    rows = {
        "files before filtering": [f"{raw_counts['files']:,}", f"{DATA_BUDGET['raw_files']:,.0f}+"],
        "tokens before filtering": [f"{raw_counts['tokens']:,}", f"{paper_before / 1e9:.0f}B+"],
        "files kept": [f"{filtered_counts['files']:,}", "not published"],
        "tokens kept": [f"{filtered_counts['tokens']:,}", f"~{paper_after / 1e9:.0f}B"],
        "share of tokens kept": [
            f"{filtered_counts['tokens'] / max(raw_counts['tokens'], 1):.1%}",
            f"~{paper_after / paper_before:.0%}",
        ],
    }
    return pd.DataFrame(rows, index=["this run", "the paper"]).T


def stand_ins(profile: Any) -> pd.DataFrame:
    """Each ingredient of the paper's filter beside what this profile uses for it."""
    corpus, teacher, embed = profile.corpus, profile.teacher, profile.embed
    if corpus.source == "local":
        data = (
            f"{corpus.max_files or 'all'} Python files of this machine's standard library and "
            "site-packages (real code, not written for this book)"
        )
    else:
        names = ", ".join(source["name"] for source in corpus.hub_sources)
        data = f"streamed from the hub: {names} ({corpus.max_files or 'every'} files)"
    judge = (
        f"the book's procedural teacher ({teacher.model}): a rubric over code features, "
        "a stand-in for an LLM"
        if teacher.endpoint == "local"
        else f"{teacher.model} at {teacher.endpoint}"
    )
    rows = {
        "code": ["The Stack (dedup, Python) + StackOverflow: >35M files, >35B tokens", data],
        "judge": ["GPT-4, ~100k files", f"{judge}; {profile.judge.sample_size} files"],
        "embeddings": ["a pretrained CodeGen model", embed.model],
        "classifier": [
            "random forest (settings unpublished)",
            f"random forest, {profile.classifier.n_estimators} trees",
        ],
    }
    return pd.DataFrame(rows, index=["the paper", "this run"]).T
