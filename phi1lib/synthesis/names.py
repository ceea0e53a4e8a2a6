"""Identifier variants: a base name with a modifier before or after it (``raw_numbers``).

phi-1's exercises owed their diversity mostly to constrained function names (paper §2.2). A
small model trained on a few names per task remembers them instead of reading them from the
prompt, and then fails on any other name (chapter 5). So every identifier of a training exercise
is drawn from combinations of a base name (``numbers``, ``count_vowels``) with one of the
curriculum's modifiers (``[naming]`` of ``curriculum/exercises.toml``; seventy, before or after:
thousands of names). A share of the combinations, chosen by a hash of (modifier, base,
position), is *reserved*: no training exercise uses them, and they name the in-family held-out
exercises, whose function and parameter names are therefore identifiers that training never
used, made of pieces it did (chapter 3). The prompts are built with this scheme and the offline
teacher reads it, so it lives with synthesis, beside the curriculum.
"""

from __future__ import annotations

import functools
import hashlib
import random

from phi1lib.synthesis.curriculum import load_curriculum

TRAIN, RESERVED = "train", "reserved"
POOLS = (TRAIN, RESERVED)


def modifiers() -> tuple[str, ...]:
    """The curriculum's modifiers (distinct identifiers, checked by its loader)."""
    return load_curriculum().modifiers


def pool_of(modifier: str, base: str, before: bool) -> str:
    """``reserved`` for the curriculum's share of combinations the hash reserves, else ``train``."""
    digest = hashlib.sha256(f"{modifier}|{base}|{before}".encode()).digest()
    share = load_curriculum().reserved_share
    return RESERVED if int.from_bytes(digest[:8], "big") / 2**64 < share else TRAIN


def _join(modifier: str, base: str, before: bool) -> str:
    return f"{modifier}_{base}" if before else f"{base}_{modifier}"


@functools.cache
def variants(base: str, pool: str) -> tuple[str, ...]:
    """Every variant of ``base`` in ``pool`` (modifiers before, then after)."""
    if pool not in POOLS:
        raise ValueError(f"unknown naming pool {pool!r}; known: {POOLS}")
    return tuple(
        _join(m, base, before)
        for before in (True, False)
        for m in modifiers()
        if pool_of(m, base, before) == pool
    )


def variant(base: str, pool: str, rng: random.Random) -> str:
    """A variant of ``base`` in ``pool``, drawn by ``rng``."""
    return rng.choice(variants(base, pool))


def strip_modifier(name: str, bases: set[str] | frozenset[str]) -> tuple[str, str] | None:
    """``(base, pool)`` when ``name`` is a base of ``bases`` with one modifier, else ``None``."""
    for modifier in modifiers():
        for base, before in (
            (name.removeprefix(f"{modifier}_"), True),
            (name.removesuffix(f"_{modifier}"), False),
        ):
            if base != name and base in bases:
                return base, pool_of(modifier, base, before)
    return None
