"""The ``training_ablation`` build on stand-in models: every model scored once, even across an
interruption, and the comparison written for the chapters."""

from __future__ import annotations

import dataclasses
import json
import shutil

import datasets
import pytest
from test_evaluation_models import make_tiny_model
from transformers import AutoTokenizer

from phi1lib.pipeline import build_stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import Artifact, RunStore
from phi1lib.training import ablation
from phi1lib.training.ablation import TRAINING_ABLATION, read_ablation, read_completions
from phi1lib.training.ablation_models import ARMS, PHASES, run_name
from phi1lib.training.packing import PackedSequences, write_token_file


def _artifact(stage, path, counts=None) -> Artifact:
    return Artifact(stage, path, {"fingerprint": f"{stage}-test", "counts": counts or {}})


def _exercise(i: int) -> dict:
    prompt = f'def add_{i}(x):\n    """Return x plus {i}."""\n'
    return {
        "prompt": prompt,
        "text": prompt + f"    return x + {i}\n",
        "tests": [f"assert add_{i}(1) == {1 + i}"],
    }


@pytest.fixture
def upstream(tmp_path):
    """Twelve model folders (three arms, two seeds, two phases) and the data they are scored on."""
    model = tmp_path / "tiny-model"
    make_tiny_model(model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    inputs = {}
    for stage, text in (("tokens_codetextbook", "def f(x):\n    return x\n"),
                        ("tokens_exercises", _exercise(1)["text"])):  # fmt: skip
        folder = tmp_path / stage
        folder.mkdir()
        info = write_token_file([text] * 40, tokenizer, folder / "heldout.bin")
        counts = {"heldout_tokens": info.tokens, "heldout_text_bytes": info.text_bytes}
        inputs[stage] = _artifact(stage, folder, counts)
    for split, first in (("infamily", 0), ("heldout", 50)):
        records = [_exercise(i) for i in range(first, first + 5)]
        datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "exercises" / split))
    inputs["exercises"] = _artifact("exercises", tmp_path / "exercises")
    index = {}
    for arm in ARMS:
        for seed in (0, 1):
            for phase in PHASES:
                name = run_name(arm.key, seed, phase)
                shutil.copytree(model, tmp_path / "ablation_models" / name / "model")
                summary = {"tokens": 2048 if phase == "base" else 512, "epochs": 1.5}
                summary["final_loss"] = 4.0
                path = tmp_path / "ablation_models" / name / "model" / "summary.json"
                path.write_text(json.dumps(summary))
                index[name] = {"folder": name}
    (tmp_path / "ablation_models" / "models.json").write_text(json.dumps(index))
    inputs["ablation_models"] = _artifact("ablation_models", tmp_path / "ablation_models")
    for stage in ("pretrain_unfiltered", "pretrain_filtered", "pretrain", "finetune"):
        inputs[stage] = _artifact(stage, tmp_path / stage)
    return inputs


def test_an_interrupted_ablation_resumes_with_the_next_model(upstream, runs_root, monkeypatch):
    profile = load_profile("smoke", {"ablation.humaneval_limit": 0}, use_env=False)
    store = RunStore("smoke", root=runs_root)
    real, calls = ablation.score_model, []

    def failing_after_five(model_dir, **kwargs):
        if len(calls) == 5:
            raise RuntimeError("killed")
        calls.append(model_dir.parent.name)
        return real(model_dir, **kwargs)

    monkeypatch.setattr(ablation, "score_model", failing_after_five)
    with pytest.raises(RuntimeError, match="killed"):
        build_stage(TRAINING_ABLATION, profile, upstream, store)
    scored_before = list(calls)
    calls.clear()
    monkeypatch.setattr(ablation, "score_model", lambda model_dir, **kw: (
        calls.append(model_dir.parent.name), real(model_dir, **kw))[1])  # fmt: skip
    artifact = build_stage(TRAINING_ABLATION, profile, upstream, store)
    assert len(scored_before) == 5 and len(calls) == 7
    assert not set(calls) & set(scored_before), "no model is scored twice"

    results = read_ablation(artifact)
    assert results["seeds"] == [0, 1] and results["problems"] == {"infamily": 5, "heldout": 5}
    assert len(results["rows"]) == 12
    row = results["rows"][0]
    assert row["model"] == "a-s0-base" and row["pretrain_tokens"] == 2048
    # every model is the same random model: equal losses, no passes, every ordering a tie
    losses = {round(r["codetextbook_loss"], 6) for r in results["rows"]}
    assert len(losses) == 1
    assert row["codetextbook_bits_per_byte"] == pytest.approx(
        row["codetextbook_loss"]
        / 0.6931471805599453
        * upstream["tokens_codetextbook"].counts["heldout_tokens"]
        / upstream["tokens_codetextbook"].counts["heldout_text_bytes"]
    )
    arms = [c for c in results["comparisons"] if c["between"] == "arms"]
    assert len(arms) == 4 * 2  # (two losses + two splits) x two phases
    assert all(c["ordering_text"] == "a = b = c" for c in arms)
    scores = artifact.json("scores.json")
    assert len(scores["c-s1-finetuned"]["passed"]["infamily"]) == 5
    sequences = PackedSequences(upstream["tokens_exercises"].path / "heldout.bin", 128)
    assert len(sequences) < profile.ablation.heldout_sequences, "so every sequence is scored"
    assert len(scores["c-s1-finetuned"]["losses"]["exercises"]) == len(sequences)
    completions = read_completions(artifact)
    assert [r["split"] for r in completions] == ["infamily"] * 5 + ["heldout"] * 5
    assert set(completions[0]) >= {"a-s0-base", "c-s0-finetuned", "prompt", "reference"}


