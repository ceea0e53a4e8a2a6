"""Input generators for exercise tests: named, seeded functions that make argument values.

A family in ``families/*.toml`` names a generator for each parameter, for example
``gen = ["ints", 0, 8, -20, 20]`` (a list of 0-8 integers between -20 and 20). Every generator
is called as ``generator(rng, previous, *args)``, where ``previous`` holds the arguments already
made for this test case, so that a value can depend on an earlier one (a target that is in the
list half of the time, an anagram of the first word). Expected results are never written here:
the family's reference solution computes them (the appendix on teacher endpoints, "The offline
teacher").
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from phi1lib.teacher.offline.content.vocab import load_vocab

Generator = Callable[..., Any]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    """Register a generator under ``name`` (the first item of a family's ``gen`` list)."""

    def register(function: Generator) -> Generator:
        GENERATORS[name] = function
        return function

    return register


def make_value(spec: list[Any], rng: random.Random, previous: dict[str, Any]) -> Any:
    """Call the generator that ``spec`` names (``[name, *args]``) and return its value."""
    name, *args = spec
    if name not in GENERATORS:
        raise ValueError(f"unknown input generator {name!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[name](rng, previous, *args)


def _words() -> list[str]:
    return load_vocab()["exercise"]["words"]


# ---- numbers ---------------------------------------------------------------------------------


@generator("int")
def _int(rng, previous, low=0, high=100):
    return rng.randint(low, high)


@generator("choice")
def _choice(rng, previous, *options):
    return rng.choice(options)


@generator("float")
def _float(rng, previous, low=0.0, high=100.0, digits=1):
    return round(rng.uniform(low, high), digits)


@generator("ints")
def _ints(rng, previous, min_len=0, max_len=8, low=-20, high=20):
    return [rng.randint(low, high) for _ in range(rng.randint(min_len, max_len))]


@generator("distinct_ints")
def _distinct_ints(rng, previous, min_len=0, max_len=8, low=-20, high=20):
    return rng.sample(range(low, high + 1), rng.randint(min_len, max_len))


@generator("sorted_ints")
def _sorted_ints(rng, previous, min_len=0, max_len=8, low=-20, high=20):
    return sorted(_distinct_ints(rng, previous, min_len, max_len, low, high))


@generator("member")
def _member(rng, previous, key, low=-20, high=20):
    """An item of ``previous[key]`` about two times in three, otherwise a value it lacks."""
    pool = previous[key]
    if pool and rng.random() < 0.67:
        return rng.choice(list(pool))
    if pool and isinstance(next(iter(pool)), str):
        candidates = [word for word in _words() if word not in pool]
    else:
        candidates = [n for n in range(low, high + 1) if n not in pool]
    return rng.choice(candidates)


@generator("index_into")
def _index_into(rng, previous, key, base=0):
    """A valid position in ``previous[key]`` (counted from ``base``)."""
    return rng.randint(base, len(previous[key]) - 1 + base)


@generator("pair_sum")
def _pair_sum(rng, previous, key):
    """A sum of two items of ``previous[key]`` half of the time, otherwise a random total."""
    pool = previous[key]
    if len(pool) >= 2 and rng.random() < 0.6:
        a, b = rng.sample(range(len(pool)), 2)
        return pool[a] + pool[b]
    return rng.randint(-40, 40)


@generator("missing_range")
def _missing_range(rng, previous, max_n=12):
    """The numbers 0..n shuffled, with exactly one of them removed."""
    numbers = list(range(rng.randint(1, max_n) + 1))
    numbers.remove(rng.choice(numbers))
    rng.shuffle(numbers)
    return numbers


@generator("pairs_and_single")
def _pairs_and_single(rng, previous, max_pairs=5):
    """Every number twice except one, shuffled."""
    values = rng.sample(range(1, 60), rng.randint(0, max_pairs) + 1)
    numbers = values[1:] * 2 + values[:1]
    rng.shuffle(numbers)
    return numbers


@generator("year")
def _year(rng, previous):
    return rng.choice([rng.randint(1890, 2100), rng.choice([1900, 2000, 2024, 2100, 1996])])


@generator("coins")
def _coins(rng, previous):
    return sorted(rng.sample([1, 2, 3, 5, 7, 10, 25], rng.randint(1, 3)))


# ---- text ------------------------------------------------------------------------------------


@generator("word")
def _word(rng, previous):
    return rng.choice(_words())


@generator("words")
def _word_list(rng, previous, min_len=0, max_len=6):
    return [rng.choice(_words()) for _ in range(rng.randint(min_len, max_len))]


@generator("sentence")
def _sentence(rng, previous, min_len=0, max_len=7):
    words = _word_list(rng, previous, min_len, max_len)
    words = [w.capitalize() if rng.random() < 0.2 else w for w in words]
    return " ".join(words)


@generator("text")
def _text(rng, previous, min_len=1, max_len=8):
    """A sentence with capitals, punctuation and sometimes digits."""
    words = _word_list(rng, previous, min_len, max_len)
    out = []
    for index, word in enumerate(words):
        if index == 0 or rng.random() < 0.15:
            word = word.capitalize()
        if rng.random() < 0.12:
            word = str(rng.randint(0, 99))
        if rng.random() < 0.2:
            word += rng.choice(",;:")
        out.append(word)
    return " ".join(out) + (rng.choice(".!?") if out else "")


@generator("letters")
def _letters(rng, previous, min_len=0, max_len=10, alphabet="abcde"):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))


