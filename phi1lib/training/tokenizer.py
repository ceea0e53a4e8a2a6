"""The tokenizer: the paper's (CodeGen's) when the hub is reachable, else a BPE trained on CodeTextbook.

phi-1 reuses the tokenizer of ``Salesforce/codegen-350M-mono`` (paper §2.3): GPT-2's
byte-level BPE plus tokens for runs of whitespace, about 50k entries. Offline we train the same
kind of tokenizer ourselves, a byte-level BPE from the ``tokenizers`` library, on the training
documents of CodeTextbook, with the same ``<|endoftext|>`` separator. A small vocabulary is also
the cheaper choice on a CPU: the output layer of a 1M-parameter model with a 50k vocabulary costs
more than the whole transformer (its 50k × d weights outnumber the rest). Either way the result
is a ``transformers`` tokenizer saved with ``save_pretrained``, so every later stage loads it the
same way. Introduced in chapter 4 ("The tokenizer").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
TRAINED_SOURCE = "train"


class TokenizerSourceError(RuntimeError):
    """A tokenizer that cannot be obtained from where the profile says (e.g. the hub, offline)."""


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int, *, length: int | None = None
) -> PreTrainedTokenizerFast:
    """A byte-level BPE with ``vocab_size`` entries (``<|endoftext|>`` included) learnt from ``texts``.

    Byte-level means the 256 byte values are the base alphabet, so any text, in any script, can be
    encoded without an unknown token, exactly as in GPT-2 and CodeGen. Every newline is a token
    of its own, never merged with the indentation after it: a prompt that ends with a newline (a
    docstring, as in HumanEval and CodeExercises) then ends on the same token boundary as in
    training, and the model continues with the indentation it learnt (CodeGen's tokenizer gets
    the same effect from separate whitespace tokens). Runs of spaces are tokens of their own
    too, never the start of a word: an identifier then has the same tokens after ``(`` in a
    signature as after a space in the body, so a model can learn to copy a name it has never
    seen piece by piece (with GPT-2's leading-space words, ``nums`` and `` nums`` are
    unrelated tokens). This costs about a fifth more tokens per text (chapter 4).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 300:
        raise ValueError(f"vocab_size {vocab_size} is too small for a byte-level BPE (256 bytes)")
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
            pre_tokenizers.Split(Regex(r" +"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_non_empty(texts), trainer=trainer, length=length)
    return wrap_tokenizer(core)


def wrap_tokenizer(core) -> PreTrainedTokenizerFast:
    """A ``tokenizers.Tokenizer`` as a ``transformers`` tokenizer, ``<|endoftext|>`` as EOS and pad."""
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def _non_empty(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if text:
            yield text


def load_source_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """The tokenizer named by a hub id (``Salesforce/codegen-350M-mono``) or a local folder.

    Fails with a clear message offline, pointing at ``tokenizer.source = "train"``. Chapter 4.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise TokenizerSourceError(
            f"cannot load the tokenizer {source!r} ({error}). Offline, set the profile's "
            f'tokenizer.source = "{TRAINED_SOURCE}" to train one on CodeTextbook instead.'
        ) from error
    if tokenizer.eos_token is None:
        tokenizer.eos_token = EOS_TOKEN
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(folder: Path | str) -> PreTrainedTokenizerBase:
    """A tokenizer saved by the ``tokenizer`` stage (or inside a model folder)."""
    return AutoTokenizer.from_pretrained(str(folder))


def bytes_per_token(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> float:
    """Average UTF-8 bytes per token over ``texts``: how much text one model step reads (chapter 4)."""
    total_bytes = total_tokens = 0
    for text in texts:
        total_bytes += len(text.encode("utf-8"))
        total_tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    if total_tokens == 0:
        raise ValueError("no tokens: the texts are empty")
    return total_bytes / total_tokens
