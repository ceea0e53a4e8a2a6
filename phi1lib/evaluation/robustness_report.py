"""Chapter 7's table and figure of the ``robustness`` stage: clean against perturbed prompts.

Every pass rate is shown with its Wilson interval, and every perturbation's change from the
clean prompts with the paired bootstrap interval over problems and the counts behind it: the
problems it broke (passed clean, failed perturbed) and those it fixed. Introduced in chapter 7
("Mistakes in the prompt").
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from phi1lib.evaluation.exercises import split_label

KIND_LABELS = {
    "clean": "clean prompts",
    "typos": "typos",
    "grammar": "grammar errors",
    "reworded": "reworded docstring",
}


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def robustness_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """One row per condition: passed of problems, pass@1 [Wilson 95%], and for a perturbation
    its paired change from clean [bootstrap 95%], problems broken and fixed (chapter 7)."""
    rows = []
    for condition, rate in result["rates"].items():
        low, high = rate["interval"]
        row = {
            "prompts": KIND_LABELS.get(condition, condition),
            "passed": f"{rate['passed']}/{rate['problems']}",
            "pass@1 (%) [95% Wilson]": f"{_percent(rate['pass@1'])} "
            f"[{_percent(low)}, {_percent(high)}]",
            "change from clean (points) [95%]": "-",
            "broken": "-",
            "fixed": "-",
        }
        change = result["changes"].get(condition)
        if change:
            c_low, c_high = change["interval"]
            row["change from clean (points) [95%]"] = (
                f"{100 * change['difference']:+.1f} [{100 * c_low:+.1f}, {100 * c_high:+.1f}]"
            )
            row["broken"], row["fixed"] = change["broken"], change["fixed"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("prompts")
    table.attrs["split"] = split_label(result["split"])
    return table


def plot_robustness(result: Mapping[str, Any]):
    """Pass@1 on clean and perturbed prompts with Wilson intervals (chapter 7)."""
    import matplotlib.pyplot as plt

    from phi1lib.plotting import OTHER_COLOR, OURS_COLOR

    conditions = list(result["rates"])
    rates = [100 * result["rates"][c]["pass@1"] for c in conditions]
    lows = [
        r - 100 * result["rates"][c]["interval"][0] for r, c in zip(rates, conditions, strict=True)
    ]
    highs = [
        100 * result["rates"][c]["interval"][1] - r for r, c in zip(rates, conditions, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.bar(
        [KIND_LABELS.get(c, c) for c in conditions],
        rates,
        yerr=[lows, highs],
        capsize=4,
        color=[OURS_COLOR] + [OTHER_COLOR] * (len(conditions) - 1),
    )
    ax.set_ylabel("pass@1 (%)")
    ax.set_title(
        f"phi-1 (ours) on {result['rates']['clean']['problems']} exercises "
        f"({split_label(result['split'])}); 95% Wilson intervals"
    )
    fig.tight_layout()
    return fig


def prompt_pair(record: Mapping[str, Any], kind: str) -> str:
    """HTML: one exercise's clean and perturbed prompts side by side, with both verdicts."""
    cells = []
    for condition in ("clean", kind):
        entry = record[condition]
        verdict = "passes" if entry["passed"] else "fails"
        cells.append(
            f"<td style='vertical-align:top'><b>{html.escape(KIND_LABELS.get(condition, condition))}"
            f"</b>: {verdict}<pre>{html.escape(entry['prompt'])}</pre></td>"
        )
    return f"<p><b>{html.escape(record['task_id'])}</b></p><table><tr>{''.join(cells)}</tr></table>"
