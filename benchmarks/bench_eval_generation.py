"""Generation and grading speed of chapter 6's harness on a CPU; prints rates and a ratio.

Builds a randomly initialised model of the ``tiny`` preset (the size chapter 6 evaluates at the
default profile) with a byte-level BPE tokenizer trained on HumanEval, then, in one run:

* generates greedy completions of ``--problems`` HumanEval prompts with one CPU thread and with
  torch's default number of threads, and prints tokens per second for each and their ratio
  (the reason for the profile field ``eval.cpu_threads``);
* grades all 164 HumanEval reference solutions through the sandbox pool and prints programs
  per second.

A random model never emits a stop sequence, so every completion runs to ``--max-new-tokens``:
this is the worst case for generation time.

    .venv/bin/python benchmarks/bench_eval_generation.py --problems 32
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from transformers import PhiForCausalLM

from phi1lib.evaluation.generation import (
    GenerationStats,
    SamplingSettings,
    generate_completions,
    load_model,
)
from phi1lib.evaluation.harness import evaluate_canonical
from phi1lib.evaluation.humaneval import load_humaneval
from phi1lib.training.presets import build_config, padded_vocab_size
from phi1lib.training.tokenizer import train_bpe_tokenizer


def _tiny_model(folder: str, texts: list[str]) -> None:
    tokenizer = train_bpe_tokenizer(texts, 2048)
    tokenizer.save_pretrained(folder)
    config = build_config(
        "tiny",
        padded_vocab_size(len(tokenizer)),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    PhiForCausalLM(config).save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    problems = load_humaneval()
    with tempfile.TemporaryDirectory() as folder:
        _tiny_model(folder, [p.reference_code() for p in problems])
        model, tokenizer = load_model(folder, device="cpu")
    parameters = sum(p.numel() for p in model.parameters())
    prompts = [p.prompt for p in problems[: args.problems]]
    rates = {}
    for threads in (1, 0):
        stats = GenerationStats()
        settings = SamplingSettings(
            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, cpu_threads=threads
        )
        generate_completions(model, tokenizer, prompts, ["\ndef "], settings, progress=False,
                             stats=stats)  # fmt: skip
        rates[threads] = stats.tokens_per_s

    started = time.perf_counter()
    canonical = evaluate_canonical("humaneval", progress=False)
    grading_s = time.perf_counter() - started

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"model: tiny preset, {parameters:,} parameters, random weights")
    print(f"generation, 1 thread: {rates[1]:,.0f} tokens/s")
    print(
        f"generation, torch default ({torch.get_num_threads()} threads): {rates[0]:,.0f} tokens/s"
    )
    print(f"ratio one thread / default: {rates[1] / rates[0]:.1f}x")
    print(f"grading: 164 HumanEval references in {grading_s:.1f} s = {164 / grading_s:.0f} programs/s"
          f", pass@1 {canonical.summary['pass@1']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
