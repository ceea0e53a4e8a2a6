from __future__ import annotations

import pytest

from phi1lib.profiles import ProfileError, available_profiles, load_profile, parse_overrides


def test_required_profiles_exist():
    names = available_profiles()
    for name in ("smoke", "tiny", "gpu", "phi-1-small", "phi-1"):
        assert name in names


def test_default_profile_is_tiny(monkeypatch):
    monkeypatch.delenv("PHI1_PROFILE", raising=False)
    monkeypatch.delenv("PHI1_SET", raising=False)
    assert load_profile().name == "tiny"


def test_environment_switch_selects_profile(monkeypatch):
    monkeypatch.setenv("PHI1_PROFILE", "smoke")
    assert load_profile().name == "smoke"
    assert load_profile("gpu").name == "gpu"  # an explicit name wins over the environment


def test_inheritance_and_differences():
    tiny, smoke, small, big = (
        load_profile(n, use_env=False) for n in ("tiny", "smoke", "phi-1-small", "phi-1")
    )
    # smoke inherits from tiny and changes only what it lists
    assert smoke.pretrain.lr == tiny.pretrain.lr
    assert smoke.pretrain.steps < tiny.pretrain.steps
    assert smoke.section("pretrain") != tiny.section("pretrain")
    # the paper's recipe (paper-notes section 4)
    assert small.pretrain.global_batch == 1024 and small.pretrain.lr == 1e-3
    assert small.pretrain.warmup_steps == 750 and small.pretrain.weight_decay == 0.1
    assert small.finetune.global_batch == 256 and small.finetune.lr == 1e-4
    assert big.model.preset == "phi-1" and small.model.preset == "phi-1-small"
    assert big.pretrain.steps == 24000


def test_overrides_field_by_field(monkeypatch):
    monkeypatch.setenv("PHI1_SET", "pretrain.steps=7; corpus.source=the-stack")
    profile = load_profile("tiny", overrides={"pretrain.lr": "0.5"})
    assert profile.pretrain.steps == 7 and isinstance(profile.pretrain.steps, int)
    assert profile.corpus.source == "the-stack"
    assert profile.pretrain.lr == 0.5
    assert load_profile("tiny", use_env=False).pretrain.steps != 7


def test_bad_overrides_are_named():
    with pytest.raises(ProfileError, match="no field 'pretrain.nope'"):
        load_profile("tiny", overrides={"pretrain.nope": 1}, use_env=False)
    with pytest.raises(ProfileError, match="expected int"):
        load_profile("tiny", overrides={"pretrain.steps": "many"}, use_env=False)
    with pytest.raises(ProfileError, match="unknown profile 'huge'"):
        load_profile("huge", use_env=False)
    with pytest.raises(ProfileError, match="not of the form"):
        parse_overrides("pretrain.steps")


def test_sections_are_read_only_views():
    profile = load_profile("tiny", use_env=False)
    section = profile.section("pretrain")
    section["steps"] = -1
    assert profile.pretrain.steps != -1
