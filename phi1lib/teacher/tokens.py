"""How the offline teacher counts tokens: GPT-2's pre-tokenizer pattern, one token per piece.

The offline teacher has no real tokenizer, yet it must report ``usage`` like any endpoint (the
budget and cost accounting run on it) and must cut answers at ``max_tokens``. Splitting text
the way GPT-2's byte-level BPE does before merging (words with their leading space, runs of
digits, runs of punctuation, whitespace) gives counts close to a BPE tokenizer's on English
and code, from a regular expression alone. Introduced in the appendix on teacher endpoints.
"""

from __future__ import annotations

import re

_PIECES = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+|\s+(?!\S)|\s+""")
_PER_MESSAGE = 4  # chat formatting overhead per message, as OpenAI documents it
_PER_REPLY = 3


def count_tokens(text: str) -> int:
    """Number of token-like pieces in ``text``."""
    return len(_PIECES.findall(text))


def count_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat prompt: its messages' contents plus the per-message overhead."""
    return sum(count_tokens(m["content"]) + _PER_MESSAGE for m in messages) + _PER_REPLY


def truncate_tokens(text: str, limit: int) -> str:
    """The first ``limit`` token-like pieces of ``text``."""
    return "".join(_PIECES.findall(text)[:limit])
