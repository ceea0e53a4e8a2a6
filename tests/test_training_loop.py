"""The training loop: it learns, two processes equal one, and a SIGKILLed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from phi1lib.profiles import load_profile
from phi1lib.training.checkpoint import complete_checkpoints, read_state
from phi1lib.training.loop import TrainSettings, learning_rate_factor, train
from phi1lib.training.metrics import read_metrics
from phi1lib.training.packing import PackedSequences, write_token_file
from phi1lib.training.presets import build_config, padded_vocab_size
from phi1lib.training.tokenizer import train_bpe_tokenizer

TEXTS = [
    f"def scale_{i}(values, factor={i % 7 + 1}):\n"
    f'    """Multiply every value by factor (exercise {i})."""\n'
    f"    return [v * factor for v in values]\n\n\n"
    f"assert scale_{i}([1, 2]) == [{i % 7 + 1}, {2 * (i % 7 + 1)}]\n"
    for i in range(300)
]

# A training process as a script: run by the tests as one process, as two under torchrun, and
# killed with SIGKILL (by itself, at a chosen step, so the kill point is exact).
WORKER = """
import json, os, signal, sys
from pathlib import Path
from phi1lib.training.loop import learning_rate_factor, train
from phi1lib.training.packing import PackedSequences
from phi1lib.training.presets import build_config
from phi1lib.training.settings import PretrainSettings
from phi1lib.training.tokenizer import load_tokenizer

spec = json.loads(sys.argv[1])

def on_step(step):
    if step == spec.get("kill_at"):
        os.kill(os.getpid(), signal.SIGKILL)

tokenizer = load_tokenizer(spec["tokenizer"])
settings = PretrainSettings(**spec["settings"])
train(
    init=build_config("smoke", spec["vocab"], eos_token_id=tokenizer.eos_token_id),
    tokenizer=tokenizer,
    train_data=PackedSequences(spec["train"], settings.seq_len),
    heldout_data=PackedSequences(spec["heldout"], settings.seq_len),
    settings=settings,
    workdir=Path(spec["workdir"]),
    on_step=on_step,
)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    tokenizer = train_bpe_tokenizer(TEXTS, vocab_size=320)
    tokenizer.save_pretrained(root / "tokenizer")
    write_token_file(TEXTS[:280], tokenizer, root / "train.bin")
    write_token_file(TEXTS[280:], tokenizer, root / "heldout.bin")
    (root / "worker.py").write_text(WORKER)
    return {"root": root, "tokenizer": tokenizer, "vocab": padded_vocab_size(len(tokenizer))}


def settings(**changes) -> TrainSettings:
    small = dict(
        seq_len=64,
        global_batch=8,
        micro_batch=4,
        steps=12,
        lr=3e-3,
        warmup_steps=2,
        log_every=1,
        eval_every=4,
        eval_sequences=8,
        checkpoint_every=3,
        compile=False,
    )
    return replace(load_profile("smoke", use_env=False).pretrain, **{**small, **changes})


def spec(corpus, workdir: Path, run_settings: TrainSettings, **extra) -> str:
    root = corpus["root"]
    return json.dumps(
        {
            "tokenizer": str(root / "tokenizer"),
            "train": str(root / "train.bin"),
            "heldout": str(root / "heldout.bin"),
            "vocab": corpus["vocab"],
            "settings": asdict(run_settings),
            "workdir": str(workdir),
            **extra,
        }
    )


def run_worker(corpus, argument: str, *, processes: int = 1) -> subprocess.CompletedProcess:
    script = str(corpus["root"] / "worker.py")
    if processes == 1:
        command = [sys.executable, script, argument]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            script,
            argument,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // processes))}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_a_run_stopped_early_follows_the_planned_schedule(corpus, tmp_path):
    """Training 6 steps of a 12-step schedule ends at the rate the 12-step run has at step 6."""
    tokenizer = corpus["tokenizer"]
    run_settings = settings(steps=6, schedule_steps=12, checkpoint_every=100, eval_every=100)
    train(
        init=build_config("smoke", corpus["vocab"], eos_token_id=tokenizer.eos_token_id),
        tokenizer=tokenizer,
        train_data=PackedSequences(corpus["root"] / "train.bin", 64),
        heldout_data=None,
        settings=run_settings,
        workdir=tmp_path / "run",
    )
    rates = read_metrics(tmp_path / "run" / "metrics.csv")["lr"]
    # each row logs the rate the next step will use
    planned = [
        3e-3 * learning_rate_factor(s, warmup=2, total=12, min_ratio=0.1) for s in range(1, 7)
    ]
    assert list(rates) == pytest.approx(planned)
    assert rates.iloc[-1] > 3e-3 * 0.5  # far above the floor a 6-step schedule would reach


