"""Training speed against the book's targets, listed below (chapter 4).

On a CPU, in one run:

- the machine's fp32 matrix-multiply rate (a large ``torch.mm`` at the same thread count),
  measured before and after the models and the best burst kept: the ceiling of MFU on a CPU;
- the ``tiny`` profile's preset under ``torch.compile`` (its steady-state rate; the profile
  itself trains eager, because compiling costs more than a one-minute run saves): model FLOP/s
  by the PaLM convention (6·N + 12·L·d·T per token, N without the input embedding) and its
  ratio to the ceiling (target >= 60%);
- the same preset without ``torch.compile`` (what compiling buys);
- the ceiling argument: the rate of the preset's own matrix products at its shapes (forward
  and backward, FLOP-weighted) against the large product's, the most MFU that shape can reach,
  and the same for two wider members of the family;
- a preset of about 1M non-embedding parameters with a vocabulary of at most 4k (target
  >= 5,000 tokens/s on 2 cores).

On a CUDA GPU (skipped on a CPU): phi-1-small and phi-1 at T=2048 in bf16 with FlashAttention-2
when installed (target >= 50% MFU of the card's dense bf16 peak), and a 10-20M-parameter model
(target >= 300k tokens/s).

The machine may be shared: the ratios are measured within one run, step times are medians, and
the load average is printed so a reader can judge the conditions.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_training.py [--gpu-only | --cpu-only]
"""

from __future__ import annotations

import argparse
import os

import torch

from phi1lib.profiles import load_profile
from phi1lib.training.flops import device_peak_flops, measure_matmul_flops
from phi1lib.training.presets import (
    ModelPreset,
    attention_implementation,
    build_config,
    get_preset,
    padded_vocab_size,
    parameter_counts,
)
from phi1lib.training.speed import matmul_shape_ceiling, measure_training_speed

# Wider members of the family at the tiny profile's batch shape, for the ceiling argument.
WIDER = (
    ("d256", ModelPreset(layers=4, hidden=256, mlp=1024, heads=4, max_positions=512)),
    ("d384", ModelPreset(layers=4, hidden=384, mlp=1536, heads=6, max_positions=512)),
)


def cpu_benchmark() -> None:
    tiny = load_profile("tiny", use_env=False)
    threads = torch.get_num_threads()
    print(f"CPU, {threads} threads; load average before: {os.getloadavg()}")
    before = measure_matmul_flops(seconds=3.0)
    print(f"fp32 torch.mm (2048x2048): {before / 1e9:.1f} GFLOP/s")

    vocab = padded_vocab_size(tiny.tokenizer.vocab_size)
    config = build_config(tiny.model.preset, vocab)
    counts = parameter_counts(config)
    shape = {"seq_len": tiny.pretrain.seq_len, "micro_batch": tiny.pretrain.micro_batch}
    compiled = measure_training_speed(config, compile=True, steps=12, **shape)
    eager = measure_training_speed(config, compile=False, steps=6, **shape)

    after = measure_matmul_flops(seconds=3.0)
    peak = max(before, after)
    print(f"fp32 torch.mm again: {after / 1e9:.1f} GFLOP/s; ceiling used: {peak / 1e9:.1f}")
    print(
        f"\ntiny preset {tiny.model.preset!r}: {counts['non_embedding'] / 1e6:.2f}M non-embedding "
        f"parameters, vocabulary {vocab}, T={shape['seq_len']}, micro-batch {shape['micro_batch']}"
    )
    for label, result in (("torch.compile", compiled), ("eager", eager)):
        print(
            f"  {label:13s} {result.tokens_per_s:8,.0f} tokens/s  "
            f"{result.model_flops_per_s / 1e9:6.1f} GFLOP/s  "
            f"= {result.model_flops_per_s / peak:.0%} of the matmul ceiling "
            f"(warm-up {result.warmup_s:.0f} s)"
        )
    print(f"  compile speed-up: {compiled.tokens_per_s / eager.tokens_per_s:.2f}x")
    ratio = compiled.model_flops_per_s / peak
    print(f"\nFIGURE model FLOP/s / matmul FLOP/s (tiny, compiled): {ratio:.0%} (target >= 60%)")
    tokens = shape["seq_len"] * shape["micro_batch"]
    for label, preset in (("tiny", get_preset(tiny.model.preset)), *WIDER):
        wide = build_config(preset, vocab)
        bound = matmul_shape_ceiling(wide, tokens)["shape_rate"]
        print(
            f"FIGURE ceiling for the {label} shape (d={preset.hidden}, L={preset.layers}): its own "
            f"matrix products run at {bound / 1e9:.1f} GFLOP/s = {bound / peak:.0%} of the "
            "large-product rate, the most MFU a model of this shape can reach here"
        )

    small = ModelPreset(layers=6, hidden=128, mlp=512, heads=2, max_positions=512)
    small_config = build_config(small, 2048)
    small_counts = parameter_counts(small_config)
    result = compiled
    if get_preset(tiny.model.preset) != small or vocab != 2048:
        result = measure_training_speed(small_config, compile=True, steps=12, **shape)
    print(
        f"FIGURE tokens/s at {small_counts['non_embedding'] / 1e6:.2f}M non-embedding parameters, "
        f"vocabulary 2048: {result.tokens_per_s:,.0f} (target >= 5,000)"
    )
    print(f"load average after: {os.getloadavg()}")


GPU_CASES = (
    # (label, preset, micro-batch, target)
    ("phi-1-small", get_preset("phi-1-small"), 16, "MFU >= 50%"),
    ("phi-1", get_preset("phi-1"), 8, "MFU >= 50%"),
    ("15M", ModelPreset(layers=6, hidden=384, mlp=1536, heads=6), 64, ">= 300k tokens/s"),
)


def gpu_benchmark() -> None:
    if not torch.cuda.is_available():
        print("GPU benchmark skipped: no CUDA device (run it on a GPU machine)")
        return
    peak, source = device_peak_flops("cuda")
    attention = attention_implementation("cuda")
    print(f"GPU: {source}; attention: {attention}")
    for label, preset, micro, target in GPU_CASES:
        config = build_config(preset, 51200)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            result = measure_training_speed(
                config,
                seq_len=2048,
                micro_batch=micro,
                compile=True,
                attention=attention,
                device="cuda",
            )
        mfu = result.model_flops_per_s / peak if peak else float("nan")
        print(
            f"FIGURE {label}: {result.tokens_per_s:,.0f} tokens/s, "
            f"{result.model_flops_per_s / 1e12:.1f} TFLOP/s, MFU {mfu:.0%} ({target})"
        )
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cpu-only", action="store_true")
    group.add_argument("--gpu-only", action="store_true")
    args = parser.parse_args()
    if not args.gpu_only:
        cpu_benchmark()
    if not args.cpu_only:
        gpu_benchmark()


if __name__ == "__main__":
    main()
