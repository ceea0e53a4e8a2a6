"""The model family: phi-1's configuration, parameter counts and FLOPs per token (chapter 4)."""

from __future__ import annotations

import pytest
import torch
from transformers import PhiForCausalLM

from phi1lib.profiles import available_profiles, load_profile
from phi1lib.training.flops import flops_per_token, gpu_peak_flops, mfu
from phi1lib.training.presets import (
    PHI1_VOCAB_SIZE,
    PRESETS,
    attention_implementation,
    build_config,
    build_model,
    get_preset,
    meta_model,
    padded_vocab_size,
    parameter_counts,
)


def test_phi1_preset_is_the_released_configuration():
    config = build_config("phi-1")
    # microsoft/phi-1 config.json (as released on the hub)
    assert config.num_hidden_layers == 24
    assert config.hidden_size == 2048
    assert config.intermediate_size == 8192
    assert config.num_attention_heads == 32 and config.num_key_value_heads == 32
    assert config.hidden_size // config.num_attention_heads == 64
    assert config.rope_parameters["partial_rotary_factor"] == 0.5
    assert config.rope_parameters["rope_theta"] == 10000.0
    assert config.vocab_size == PHI1_VOCAB_SIZE == 51200
    assert config.hidden_act == "gelu_new"
    assert config.max_position_embeddings == 2048
    assert config.layer_norm_eps == 1e-5
    assert config.tie_word_embeddings is False
    assert config.qk_layernorm is False
    model = meta_model(config)
    assert model.lm_head.bias is not None  # untied head with bias
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    # the parallel block: one LayerNorm feeding attention and MLP
    layer = model.model.layers[0]
    assert isinstance(layer.input_layernorm, torch.nn.LayerNorm)
    assert not hasattr(layer, "post_attention_layernorm")
    assert layer.self_attn.rotary_ndims == 32


def test_parameter_counts_match_the_paper():
    phi1 = parameter_counts(build_config("phi-1"))
    small = parameter_counts(build_config("phi-1-small"))
    # 1.418B (Open LLM Leaderboard) and about 357M with the 51,200-token vocabulary
    assert phi1["total"] == 1_418_270_720
    assert small["total"] == pytest.approx(357e6, rel=0.002)
    assert phi1["non_embedding"] == pytest.approx(1208.5e6, rel=1e-4)
    assert small["non_embedding"] == pytest.approx(251.9e6, rel=1e-3)
    assert phi1["matmul"] == phi1["non_embedding"] + phi1["head"]


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("vocab", [512, PHI1_VOCAB_SIZE])
def test_analytic_count_equals_the_instantiated_model(name, vocab):
    config = build_config(name, vocab)
    counted = sum(p.numel() for p in meta_model(config).parameters())
    assert parameter_counts(config)["total"] == counted


def test_flops_per_token_follow_the_palm_convention():
    # PaLM's convention (chapter 4, paper §2.3's sizes): about 9.1 GFLOP per token for phi-1, about 2.3 for phi-1-small, T=2048
    assert flops_per_token(build_config("phi-1"), 2048) == pytest.approx(9.1e9, rel=0.01)
    assert flops_per_token(build_config("phi-1-small"), 2048) == pytest.approx(2.3e9, rel=0.02)
    config = build_config("smoke", 512)
    n = parameter_counts(config)["matmul"]
    assert flops_per_token(config, 128) == 6 * n + 12 * 2 * 64 * 128


def test_mfu_and_gpu_peaks():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_peak_flops("Some Unknown Card") is None
    assert mfu(1000.0, 1e9, 2e12) == pytest.approx(0.5)
    assert mfu(1000.0, 1e9, None) != mfu(1000.0, 1e9, None)  # NaN when the peak is unknown


def test_every_profile_names_a_known_preset():
    for name in available_profiles():
        profile = load_profile(name, use_env=False)
        assert get_preset(profile.model.preset)
    assert load_profile("phi-1", use_env=False).model.preset == "phi-1"
    assert load_profile("phi-1", use_env=False).model.vocab_size == PHI1_VOCAB_SIZE


def test_small_models_run_and_use_sdpa_on_cpu():
    assert attention_implementation("cpu") == "sdpa"
    config = build_config("smoke", padded_vocab_size(300))
    assert config.vocab_size == 320
    model = build_model(config, attention="sdpa", seed=3)
    assert isinstance(model, PhiForCausalLM)
    assert model.config._attn_implementation == "sdpa"
    tokens = torch.randint(0, 300, (2, 16))
    output = model(input_ids=tokens, labels=tokens)
    assert output.logits.shape == (2, 16, 320)
    # a fresh model predicts close to uniformly: loss near ln(vocab)
    assert output.loss.item() == pytest.approx(torch.log(torch.tensor(320.0)).item(), rel=0.05)
    again = build_model(config, attention="sdpa", seed=3)
    assert torch.equal(model.lm_head.weight, again.lm_head.weight)  # deterministic per seed


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        build_config("huge")


def test_the_shape_ceiling_times_every_product_of_a_step():
    from phi1lib.training.speed import matmul_shape_ceiling

    config = build_config("smoke", 512)
    bound = matmul_shape_ceiling(config, tokens=256, seconds=0.01)["shape_rate"]
    # a rate in FLOP/s: positive, and below what any CPU core of today multiplies (1 TFLOP/s)
    assert 1e6 < bound < 1e12
