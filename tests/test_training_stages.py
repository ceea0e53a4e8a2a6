"""The training stages end to end through the run store, on small stand-in upstream datasets.

The upstream stages (``raw_code``, ``filtered_code``, ``textbooks``, ``exercises``) are replaced
by small datasets with the same columns, so these tests exercise every training stage in seconds
and do not depend on the filtering and synthesis chapters' runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from phi1lib import pipeline
from phi1lib.evaluation.exercises import ExerciseFormatError, exercise_problems
from phi1lib.pipeline import Stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import Artifact
from phi1lib.training.ablation import read_ablation
from phi1lib.training.metrics import read_metrics
from phi1lib.training.packing import PAD, PackedSequences
from phi1lib.training.run import run_stage
from phi1lib.training.stages import CorpusRecordError, texts


def _code(i: int) -> str:
    return (
        f"import math\n\n\ndef area_{i}(radius):\n"
        f'    """Area of a circle of the given radius (file {i})."""\n'
        f"    return math.pi * radius ** 2\n\n\nprint(area_{i}({i % 5}))\n"
    )


def _junk(i: int) -> str:
    return f"X{i} = {i}\nY{i} = 'config value {i}'\nZ{i} = None\n" * 3


def _textbook(i: int) -> str:
    return (
        f"## Loops, part {i}\n\nA `for` loop repeats a block once per item:\n\n"
        f"```python\nfor n in range({i % 4 + 2}):\n    print(n * n)\n```\n\n"
        "Each pass binds the next item to the loop variable.\n"
    )


def _exercise(i: int) -> dict:
    name = f"add_{i}"
    prompt = f'def {name}(x):\n    """Return x plus {i}."""\n'
    body = f"    return x + {i}\n"
    return {
        "function_name": name,
        "entry_point": name,
        "docstring": f"Return x plus {i}.",
        "prompt": prompt,
        "solution": prompt + body,
        "tests": [f"assert {name}(1) == {1 + i}", f"assert {name}(-{i}) == 0"],
        "text": prompt + body,
    }


def _saver(datasets: dict[str, list[dict]]):
    def build(ctx):
        for name, rows in datasets.items():
            Dataset.from_list(rows).save_to_disk(str(ctx.out / name))
        return {name: len(rows) for name, rows in datasets.items()}

    return build


RAW_CODE = Stage(
    "raw_code",
    _saver(
        {"data": [{"text": _code(i)} for i in range(80)] + [{"text": _junk(i)} for i in range(80)]}
    ),
    config=lambda profile: {},
)
FILTERED_CODE = Stage(
    "filtered_code",
    _saver({"data": [{"text": _code(i)} for i in range(80)]}),
    config=lambda profile: {},
)
TEXTBOOKS = Stage(
    "textbooks", _saver({"data": [{"text": _textbook(i)} for i in range(40)]}), config=lambda p: {}
)
EXERCISES = Stage(
    "exercises",
    _saver(
        {
            "data": [_exercise(i) for i in range(200)],
            "heldout": [_exercise(i) for i in range(200, 212)],
            "infamily": [_exercise(i) for i in range(300, 306)],
        }
    ),
    config=lambda profile: {},
)


@pytest.fixture
def stand_ins(monkeypatch, runs_root):
    for name in ("raw_code", "filtered_code", "textbooks", "exercises"):
        monkeypatch.setitem(pipeline.STAGES, name, f"{__name__}:{name.upper()}")
    return runs_root


@pytest.mark.slow
def test_training_stages_from_tokenizer_to_ablation(stand_ins):
    profile = load_profile("smoke", use_env=False)
    ablation = pipeline.run("training_ablation", profile)
    store = pipeline.RunStore(profile.name)

    tokenizer = AutoTokenizer.from_pretrained(store.path("tokenizer") / "tokenizer")
    assert len(tokenizer) <= profile.tokenizer.vocab_size
    assert tokenizer.eos_token == "<|endoftext|>"

    codetextbook = store.load("tokens_codetextbook")
    assert codetextbook.counts["train_documents"] + codetextbook.counts["heldout_documents"] == 120
    assert codetextbook.counts["heldout_documents"] > 0
    raw = store.load("tokens_raw_code")
    assert raw.counts["train_tokens"] > codetextbook.counts["train_tokens"]

    # the three pretraining runs of the ablation see the same number of tokens
    steps = profile.pretrain.steps
    for stage in ("pretrain", "pretrain_filtered", "pretrain_unfiltered"):
        summary = store.load(stage).json("training.json")
        assert summary["tokens"] == steps * profile.pretrain.global_batch * profile.pretrain.seq_len
        frame = read_metrics(store.path(stage) / "metrics.csv")
        assert frame["step"].iloc[-1] == steps and frame["heldout_loss"].notna().any()
    assert not any((stand_ins / "smoke" / ".work").glob("*/checkpoints"))

    model = AutoModelForCausalLM.from_pretrained(store.path("finetune") / "model")
    assert model.config.model_type == "phi"
    # the fine-tuning run saved the model halfway (snapshot_every), for chapter 5's curve
    snapshots = sorted(p.name for p in (store.path("finetune") / "snapshots").iterdir())
    assert snapshots == ["step-000005"] and profile.finetune.snapshot_every == 5
    halfway = AutoModelForCausalLM.from_pretrained(
        store.path("finetune") / "snapshots" / snapshots[0]
    )
    assert not torch.equal(halfway.lm_head.weight, model.lm_head.weight)
    assert not (store.path("pretrain") / "snapshots").exists(), "pretraining takes none"
    finetune = store.load("finetune").json("training.json")
    packed = PackedSequences(store.path("tokens_exercises") / "train.bin", profile.finetune.seq_len)
    file_padding = packed.padding_in(range(len(packed))) / packed.info.tokens
    # whole exercises per row: a run pads as much as its rows do, not one exercise per row
    assert abs(finetune["pad_fraction"] - file_padding) < 0.1 and file_padding < 0.5
    assert finetune["steps"] == profile.finetune.steps

    results = read_ablation(ablation)
    assert results["seeds"] == [0, 1]
    assert results["problems"] == {"infamily": 6, "heldout": 8, "humaneval": 4}
    rows = {row["model"]: row for row in results["rows"]}
    assert len(rows) == 3 * 2 * 2  # three arms, two seeds, base and fine-tuned
    tokens = {row["pretrain_tokens"] for row in rows.values()}
    assert tokens == {steps * profile.pretrain.global_batch * profile.pretrain.seq_len}
    for row in rows.values():
        assert 0 < row["codetextbook_loss"] < 10 and 0 < row["exercises_bits_per_byte"] < 10
        low, high = row["heldout_interval"]
        assert low <= row["heldout_pass@1"] <= high and row["humaneval_problems"] == 4
    # fine-tuning on exercises lowers the loss on held-out exercises, for every arm and seed
    for arm in "abc":
        for seed in (0, 1):
            tuned, base = rows[f"{arm}-s{seed}-finetuned"], rows[f"{arm}-s{seed}-base"]
            assert tuned["exercises_loss"] < base["exercises_loss"]
            assert tuned["finetune_tokens"] == finetune["tokens"]
    # seed 1 is another run: other weights, another loss
    assert rows["c-s1-base"]["codetextbook_loss"] != rows["c-s0-base"]["codetextbook_loss"]
    # seed 0 of (c) is the pipeline's own pretrain and finetune stages
    models = store.load("ablation_models").json("models.json")
    assert models["c-s0-base"] == {"stage": "pretrain"} and models["c-s0-finetuned"] == {
        "stage": "finetune"
    }
    assert models["a-s0-finetuned"] == {"folder": "a-s0-finetuned"}
    comparison = next(
        c for c in results["comparisons"]
        if c["metric"] == "loss:exercises" and c.get("arm") == "c"
    )  # fmt: skip
    assert comparison["ordering"] == ["finetuned", "base"] and comparison["seeds_agreeing"] == 2
    (pair,) = comparison["pairs"]
    assert pair["interval"][1] < 0 < pair["second_better"]
    lines = (ablation.path / "completions.jsonl").read_text().splitlines()
    assert len(lines) == 6 + 8 + 4
    record = json.loads(lines[0])
    assert set(record) >= {"prompt", "reference", "c-s0-base", "c-s0-finetuned", "a-s0-base"}
    assert set(record["c-s0-finetuned"]) == {"completion", "passed", "status"}

    # the entry point builds the same artifact (cached) as the pipeline
    result = run_stage("pretrain", "smoke", {}, force=False)
    assert result["path"] == str(store.path("pretrain"))


def test_a_bad_upstream_record_is_named(tmp_path):
    Dataset.from_list([{"text": "print(1)\n"}, {"text": None}]).save_to_disk(str(tmp_path / "data"))
    artifact = Artifact("filtered_code", tmp_path, {"fingerprint": "x"})
    with pytest.raises(CorpusRecordError, match="'filtered_code' dataset 'data' record 1"):
        list(texts(artifact))
    Dataset.from_list([{"code": "x"}]).save_to_disk(str(tmp_path / "other"))
    with pytest.raises(CorpusRecordError, match="no 'text' column"):
        list(texts(artifact, "other"))


def test_exercises_become_graded_problems():
    problems = exercise_problems([_exercise(3)])
    problem = problems[0]
    assert problem.entry_point == "add_3" and problem.harness == "asserts"
    assert problem.canonical_solution == "    return x + 3\n"
    program = problem.program(problem.canonical_solution)
    namespace: dict = {}
    exec(compile(program, "exercise", "exec"), namespace)  # the reference passes its own tests
    with pytest.raises(AssertionError):
        exec(compile(problem.program("    return x\n"), "exercise", "exec"), {})
    broken = {**_exercise(4), "tests": ["assert add_4(1) =="]}
    with pytest.raises(ExerciseFormatError, match="record 0: tests do not parse"):
        exercise_problems([broken])


def test_packed_exercises_are_whole_and_pad_only_the_ends_of_rows(stand_ins):
    profile = load_profile("smoke", use_env=False)
    artifact = pipeline.run("tokens_exercises", profile)
    data = PackedSequences(artifact.path / "train.bin", profile.finetune.seq_len)
    roles = np.asarray(data.roles).reshape(len(data), -1)
    for row in roles:
        padded = np.flatnonzero(row == PAD)
        assert padded.size == 0 or padded[0] == len(row) - padded.size  # padding is a suffix
    exercises = pipeline.run("exercises", profile).dataset("data")
    assert artifact.counts["train_documents"] == len(exercises)
    assert data.targets_in(range(len(data))) < data.info.tokens / 2  # solutions, not prompts


LAUNCHED = """
import json, os, pathlib, sys
sys.path.insert(0, sys.argv[1])
from phi1lib import pipeline
for name in ("raw_code", "filtered_code", "textbooks", "exercises"):
    pipeline.STAGES[name] = f"test_training_stages:{name.upper()}"
from phi1lib.training.run import run_stage
result = run_stage("pretrain", "smoke", {"pretrain.micro_batch": 4}, False)
# One file per process: two processes' lines on one shared stdout can interleave.
pathlib.Path(sys.argv[2], f"result-{os.environ['RANK']}.json").write_text(json.dumps(result))
"""


@pytest.mark.slow
def test_the_entry_point_trains_a_stage_with_two_processes(runs_root, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(Path(__file__).parent),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PHI1_RUNS": str(runs_root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((tmp_path / f"result-{rank}.json").read_text()) for rank in (0, 1)]
    # both processes trained, the first stored the artifact, and both return it
    artifact = pipeline.RunStore("smoke").load("pretrain")
    summary = artifact.json("training.json")
    assert summary["world_size"] == 2 and summary["accumulation"] == 1
    assert (artifact.path / "model" / "model.safetensors").exists()
    assert [r["path"] for r in results] == [str(artifact.path)] * 2
    assert not any((runs_root / "smoke" / ".work").iterdir()), "the work folder is removed"
