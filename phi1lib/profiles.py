"""Profiles: the one switch that picks the scale of every stage.

The values live in ``profiles.toml`` beside this module, so that a reader can see every knob of a
profile in one file. This module loads them, resolves inheritance (``base = ...``), applies
overrides and hands each section out as a typed, read-only settings object
(``profile.pretrain.steps``), loaded strictly by :func:`phi1lib.settings.load_settings`.
Introduced in the preface ("Profiles").
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

from phi1lib.settings import SettingsError, load_settings

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
DEFAULT_PROFILE = "tiny"
PROFILE_ENV = "PHI1_PROFILE"
OVERRIDES_ENV = "PHI1_SET"
# The fields of a profile that are not sections.
TOP_LEVEL = ("description", "hardware", "online")

# Section of profiles.toml -> "module:Class" of the frozen dataclass it loads into. The classes
# live beside the code that reads them and are imported when a section is first asked for.
SECTIONS: dict[str, str] = {
    "corpus": "phi1lib.filtering.settings:CorpusSettings",
    "dedup": "phi1lib.filtering.settings:DedupSettings",
    "teacher": "phi1lib.teacher.settings:TeacherSettings",
    "judge": "phi1lib.filtering.settings:JudgeSettings",
    "embed": "phi1lib.embeddings:EmbedSettings",
    "classifier": "phi1lib.filtering.settings:ClassifierSettings",
    "datatrove": "phi1lib.filtering.settings:DatatroveSettings",
    "textbooks": "phi1lib.synthesis.textbooks:TextbookSettings",
    "exercises": "phi1lib.synthesis.exercises:ExerciseSettings",
    "cleaning": "phi1lib.synthesis.cleaning:CleaningSettings",
    "tokenizer": "phi1lib.training.settings:TokenizerSettings",
    "model": "phi1lib.training.settings:ModelSettings",
    "pretrain": "phi1lib.training.settings:PretrainSettings",
    "finetune": "phi1lib.training.loop:TrainSettings",
    "exercise_tokens": "phi1lib.training.settings:ExerciseTokenSettings",
    "ablation": "phi1lib.training.settings:AblationSettings",
    "eval": "phi1lib.evaluation.settings:EvalSettings",
    "robustness": "phi1lib.evaluation.settings:RobustnessSettings",
    "probes": "phi1lib.analysis.probes.runner:ProbeSettings",
    "diversity": "phi1lib.analysis.measure:DiversitySettings",
    "sandbox": "phi1lib.sandbox.settings:SandboxSettings",
}


class ProfileError(ValueError):
    """A profile name or override that does not exist or does not fit."""


def settings_class(section: str) -> type:
    """The settings class of a section (imported on first use)."""
    if section not in SECTIONS:
        raise ProfileError(
            f"no settings class for section {section!r}; known: {', '.join(SECTIONS)}"
        )
    module_name, attribute = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module_name), attribute)


class Profile:
    """A fully resolved profile: ``profile.name``, its top-level fields and its sections.

    ``profile.<section>`` is the section's settings object (``profile.pretrain.steps``);
    ``profile.section(name)`` the same table as a plain dict, which stages fingerprint.
    """

    def __init__(self, name: str, values: Mapping[str, Any]):
        self._name = name
        self._values = copy.deepcopy(dict(values))
        self._loaded: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in self._values:
            raise AttributeError(f"profile {self._name!r} has no field or section {key!r}")
        value = self._values[key]
        return self.settings(key) if isinstance(value, dict) else value

    def settings(self, section: str) -> Any:
        """The settings object of one section, loaded strictly the first time it is asked for
        (``profile.settings("pretrain")`` is ``profile.pretrain``)."""
        if section not in self._loaded:
            where = f"profile {self._name!r} section [{section}]"
            try:
                values = self.section(section)
                self._loaded[section] = load_settings(settings_class(section), values, where)
            except SettingsError as error:
                raise ProfileError(f"{error} (in {PROFILES_FILE.name} or $PHI1_SET)") from None
        return self._loaded[section]

    def sections(self) -> list[str]:
        """The names of the profile's sections, in file order."""
        return [key for key, value in self._values.items() if isinstance(value, dict)]

    def section(self, key: str) -> dict[str, Any]:
        """One table as a plain dict; stages fingerprint exactly this."""
        value = self._values.get(key)
        if not isinstance(value, dict):
            raise ProfileError(f"profile {self._name!r} has no section {key!r}")
        return copy.deepcopy(value)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain dicts, ready for JSON."""
        return copy.deepcopy(self._values)

    def summary(self) -> str:
        return f"profile {self._name!r}: {self._values.get('description', '')}"

    def __repr__(self) -> str:
        return f"Profile({self._name!r})"


def _read_table(path: Path = PROFILES_FILE) -> dict[str, dict[str, Any]]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def available_profiles(path: Path = PROFILES_FILE) -> list[str]:
    """Profile names in the order the file defines them."""
    return list(_read_table(path))


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _resolve(name: str, table: dict[str, dict[str, Any]], seen: tuple[str, ...] = ()) -> dict:
    if name not in table:
        known = ", ".join(table)
        raise ProfileError(f"unknown profile {name!r}; known profiles: {known}")
    if name in seen:
        raise ProfileError(f"profile inheritance loops: {' -> '.join(seen + (name,))}")
    raw = dict(table[name])
    base_name = raw.pop("base", None)
    if base_name is None:
        return raw
    return _deep_merge(_resolve(base_name, table, seen + (name,)), raw)


def _coerce(text: str, like: Any, field: str) -> Any:
    """Turn an override given as text into the type of the value it replaces."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(like, bool):
            lowered = text.strip().lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return lowered in {"true", "1", "yes"}
        if isinstance(like, int):
            return int(float(text)) if "e" in text.lower() else int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, (list, dict)):
            return json.loads(text)
    except (ValueError, json.JSONDecodeError) as error:
        raise ProfileError(f"override {field}={text!r}: expected {type(like).__name__}") from error
    return text


