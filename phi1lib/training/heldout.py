"""Held-out loss: the average next-token loss on sequences the model never trained on.

At the book's small scales held-out loss is the most sensitive signal of what a dataset taught:
it moves long before a pass rate does. We compute it on the held-out slice of CodeTextbook
(documents chosen by a hash of their text, see ``packing.heldout_document``) and on the packed
held-out exercises. Introduced in chapter 4 ("Pretraining phi-1-base").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from phi1lib.training.packing import PackedSequences


@torch.no_grad()
def loss_sums(
    model: nn.Module,
    data: PackedSequences,
    indices: Sequence[int],
    *,
    batch_size: int,
    device: torch.device | str,
) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) over ``indices``, and how many tokens it covers.

    Returning sums, not a mean, lets processes that each scored a share add their results.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(indices), batch_size):
        chosen = indices[start : start + batch_size]
        input_ids, labels = data.batch(chosen)
        logits = model(input_ids=input_ids.to(device), use_cache=False).logits.float()
        targets = labels[:, 1:].to(logits.device)
        total += nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        ).item()
        count += int((targets != -100).sum())
    model.train(was_training)
    return total, count


@torch.no_grad()
def sequence_losses(
    model: nn.Module,
    data: PackedSequences,
    indices: Sequence[int],
    *,
    batch_size: int,
    device: torch.device | str,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed next-token loss (nats) and scored tokens of each sequence in ``indices``.

    Per sequence, not one total, so that the ablation can resample held-out sequences the way
    it resamples problems (chapter 4).
    """
    was_training = model.training
    model.eval()
    nats, tokens = [], []
    for start in range(0, len(indices), batch_size):
        chosen = indices[start : start + batch_size]
        input_ids, labels = data.batch(chosen)
        logits = model(input_ids=input_ids.to(device), use_cache=False).logits.float()
        targets = labels[:, 1:].to(logits.device)
        losses = nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), targets, ignore_index=-100, reduction="none"
        )
        nats.extend(losses.sum(dim=1).tolist())
        tokens.extend((targets != -100).sum(dim=1).tolist())
    model.train(was_training)
    return np.asarray(nats, dtype=np.float64), np.asarray(tokens, dtype=np.int64)


def spread_indices(total: int, count: int | None) -> list[int]:
    """``count`` sequence indices spread evenly over ``total`` (all of them when count is None).

    Held-out files hold their documents in corpus order (CodeTextbook: code first, textbooks
    last), so a sample must be spread over the whole file, not taken from its start.
    """
    if count is None or count >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, count).round()})


def heldout_loss(
    model: nn.Module,
    data: PackedSequences,
    *,
    max_sequences: int | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> float:
    """Mean held-out loss (nats per token) over up to ``max_sequences`` sequences spread evenly
    over the held-out file (chapter 4)."""
    indices = spread_indices(len(data), max_sequences)
    total, tokens = loss_sums(model, data, indices, batch_size=batch_size, device=device)
    if tokens == 0:
        raise ValueError(f"{data.path}: no tokens to score")
    return total / tokens


def bits_per_byte(loss_nats: float, tokens: int, text_bytes: int) -> float:
    """Loss in bits per byte of text: comparable across tokenizers with different vocabularies."""
    return loss_nats * tokens / (text_bytes * math.log(2))
