"""Chapter 4's and 5's tables of the ablation: every figure with its interval, the paper beside.

They read what ``training_ablation`` wrote (``read_ablation``): the mean over seeds and items
of each arm at each phase with its bootstrap interval, the paired differences between arms,
the ordering the seeds give and how sure it is, and the effect of fine-tuning on each arm. The
paper's numbers (``phi1lib.paper``, HumanEval pass@1 of its 350M model, Figure 2.1) stand in
their own column. Introduced in chapter 4 ("Does the data matter? The ablation at our scale").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from phi1lib.evaluation.exercises import split_label
from phi1lib.paper import FILTER_ABLATION_350M, PHI1_FAMILY
from phi1lib.training.ablation import HUMANEVAL

PHASE_LABELS = {"base": "pretrained", "finetuned": "then fine-tuned on CodeExercises"}
# the paper's 350M HumanEval pass@1 (%) for each arm and phase (Figure 2.1, §2.1)
PAPER_350M = {
    ("a", "base"): FILTER_ABLATION_350M[0]["humaneval"],
    ("b", "base"): FILTER_ABLATION_350M[1]["humaneval"],
    ("c", "base"): FILTER_ABLATION_350M[2]["humaneval"],
    ("c", "finetuned"): PHI1_FAMILY["phi-1-small"]["humaneval"],
}


def metric_label(metric: str) -> str:
    """How a table names a compared metric (``loss:exercises``, ``pass:heldout``)."""
    kind, name = metric.split(":")
    if kind == "loss":
        corpus = "CodeTextbook" if name == "codetextbook" else "exercises"
        return f"held-out {corpus} loss (nats/token)"
    if name == HUMANEVAL:
        return "HumanEval pass@1 (%)"
    return f"pass@1 (%), exercises: {split_label(name)}"


def _scale(metric: str) -> float:
    return 100.0 if metric.startswith("pass:") else 1.0


def _value(value: float, metric: str) -> str:
    scale = _scale(metric)
    shown = scale * value + 0.0  # + 0.0: no "-0.0"
    return f"{shown:.1f}" if scale == 100.0 else f"{shown:.3f}"


def _with_interval(value: float, interval: Sequence[float], metric: str) -> str:
    low, high = (_value(end, metric) for end in interval)
    return f"{_value(value, metric)} [{low}, {high}]"


def _comparisons(results: Mapping[str, Any], between: str) -> list[dict[str, Any]]:
    return [c for c in results["comparisons"] if c["between"] == between]


def bits_per_byte(results: Mapping[str, Any], metric: str, nats: float) -> float:
    """A held-out loss in bits per byte of its held-out text."""
    corpus = metric.split(":")[1]
    return nats / math.log(2) / results["bytes_per_token"][corpus]


def ablation_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per arm and phase: every metric's mean over seeds and items [95% interval], the
    tokens it trained on, and the paper's 350M HumanEval beside it (chapter 4)."""
    rows = {
        (row["arm"], row["phase"]): row for row in results["rows"] if row["seed"] == 0
    }  # tokens and passes over the data are the same at every seed
    table = []
    for arm, label in results["arms"].items():
        for phase in PHASE_LABELS:
            first = rows[(arm, phase)]
            record: dict[str, Any] = {
                "run": label,
                "phase": PHASE_LABELS[phase],
                "seeds": len(results["seeds"]),
                "pretraining tokens": f"{first['pretrain_tokens'] / 1e6:.2f}M",
                "passes over its data": round(first["pretrain_epochs"], 2),
            }
            for comparison in _comparisons(results, "arms"):
                if comparison["phase"] != phase:
                    continue
                metric, cell = comparison["metric"], comparison["cells"][arm]
                record[metric_label(metric)] = _with_interval(
                    cell["mean"], cell["interval"], metric
                )
                if metric.startswith("loss:"):
                    name = metric_label(metric).replace("(nats/token)", "(bits/byte)")
                    record[name] = round(bits_per_byte(results, metric, cell["mean"]), 3)
            record["paper: HumanEval (%), 350M"] = PAPER_350M.get((arm, phase))
            table.append(record)
    return pd.DataFrame(table).set_index(["run", "phase"])


def differences_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """Every pair of arms at each phase: the difference of means [95% interval] and the share
    of resamples in which the second arm is better (chapter 4)."""
    arms = results["arms"]
    table = []
    for comparison in _comparisons(results, "arms"):
        metric = comparison["metric"]
        for pair in comparison["pairs"]:
            table.append(
                {
                    "metric": metric_label(metric),
                    "phase": PHASE_LABELS[comparison["phase"]],
                    "difference": f"{arms[pair['second']][:3]} - {arms[pair['first']][:3]}",
                    "value [95% interval]": _with_interval(
                        pair["difference"], pair["interval"], metric
                    ),
                    "second better in (% of resamples)": round(100 * pair["second_better"], 1),
                }
            )
    return pd.DataFrame(table).set_index(["metric", "phase", "difference"])


def ordering_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """The ordering of the arms on each metric at each phase, best first, with how often the
    bootstrap keeps it and how many single seeds give it (chapter 4)."""
    table = []
    for comparison in _comparisons(results, "arms"):
        table.append(
            {
                "metric": metric_label(comparison["metric"]),
                "phase": PHASE_LABELS[comparison["phase"]],
                "ordering (best first)": comparison["ordering_text"],
                "holds in (% of resamples)": round(100 * comparison["ordering_probability"], 1),
                "seeds giving it": f"{comparison['seeds_agreeing']} of {comparison['seeds']}",
            }
        )
    return pd.DataFrame(table).set_index(["metric", "phase"])


