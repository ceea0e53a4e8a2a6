"""benchmarks/device_check.sh: its arguments, its skips without a GPU, and its JSON (issue 14).

The GPU figures themselves come from a run on a GPU machine; here the same code paths run on
the CPU at the smoke preset (``--allow-cpu``), so a broken part is found before a GPU is lent.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch

from phi1lib.training.packing import write_token_file
from phi1lib.training.tokenizer import train_bpe_tokenizer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "device_check.sh"
PARTS = ["mfu", "gpu_model", "pretrain", "humaneval"]


def check(*args: str, limit: int = 300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PHI1_PYTHON": str(ROOT / ".venv" / "bin" / "python"),
        "DEVICE_CHECK_LIMIT_S": str(limit),
    }
    if not Path(env["PHI1_PYTHON"]).exists():
        env["PHI1_PYTHON"] = "python"
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env)


def test_without_an_output_folder_it_prints_its_usage():
    result = check()
    assert result.returncode == 2 and "usage:" in result.stderr
    assert check("--parts", "mfu").returncode == 2


def test_an_unknown_part_is_named(tmp_path):
    result = check(str(tmp_path / "out"), "--parts", "mfu,warp_drive")
    assert result.returncode == 2 and "warp_drive" in result.stderr
    assert not (tmp_path / "out" / "device_check.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the parts run")
def test_without_a_gpu_every_part_is_skipped_with_its_reason(tmp_path):
    result = check(str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "device_check.json").read_text())
    assert set(summary) == {"date", "command", "machine", "device", "parts"}
    assert summary["device"] == "cpu" and summary["machine"]["gpu"] is None
    assert summary["machine"]["torch"] == torch.__version__
    assert list(summary["parts"]) == PARTS
    for part in PARTS:
        written = json.loads((tmp_path / f"{part}.json").read_text())
        assert written == summary["parts"][part]
        assert written["status"] == "skipped" and "CUDA" in written["reason"]
    assert "skipped" in result.stdout


def _tiny_run_store(root: Path) -> Path:
    texts = [f"def add_{i}(a, b):\n    return a + b * {i}\n" for i in range(300)]
    tokenizer = train_bpe_tokenizer(texts, 400)
    tokenizer.save_pretrained(root / "tokenizer" / "tokenizer")
    data = root / "tokens_codetextbook"
    write_token_file(texts[:250], tokenizer, data / "train.bin")
    write_token_file(texts[250:], tokenizer, data / "heldout.bin")
    return root


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path; a GPU runs the real sizes")
def test_every_part_runs_on_the_cpu_at_the_smoke_size(tmp_path):
    runs = _tiny_run_store(tmp_path / "runs")
    out = tmp_path / "out"
    result = check(str(out), "--allow-cpu", "--runs", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    parts = json.loads((out / "device_check.json").read_text())["parts"]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(PARTS, "done")
    (model,) = parts["mfu"]["models"]
    assert model["tokens_per_s"] > 0 and 0 < model["mfu"] < 1.5
    assert parts["gpu_model"]["tokens_per_s"] > 0
    pretrain = parts["pretrain"]
    assert math.isfinite(pretrain["final_heldout_loss"]) and pretrain["tokens"] > 0
    assert "stand-in" in pretrain["data"]
    assert parts["humaneval"]["problems"] == 3 and parts["humaneval"]["wall_time_s"] > 0
    assert result.stdout.count("FIGURE") == 4


def test_the_pretraining_part_says_what_data_it_lacks(tmp_path):
    result = check(
        str(tmp_path),
        "--allow-cpu",
        "--parts",
        "pretrain,humaneval",
        "--runs",
        str(tmp_path / "none"),
    )
    assert result.returncode == 0, result.stderr
    parts = json.loads((tmp_path / "device_check.json").read_text())["parts"]
    assert (
        parts["pretrain"]["status"] == "skipped"
        and "tokens_codetextbook" in parts["pretrain"]["reason"]
    )
    assert parts["humaneval"]["status"] == "skipped" and "pretrain" in parts["humaneval"]["reason"]


def test_the_time_limit_keeps_what_finished(tmp_path):
    runs = _tiny_run_store(tmp_path / "runs")
    result = check(
        str(tmp_path / "out"), "--allow-cpu", "--parts", "pretrain", "--runs", str(runs), limit=1
    )
    assert result.returncode == 124
    summary = tmp_path / "out" / "device_check.json"
    if summary.exists():  # the limit may strike before Python has written anything
        parts = json.loads(summary.read_text())["parts"]
        assert parts["pretrain"]["status"] == "interrupted"


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device: the figures are a GPU's"
)
def test_on_a_gpu_the_mfu_part_measures_both_paper_models(tmp_path):
    result = check(str(tmp_path), "--parts", "mfu", limit=400)
    assert result.returncode == 0, result.stderr
    models = json.loads((tmp_path / "mfu.json").read_text())["models"]
    assert [m["preset"] for m in models] == ["phi-1-small", "phi-1"]
    assert all(0 < m["mfu"] < 1 and m["precision"] == "bf16" for m in models)
