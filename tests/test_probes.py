"""Chapter 7's probe suite: the data file, the checks, the intervals and a run on a real model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fake_judge import JudgeServer

from phi1lib.analysis.intervals import paired_bootstrap_difference, wilson_interval
from phi1lib.analysis.probes.checks import (
    check_structure,
    code_from_answer,
    longest_parsable_prefix,
    program_with_tests,
    references,
)
from phi1lib.analysis.probes.report import (
    ProbeOutcome,
    clip_at_line,
    paired_differences,
    rates_by,
    side_by_side,
)
from phi1lib.analysis.probes.runner import (
    as_problem,
    check_completions,
    run_probe_suite,
)
from phi1lib.analysis.probes.suite import (
    CATEGORIES,
    PERTURBATIONS,
    ProbeFormatError,
    load_suite,
)
from phi1lib.profiles import load_profile

# A hung sandbox or model load must fail the test, not stall the suite.
pytestmark = pytest.mark.timeout(300)

SUITE = load_suite()
SMOKE = load_profile("smoke", use_env=False)
BY_ID = {probe.id: probe for probe in SUITE}


def test_suite_covers_every_category_with_unique_ids():
    assert {probe.category for probe in SUITE} == set(CATEGORIES)
    assert len(BY_ID) == len(SUITE) >= 40


def test_robustness_groups_hold_every_perturbation_of_one_task():
    groups: dict[str, list] = {}
    for probe in SUITE:
        if probe.category == "robustness":
            groups.setdefault(probe.group, []).append(probe)
    assert len(groups) >= 4
    for members in groups.values():
        assert sorted(p.perturbation for p in members) == sorted(PERTURBATIONS)
        assert len({(p.entry_point, p.tests) for p in members}) == 1
        original = next(p for p in members if p.perturbation == "original")
        longer = next(p for p in members if p.perturbation == "longer")
        assert len(longer.prompt) > 2 * len(original.prompt)


def test_every_reference_passes_and_an_empty_answer_fails_in_the_sandbox():
    settings = replace(SMOKE.probes, workers=2)
    right = check_completions(SUITE, [p.reference for p in SUITE], settings)
    failures = [(p.id, status) for p, (ok, status) in zip(SUITE, right, strict=True) if not ok]
    assert not failures
    empty = ["    return None\n" if p.format == "code" else "I am not sure." for p in SUITE]
    wrong = check_completions(SUITE, empty, settings)
    assert not any(ok for ok, _ in wrong)
    statuses = {status for (_, status), p in zip(wrong, SUITE, strict=True) if p.check == "tests"}
    assert statuses == {"failed"}


def test_suite_errors_name_the_probe_and_the_field(tmp_path):
    good = (Path(__file__).parents[1] / "phi1lib/analysis/probes/suite.toml").read_text()
    cases = {
        "category": good.replace('category = "gui"', 'category = "graphics"', 1),
        "appears twice": good + good[good.index("\n[[probe]]") :],
        "does not parse": good.replace("    return [word for word", "    return [word for", 1),
        "structure": good.replace("\n[probe.structure]", "\n[probe.ignored]", 1),
    }
    for expected, text in cases.items():
        path = tmp_path / "suite.toml"
        path.write_text(text)
        with pytest.raises(ProbeFormatError, match=expected) as error:
            load_suite(path)
        assert str(path) in str(error.value)


def test_structure_resolves_imports_counts_calls_and_reads_grid_cells():
    source = (
        "from tkinter import *\nimport matplotlib.pyplot as plt\n"
        "root = Tk()\nfor c in range(2):\n    Entry(root).grid(row=0, column=c)\n"
        "Button(root, text='a').grid(row=1, column=0)\nplt.savefig('x.png', dpi=200)\n"
        "root.mainloop()\n"
    )
    found = references(source)
    assert {"tkinter.Tk", "tkinter.Entry", "tkinter.Button"} <= found.names
    assert "matplotlib.pyplot.savefig" in found.names
    assert found.calls["tkinter.Entry"] == 1  # a call site in a loop counts once
    assert found.grid_cells == {(1, 0)}  # the loop's cell is not a constant
    assert {"savefig:dpi", "matplotlib.pyplot.savefig:dpi"} <= found.keywords
    assert "mainloop" in found.methods


def test_structure_check_reports_what_is_missing():
    layout = BY_ID["counting/tkinter-layout"]
    ok, why = check_structure(layout, layout.reference)
    assert (ok, why) == (True, "ok")
    one_button_short = layout.reference.replace(
        '    tk.Button(root, text="Three").grid(row=1, column=2)\n', ""
    )
    ok, why = check_structure(layout, one_button_short)
    assert not ok
    assert "calls tkinter.Button 2 times, not 3" in why and "grid cells" in why
    cut_off = layout.reference[: layout.reference.index("tk.Button")] + "tk.Butt"
    assert not check_structure(layout, cut_off)[0]


def test_code_is_found_in_chat_answers_fenced_or_not():
    fenced = "Sure:\n```python\ndef f(x):\n    return x\n```\nHope this helps."
    assert code_from_answer(fenced) == "def f(x):\n    return x\n"
    bare = "You can do this.\ndef g():\n    return 1\nThat is all, folks"
    assert code_from_answer(bare) == "def g():\n    return 1\n"
    assert code_from_answer("Just use a loop.") == ""
    assert longest_parsable_prefix("x = 1\ny = (\n") == "x = 1\n"
    chat = BY_ID["chat/keep-even"]
    assert "def keep_even" in program_with_tests(chat, chat.reference)


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_paired_bootstrap_difference_of_known_pairs():
    assert paired_bootstrap_difference([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
    assert paired_bootstrap_difference([0, 0, 0, 0], [1, 1, 1, 1]) == (1.0, 1.0, 1.0)
    difference, low, high = paired_bootstrap_difference([0] * 10, [1] * 5 + [0] * 5, seed=1)
    assert difference == 0.5 and 0.1 < low < 0.5 < high < 0.9
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1], [1, 0])


def _outcomes(model: str, passes: dict[str, bool]) -> list[ProbeOutcome]:
    return [
        ProbeOutcome(
            model, pid, BY_ID[pid].category, f"answer of {model}", ok, "passed" if ok else "failed"
        )
        for pid, ok in passes.items()
    ]


def test_tables_of_rates_and_paired_differences():
    ids = [p.id for p in SUITE if p.category in ("stdlib", "logic")]
    base = _outcomes("base", {pid: False for pid in ids})
    tuned = _outcomes("tuned", {pid: BY_ID[pid].category == "stdlib" for pid in ids})
    rows = {(r["model"], r["category"]): r for r in rates_by(base + tuned)}
    stdlib = rows[("tuned", "stdlib")]
    assert (stdlib["passed"], stdlib["rate"], stdlib["high"]) == (8, 1.0, 1.0)
    assert rows[("base", "logic")]["rate"] == 0.0
    differences = {r["category"]: r for r in paired_differences(base + tuned, "base", "tuned")}
    assert differences["stdlib"]["difference"] == 1.0
    assert differences["logic"]["difference"] == 0.0
    assert differences["all"]["only_second"] == 8 and differences["all"]["only_first"] == 0
    row = side_by_side(base + tuned, [ids[0]])[0]
    assert row["base"].startswith("fail (failed)") and row["tuned"].startswith("pass")
    assert clip_at_line("a = 1\nb = 2\nc = 3\n", 9) == "a = 1\n... (13 more characters)"
    assert clip_at_line("x" * 20, 5) == "xxxxx\n... (15 more characters)"
    assert clip_at_line("short\n", 50) == "short\n"
    with pytest.raises(ValueError, match="different probes"):
        paired_differences(base + tuned[:-1], "base", "tuned")


def test_probes_become_chapter_6_problems_for_the_judge():
    from phi1lib.evaluation.judge import judge_request

    probe = BY_ID["logic/three-player-game"]
    problem = as_problem(probe)
    assert problem.program(probe.reference) == program_with_tests(probe, probe.reference)
    request = judge_request(problem, "    return [0, 0, 0]\n")
    assert "play_rounds" in request.messages[-1]["content"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised phi-1-architecture model with a small BPE tokenizer."""
    from transformers import PhiForCausalLM

    from phi1lib.training.presets import build_config
    from phi1lib.training.tokenizer import train_bpe_tokenizer

    folder = tmp_path_factory.mktemp("model")
    tokenizer = train_bpe_tokenizer([p.prompt + p.reference for p in SUITE], 400)
    tokenizer.save_pretrained(folder)
    eos = tokenizer.eos_token_id
    config = build_config("smoke", vocab_size=448, eos_token_id=eos, pad_token_id=eos)
    PhiForCausalLM(config).save_pretrained(folder)
    return folder