@pytest.mark.slow
def test_training_learns_and_saves_a_loadable_model(corpus, tmp_path):
    run_settings = settings(steps=16, checkpoint_every=100)
    root = corpus["root"]
    tokenizer = corpus["tokenizer"]
    summary = train(
        init=build_config("smoke", corpus["vocab"], eos_token_id=tokenizer.eos_token_id),
        tokenizer=tokenizer,
        train_data=PackedSequences(root / "train.bin", 64),
        heldout_data=PackedSequences(root / "heldout.bin", 64),
        settings=run_settings,
        workdir=tmp_path / "run",
    )
    frame = read_metrics(tmp_path / "run" / "metrics.csv")
    assert list(frame["step"]) == list(range(1, 17))
    assert frame["loss"].iloc[-1] < frame["loss"].iloc[0] - 1.0  # it learns
    assert frame["heldout_loss"].notna().sum() == 4
    assert frame["tokens"].iloc[-1] == 16 * 8 * 64 == summary["tokens"]
    assert (frame["tokens_per_s"] > 0).all() and (frame["mfu"] > 0).all()
    # every MFU in the log is against the run's final ceiling (the better of two measurements)
    expected = frame["tokens_per_s"] * summary["flops_per_token"] / summary["peak_flops"]
    assert frame["mfu"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9)
    assert summary["peak_source"].endswith("the better of before and after training")
    assert frame["lr"].max() == pytest.approx(3e-3)
    assert summary["attention"] == "sdpa" and summary["accumulation"] == 2
    assert 0 <= summary["pad_fraction"] < 0.02
    final = tmp_path / "run" / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.config.resid_pdrop == 0.0  # saved for inference, like the released phi-1
    assert (final / "tokenizer.json").exists() and (final / "summary.json").exists()
    assert summary["final_heldout_loss"] == pytest.approx(frame["heldout_loss"].iloc[-1])
    # a finished work folder is returned as it is, without training again
    again = train(
        init=build_config("smoke", corpus["vocab"], eos_token_id=tokenizer.eos_token_id),
        tokenizer=tokenizer,
        train_data=PackedSequences(root / "train.bin", 64),
        heldout_data=None,
        settings=run_settings,
        workdir=tmp_path / "run",
    )
    assert again == json.loads((final / "summary.json").read_text())


@pytest.mark.slow
def test_a_work_folder_of_another_run_is_not_resumed(corpus, tmp_path):
    root = corpus["root"]
    common = {
        "init": build_config("smoke", corpus["vocab"]),
        "tokenizer": corpus["tokenizer"],
        "train_data": PackedSequences(root / "train.bin", 64),
        "heldout_data": None,
        "workdir": tmp_path / "run",
    }
    train(settings=settings(steps=2), **common)
    with pytest.raises(ValueError, match="other settings"):
        train(settings=settings(steps=3, lr=1e-2), **common)


@pytest.mark.slow
def test_two_processes_give_the_losses_of_one(corpus, tmp_path):
    one = run_worker(corpus, spec(corpus, tmp_path / "one", settings(steps=6, micro_batch=8)))
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_worker(
        corpus, spec(corpus, tmp_path / "two", settings(steps=6, micro_batch=2)), processes=2
    )
    assert two.returncode == 0, two.stderr[-3000:]
    single = read_metrics(tmp_path / "one" / "metrics.csv")
    double = read_metrics(tmp_path / "two" / "metrics.csv")
    assert json.loads((tmp_path / "two" / "final" / "summary.json").read_text())["world_size"] == 2
    assert list(single["step"]) == list(double["step"]) == list(range(1, 7))
    for column in ("loss", "heldout_loss", "grad_norm"):
        assert double[column].to_numpy() == pytest.approx(
            single[column].to_numpy(), rel=1e-5, nan_ok=True
        )


@pytest.mark.slow
def test_a_sigkilled_run_resumes_with_the_same_losses(corpus, tmp_path):
    # dropout on, so that the saved random-number state matters; two micro-steps per step
    run_settings = settings(steps=12, dropout=0.1, checkpoint_every=3)
    reference = run_worker(corpus, spec(corpus, tmp_path / "reference", run_settings))
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = run_worker(corpus, spec(corpus, tmp_path / "killed", run_settings, kill_at=8))
    assert killed.returncode == -signal.SIGKILL
    checkpoints = complete_checkpoints(tmp_path / "killed" / "checkpoints")
    assert [read_state(c)["step"] for c in checkpoints] == [3, 6]
    assert (checkpoints[-1] / "random_states_0.pkl").exists()
    assert read_metrics(tmp_path / "killed" / "metrics.csv")["step"].max() == 8
    assert not (tmp_path / "killed" / "final").exists()
    # a checkpoint that a kill interrupted while it was being written is ignored and removed
    (tmp_path / "killed" / "checkpoints" / "step-00000009.partial").mkdir()

    resumed = run_worker(corpus, spec(corpus, tmp_path / "killed", run_settings))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (tmp_path / "killed" / "checkpoints" / "step-00000009.partial").exists()
    expected = read_metrics(tmp_path / "reference" / "metrics.csv")
    got = read_metrics(tmp_path / "killed" / "metrics.csv")
    assert list(got["step"]) == list(range(1, 13))  # steps 7-8 of the killed run logged once
    for column in ("loss", "heldout_loss", "grad_norm", "lr", "tokens"):
        assert got[column].to_numpy() == pytest.approx(
            expected[column].to_numpy(), rel=1e-6, nan_ok=True
        )
    weights = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    reference_weights = load_file(tmp_path / "reference" / "final" / "model.safetensors")
    for name, tensor in reference_weights.items():
        assert torch.allclose(weights[name], tensor, atol=1e-6), name


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_a_gpu(corpus, tmp_path, precision):
    # the CPU tests above cover the same loop in fp32; here autocast (and fp16's gradient
    # scaler) take part, and the attention kernel is FlashAttention-2 when flash-attn is present
    root = corpus["root"]
    tokenizer = corpus["tokenizer"]
    summary = train(
        init=build_config("smoke", corpus["vocab"], eos_token_id=tokenizer.eos_token_id),
        tokenizer=tokenizer,
        train_data=PackedSequences(root / "train.bin", 64),
        heldout_data=PackedSequences(root / "heldout.bin", 64),
        settings=settings(steps=16, precision=precision, checkpoint_every=8),
        workdir=tmp_path / precision,
    )
    frame = read_metrics(tmp_path / precision / "metrics.csv")
    assert summary["precision"] == precision and summary["device"].startswith("cuda")
    assert frame["loss"].iloc[-1] < frame["loss"].iloc[0] - 1.0
    assert summary["attention"] in {"flash_attention_2", "sdpa"}
