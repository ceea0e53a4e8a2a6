"""Identifier variants: a base name with a modifier before or after it (``raw_numbers``).

phi-1's exercises owed their diversity mostly to constrained function names (paper §2.2). A
small model trained on a few names per task remembers them instead of reading them from the
prompt, and then fails on any other name (chapter 5). So every identifier of a training exercise
is drawn from combinations of a base name (``numbers``, ``count_vowels``) and a modifier of the
``train`` list in ``vocab.toml`` (about sixty, before or after: thousands of names), while the
``reserved`` modifiers name only the in-family held-out exercises, which are therefore written
with function and parameter names that no training exercise uses (chapter 3).
"""

from __future__ import annotations

import functools
import random

from phi1lib.teacher.content.vocab import load_vocab

TRAIN, RESERVED = "train", "reserved"
POOLS = (TRAIN, RESERVED)


@functools.cache
def modifiers(pool: str) -> tuple[str, ...]:
    """The modifiers of a pool (``train`` or ``reserved``), from ``vocab.toml``'s ``[naming]``."""
    if pool not in POOLS:
        raise ValueError(f"unknown naming pool {pool!r}; known: {POOLS}")
    values = tuple(load_vocab()["naming"][pool])
    other = set(load_vocab()["naming"][RESERVED if pool == TRAIN else TRAIN])
    if overlap := sorted(set(values) & other):
        raise ValueError(f"vocab.toml [naming]: {overlap} are both train and reserved modifiers")
    return values


def variant(base: str, pool: str, rng: random.Random) -> str:
    """``base`` with a modifier of ``pool`` before or after it, drawn by ``rng``."""
    modifier = rng.choice(modifiers(pool))
    return f"{modifier}_{base}" if rng.random() < 0.5 else f"{base}_{modifier}"


def variants(base: str, pool: str) -> list[str]:
    """Every variant of ``base`` in ``pool`` (modifier before, then after)."""
    return [f"{m}_{base}" for m in modifiers(pool)] + [f"{base}_{m}" for m in modifiers(pool)]


def strip_modifier(name: str, bases: set[str] | frozenset[str]) -> tuple[str, str] | None:
    """``(base, pool)`` when ``name`` is a base of ``bases`` with one modifier, else ``None``."""
    for pool in POOLS:
        for modifier in modifiers(pool):
            for base in (name.removeprefix(f"{modifier}_"), name.removesuffix(f"_{modifier}")):
                if base != name and base in bases:
                    return base, pool
    return None