@generator("char_of")
def _char_of(rng, previous, key):
    text = previous[key]
    if text and rng.random() < 0.7:
        return rng.choice(text)
    return rng.choice(string.ascii_lowercase)


@generator("substring_of")
def _substring_of(rng, previous, key):
    text = previous[key]
    if len(text) >= 2 and rng.random() < 0.7:
        start = rng.randrange(len(text) - 1)
        return text[start : start + rng.randint(1, 3)]
    return rng.choice(["ab", "x", "an", "ee"])


@generator("palindrome")
def _palindrome(rng, previous):
    """A palindrome (sometimes with spaces and capitals) half of the time, else a plain word."""
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(["level", "radar", "civic", "kayak", "noon", "refer", "madam", "rotor"])
    if kind < 0.5:
        half = _letters(rng, previous, 1, 4)
        return half + rng.choice(["", "x"]) + half[::-1]
    if kind < 0.6:
        return rng.choice(["Never odd or even", "Step on no pets", "Was it a car or a cat I saw"])
    return rng.choice(_words())


@generator("anagram_of")
def _anagram_of(rng, previous, key):
    word = previous[key]
    if rng.random() < 0.55:
        letters = list(word)
        rng.shuffle(letters)
        return "".join(letters)
    return rng.choice(_words())


@generator("rotation_of")
def _rotation_of(rng, previous, key):
    word = previous[key]
    if word and rng.random() < 0.55:
        cut = rng.randrange(len(word))
        return word[cut:] + word[:cut]
    return rng.choice(_words())


@generator("snake_name")
def _snake_name(rng, previous):
    return "_".join(rng.choice(_words()) for _ in range(rng.randint(1, 3)))


@generator("camel_name")
def _camel_name(rng, previous):
    parts = [rng.choice(_words()) for _ in range(rng.randint(1, 3))]
    return parts[0] + "".join(part.capitalize() for part in parts[1:])


@generator("identifier_like")
def _identifier_like(rng, previous):
    return rng.choice(
        [_snake_name(rng, previous), "2" + _word(rng, previous), "my-var", "_private", "x1", ""]
    )


@generator("brackets")
def _brackets(rng, previous, max_pairs=4):
    """A bracket string that is balanced about half of the time."""

    def balanced(depth: int) -> str:
        if depth == 0:
            return ""
        opening, closing = rng.choice(["()", "[]", "{}"])
        return opening + balanced(rng.randint(0, depth - 1)) + closing + balanced(depth - 1)

    text = balanced(rng.randint(0, max_pairs))
    if text and rng.random() < 0.5:
        chars = list(text)
        position = rng.randrange(len(chars))
        chars[position] = rng.choice("()[]{}")
        text = "".join(chars)
    return text


@generator("bits")
def _bits(rng, previous, max_len=10):
    return "1" + "".join(rng.choice("01") for _ in range(rng.randint(0, max_len - 1)))


@generator("digits_text")
def _digits_text(rng, previous):
    return "".join(rng.choice("abc123 ") for _ in range(rng.randint(0, 10)))


