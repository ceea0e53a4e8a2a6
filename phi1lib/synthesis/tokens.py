"""Counting the tokens of the synthetic datasets, with a tokenizer that does not depend on them.

The paper sizes its datasets in tokens of the codegen-350M-mono tokenizer (under 1B textbook
tokens, under 180M exercise tokens; paper §2.2). The book's own ``tokenizer`` stage may be
*trained on* the textbooks, so counting with it here would make the textbooks depend on
themselves. The count therefore uses a fixed, documented counter, named by the profile:

* a Hugging Face tokenizer id such as ``Salesforce/codegen-350M-mono`` (the paper's tokenizer;
  needs the hub, so only for online profiles);
* ``gpt2-pieces``, the offline proxy: the number of pieces GPT-2's pre-tokenizer splits a text
  into (``phi1lib.teacher.tokens``, the same count the offline teacher reports as usage). Each
  piece becomes at least one BPE token, so this is a slight *undercount* of GPT-2 tokens; codegen
  adds tokens for runs of spaces, which GPT-2 pieces already keep whole, so on indented code the
  two are close.

Introduced in chapter 2 ("How many tokens?").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

OFFLINE_COUNTER = "gpt2-pieces"


def token_counter(name: str) -> Callable[[Sequence[str]], list[int]]:
    """A function from texts to their token counts, for the counter ``name`` (chapter 2)."""
    if name == OFFLINE_COUNTER:
        from phi1lib.teacher.tokens import count_tokens

        return lambda texts: [count_tokens(text) for text in texts]
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as error:
        raise RuntimeError(
            f"token counter {name!r} cannot be loaded ({error}); offline, set the profile's "
            f"token_counter to {OFFLINE_COUNTER!r}"
        ) from error

    def count(texts: Sequence[str]) -> list[int]:
        encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    return count
