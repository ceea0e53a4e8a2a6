"""Never silently weaker: results, manifests and a warning say which layers a run had.

With ``sandbox.require_full_isolation`` a weaker machine refuses instead of running.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from phi1lib.profiles import load_profile
from phi1lib.sandbox import SandboxPool, layers
from phi1lib.sandbox.client import ZygoteProcess

FULL = list(layers.FULL_ISOLATION)


def test_full_isolation_lacks_nothing_and_a_gap_is_named_with_what_it_exposes():
    assert layers.missing_layers(FULL) == []
    assert layers.describe_missing(FULL).startswith("The sandbox has every layer")
    weaker = [name for name in FULL if name not in ("private-filesystem", "memory-cgroup")]
    assert layers.missing_layers(weaker) == ["private-filesystem", "memory-cgroup"]
    text = layers.describe_missing(weaker)
    assert "missing: private-filesystem, memory-cgroup" in text
    assert layers.EXPOSURES["private-filesystem"] in text
    assert "require_full_isolation" in text
    # An unprivileged user's user namespace stands in for the fresh uid.
    unprivileged = [n for n in FULL if n != "separate-uid"] + ["user-namespace"]
    assert layers.missing_layers(unprivileged) == []


def test_a_weaker_pool_warns_once_and_its_results_record_the_layers(monkeypatch):
    monkeypatch.setattr(layers, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with SandboxPool(1, namespaces=False, cgroup=False) as pool:
            result = pool.run("assert True")
            ZygoteProcess(namespaces=False, cgroup=False).close()  # a second weak zygote
    weak = [w for w in caught if issubclass(w.category, layers.SandboxIsolationWarning)]
    assert len(weak) == 1
    message = str(weak[0].message)
    assert "private-filesystem" in message and "memory-cgroup" in message
    assert result.passed
    assert "private-filesystem" not in result.isolation
    assert "memory-cgroup" not in result.isolation
    assert set(layers.missing_layers(result.isolation)) >= {"private-filesystem", "memory-cgroup"}


def test_the_profile_setting_refuses_a_weaker_machine(monkeypatch):
    weaker = [name for name in FULL if name != "network-namespace"]
    monkeypatch.setattr(layers, "machine_layers", lambda: weaker)
    with pytest.raises(layers.IsolationRefused, match="network-namespace"):
        layers.require_isolation(SimpleNamespace(require_full_isolation=True))
    record = layers.require_isolation(SimpleNamespace(require_full_isolation=False))
    assert record == {"layers": weaker, "missing": ["network-namespace"], "full": False}
    monkeypatch.setattr(layers, "machine_layers", lambda: FULL)
    assert layers.require_isolation(SimpleNamespace(require_full_isolation=True))["full"]


def test_the_default_profile_warns_instead_of_refusing():
    assert load_profile("tiny", use_env=False).sandbox.require_full_isolation is False
    forced = load_profile("tiny", {"sandbox.require_full_isolation": True}, use_env=False)
    assert forced.sandbox.require_full_isolation is True


def test_the_chapter_line_reads_a_manifest_record():
    full = layers.isolation_report({"layers": FULL})
    assert full.endswith("(full isolation)") and "private-filesystem" in full
    weak = layers.isolation_report({"layers": ["pid-namespace", "python-guard"]})
    assert weak.splitlines()[0] == "sandbox layers: pid-namespace, python-guard"
    assert "missing: network-namespace" in weak


def test_this_machine_layers_match_a_run_result():
    with SandboxPool(1) as pool:
        assert layers.machine_layers() == list(pool.run("pass").isolation)
