"""Generation, grading in the sandbox, the harness and ``phi1 eval``, on a tiny model made here.

The model is a randomly initialised two-layer ``PhiForCausalLM`` with a byte-level BPE tokenizer
trained on the new problems, saved with ``save_pretrained`` like the training stages' models:
it writes nonsense, which is exactly what makes the failure paths testable. The success path is
tested with the benchmarks' own reference solutions.
"""

from __future__ import annotations

import json

import pytest
import torch

from phi1lib.evaluation.benchmarks import load_new_problems
from phi1lib.evaluation.generation import (
    SamplingSettings,
    _StopOnSequences,
    generate_completions,
    load_model,
    truncate_at_stop,
)
from phi1lib.evaluation.grading import grade_completions, summarize
from phi1lib.evaluation.harness import EvaluationReport, evaluate_canonical, evaluate_model
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.sandbox import SandboxLimits


def make_tiny_model(folder, *, seed: int = 0) -> None:
    """A random 2-layer Phi model and a 400-token BPE tokenizer, saved as a model folder."""
    from transformers import PhiConfig, PhiForCausalLM

    from phi1lib.training.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer([p.reference_code() for p in load_new_problems()], 400)
    tokenizer.save_pretrained(folder)
    config = PhiConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=384,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    PhiForCausalLM(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-model")
    make_tiny_model(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


# --- generation ------------------------------------------------------------------------------


def test_truncate_at_the_earliest_stop_sequence():
    text = "    return x\n\nprint(f(1))\ndef g():\n"
    assert truncate_at_stop(text, ("\ndef ", "\nprint(")) == "    return x\n"
    assert truncate_at_stop("    pass", ("\ndef ",)) == "    pass"


def test_stop_criterion_looks_only_at_generated_text(tiny_model):
    _, tokenizer = tiny_model
    prompt = tokenizer("x = 1\n", add_special_tokens=False)["input_ids"]
    stop = _StopOnSequences(tokenizer, len(prompt), ["\ndef "])
    generated = tokenizer("y = 2\ndef g", add_special_tokens=False)["input_ids"]
    starts_with_def = tokenizer("def f(): pass", add_special_tokens=False)["input_ids"]
    batch = [prompt + generated, prompt + starts_with_def[: len(generated)]]
    width = max(map(len, batch))
    ids = torch.tensor([row + [0] * (width - len(row)) for row in batch])
    assert stop(ids, None).tolist() == [True, False]


@pytest.mark.slow
def test_greedy_completions_are_reproducible_and_independent_of_batching(tiny_model):
    model, tokenizer = tiny_model
    problems = load_new_problems(limit=5)
    prompts = [p.prompt for p in problems]
    stops = [p.stop_sequences for p in problems]
    one = generate_completions(
        model, tokenizer, prompts, stops, SamplingSettings(max_new_tokens=24, batch_size=1),
        progress=False,
    )  # fmt: skip
    five = generate_completions(
        model, tokenizer, prompts, stops, SamplingSettings(max_new_tokens=24, batch_size=5),
        progress=False,
    )  # fmt: skip
    assert one == five
    assert all(len(samples) == 1 for samples in one)
    for samples, problem in zip(one, problems, strict=True):
        assert truncate_at_stop(samples[0], problem.stop_sequences) == samples[0]


@pytest.mark.slow
def test_sampling_gives_n_seeded_samples_per_prompt(tiny_model):
    model, tokenizer = tiny_model
    prompts = [p.prompt for p in load_new_problems(limit=2)]
    settings = SamplingSettings(n_samples=4, temperature=1.0, max_new_tokens=16, batch_size=3)
    first = generate_completions(model, tokenizer, prompts, ["\ndef "], settings, progress=False)
    again = generate_completions(model, tokenizer, prompts, ["\ndef "], settings, progress=False)
    assert first == again
    assert [len(samples) for samples in first] == [4, 4]
    assert len(set(first[0])) > 1, "four samples at temperature 1 should not all be equal"


def test_sampling_settings_refuse_inconsistent_requests():
    with pytest.raises(ValueError, match="temperature > 0"):
        SamplingSettings(n_samples=5, temperature=0.0)
    with pytest.raises(ValueError, match="at least 1"):
        SamplingSettings(n_samples=0)


def test_missing_model_folder_gives_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="cannot load the model"):
        load_model(tmp_path / "no-such-model")


# --- grading in the sandbox ------------------------------------------------------------------


@pytest.mark.slow
def test_every_canonical_solution_passes_in_the_sandbox():
    """All 164 HumanEval references and all 50 of the book's new problems pass."""
    humaneval = evaluate_canonical("humaneval", progress=False)
    assert humaneval.summary["pass@1"] == 1.0 and humaneval.summary["problems"] == 164
    new = evaluate_canonical("new", progress=False)
    assert new.summary["statuses"] == {"passed": 50}


def test_wrong_and_hostile_completions_fail_for_the_right_reason():
    problem = load_humaneval(limit=1)[0]  # has_close_elements
    completions = [
        [problem.canonical_solution],
        ["    return False\n"],
        ["    while True:\n        pass\n"],
        ["    raise SystemExit(0)\n"],
        ["    import os\n    os.system('echo pwned')\n    return True\n"],
    ]
    results = grade_completions(
        [problem] * len(completions),
        completions,
        limits=SandboxLimits(timeout_s=1.0),
        progress=False,
    )
    statuses = [r.samples[0].status for r in results]
    assert statuses[0] == "passed"
    assert statuses[1] == "failed" and "assert" in (results[1].samples[0].failed_assertion or "")
    assert statuses[2] == "timeout"
    assert all(status != "passed" for status in statuses[1:]), statuses
    summary = summarize(results)
    assert summary["pass@1"] == pytest.approx(0.2) and summary["solved_problems"] == 1


# --- the harness and the command line --------------------------------------------------------


def test_evaluate_model_reports_every_problem_and_round_trips(tiny_model, tmp_path):
    settings = SamplingSettings(max_new_tokens=16, batch_size=4)
    report = evaluate_model(
        tiny_model, "new", name="tiny", limit=4, settings=settings, progress=False
    )
    assert report.summary["problems"] == 4
    assert report.summary["pass@1"] == 0.0, "a random model cannot solve these"
    assert sum(report.summary["statuses"].values()) == 4
    assert report.generation["completions"] == 4 and report.generation["new_tokens"] > 0
    assert [row["task_id"] for row in report.per_problem()] == [f"New/{i}" for i in range(4)]
    again = EvaluationReport.read(report.write(tmp_path / "report.json"))
    assert again.pass_at_1_by_task() == report.pass_at_1_by_task()
    assert again.results[0].samples[0].completion == report.results[0].samples[0].completion
    with pytest.raises(ValueError, match="pass@10 needs at least 10"):
        evaluate_model(tiny_model, "new", limit=1, settings=settings, ks=(1, 10))


def test_cli_canonical_and_model(tiny_model_dir, tmp_path, capsys):
    from phi1lib.cli import main

    assert main(["eval", "new", "--canonical", "--limit", "5", "--profile", "smoke"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pass@1"] == 1.0 and printed["problems"] == 5 and printed["model"] == "canonical"

    out = tmp_path / "mbpp.json"
    argv = ["eval", "mbpp", "--model", str(tiny_model_dir), "--limit", "2", "--n", "2"]
    argv += ["--k", "1,2", "--max-new-tokens", "8", "--profile", "smoke", "--out", str(out)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) >= {"pass@1", "pass@2", "statuses"} and printed["problems"] == 2
    saved = EvaluationReport.read(out)
    assert saved.settings["temperature"] == 0.8 and saved.results[0].n == 2

    assert main(["eval", "new", "--model", str(tiny_model_dir), "--k", "5", "--limit", "1"]) == 2
    assert "--n 5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "new", "--canonical", "--model", str(tiny_model_dir)])


@pytest.mark.gpu
def test_generation_and_grading_on_a_gpu(tiny_model_dir):
    """On CUDA the model loads in bfloat16 (or float16) and the harness runs unchanged."""
    model, tokenizer = load_model(tiny_model_dir)
    assert model.device.type == "cuda" and model.dtype in (torch.bfloat16, torch.float16)
    report = evaluate_model(
        (model, tokenizer),
        "new",
        limit=4,
        settings=SamplingSettings(max_new_tokens=16, batch_size=4),
        progress=False,
    )
    assert report.generation["device"].startswith("cuda")
    assert report.summary["problems"] == 4 and sum(report.summary["statuses"].values()) == 4


def test_cpu_threads_are_set_for_generation_and_restored(tiny_model):
    model, tokenizer = tiny_model
    before = torch.get_num_threads()
    seen = []
    handle = model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        generate_completions(
            model, tokenizer, ["def f():\n"], ["\ndef "],
            SamplingSettings(max_new_tokens=2, cpu_threads=1), progress=False,
        )  # fmt: skip
    finally:
        handle.remove()
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before
