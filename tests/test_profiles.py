from __future__ import annotations

import dataclasses

import pytest

from phi1lib.profiles import (
    PROFILES_FILE,
    SECTIONS,
    TOP_LEVEL,
    ProfileError,
    available_profiles,
    load_profile,
    parse_overrides,
    settings_class,
)
from phi1lib.settings import field_names


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
    # the paper's recipe (paper §2.3)
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


def test_settings_are_typed_and_frozen():
    profile = load_profile("tiny", use_env=False)
    settings = profile.pretrain
    assert (
        type(settings).__name__ == "PretrainSettings" and profile.settings("pretrain") is settings
    )
    assert isinstance(profile.eval.timeout_s, float) and isinstance(
        profile.corpus.hub_sources, list
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.steps = 1
    with pytest.raises(AttributeError, match="no field or section 'nope'"):
        _ = profile.nope


@pytest.mark.parametrize("name", available_profiles())
def test_every_toml_key_maps_to_a_field_and_every_field_to_a_key(name):
    """The TOML is the only place a value is written: each section of each profile holds exactly
    the fields of its settings class, with values of their types."""
    profile = load_profile(name, use_env=False)
    assert set(profile.sections()) == set(SECTIONS), "every section has a class, and back"
    for section in profile.sections():
        cls = settings_class(section)
        keys = set(profile.section(section))
        fields = set(field_names(cls))
        assert keys == fields, (
            f"[{section}] keys without a field: {keys - fields}; fields without a key: {fields - keys}"
        )
        loaded = profile.settings(section)
        assert {f: getattr(loaded, f) for f in fields} == profile.section(section)
        assert not [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING], f"{cls.__name__} holds defaults"  # fmt: skip
    assert {key for key, value in profile.to_dict().items() if not isinstance(value, dict)} == set(
        TOP_LEVEL
    )


def test_a_section_that_does_not_fit_is_named(tmp_path):
    text = PROFILES_FILE.read_text()
    extra = tmp_path / "extra.toml"
    extra.write_text(text.replace("[tiny.dedup]\n", "[tiny.dedup]\nnearly = true\n", 1))
    with pytest.raises(ProfileError, match=r"'tiny' section \[dedup\].*unknown field\(s\) nearly"):
        load_profile("tiny", use_env=False, path=extra).settings("dedup")
    missing = tmp_path / "missing.toml"
    missing.write_text(text.replace("num_perm = 256\n", "", 1))
    with pytest.raises(ProfileError, match=r"missing field\(s\) num_perm"):
        load_profile("smoke", use_env=False, path=missing).settings("dedup")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text.replace("num_perm = 256\n", 'num_perm = "many"\n', 1))
    with pytest.raises(ProfileError, match=r"\[dedup\]\.num_perm = 'many': expected int"):
        load_profile("tiny", use_env=False, path=wrong).settings("dedup")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(text + "\n[tiny.extras]\nx = 1\n")
    with pytest.raises(ProfileError, match=r"unknown section \[extras\]"):
        load_profile("tiny", use_env=False, path=unknown)
