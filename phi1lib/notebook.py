"""What every chapter's first cells call: pick the profile, print where the chapter runs.

A reader opening a chapter in Colab or a cloud Jupyter gets the same first lines as the book's
own build: the package version, the profile and its description, and the device.
Introduced in the preface ("Running a chapter").
"""

from __future__ import annotations

import os
import platform

from phi1lib import __version__
from phi1lib.profiles import PROFILE_ENV, Profile, load_profile


def describe_device() -> str:
    """A one-line description of the accelerator (or CPU) this process would train on."""
    import torch

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"cuda: {torch.cuda.device_count()} x {', '.join(sorted(names))}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def setup(profile: str | None = None, overrides: dict | None = None) -> Profile:
    """Load the chapter's profile (parameters cell, else $PHI1_PROFILE, else tiny) and report it.

    The chosen name is also exported to $PHI1_PROFILE so that anything the chapter starts
    (a teacher server, a training subprocess) runs at the same scale.
    """
    loaded = load_profile(profile, overrides)
    os.environ[PROFILE_ENV] = loaded.name
    print(f"phi1lib {__version__} | {loaded.summary()}")
    print(f"device: {describe_device()}")
    return loaded
