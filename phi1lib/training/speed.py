"""Measuring training speed in isolation: tokens per second and model FLOP/s of one configuration.

The training loop logs its own speed, but choosing a preset (chapter 4's sweep) or checking a
speed target (``benchmarks/bench_training.py``) needs a measurement that is quick, repeatable and
independent of the data: random token ids, the real model, the real optimizer, the same
micro-batch, timed after warm-up (which includes ``torch.compile``'s compilation).
Introduced in chapter 4 ("Choosing the tiny preset").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import PhiConfig

from phi1lib.training.flops import flops_per_token
from phi1lib.training.presets import build_model, parameter_counts


@dataclass(frozen=True)
class SpeedResult:
    """One configuration's measured training speed."""

    tokens_per_s: float
    model_flops_per_s: float
    flops_per_token: float
    warmup_s: float
    step_s: float
    best_step_s: float
    non_embedding_params: int

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def measure_training_speed(
    config: PhiConfig,
    *,
    seq_len: int,
    micro_batch: int,
    compile: bool,
    steps: int = 8,
    warmup_steps: int = 3,
    attention: str = "sdpa",
    device: str = "cpu",
) -> SpeedResult:
    """Time ``steps`` forward-backward-AdamW steps on random tokens after ``warmup_steps``.

    The model is called exactly as the training loop calls it, so a compiled graph is shared with
    the loop through ``torch.compile``'s cache. Speeds are computed from the median step time;
    the fastest step is kept too, the better estimate of an unshared machine. Chapter 4.
    """
    model = build_model(PhiConfig.from_dict(config.to_dict()), attention=attention).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    forward = torch.compile(model) if compile else model
    tokens = torch.randint(0, config.vocab_size, (micro_batch, seq_len), device=device)
    divisor = torch.tensor(float(micro_batch * (seq_len - 1)), device=device)

    def step() -> None:
        loss = forward(
            input_ids=tokens, labels=tokens, num_items_in_batch=divisor, use_cache=False
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device != "cpu":
            torch.cuda.synchronize()

    start = time.perf_counter()
    for _ in range(warmup_steps):
        step()
    warmup = time.perf_counter() - start
    times = []
    for _ in range(steps):
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    step_s = sorted(times)[len(times) // 2]
    per_token = flops_per_token(config, seq_len)
    tokens_per_s = micro_batch * seq_len / step_s
    return SpeedResult(
        tokens_per_s=tokens_per_s,
        model_flops_per_s=tokens_per_s * per_token,
        flops_per_token=per_token,
        warmup_s=warmup,
        step_s=step_s,
        best_step_s=min(times),
        non_embedding_params=parameter_counts(config)["non_embedding"],
    )


def _mm_rate(m: int, k: int, n: int, seconds: float) -> float:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        torch.mm(a, b)
        count += 1
    return 2.0 * m * k * n * count / elapsed


def matmul_shape_ceiling(config: PhiConfig, tokens: int, seconds: float = 0.3) -> dict[str, float]:
    """The fp32 ``torch.mm`` rate at the shapes one training step of ``config`` multiplies.

    Every matrix product of a layer (q, k, v, output, the two MLP products) and of the output
    layer, forward and backward (gradient of the input and of the weight), each timed alone on
    ``tokens`` rows and weighted by its FLOPs. A model made of nothing but these products could
    run no faster than this rate, so its ratio to the large square product's rate bounds the MFU
    a model of this shape can reach on this CPU (the elementwise work, normalisation, softmax
    and the optimizer only lower it). Chapter 4 ("Choosing the tiny preset").
    """
    d, m, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    layer = [(d, d)] * 4 + [(d, m), (m, d)]
    weights = [(shape, config.num_hidden_layers) for shape in layer] + [((d, vocab), 1)]
    total_flops = total_seconds = 0.0
    for (a, b), repeat in weights:
        for shape in ((tokens, a, b), (tokens, b, a), (a, tokens, b)):  # forward, dX, dW
            flops = 2.0 * shape[0] * shape[1] * shape[2] * repeat
            total_flops += flops
            total_seconds += flops / _mm_rate(*shape, seconds)
    return {"shape_rate": total_flops / total_seconds}
