"""The ablation's statistics on synthetic score grids whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from phi1lib.analysis.intervals import grid_bootstrap_means, percentile_interval
from phi1lib.training.ablation import compare
from phi1lib.training.ablation_stats import compare_arms


def _passes(rate: float, seeds: int, items: int, rng) -> np.ndarray:
    return (rng.random((seeds, items)) < rate).astype(float)


def test_a_clear_difference_is_found_and_ordered():
    rng = np.random.default_rng(1)
    grids = {"a": _passes(0.1, 3, 200, rng), "b": _passes(0.3, 3, 200, rng)}
    grids["c"] = _passes(0.6, 3, 200, rng)
    result = compare_arms(grids, higher_is_better=True, resamples=1000)
    assert result["ordering"] == ["c", "b", "a"] and result["ordering_text"] == "c > b > a"
    assert result["ordering_probability"] > 0.99 and result["seeds_agreeing"] == 3
    pairs = {(p["first"], p["second"]): p for p in result["pairs"]}
    ca = pairs[("a", "c")]
    assert ca["difference"] == pytest.approx(grids["c"].mean() - grids["a"].mean())
    assert 0.35 < ca["interval"][0] < 0.5 < ca["interval"][1] < 0.7  # the true difference is 0.5
    assert ca["second_better"] == 1.0
    low, high = result["cells"]["b"]["interval"]
    assert low < 0.3 < high and high - low < 0.15
    assert len(result["cells"]["a"]["per_seed"]) == 3


def test_noise_gives_a_wide_interval_and_an_unsure_ordering():
    rng = np.random.default_rng(2)
    grids = {arm: _passes(0.2, 3, 30, rng) for arm in "abc"}
    result = compare_arms(grids, higher_is_better=True, resamples=1000)
    for pair in result["pairs"]:
        low, high = pair["interval"]
        assert low < 0 < high, pair
        assert 0.02 < pair["second_better"] < 0.98
    assert result["ordering_probability"] < 0.6


def test_lower_is_better_for_losses_and_ties_are_ties():
    losses = {"a": [[4.0, 4.2], [4.1, 4.3]], "b": [[3.0, 3.2], [3.1, 3.3]]}
    result = compare_arms(losses, higher_is_better=False, resamples=200)
    assert result["ordering"] == ["b", "a"] and result["pairs"][0]["second_better"] == 1.0
    zeros = {arm: np.zeros((3, 10)) for arm in "abc"}
    tied = compare_arms(zeros, higher_is_better=True, binary=True, resamples=200)
    cell = tied["cells"]["a"]
    assert cell["bootstrap_interval"] == [0.0, 0.0]
    assert cell["interval"] == cell["wilson"] == pytest.approx([0.0, 0.1135], abs=1e-4)
    assert tied["ordering_text"] == "a = b = c"
    assert tied["ordering_probability"] == 1.0 and tied["seeds_agreeing"] == 3
    assert all(p["interval"] == [0.0, 0.0] and p["second_better"] == 0.0 for p in tied["pairs"])


def test_seed_noise_widens_the_interval_beyond_problem_noise():
    # Every seed scores every item alike, but the seeds differ: resampling items alone would
    # give a zero-width interval; resampling seeds shows the spread.
    grid = np.repeat(np.array([[1.0], [2.0], [3.0]]), 50, axis=1)
    means = grid_bootstrap_means({"x": grid}, resamples=2000)["x"]
    low, high = percentile_interval(means)
    assert low < 1.7 and high > 2.3
    with pytest.raises(ValueError, match="one shape"):
        grid_bootstrap_means({"x": grid, "y": grid[:, :10]})
    with pytest.raises(ValueError, match="two arms"):
        compare_arms({"x": grid}, higher_is_better=True)


def test_compare_pairs_arms_by_phase_and_phases_by_arm():
    rng = np.random.default_rng(3)
    scores = {}
    for arm, rate in (("a", 0.0), ("b", 0.1), ("c", 0.5)):
        for seed in (0, 1, 2):
            for phase, boost in (("base", 0.0), ("finetuned", 0.3)):
                scores[f"{arm}-s{seed}-{phase}"] = {
                    "losses": {
                        "codetextbook": list(4 - rate + rng.normal(0, 0.05, 16)),
                        "exercises": list(4 - rate - boost + rng.normal(0, 0.05, 16)),
                    },
                    "passed": {"heldout": list(_passes(rate + boost, 1, 40, rng)[0])},
                }
    results = compare(scores, ["a", "b", "c"], [0, 1, 2], ["heldout"], resamples=300)
    assert len(results) == 3 * (2 + 3)  # three metrics: two phases of arms, three arms' phases
    tuned = next(
        r for r in results if r["metric"] == "pass:heldout" and r.get("phase") == "finetuned"
    )
    assert tuned["ordering"][0] == "c" and tuned["items"] == 40 and tuned["seeds"] == 3
    effect = next(r for r in results if r["metric"] == "loss:exercises" and r.get("arm") == "a")
    assert effect["ordering"] == ["finetuned", "base"] and effect["seeds_agreeing"] == 3


def _results(rng) -> dict:
    """An ``ablation.json`` of three arms at three seeds where fine-tuned (c) is clearly best."""
    seed_list, splits = [0, 1, 2], ["heldout", "humaneval"]
    scores, rows = {}, []
    for arm, rate in (("a", 0.0), ("b", 0.05), ("c", 0.4)):
        for seed in seed_list:
            for phase, boost in (("base", 0.0), ("finetuned", 0.3)):
                passed = {
                    "heldout": list(_passes(rate * (phase == "finetuned"), 1, 40, rng)[0]),
                    "humaneval": [0.0] * 12,
                }
                scores[f"{arm}-s{seed}-{phase}"] = {
                    "losses": {
                        "codetextbook": list(4 - rate + rng.normal(0, 0.05, 16)),
                        "exercises": list(4 - rate - boost + rng.normal(0, 0.05, 16)),
                    },
                    "passed": passed,
                }
                row = {"arm": arm, "seed": seed, "phase": phase, "train_loss": 3.0}
                row.update(pretrain_tokens=600_000, pretrain_epochs=1.2)
                row.update(codetextbook_loss=4.0, exercises_loss=3.0)
                for split, values in passed.items():
                    row[f"{split}_passed"], row[f"{split}_problems"] = int(sum(values)), len(values)
                    row[f"{split}_interval"] = [0.0, 0.1]
                rows.append(row)
    return {
        "arms": {"a": "(a) unfiltered code", "b": "(b) filtered code", "c": "(c) CodeTextbook"},
        "seeds": seed_list,
        "splits": splits,
        "bytes_per_token": {"codetextbook": 3.0, "exercises": 2.5},
        "rows": rows,
        "comparisons": compare(scores, ["a", "b", "c"], seed_list, splits, resamples=300),
    }


def test_the_chapter_tables_show_every_figure_with_its_interval():
    import matplotlib

    matplotlib.use("Agg")
    from phi1lib.training.ablation_report import (
        ablation_table,
        differences_table,
        findings,
        finetuning_table,
        ordering_table,
        plot_ablation,
        seeds_table,
    )

    results = _results(np.random.default_rng(4))
    table = ablation_table(results)
    assert len(table) == 6 and set(table["seeds"]) == {3}
    cell = table.loc[("(c) CodeTextbook", "then fine-tuned on CodeExercises")]
    assert cell["paper: HumanEval (%), 350M"] == 45.0
    mean, low, high = (float(x) for x in cell["pass@1 (%), exercises: held-out families"]
                       .replace("[", "").replace("]", "").replace(",", "").split())  # fmt: skip
    assert low <= mean <= high and 25 < mean < 55
    bits = cell["held-out exercises loss (bits/byte)"]
    nats = float(cell["held-out exercises loss (nats/token)"].split()[0])
    assert bits == pytest.approx(nats / np.log(2) / 2.5, abs=1e-3)
    # no passes in 3 x 12 tries: not a proven 0, the pooled count's Wilson interval reaches 9.6%
    assert table.loc[("(a) unfiltered code", "pretrained"), "HumanEval pass@1 (%)"] == (
        "0.0 [0.0, 9.6]"
    )
    orders = ordering_table(results)
    tuned = orders.loc[
        ("pass@1 (%), exercises: held-out families", "then fine-tuned on CodeExercises")
    ]
    assert tuned["ordering (best first)"].startswith("c > ")
    assert orders.loc[("HumanEval pass@1 (%)", "pretrained"), "ordering (best first)"] == (
        "a = b = c"
    )
    assert len(differences_table(results)) == 4 * 2 * 3  # metrics x phases x pairs
    effect = finetuning_table(results).loc[
        ("held-out exercises loss (nats/token)", "(a) unfiltered code")
    ]
    assert effect["seeds improving"] == "3 of 3" and effect["change [95% interval]"].startswith(
        "-0.3"
    )
    assert len(seeds_table(results)) == 18
    sentences = findings(results)
    assert len(sentences) == 4 and "c > " in sentences[2] and "3 of 3 seeds" in sentences[1]
    assert sentences[3].endswith(
        "every arm at 0.0, so no ordering; the widest arm's interval reaches 9.6"
    )
    assert len(plot_ablation(results).axes) == 4


def test_one_seed_leaves_only_the_problems_to_resample():
    rng = np.random.default_rng(5)
    grids = {"a": _passes(0.2, 1, 100, rng), "b": _passes(0.5, 1, 100, rng)}
    result = compare_arms(grids, higher_is_better=True, binary=True, resamples=500)
    assert result["seeds"] == 1 and result["ordering"] == ["b", "a"]
    assert result["seeds_agreeing"] == 1 and result["pairs"][0]["interval"][0] > 0