def finetuning_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """What fine-tuning on CodeExercises changed, arm by arm: fine-tuned minus pretrained,
    paired by seed and item [95% interval] (chapter 5)."""
    table = []
    for comparison in _comparisons(results, "phases"):
        (pair,) = comparison["pairs"]
        metric = comparison["metric"]
        cells = comparison["cells"]
        table.append(
            {
                "metric": metric_label(metric),
                "run": results["arms"][comparison["arm"]],
                "pretrained": _with_interval(
                    cells["base"]["mean"], cells["base"]["interval"], metric
                ),
                "fine-tuned": _with_interval(
                    cells["finetuned"]["mean"], cells["finetuned"]["interval"], metric
                ),
                "change [95% interval]": _with_interval(
                    pair["difference"], pair["interval"], metric
                ),
                "seeds improving": f"{_improving(comparison)} of {comparison['seeds']}",
            }
        )
    return pd.DataFrame(table).set_index(["metric", "run"])


def _improving(comparison: Mapping[str, Any]) -> int:
    """Seeds whose fine-tuned model beats their pretrained one on the comparison's metric."""
    base = comparison["cells"]["base"]["per_seed"]
    tuned = comparison["cells"]["finetuned"]["per_seed"]
    higher = comparison["higher_is_better"]
    return sum((t > b) if higher else (t < b) for b, t in zip(base, tuned, strict=True))


def seeds_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """Every model, seed by seed: losses and pass counts with each count's Wilson interval."""
    table = []
    for row in results["rows"]:
        record = {
            "run": results["arms"][row["arm"]],
            "phase": PHASE_LABELS[row["phase"]],
            "seed": row["seed"],
            "final train loss": round(row["train_loss"], 3),
            "held-out CodeTextbook loss": round(row["codetextbook_loss"], 3),
            "held-out exercises loss": round(row["exercises_loss"], 3),
        }
        for split in results["splits"]:
            low, high = row[f"{split}_interval"]
            name = "HumanEval" if split == HUMANEVAL else split_label(split)
            record[f"{name}: passed [95% Wilson, %]"] = (
                f"{row[f'{split}_passed']}/{row[f'{split}_problems']} "
                f"[{100 * low:.1f}, {100 * high:.1f}]"
            )
        table.append(record)
    return pd.DataFrame(table).set_index(["run", "phase", "seed"])


def plot_ablation(results: Mapping[str, Any], metrics: Sequence[str] | None = None):
    """Figure 2.1 at our scale: each arm's mean with its 95% interval, pretrained and then
    fine-tuned, one panel per metric (chapter 4)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from phi1lib.training.plots import ABLATION_COLORS

    chosen = (
        list(metrics)
        if metrics
        else list(dict.fromkeys(c["metric"] for c in results["comparisons"]))
    )
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 4), squeeze=False)
    arms = list(results["arms"])
    x = np.arange(len(PHASE_LABELS))
    width = 0.8 / len(arms)
    for ax, metric in zip(axes[0], chosen, strict=True):
        scale = _scale(metric)
        by_phase = {c["phase"]: c for c in _comparisons(results, "arms") if c["metric"] == metric}
        for i, arm in enumerate(arms):
            cells = [by_phase[phase]["cells"][arm] for phase in PHASE_LABELS]
            means = np.array([scale * cell["mean"] for cell in cells])
            low = means - np.array([scale * cell["interval"][0] for cell in cells])
            high = np.array([scale * cell["interval"][1] for cell in cells]) - means
            ax.bar(
                x + (i - (len(arms) - 1) / 2) * width,
                means,
                width,
                yerr=[low, high],
                capsize=3,
                color=ABLATION_COLORS[i],
                label=results["arms"][arm],
            )
        ax.set_xticks(x, ["pretrained", "+ CodeExercises"])
        ax.set_title(metric_label(metric), fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{len(results['seeds'])} seeds per arm; bars: mean, whiskers: 95% interval")
    fig.tight_layout()
    return fig


def findings(results: Mapping[str, Any], phase: str = "finetuned") -> list[str]:
    """One sentence per metric: the ordering the seeds give at ``phase``, how sure it is, and the
    largest difference with its interval, so that the chapter's prose quotes only this run."""
    arms = results["arms"]
    sentences = []
    for comparison in _comparisons(results, "arms"):
        if comparison["phase"] != phase:
            continue
        metric = comparison["metric"]
        best, worst = comparison["ordering"][0], comparison["ordering"][-1]
        pair = next(p for p in comparison["pairs"] if {p["first"], p["second"]} == {best, worst})
        head = f"{metric_label(metric)}, {PHASE_LABELS[phase]}: "
        cells = comparison["cells"]
        if cells[best]["mean"] == cells[worst]["mean"]:
            widest = max(cell["interval"][1] for cell in cells.values())
            sentences.append(
                head + f"every arm at {_value(cells[best]['mean'], metric)}, so no ordering; "
                f"the widest arm's interval reaches {_value(widest, metric)}"
            )
            continue
        sign = 1 if pair["second"] == best else -1
        interval = sorted(sign * end for end in pair["interval"])
        sentences.append(
            head + f"{comparison['ordering_text']} (best first), in "
            f"{100 * comparison['ordering_probability']:.0f}% of resamples and "
            f"{comparison['seeds_agreeing']} of {comparison['seeds']} seeds; "
            f"{arms[best][:3]} - {arms[worst][:3]} = "
            f"{_with_interval(sign * pair['difference'], interval, metric)}"
        )
    return sentences
