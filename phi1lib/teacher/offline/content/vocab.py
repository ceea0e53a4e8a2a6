"""The values that fill a textbook template's ``${slots}``: themes of words, numbers and names.

One template such as ``${things} = [${thing_list}]`` becomes ``fruits = ["apple", ...]`` under one
seed and ``planets = ["Mars", ...]`` under another, which is how the procedural teacher varies its
examples the way the paper's prompts vary topics and audiences (chapter 2). The themes live in
``vocab.toml``.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import tomllib

VOCAB_FILE = Path(__file__).with_name("vocab.toml")


@functools.cache
def load_vocab() -> dict[str, Any]:
    """The parsed ``vocab.toml`` (themes of words and numbers, and people's names)."""
    with VOCAB_FILE.open("rb") as handle:
        return tomllib.load(handle)


def sample_slots(rng: random.Random) -> dict[str, str]:
    """Pick one word theme, one number theme and a few names; return every slot as text.

    Slots: ``things``/``thing`` (identifiers), ``w1``..``w5`` (distinct words, ``w5`` not in the
    list), ``thing_list`` (the repr of ``w1``..``w4``, comma separated), ``values``/``value``,
    ``n1``..``n6`` and ``num_list`` (distinct numbers), ``threshold`` (a number inside the theme's range),
    ``k`` (2-4), ``n`` (5-9), ``big`` (10-30), ``seed_value``, ``person``, ``person2``, ``person3``.
    """
    vocab = load_vocab()
    words_theme = rng.choice(vocab["things"])
    numbers_theme = rng.choice(vocab["numbers"])
    words = rng.sample(words_theme["words"], 5)
    low, high = numbers_theme["low"], numbers_theme["high"]
    numbers = rng.sample(range(low, high + 1), 6)
    people = rng.sample(vocab["people"]["names"], 3)
    slots = {
        "things": words_theme["plural"],
        "thing": words_theme["singular"],
        "thing_list": ", ".join(repr(word) for word in words[:4]),
        "values": numbers_theme["plural"],
        "value": numbers_theme["singular"],
        "num_list": ", ".join(str(number) for number in numbers),
        "threshold": str(rng.randint(low + (high - low) // 4, high - (high - low) // 4)),
        "k": str(rng.randint(2, 4)),
        "n": str(rng.randint(5, 9)),
        "big": str(rng.randint(10, 30)),
        "seed_value": str(rng.randint(0, 99)),
        "person": people[0],
        "person2": people[1],
        "person3": people[2],
    }
    slots.update({f"w{i}": word for i, word in enumerate(words, 1)})
    slots.update({f"n{i}": str(number) for i, number in enumerate(numbers, 1)})
    return slots