def test_the_models_index_names_stages_and_folders(tmp_path):
    from phi1lib.training.ablation_models import ABLATION_MODELS, model_folders, seeds

    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "models.json").write_text(
        json.dumps({"c-s0-base": {"stage": "pretrain"}, "a-s1-base": {"folder": "a-s1-base"}})
    )
    index = _artifact("ablation_models", tmp_path / "index")
    folders = model_folders(index, {"pretrain": _artifact("pretrain", tmp_path / "pretrain")})
    assert folders == {
        "c-s0-base": tmp_path / "pretrain" / "model",
        "a-s1-base": tmp_path / "index" / "a-s1-base" / "model",
    }
    assert seeds(load_profile("tiny", use_env=False)) == [0, 1, 2]
    with pytest.raises(ValueError, match="ablation.seeds must be at least 1"):
        seeds(load_profile("smoke", {"ablation.seeds": 0}, use_env=False))
    # the seed-0 runs are the pipeline's own stages, so the stage needs them
    assert {"pretrain", "pretrain_filtered", "pretrain_unfiltered", "finetune"} <= set(
        ABLATION_MODELS.needs
    )
    assert ABLATION_MODELS.collective, "every process of a launch trains the runs together"


def test_a_shorter_ablation_fine_tune_keeps_the_recipe_and_trains_its_own_seed_zero():
    from phi1lib.training.ablation_models import finetune_settings, finetune_steps, reuses_finetune

    same = load_profile("smoke", use_env=False)
    assert finetune_steps(same) == same.finetune.steps and reuses_finetune(same)
    assert finetune_settings(same, 1) == dataclasses.replace(
        same.settings("finetune"), seed=same.finetune.seed + 1
    )

    shorter = load_profile("smoke", {"ablation.finetune_steps": 4}, use_env=False)
    assert not reuses_finetune(shorter), "(c)'s seed 0 is then trained by the ablation itself"
    settings = finetune_settings(shorter, 0)
    assert (settings.steps, settings.schedule_steps) == (4, 0)
    assert settings.warmup_steps == shorter.finetune.warmup_steps < 4  # the recipe's warm-up fits
    assert (settings.lr, settings.global_batch) == (
        shorter.finetune.lr,
        shorter.finetune.global_batch,
    )
    tiny_warmup = finetune_settings(
        load_profile("smoke", {"ablation.finetune_steps": 2}, use_env=False), 0
    )
    assert tiny_warmup.warmup_steps == 0, "a warm-up longer than the run becomes a tenth of it"
    with pytest.raises(ValueError, match="finetune_steps must be 0 or more"):
        finetune_steps(load_profile("smoke", {"ablation.finetune_steps": -1}, use_env=False))
    # the default profile's ablation is shorter than chapter 5's fine-tune, and says so in its config
    tiny = load_profile("tiny", use_env=False)
    assert finetune_steps(tiny) < tiny.finetune.steps and not reuses_finetune(tiny)
