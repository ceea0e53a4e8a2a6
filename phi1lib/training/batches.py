"""Which sequences each process reads at each step: the data position, as a pure function of the step.

A global batch of ``G`` sequences is split over ``W`` processes and ``A`` gradient-accumulation
micro-steps of ``m`` sequences each (``G = W·A·m``). The sequences are visited in a fresh random
order every epoch; global step ``s`` takes positions ``s·G … s·G+G-1`` of that endless shuffled
stream. Because the order depends only on the seed and the step, a resumed run needs to remember
nothing but its step to read exactly what the uninterrupted run would have read, and a run on
two processes reads, between them, exactly the sequences a run on one process reads.
Introduced in chapter 4 ("The training loop").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """The global batch of every step, split by process and micro-step (chapter 4)."""

    num_sequences: int
    global_batch: int
    micro_batch: int
    world_size: int = 1
    seed: int = 0
    _orders: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.num_sequences < 1:
            raise ValueError("there are no sequences to train on")
        per_pass = self.micro_batch * self.world_size
        if self.global_batch % per_pass:
            raise ValueError(
                f"global batch {self.global_batch} is not a multiple of micro batch "
                f"{self.micro_batch} x {self.world_size} processes"
            )

    @property
    def accumulation(self) -> int:
        """Micro-steps per optimizer step on each process."""
        return self.global_batch // (self.micro_batch * self.world_size)

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if len(self._orders) > 2:
                self._orders.clear()
            rng = np.random.default_rng([self.seed, epoch])
            self._orders[epoch] = rng.permutation(self.num_sequences)
        return self._orders[epoch]

    def global_indices(self, step: int) -> np.ndarray:
        """The ``G`` sequence indices of global step ``step`` (the same on every process)."""
        positions = step * self.global_batch + np.arange(self.global_batch)
        epochs, offsets = np.divmod(positions, self.num_sequences)
        indices = np.empty(self.global_batch, dtype=np.int64)
        for epoch in np.unique(epochs):
            chosen = epochs == epoch
            indices[chosen] = self._order(int(epoch))[offsets[chosen]]
        return indices

    def micro_indices(self, step: int, rank: int, micro: int) -> np.ndarray:
        """The ``m`` sequences process ``rank`` reads at micro-step ``micro`` of step ``step``."""
        if not 0 <= rank < self.world_size or not 0 <= micro < self.accumulation:
            raise IndexError(f"no micro-batch for rank {rank}, micro-step {micro}")
        start = (micro * self.world_size + rank) * self.micro_batch
        return self.global_indices(step)[start : start + self.micro_batch]

    def epochs_at(self, step: int) -> float:
        """Passes over the data completed after ``step`` steps."""
        return step * self.global_batch / self.num_sequences
