"""Recorded benchmark results as the chapters read them: provenance required, errors named."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from phi1lib.training.recorded import (
    RecordedResultError,
    plot_paper_filter_ablation,
    plot_scaling,
    provenance,
    read_recorded,
    scaling_table,
)


def test_a_missing_result_is_none_and_a_bad_one_is_named(tmp_path):
    assert read_recorded("absent.json", root=tmp_path) is None
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(RecordedResultError, match="broken.json: not valid JSON"):
        read_recorded("broken.json", root=tmp_path)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(RecordedResultError, match="list.json: expected an object, got list"):
        read_recorded("list.json", root=tmp_path)
    (tmp_path / "bare.json").write_text(json.dumps({"measured": "2026-12-03", "rows": []}))
    with pytest.raises(RecordedResultError, match="bare.json: missing machine, command"):
        read_recorded("bare.json", root=tmp_path)
    (tmp_path / "ok.json").write_text(
        json.dumps({"measured": "d", "machine": "m", "command": "c", "wall_s": 3.0})
    )
    with pytest.raises(RecordedResultError, match="missing fits"):
        read_recorded("ok.json", required=("fits",), root=tmp_path)
    assert provenance(read_recorded("ok.json", root=tmp_path)) == {
        "measured": "d", "machine": "m", "command": "c", "wall_s": 3.0
    }  # fmt: skip


def test_the_recorded_scaling_result_reads_into_its_table_and_figure():
    record = read_recorded("scaling.json", required=("fits", "rows"))
    assert record is not None, "the repository carries benchmarks/results/scaling.json"
    table = scaling_table(record)
    assert list(table.index) == ["(a) unfiltered code", "(b) filtered code", "(c) CodeTextbook"]
    assert (table["budgets"] >= 5).all()
    ratio = record["fits"]["compute_saved"]["(a) unfiltered code"]["ratio"]
    assert table.loc["(a) unfiltered code", "compute (c) saves to reach (a)'s best loss"] == (
        f"{ratio:.2f}x"
    )
    assert table.loc["(c) CodeTextbook", "compute (c) saves to reach (a)'s best loss"] == "-"
    fig, (left, right) = plt.subplots(1, 2)
    plot_scaling(record, left)
    assert len(left.get_lines()) == 6 and left.get_xscale() == "log"
    assert record["measured"][:10] in left.get_title()
    plot_paper_filter_ablation(right)
    assert [round(p.get_height(), 2) for p in right.patches] == [12.19, 17.68, 20.12]
    plt.close(fig)


def test_the_recorded_full_length_ablation_reads_into_chapter_5s_tables():
    from phi1lib.training.ablation_report import ablation_table, findings, ordering_table

    record = read_recorded("ablation_long.json", required=("ablation", "overrides"))
    assert record is not None, "the repository carries benchmarks/results/ablation_long.json"
    results = record["ablation"]
    assert len(results["seeds"]) >= 3 and results["problems"]["infamily"] >= 100
    table = ablation_table(results)
    assert len(table) == 6 and (table["seeds"] == len(results["seeds"])).all()
    sentences = findings(results, "finetuned")
    assert any(s.startswith("pass@1 (%), exercises: in-family held out") for s in sentences)
    assert len(ordering_table(results)) > 0


def test_a_benchmark_records_when_where_and_how():
    from phi1lib.training.recorded import measured_now

    record = measured_now("benchmarks/bench_x.py", ["--set", "a=1;b=2"])
    assert (
        record["command"]
        == "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_x.py --set 'a=1;b=2'"
    )
    assert "threads, torch" in record["machine"] and record["measured"][:2] == "20"