@generator("email")
def _email(rng, previous):
    user, host = _word(rng, previous), _word(rng, previous)
    return rng.choice(
        [
            f"{user}@{host}.com",
            f"{user}.{_word(rng, previous)}@{host}.org",
            f"{user}{rng.randint(1, 99)}@{host}.net",
            f"{user}@{host}",
            f"{user}.{host}.com",
            f"@{host}.com",
            f"{user}@@{host}.com",
        ]
    )


@generator("tagged_text")
def _tagged_text(rng, previous):
    words = _word_list(rng, previous, 1, 7)
    return " ".join("#" + w if rng.random() < 0.35 else w for w in words)


@generator("iso_date")
def _iso_date(rng, previous):
    return (date(1995, 1, 1) + timedelta(days=rng.randint(0, 14000))).isoformat()


@generator("rpn")
def _rpn(rng, previous, max_ops=4):
    """A valid reverse-Polish expression over small integers with + - *."""
    tokens = [str(rng.randint(1, 9))]
    for _ in range(rng.randint(0, max_ops)):
        tokens += [str(rng.randint(1, 9)), rng.choice("+-*")]
    return tokens


# ---- containers -------------------------------------------------------------------------------


@generator("matrix")
def _matrix(rng, previous, min_rows=1, max_rows=4, min_cols=1, max_cols=4, low=-9, high=9):
    rows, cols = rng.randint(min_rows, max_rows), rng.randint(min_cols, max_cols)
    return [[rng.randint(low, high) for _ in range(cols)] for _ in range(rows)]


@generator("square_matrix")
def _square_matrix(rng, previous, min_size=1, max_size=4, low=-9, high=9):
    size = rng.randint(min_size, max_size)
    return [[rng.randint(low, high) for _ in range(size)] for _ in range(size)]


@generator("nested_ints")
def _nested_ints(rng, previous, depth=3):
    def build(level: int) -> list:
        items = []
        for _ in range(rng.randint(0, 3)):
            if level > 0 and rng.random() < 0.4:
                items.append(build(level - 1))
            else:
                items.append(rng.randint(-9, 9))
        return items

    return build(depth)


@generator("list_of_lists")
def _list_of_lists(rng, previous, max_outer=4, max_inner=3):
    return [
        [rng.randint(-9, 9) for _ in range(rng.randint(0, max_inner))]
        for _ in range(rng.randint(0, max_outer))
    ]


@generator("word_counts")
def _word_counts(rng, previous, min_len=0, max_len=5, low=0, high=20, unique_values=False):
    keys = rng.sample(_words(), rng.randint(min_len, max_len))
    if unique_values:
        values = rng.sample(range(low, high + 1), len(keys))
    else:
        values = [rng.randint(low, high) for _ in keys]
    return dict(zip(keys, values, strict=True))


@generator("named_scores")
def _named_scores(rng, previous, min_len=0, max_len=5):
    return [
        (rng.choice(_words()), rng.randint(0, 100)) for _ in range(rng.randint(min_len, max_len))
    ]


@generator("graph")
def _graph(rng, previous, max_nodes=6):
    """An undirected graph as a dict from node letter to sorted neighbour letters."""
    nodes = list("ABCDEFGH"[: rng.randint(1, max_nodes)])
    graph: dict[str, list[str]] = {node: [] for node in nodes}
    for _ in range(rng.randint(0, len(nodes) + 1)):
        a, b = rng.choice(nodes), rng.choice(nodes)
        if a != b and b not in graph[a]:
            graph[a].append(b)
            graph[b].append(a)
    return {node: sorted(neighbours) for node, neighbours in graph.items()}


@generator("node_of")
def _node_of(rng, previous, key):
    return rng.choice(sorted(previous[key]))


@generator("edges")
def _edges(rng, previous, key):
    """Edges between the nodes ``0..previous[key]-1`` (undirected, no self-loops)."""
    n = previous[key]
    if n < 2:
        return []
    pairs = {tuple(sorted(rng.sample(range(n), 2))) for _ in range(rng.randint(0, n))}
    return [list(pair) for pair in sorted(pairs)]


@generator("json_records")
def _json_records(rng, previous, field="amount"):
    records = [
        {"name": rng.choice(_words()), field: rng.randint(0, 50)} for _ in range(rng.randint(0, 4))
    ]
    return json.dumps(records)