def _apply_override(values: dict[str, Any], dotted: str, value: Any, profile: str) -> None:
    keys = dotted.split(".")
    node = values
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            raise ProfileError(f"profile {profile!r} has no section {'.'.join(keys[:-1])!r}")
        node = child
    leaf = keys[-1]
    if leaf not in node:
        raise ProfileError(f"profile {profile!r} has no field {dotted!r}")
    node[leaf] = _coerce(value, node[leaf], dotted)


def _check_shape(name: str, values: Mapping[str, Any]) -> None:
    """Every top-level field present, and no table without a settings class."""
    fields = {key for key, value in values.items() if not isinstance(value, dict)}
    tables = {key for key, value in values.items() if isinstance(value, dict)}
    problems = [f"missing field {key!r}" for key in TOP_LEVEL if key not in fields]
    problems += [f"unknown field {key!r}" for key in sorted(fields - set(TOP_LEVEL))]
    problems += [f"unknown section [{key}]" for key in sorted(tables - set(SECTIONS))]
    if problems:
        raise ProfileError(f"profile {name!r} in {PROFILES_FILE.name}: {'; '.join(problems)}")


def parse_overrides(text: str) -> dict[str, str]:
    """Parse ``"a.b=1; c.d=x"`` (the PHI1_SET format) into a dict."""
    overrides: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.replace("\n", ";").split(";"))):
        if "=" not in part:
            raise ProfileError(f"override {part!r} is not of the form section.field=value")
        key, value = part.split("=", 1)
        overrides[key.strip()] = value.strip()
    return overrides


def current_profile_name(name: str | None = None) -> str:
    """The profile a run uses: the argument, else $PHI1_PROFILE, else ``tiny``."""
    return name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def load_profile(
    name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    use_env: bool = True,
    path: Path = PROFILES_FILE,
) -> Profile:
    """Load a profile by name, with inheritance and overrides resolved.

    Overrides from $PHI1_SET apply first (when ``use_env``), then the ``overrides`` argument, so a
    notebook cell can still pin a field whatever the shell says.
    """
    name = current_profile_name(name) if use_env else (name or DEFAULT_PROFILE)
    values = _resolve(name, _read_table(path))
    _check_shape(name, values)
    pending: dict[str, Any] = {}
    if use_env and os.environ.get(OVERRIDES_ENV):
        pending.update(parse_overrides(os.environ[OVERRIDES_ENV]))
    pending.update(overrides or {})
    for dotted, value in pending.items():
        _apply_override(values, dotted, value, name)
    return Profile(name, values)
