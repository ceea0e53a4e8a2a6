"""The tables chapters 4-6 print, computed from counts and problems given here."""

from __future__ import annotations

import pytest

from phi1lib.evaluation.benchmarks import load_benchmark
from phi1lib.evaluation.tables import benchmark_overview, new_problems_table, table2_paper
from phi1lib.training.flops import GPU_PEAK_FLOPS, flops_per_token
from phi1lib.training.presets import build_config
from phi1lib.training.report import (
    corpus_table,
    exercise_packing_table,
    paper_finetuning_jump,
    pretraining_costs,
)


def test_the_corpus_table_counts_sequences_by_ceiling_division():
    counts = {"train_documents": 10, "train_tokens": 1000, "train_text_bytes": 2500,
              "heldout_documents": 2, "heldout_tokens": 256, "heldout_text_bytes": 512}  # fmt: skip
    table = corpus_table(counts, seq_len=256)
    assert table.loc["sequences of 256", "train"] == 4  # 1000 tokens fill 3 rows and part of a 4th
    assert table.loc["sequences of 256", "heldout"] == 1
    assert table.loc["bytes per token", "train"] == 2.5


def test_pretraining_costs_follow_the_flop_count():
    table = pretraining_costs(profiles=("phi-1",), gpus=("A100",), mfu=0.5, count=8)
    from phi1lib.profiles import load_profile

    profile = load_profile("phi-1", use_env=False)
    section = profile.pretrain
    tokens = section.steps * section.global_batch * section.seq_len
    config = build_config(profile.model.preset, profile.model.vocab_size)
    hours = tokens * flops_per_token(config, section.seq_len) / (8 * GPU_PEAK_FLOPS["A100"] * 0.5)
    assert table.loc[0, "hours at 50% MFU"] == pytest.approx(hours / 3600, abs=0.05)
    assert table.loc[0, "GPUs"] == "8 x A100" and table.loc[0, "tokens"].endswith("B")


def test_the_packing_table_sets_padding_against_packing():
    lengths = [100, 200, 300]  # at 256: one is cut, padding (156 + 56 + 0) / 768
    table = exercise_packing_table(
        lengths, 256, 0.25, {"train_truncated": 1, "train_documents": 4}, "whole"
    )
    one = table.loc["one exercise per padded sequence of 256"]
    assert one["pad tokens (% of processed tokens)"] == pytest.approx(100 * 212 / 768, abs=1e-3)
    assert one["exercise tokens cut off (%)"] == pytest.approx(100 * 44 / 600, abs=1e-3)
    packed = table.loc["packed (whole) into rows of 256 (measured in the fine-tuning run)"]
    assert packed["pad tokens (% of processed tokens)"] == 25.0
    assert packed["exercises cut off (%)"] == 25.0
    assert "one exercise per padded sequence of 2048" in table.index


def test_the_paper_tables_carry_the_papers_numbers():
    jump = paper_finetuning_jump()
    assert jump.loc["HumanEval pass@1 (%)", "phi-1-base -> phi-1, 1.3B (paper)"] == "29.0 -> 50.6"
    assert table2_paper().loc["phi-1", "GPT-4 score (paper, %)"] == 52


def test_the_benchmark_tables_describe_the_problems():
    problems = {"humaneval": load_benchmark("humaneval", 5), "new": load_benchmark("new", 3)}
    overview = benchmark_overview(problems)
    assert list(overview["problems"]) == [5, 3]
    assert (overview["asserts per problem"] > 0).all()
    new = new_problems_table(problems["new"])
    assert list(new.index) == [p.task_id for p in problems["new"]]
    assert new["task"].str.endswith("...").all()
