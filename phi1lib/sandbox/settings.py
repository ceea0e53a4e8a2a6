"""The profile's ``[sandbox]`` section: whether a weaker sandbox may run at all (chapter 2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxSettings:
    """``require_full_isolation``: refuse to execute any program where the machine allows fewer
    layers than full isolation (see ``phi1lib.sandbox.layers`` for the default chosen)."""

    require_full_isolation: bool