def test_a_real_model_answers_and_every_answer_is_checked(tiny_model_dir):
    probes = [BY_ID[pid] for pid in ("stdlib/math-lcm", "gui/tkinter-pew", "chat/keep-even")]
    settings = replace(SMOKE.probes, max_new_tokens=8, batch_size=3, workers=1)
    outcomes, costs = run_probe_suite(tiny_model_dir, probes, "random", settings, progress=False)
    assert [o.probe_id for o in outcomes] == [p.id for p in probes]
    assert costs["generation"]["completions"] == 3
    assert costs["generation"]["parameters"] > 0
    # An untrained model passes nothing; each check says why in its own words.
    assert not any(o.passed for o in outcomes)
    assert outcomes[0].status in {"failed", "timeout"}
    assert outcomes[1].status.startswith(("never uses", "no parsable"))
    json.dumps([o.to_dict() for o in outcomes])  # outcomes are JSON-ready


@pytest.mark.slow
def test_probes_stage_writes_outcomes_and_tables(tiny_model_dir, tmp_path):
    from phi1lib.analysis.stages import PROBES, build_probes
    from phi1lib.pipeline import StageContext
    from phi1lib.profiles import load_profile
    from phi1lib.runstore import Artifact, RunStore

    # The same random model stands in for both the pretrained and the fine-tuned model.
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "model").symlink_to(tiny_model_dir)
    inputs = {name: Artifact(name, tmp_path / "trained", {}) for name in ("pretrain", "finetune")}
    profile = load_profile("smoke", {"probes.max_new_tokens": 4}, use_env=False)
    store = RunStore("smoke", tmp_path / "runs")
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    ctx = StageContext(PROBES, profile, inputs, store, "test", out, work)
    counts = build_probes(ctx)
    assert counts["probes"] == len(SUITE) and counts["models"] == 2
    assert counts["passed base"] == counts["passed fine-tuned"] == 0
    lines = (out / "outcomes.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(SUITE)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["judged"] is False  # the smoke profile's teacher is the offline stand-in
    assert {row["category"] for row in summary["differences"]} == {*CATEGORIES, "all"}
    assert summary["models"]["base"]["parameters"] > 0


@pytest.mark.slow
def test_probes_stage_resumes_with_the_models_already_answered(tiny_model_dir, tmp_path):
    from phi1lib.analysis.stages import BASE, PROBES, PROGRESS_FILE, build_probes
    from phi1lib.pipeline import StageContext
    from phi1lib.profiles import load_profile
    from phi1lib.runstore import Artifact, RunStore

    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "model").symlink_to(tiny_model_dir)
    inputs = {name: Artifact(name, tmp_path / "trained", {}) for name in ("pretrain", "finetune")}
    profile = load_profile("smoke", {"probes.max_new_tokens": 4}, use_env=False)
    store = RunStore("smoke", tmp_path / "runs")
    # An interrupted build had finished the base model, which passed everything.
    finished = [
        ProbeOutcome(BASE, p.id, p.category, p.reference, True, "passed", p.group, p.perturbation)
        for p in SUITE
    ]
    costs = {
        "generation": {"parameters": 1, "new_tokens": 0, "wall_time_s": 0.0, "tokens_per_s": 0.0}
    }
    progress = {BASE: {"outcomes": [o.to_dict() for o in finished], "costs": costs}}
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    (work / PROGRESS_FILE).write_text(json.dumps(progress))
    counts = build_probes(StageContext(PROBES, profile, inputs, store, "test", out, work))
    assert counts["passed base"] == len(SUITE)  # reused, not answered again
    assert counts["passed fine-tuned"] == 0  # answered now by the random model
    summary = json.loads((out / "summary.json").read_text())
    overall = {row["category"]: row for row in summary["differences"]}["all"]
    assert overall["difference"] == -1.0 and overall["only_first"] == len(SUITE)


