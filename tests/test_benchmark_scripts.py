"""Every benchmark script at least imports: a renamed function must not leave one broken."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_imports_and_runs_only_as_a_script(script, monkeypatch):
    name = f"benchmark_script_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)  # every script guards its work with __main__
    assert 'if __name__ == "__main__":' in script.read_text(), f"{script.name} runs on import"
    assert module.__doc__ and module.__doc__.strip(), f"{script.name} has no docstring"


def test_there_are_scripts_to_check():
    assert len(SCRIPTS) >= 5
