"""The device check: the GPU figures the book lacks, from one unattended run of under 8 minutes.

Run through ``benchmarks/device_check.sh OUT_DIR`` on one H100/H200-class GPU with the
project's venv (and, for the pretraining part, the tiny profile's tokenizer and packed
CodeTextbook under ``runs/tiny``). Four parts, each printed as ``FIGURE`` lines and written to
``OUT_DIR/<part>.json`` as soon as it finishes, with everything gathered in
``OUT_DIR/device_check.json`` (date, command, machine, parts):

``mfu``        training MFU of phi-1-small and phi-1 in bf16 at T=2048 (FlashAttention-2 when
               installed, else SDPA), ``torch.compile``d, against the card's dense bf16 peak;
``gpu_model``  tokens/s of the ``gpu`` profile's model at that profile's sequence length and
               micro-batch;
``pretrain``   a pretraining run of the ``gpu`` profile's model and optimizer settings for a few
               minutes, with its held-out loss. The ``gpu`` profile's own data needs the hub and
               a paid teacher, which the device machine cannot reach, so the run reads the tiny
               profile's CodeTextbook and tokenizer instead (a stand-in, and named so in the
               JSON);
``humaneval``  HumanEval generation throughput (all 164 prompts, greedy) of the model the
               pretraining part trained, and its pass@1 in the sandbox.

Without a CUDA device every part is skipped with its reason; ``--allow-cpu`` runs each part on
the CPU at the smoke preset's size instead, which is how the test suite checks this script's
logic and output format (chapter 4, "Checkpoints, exact resume, and many GPUs").
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PARTS = ("mfu", "gpu_model", "pretrain", "humaneval")
SUMMARY_FILE = "device_check.json"
MFU_CASES = (("phi-1-small", 16), ("phi-1", 8))  # (preset, micro-batch) at T = 2048
SEQ_LEN = 2048
HUMANEVAL_NEW_TOKENS = 256


@dataclasses.dataclass(frozen=True)
class Scale:
    """Sizes of one check: the real ones on a GPU, the smallest that run on a CPU."""

    device: str
    seq_len: int
    mfu_cases: tuple[tuple[str, int], ...]
    compile: bool
    speed_steps: int
    pretrain_seconds: float
    pretrain_max_steps: int
    humaneval_limit: int | None
    new_tokens: int


GPU_SCALE = Scale("cuda", SEQ_LEN, MFU_CASES, True, 12, 90.0, 2000, None, HUMANEVAL_NEW_TOKENS)
CPU_SCALE = Scale("cpu", 64, (("smoke", 2),), False, 2, 5.0, 3, 3, 8)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the JSON results")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument("--runs", type=Path, default=Path("runs/tiny"), help="tiny run store")
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="without CUDA, run every part on the CPU at the smoke preset (tests the logic)",
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"unknown part(s) {unknown or parts}; known: {', '.join(PARTS)}")
    args.parts = parts
    return args


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import flash_attn  # noqa: F401

        info["flash_attn"] = flash_attn.__version__
    except ImportError:
        info["flash_attn"] = None
    return info


def _peak(scale: Scale) -> tuple[float | None, str]:
    from phi1lib.training.flops import device_peak_flops

    return device_peak_flops(scale.device)


def _autocast(scale: Scale):
    if scale.device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _speed(preset: str, vocab: int, seq_len: int, micro: int, scale: Scale) -> dict[str, Any]:
    from phi1lib.training.presets import attention_implementation, build_config
    from phi1lib.training.speed import measure_training_speed

    attention = attention_implementation(scale.device)
    with _autocast(scale):
        result = measure_training_speed(
            build_config(preset, vocab),
            seq_len=seq_len,
            micro_batch=micro,
            compile=scale.compile,
            steps=scale.speed_steps,
            warmup_steps=2,
            attention=attention,
            device=scale.device,
        )
    peak, source = _peak(scale)
    if scale.device == "cuda":
        torch.cuda.empty_cache()
    return {
        "preset": preset,
        "seq_len": seq_len,
        "micro_batch": micro,
        "precision": "bf16" if scale.device == "cuda" else "fp32",
        "attention": attention,
        "compiled": scale.compile,
        "tokens_per_s": result.tokens_per_s,
        "model_tflops_per_s": result.model_flops_per_s / 1e12,
        "mfu": result.model_flops_per_s / peak if peak else None,
        "peak_flops": peak,
        "peak_source": source,
        "warmup_s": result.warmup_s,
    }


def part_mfu(scale: Scale, args: argparse.Namespace, done: dict) -> dict[str, Any]:
    from phi1lib.training.presets import PHI1_VOCAB_SIZE

    rows = [
        _speed(preset, PHI1_VOCAB_SIZE, scale.seq_len, micro, scale)
        for preset, micro in scale.mfu_cases
    ]
    for row in rows:
        mfu = f"{row['mfu']:.0%}" if row["mfu"] is not None else "n/a"
        print(
            f"FIGURE {row['preset']} training, {row['precision']}, T={row['seq_len']}, "
            f"{row['attention']}: {row['tokens_per_s']:,.0f} tokens/s, "
            f"{row['model_tflops_per_s']:.1f} TFLOP/s, MFU {mfu}"
        )
    return {"models": rows}


def _gpu_profile(scale: Scale):
    from phi1lib.profiles import load_profile

    profile = load_profile("gpu", use_env=False)
    preset = profile.model.preset if scale.device == "cuda" else "smoke"
    return profile, preset


def part_gpu_model(scale: Scale, args: argparse.Namespace, done: dict) -> dict[str, Any]:
    profile, preset = _gpu_profile(scale)
    seq_len = profile.pretrain.seq_len if scale.device == "cuda" else scale.seq_len
    micro = profile.pretrain.micro_batch if scale.device == "cuda" else 2
    row = _speed(preset, profile.model.vocab_size, seq_len, micro, scale)
    print(f"FIGURE gpu profile model ({preset}): {row['tokens_per_s']:,.0f} tokens/s")
    return row


def part_pretrain(scale: Scale, args: argparse.Namespace, done: dict) -> dict[str, Any]:
    from phi1lib.training.loop import train
    from phi1lib.training.packing import PackedSequences
    from phi1lib.training.presets import build_config
    from phi1lib.training.tokenizer import load_tokenizer

    data = args.runs / "tokens_codetextbook"
    tokenizer_dir = args.runs / "tokenizer" / "tokenizer"
    for needed in (data / "train.bin", data / "heldout.bin", tokenizer_dir):
        if not needed.exists():
            raise SkipPart(
                f"{needed} is missing: build it first with `phi1 run tokens_codetextbook`"
            )
    profile, preset = _gpu_profile(scale)
    tokenizer = load_tokenizer(tokenizer_dir)
    seq_len = profile.pretrain.seq_len if scale.device == "cuda" else scale.seq_len
    train_data = PackedSequences(data / "train.bin", seq_len)
    micro = profile.pretrain.micro_batch if scale.device == "cuda" else 2
    # The tiny corpus holds a few hundred 2048-token sequences: a global batch of a few
    # micro-batches keeps every step inside one pass of it.
    global_batch = max(micro, min(profile.pretrain.global_batch, 4 * micro))
    speed = done.get("gpu_model", {}).get("tokens_per_s")
    steps = scale.pretrain_max_steps
    if speed:
        steps = max(10, min(steps, int(scale.pretrain_seconds * speed / (global_batch * seq_len))))
    settings = dataclasses.replace(
        profile.pretrain,
        seq_len=seq_len,
        global_batch=global_batch,
        micro_batch=micro,
        steps=steps,
        schedule_steps=0,
        warmup_steps=max(1, steps // 20),
        precision=profile.pretrain.precision if scale.device == "cuda" else "fp32",
        compile=scale.compile,
        log_every=max(1, steps // 20),
        eval_every=max(1, steps // 4),
        eval_sequences=min(64, len(PackedSequences(data / "heldout.bin", seq_len))),
        checkpoint_every=steps + 1,
    )
    config = build_config(
        preset,
        -(-len(tokenizer) // 64) * 64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    workdir = args.out / "pretrain_run"
    summary = train(
        init=config,
        tokenizer=tokenizer,
        train_data=train_data,
        heldout_data=PackedSequences(data / "heldout.bin", seq_len),
        settings=settings,
        workdir=workdir,
        description="device check pretraining",
    )
    keys = ("steps", "tokens", "final_loss", "final_heldout_loss", "tokens_per_s", "mfu")
    result = {key: summary.get(key) for key in keys}
    result.update(
        preset=preset,
        data="tiny CodeTextbook and tokenizer (stand-in: the gpu profile's data needs the hub)",
        global_batch=global_batch,
        seq_len=seq_len,
        train_seconds=summary.get("train_seconds"),
        model_dir=str(workdir / "final"),
    )
    print(
        f"FIGURE gpu profile pretraining ({preset}, {steps} steps, {result['tokens']:,} tokens): "
        f"held-out loss {result['final_heldout_loss']:.3f} nats/token, "
        f"{result['tokens_per_s']:,.0f} tokens/s"
    )
    return result


def part_humaneval(scale: Scale, args: argparse.Namespace, done: dict) -> dict[str, Any]:
    from phi1lib.evaluation.generation import SamplingSettings, load_model
    from phi1lib.evaluation.harness import evaluate_model

    model_dir = done.get("pretrain", {}).get("model_dir")
    if not model_dir:
        raise SkipPart("needs the model of the pretrain part, which did not run")
    model, tokenizer = load_model(model_dir, scale.device)
    sampling = SamplingSettings(max_new_tokens=scale.new_tokens, batch_size=32)
    report = evaluate_model(
        (model, tokenizer),
        "humaneval",
        limit=scale.humaneval_limit,
        settings=sampling,
        workers=min(16, os.cpu_count() or 1),
        progress=False,
    )
    generation = report.generation
    result = {
        "problems": report.summary["problems"],
        "pass@1": report.summary["pass@1"],
        "new_tokens": generation["new_tokens"],
        "wall_time_s": generation["wall_time_s"],
        "tokens_per_s": generation["tokens_per_s"],
        "max_new_tokens": scale.new_tokens,
        "batch_size": sampling.batch_size,
    }
    print(
        f"FIGURE HumanEval generation: {result['problems']} prompts, "
        f"{result['tokens_per_s']:,.0f} new tokens/s (greedy, batch 32); "
        f"pass@1 {result['pass@1']:.3f}"
    )
    return result


class SkipPart(Exception):
    """A part that cannot run here; its message is the reason written to the JSON."""


PART_FUNCTIONS: dict[str, Callable[[Scale, argparse.Namespace, dict], dict[str, Any]]] = {
    "mfu": part_mfu,
    "gpu_model": part_gpu_model,
    "pretrain": part_pretrain,
    "humaneval": part_humaneval,
}


def _write(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str))
    temporary.replace(path)


def run(argv: list[str]) -> int:
    """Run the chosen parts (``argv`` as ``sys.argv``); the exit status: 0, 1 when a part
    failed, 124 when the time limit interrupted one."""
    args = parse_args(argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    on_gpu = torch.cuda.is_available()
    scale = GPU_SCALE if on_gpu else CPU_SCALE
    summary: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/device_check.py", *map(shlex.quote, argv[1:])]),
        "machine": machine(),
        "device": scale.device,
        "parts": {},
    }
    done: dict[str, dict[str, Any]] = {}
    status = 0
    for name in args.parts:
        started = time.perf_counter()
        try:
            if not on_gpu and not args.allow_cpu:
                raise SkipPart("no CUDA device (run on a GPU machine, or pass --allow-cpu)")
            result = {"status": "done", **PART_FUNCTIONS[name](scale, args, done)}
            done[name] = result
        except SkipPart as reason:
            result = {"status": "skipped", "reason": str(reason)}
        except KeyboardInterrupt:
            result = {"status": "interrupted", "reason": "the time limit was reached"}
            status = 124
        except Exception as error:  # a failed part must not lose the others' figures
            result = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
            status = status or 1
        result["seconds"] = round(time.perf_counter() - started, 1)
        if result["status"] != "done":
            print(f"{name}: {result['status']}: {result['reason']}")
        summary["parts"][name] = result
        _write(args.out / f"{name}.json", result)
        _write(args.out / SUMMARY_FILE, summary)
        if status == 124:
            break
    print(f"results in {args.out / SUMMARY_FILE}")
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv))