def test_probes_command_prints_rates_and_writes_answers(
    tiny_model_dir, tmp_path, runs_root, capsys
):
    from phi1lib.cli import main

    out = tmp_path / "answers.jsonl"
    status = main(
        ["probes", str(tiny_model_dir), "--profile", "smoke", "--categories", "gui,counting",
         "--label", "random", "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    categories = [row.get("category") for row in printed["by_category"]]
    assert categories == ["gui", "counting", None]  # the last row is over all probes
    assert printed["by_category"][-1]["probes"] == 10
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(answers) == 10 and {a["model"] for a in answers} == {"random"}
    with pytest.raises(SystemExit):
        main(["probes", str(tiny_model_dir), "--categories", "graphics"])


def test_answers_are_graded_through_the_teacher_client(tmp_path, monkeypatch):
    from phi1lib.analysis.probes.runner import grade_completions
    from phi1lib.profiles import load_profile

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    probes = [BY_ID["logic/bank-account"], BY_ID["chat/keep-even"], BY_ID["gui/pygame-grid"]]
    answers = [probes[0].reference, "I would use a loop.", "    pass\n"]
    with JudgeServer(wrong_grade=1) as server:
        endpoint = f"http://127.0.0.1:{server.port}/v1"
        profile = load_profile("smoke", {"teacher.endpoint": endpoint, "teacher.model": "judge"})
        grades, report = grade_completions(profile, probes, answers, tmp_path / "cache")
    assert grades == [10.0, 1.0, 1.0]
    assert report["counts"]["ok"] == 3 and len(server.requests) == 3
    # requests run concurrently, so they arrive in any order: find the chat probe's by its content
    users = [request["messages"][-1]["content"] for request in server.requests]
    chat = [user for user in users if "I would use a loop." in user]
    assert len(chat) == 1
    assert "Student:" in chat[0] and "keep_even" in chat[0]  # the judge sees the dialogue
