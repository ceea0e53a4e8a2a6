"""The model family: phi-1's architecture at every scale, on ``transformers``' ``PhiForCausalLM``.

phi-1 is a plain decoder-only transformer in the CodeGen layout (paper §2.3): one LayerNorm per
block feeding attention and MLP *in parallel*, rotary position embeddings on half of each head,
biases everywhere, a GELU MLP four times wider than the model, and an output layer that is not
tied to the input embedding. ``transformers`` implements exactly this as ``PhiForCausalLM``; a
preset only chooses the sizes. The ``phi-1`` preset equals the released microsoft/phi-1
configuration; the small presets keep every architectural choice and shrink the sizes so that a
2-core CPU can train them in minutes. Introduced in chapter 4 ("The architecture").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import PhiConfig, PhiForCausalLM


@dataclass(frozen=True)
class ModelPreset:
    """The sizes of one member of the family; everything else is phi-1's design."""

    layers: int
    hidden: int
    mlp: int
    heads: int
    partial_rotary_factor: float = 0.5
    max_positions: int = 2048

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, ModelPreset] = {
    # The released microsoft/phi-1 configuration (paper §2.3; the model's config.json on the hub).
    "phi-1": ModelPreset(layers=24, hidden=2048, mlp=8192, heads=32),
    # The paper's 350M model (paper §2.3).
    "phi-1-small": ModelPreset(layers=20, hidden=1024, mlp=4096, heads=16),
    # One modern GPU for a few hours: a GPT-2-small-sized member of the family.
    "gpu": ModelPreset(layers=12, hidden=768, mlp=3072, heads=12),
    # A 2-core CPU in minutes: chosen by benchmarks/bench_training_sweep.py (chapter 4).
    "tiny": ModelPreset(layers=4, hidden=128, mlp=512, heads=2, max_positions=512),
    # The test suite: the smallest model that still has every part.
    "smoke": ModelPreset(layers=2, hidden=64, mlp=256, heads=2, max_positions=512),
}

PHI1_VOCAB_SIZE = 51_200  # the embedding rows of microsoft/phi-1 (its config.json)


def get_preset(name: str) -> ModelPreset:
    """The preset called ``name``, with a clear error for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}"
        ) from None


def padded_vocab_size(tokenizer_size: int, multiple: int = 64) -> int:
    """Embedding rows for a tokenizer: rounded up to a multiple of 64, as phi-1 pads 50k to 51,200.

    Round sizes keep the output layer's matrix multiply on fast kernel paths (chapter 4).
    """
    return -(-tokenizer_size // multiple) * multiple


def build_config(
    preset: ModelPreset | str,
    vocab_size: int = PHI1_VOCAB_SIZE,
    *,
    dropout: float = 0.0,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> PhiConfig:
    """A ``PhiConfig`` for a preset; ``dropout`` sets the attention, residual and embedding rates.

    The paper trained with attention and residual dropout 0.1 (paper §2.3); the released
    configuration sets them to 0 for inference. Chapter 4.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if preset.hidden % preset.heads:
        raise ValueError(f"hidden size {preset.hidden} is not divisible by {preset.heads} heads")
    return PhiConfig(
        vocab_size=vocab_size,
        hidden_size=preset.hidden,
        intermediate_size=preset.mlp,
        num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads,
        num_key_value_heads=preset.heads,
        hidden_act="gelu_new",
        max_position_embeddings=preset.max_positions,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": preset.partial_rotary_factor,
        },
        layer_norm_eps=1e-5,
        initializer_range=0.02,
        tie_word_embeddings=False,
        attention_dropout=dropout,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        qk_layernorm=False,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


def parameter_counts(config: PhiConfig) -> dict[str, int]:
    """Parameters of a ``PhiForCausalLM``, counted from the configuration (no weights allocated).

    ``non_embedding`` is the transformer blocks and the final LayerNorm (Kaplan et al.'s
    convention); ``matmul`` adds the output layer, which takes part in a matrix multiply with
    every token, and is the ``N`` of the FLOP count (``phi1lib.training.flops``). Chapter 4.
    """
    d, m, layers, vocab = (
        config.hidden_size,
        config.intermediate_size,
        config.num_hidden_layers,
        config.vocab_size,
    )
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    attention = (d * d + d) * 2 + (d * kv + kv) * 2  # q and dense; k and v
    mlp = (d * m + m) + (m * d + d)
    block = attention + mlp + 2 * d  # one LayerNorm per block (the parallel layout)
    non_embedding = layers * block + 2 * d  # + the final LayerNorm
    embedding = vocab * d
    head = d * vocab + vocab  # untied, with bias
    return {
        "total": embedding + non_embedding + head,
        "embedding": embedding,
        "non_embedding": non_embedding,
        "head": head,
        "matmul": non_embedding + head,
    }


def meta_model(config: PhiConfig) -> PhiForCausalLM:
    """The model on PyTorch's ``meta`` device: every shape, no memory (used to check counts)."""
    with torch.device("meta"):
        return PhiForCausalLM(config)


def attention_implementation(device: torch.device | str) -> str:
    """FlashAttention-2 on CUDA when ``flash-attn`` is installed, else PyTorch's SDPA (chapter 4)."""
    from transformers.utils import is_flash_attn_2_available

    if torch.device(device).type == "cuda" and is_flash_attn_2_available():
        return "flash_attention_2"
    return "sdpa"


def build_model(config: PhiConfig, *, attention: str = "sdpa", seed: int = 0) -> PhiForCausalLM:
    """A freshly initialised model (deterministic for a seed) using the given attention kernel."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attention)
