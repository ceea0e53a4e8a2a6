"""Results recorded by the benchmark scripts, read back for the chapters (4 and 5).

Some measurements take longer than a chapter may: the ablation with fine-tunes as long as
chapter 5's (``benchmarks/bench_ablation.py``, about an hour on 2 cores) and held-out loss across
two orders of magnitude of compute (``benchmarks/bench_scaling.py``, half an hour). Their scripts
write JSON files under ``benchmarks/results/`` with the date, machine and command; a chapter
shows them as recorded results, never as numbers of its own run. They live in the repository,
so an installed package without a checkout has none, and the chapters say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
PROVENANCE = ("measured", "machine", "command", "wall_s")


class RecordedResultError(ValueError):
    """A recorded result that does not have the fields its reader needs."""


def read_recorded(
    name: str, required: tuple[str, ...] = (), root: Path | None = None
) -> dict | None:
    """The recorded result ``benchmarks/results/<name>``, or ``None`` outside a checkout.

    A file without its provenance (date, machine, command) or without ``required`` fields is an
    error naming the file: a number without its origin must not reach a chapter.
    """
    path = (root or RESULTS_DIR) / name
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordedResultError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(record, dict):
        raise RecordedResultError(f"{path}: expected an object, got {type(record).__name__}")
    missing = [key for key in (*PROVENANCE[:3], *required) if key not in record]
    if missing:
        raise RecordedResultError(f"{path}: missing {', '.join(missing)}")
    return record


def provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    """When, where and how a recorded result was measured (for printing beside it)."""
    return {key: record[key] for key in PROVENANCE if key in record}


def measured_now(script: str, argv: list[str]) -> dict[str, str]:
    """The provenance a benchmark script writes beside its result: now, this machine, and the
    command that reproduces it (``script`` relative to the checkout, ``argv`` its arguments)."""
    import platform
    import shlex
    from datetime import UTC, datetime

    import torch

    return {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "command": "HF_HUB_OFFLINE=1 .venv/bin/python "
        + " ".join([script, *map(shlex.quote, argv)]),
    }


def _power_law(flops: np.ndarray, fit: Mapping[str, float]) -> np.ndarray:
    return fit["E"] + fit["A"] * (flops / fit["C0"]) ** -fit["alpha"]


def scaling_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """Per corpus: the fitted law ``L(C) = E + A (C/C0)^-alpha`` and the seed-mean held-out loss
    at the smallest and largest budget, and how much less compute (c) needed than each other
    corpus to reach the loss (a) reached at the largest budget."""
    saved = record["fits"].get("compute_saved", {})
    rows = {}
    for corpus, entry in record["fits"].items():
        if corpus == "compute_saved":
            continue
        fit, losses = entry["fit"], entry["mean_heldout_loss"]
        row = {
            "budgets": len(entry["flops"]),
            "FLOPs, smallest to largest": f"{entry['flops'][0]:.1e} - {entry['flops'][-1]:.1e}",
            "held-out loss, smallest budget": round(losses[0], 3),
            "held-out loss, largest budget": round(losses[-1], 3),
            "fit E": round(fit["E"], 2),
            "fit alpha": round(fit["alpha"], 3),
            "fit rms residual": round(fit["rms_residual"], 3),
        }
        ratio = saved.get(corpus, {}).get("ratio")
        row["compute (c) saves to reach (a)'s best loss"] = (
            f"{ratio:.2f}x" if ratio is not None else "-"
        )
        rows[corpus] = row
    return pd.DataFrame(rows).T


def plot_scaling(record: Mapping[str, Any], ax) -> None:
    """Held-out CodeTextbook loss against training FLOPs per corpus: seed means and fits."""
    for corpus, entry in record["fits"].items():
        if corpus == "compute_saved":
            continue
        flops = np.asarray(entry["flops"], dtype=float)
        (points,) = ax.plot(flops, entry["mean_heldout_loss"], "o", label=corpus)
        grid = np.geomspace(flops[0], flops[-1], 100)
        ax.plot(grid, _power_law(grid, entry["fit"]), "-", color=points.get_color(), alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("held-out CodeTextbook loss (nats/token)")
    ax.set_title(f"recorded {record['measured'][:10]}: loss against compute")
    ax.legend()


def plot_paper_filter_ablation(ax) -> None:
    """The paper's Figure 2.1 points for the 350M model: HumanEval pass@1 per pretraining data."""
    from phi1lib.paper import FILTER_ABLATION_350M

    labels = ["(a) unfiltered", "(b) filtered", "(c) CodeTextbook"]
    values = [row["humaneval"] for row in FILTER_ABLATION_350M]
    ax.bar(labels, values, color=["#999999", "#6699cc", "#225588"])
    for x, value in enumerate(values):
        ax.text(x, value + 0.4, f"{value:.1f}%", ha="center")
    ax.set_ylabel("HumanEval pass@1 (%)")
    ax.set_title("paper, 350M model (Figure 2.1, §2.1)")
