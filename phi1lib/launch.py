"""Which process of a multi-process launch this is (``torchrun``, ``accelerate launch``).

The launchers describe the launch in environment variables; one process started by hand is a
launch of one. The pipeline uses this to let every process of a launch train a stage together
while only the first one stores it. Introduced in chapter 4 ("Checkpoints, exact resume, and
many GPUs").
"""

from __future__ import annotations

import os


def world_size() -> int:
    """How many processes the launch started (1 outside a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's number in the launch, from 0."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """The process that writes what the launch produces once (the run store, printed results)."""
    return rank() == 0


def wait_for_everyone() -> None:
    """Block until every process of the launch got here (nothing to wait for alone)."""
    if world_size() == 1:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()
