"""How much arithmetic a training token costs, and how much of the machine a run uses (MFU).

Convention (PaLM, Chowdhery et al. 2022, appendix B; also nanoGPT, MPT, torchtitan): one training
token, forward and backward, costs ``6·N + 12·L·d·T`` FLOPs, where ``N`` counts the parameters that
multiply the token stream (every weight except the input-embedding lookup, the output layer
included), ``L`` is the number of layers, ``d`` the width and ``T`` the sequence length; the second
term is attention's score and value products, counted without the causal-mask saving.
Model FLOPs utilisation (MFU) divides the achieved model FLOP/s by the hardware's peak: the dense
bf16 peak of a GPU, or on a CPU the same machine's measured fp32 matrix-multiply rate.
Introduced in chapter 4 ("Pretraining phi-1-base").
"""

from __future__ import annotations

import time

import torch
from transformers import PhiConfig

from phi1lib.training.presets import parameter_counts

# Dense (not sparse) bf16/fp16 tensor-core peaks, FLOP/s, from the vendors' data sheets.
GPU_PEAK_FLOPS = {
    "A100": 312e12,
    "H100": 989e12,  # SXM; 1979 TFLOP/s is the 2:4-sparse figure
    "H200": 989e12,
    "L4": 121e12,
    "A10": 125e12,
    "T4": 65e12,
}


def flops_per_token(config: PhiConfig, seq_len: int) -> float:
    """Training FLOPs per token, ``6·N + 12·L·d·T`` (PaLM appendix B); chapter 4."""
    n = parameter_counts(config)["matmul"]
    return 6.0 * n + 12.0 * config.num_hidden_layers * config.hidden_size * seq_len


def measure_matmul_flops(size: int = 2048, seconds: float = 1.0, repeats: int = 3) -> float:
    """The best fp32 ``torch.mm`` FLOP/s of ``repeats`` timed bursts, at the current thread count.

    This is a CPU's practical ceiling for a model made of matrix multiplies; taking the best burst
    makes the figure robust to other work on a shared machine (chapter 4).
    """
    generator = torch.Generator().manual_seed(0)  # leave the global random state untouched
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    torch.mm(a, b)
    flop = 2.0 * size**3
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / repeats or count == 0:
            torch.mm(a, b)
            count += 1
        best = max(best, flop * count / elapsed)
    return best


def gpu_peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named like ``"NVIDIA H100 80GB HBM3"``, when we know it."""
    for key, peak in GPU_PEAK_FLOPS.items():
        if key in device_name:
            return peak
    return None


def device_peak_flops(device: torch.device | str) -> tuple[float | None, str]:
    """The MFU denominator for a device and where it comes from (a data sheet or a measurement)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_flops(name)
        return peak, f"{name} dense bf16 peak (data sheet)" if peak else f"{name}: peak unknown"
    threads = torch.get_num_threads()
    return measure_matmul_flops(), f"measured fp32 torch.mm, {threads} threads"


def mfu(tokens_per_second: float, per_token_flops: float, peak_flops: float | None) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak (NaN when the peak is unknown)."""
    if not peak_flops:
        return float("nan")
    return tokens_per_second * per_token_flops / peak_flops
