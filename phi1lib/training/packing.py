"""Packing: documents joined by ``<|endoftext|>``, tokenized once, cut into fixed-length sequences.

The paper concatenates all files of a dataset into one stream, with ``<|endoftext|>`` between
them, and cuts the stream into 2048-token sequences (paper §2.3). No token is wasted on
padding, and no document needs truncating: a long file simply continues in the next sequence.
We tokenize each corpus once into a flat binary file of token ids (``uint16`` when the vocabulary
fits, else ``uint32``) and read it through a NumPy memory map, so a training step touches only
the sequences it needs and a corpus larger than memory costs nothing. Only the very last sequence
of a file can be short; it is padded, and its padding is excluded from the loss and counted, so a
run reports the fraction of processed tokens that were padding. Introduced in chapter 4
("Packing").

Exercises are packed differently for fine-tuning (:func:`write_exercise_file`): each one whole
inside a sequence (a row holds as many as fit, then padding), with a *role* per token beside
the ids, so that the loss can be taken on the solutions only. A stream cut every ``T`` tokens
would start many rows in the middle of a solution whose signature, with the names the solution
must use, sits in the row before (chapter 5).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # label value that the loss skips (PyTorch's and transformers' convention)
INFO_SUFFIX = ".json"
ROLES_SUFFIX = ".roles"
# The role of each token of an aligned file: read only, predicted, or padding.
CONTEXT, TARGET, PAD = 0, 1, 2
LOSS_ON = ("solution", "all")


def heldout_document(text: str, fraction: float) -> bool:
    """Whether a document belongs to the held-out slice: a hash of its text, not its position.

    Hashing the text makes the decision the same in every corpus that contains the document, so
    a file of the filtered code that is held out of CodeTextbook is also held out of the
    unfiltered corpus, and no pretraining run of the ablation has seen it (chapter 4).
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


@dataclass(frozen=True)
class TokenFileInfo:
    """What a token file holds, stored beside it as JSON."""

    tokens: int
    documents: int
    dtype: str
    eos_token_id: int
    pad_token_id: int
    text_bytes: int
    # 0: one stream cut every seq_len tokens; else whole documents inside rows of this length,
    # with a roles file beside the ids (write_exercise_file).
    aligned_to: int = 0
    truncated: int = 0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls, path: Path) -> TokenFileInfo:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"{path}: not a token-file description ({error})") from error


def write_token_file(
    texts: Iterable[str],
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    *,
    total: int | None = None,
    batch_size: int = 256,
    description: str = "tokenizing",
) -> TokenFileInfo:
    """Tokenize ``texts`` into ``path`` as one stream, ``<|endoftext|>`` after every document.

    The file is written batch by batch (memory stays flat at any corpus size) and described in
    ``path.json``. Chapter 4.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token to separate documents")
    dtype = token_dtype(len(tokenizer))
    tokens = documents = text_bytes = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle, tqdm(total=total, desc=description, unit="doc") as bar:
        for batch in _batched(texts, batch_size):
            encoded = tokenizer(batch, add_special_tokens=False)["input_ids"]
            for text, ids in zip(batch, encoded, strict=True):
                array = np.asarray([*ids, eos], dtype=dtype)
                handle.write(array.tobytes())
                tokens += len(array)
                text_bytes += len(text.encode("utf-8"))
            documents += len(batch)
            bar.update(len(batch))
    info = TokenFileInfo(
        tokens=tokens,
        documents=documents,
        dtype=dtype.name,
        eos_token_id=int(eos),
        pad_token_id=int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos),
        text_bytes=text_bytes,
    )
    info.save(path.with_suffix(path.suffix + INFO_SUFFIX))
    return info


def _prompt_length(prompt_ids: list[int], ids: list[int]) -> int:
    """Tokens of ``ids`` that belong to the prompt: its tokens, as far as ``ids`` repeats them."""
    length = 0
    for a, b in zip(prompt_ids, ids, strict=False):
        if a != b:
            break
        length += 1
    return length


def write_exercise_file(
    examples: Iterable[tuple[str, str]],
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    *,
    seq_len: int,
    loss_on: str,
    total: int | None = None,
    description: str = "tokenizing",
) -> TokenFileInfo:
    """Pack ``(prompt, text)`` pairs whole into rows of ``seq_len`` tokens, with token roles.

    Each text (then ``<|endoftext|>``) goes into the current row if it fits, else into a new one,
    the rest of the row being padding; a text longer than a row is cut (and counted). Roles are
    written to ``path.roles``: ``TARGET`` for the solution and the end-of-text token (for every
    token with ``loss_on="all"``), ``CONTEXT`` for the prompt, ``PAD`` for padding. Chapter 5.
    """
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token to separate documents")
    dtype = token_dtype(len(tokenizer))
    tokens = documents = text_bytes = truncated = 0
    row_ids: list[int] = []
    row_roles: list[int] = []
    path.parent.mkdir(parents=True, exist_ok=True)

    def flush(ids_file, roles_file) -> int:
        padding = seq_len - len(row_ids)
        ids_file.write(np.asarray(row_ids + [eos] * padding, dtype=dtype).tobytes())
        roles_file.write(np.asarray(row_roles + [PAD] * padding, dtype=np.uint8).tobytes())
        row_ids.clear()
        row_roles.clear()
        return seq_len

    roles_path = path.with_suffix(path.suffix + ROLES_SUFFIX)
    with (
        path.open("wb") as ids_file,
        roles_path.open("wb") as roles_file,
        tqdm(total=total, desc=description, unit="doc") as bar,
    ):
        for batch in _batched(examples, 256, pairs=True):
            prompts = tokenizer([p for p, _ in batch], add_special_tokens=False)["input_ids"]
            texts = tokenizer([t for _, t in batch], add_special_tokens=False)["input_ids"]
            for (_, text), prompt_ids, ids in zip(batch, prompts, texts, strict=True):
                ids = [*ids, eos]
                context = _prompt_length(prompt_ids, ids) if loss_on == "solution" else 0
                roles = [CONTEXT] * context + [TARGET] * (len(ids) - context)
                if len(ids) > seq_len:
                    ids, roles, truncated = ids[:seq_len], roles[:seq_len], truncated + 1
                if len(row_ids) + len(ids) > seq_len:
                    tokens += flush(ids_file, roles_file)
                row_ids.extend(ids)
                row_roles.extend(roles)
                text_bytes += len(text.encode("utf-8"))
            documents += len(batch)
            bar.update(len(batch))
        if row_ids:
            tokens += flush(ids_file, roles_file)
    info = TokenFileInfo(
        tokens=tokens,
        documents=documents,
        dtype=dtype.name,
        eos_token_id=int(eos),
        pad_token_id=int(eos),
        text_bytes=text_bytes,
        aligned_to=seq_len,
        truncated=truncated,
    )
    info.save(path.with_suffix(path.suffix + INFO_SUFFIX))
    return info


def _batched(texts: Iterable, size: int, pairs: bool = False) -> Iterable[list]:
    batch: list = []
    for text in texts:
        items = text if pairs else (text,)
        if not all(isinstance(item, str) for item in items):
            raise TypeError(f"document {text!r} is not a string")
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class PackedSequences:
    """A token file read as fixed-length sequences through a memory map (chapter 4).

    Sequence ``i`` is tokens ``[i*T, (i+1)*T)``; the last one is padded when the stream does not
    divide evenly. ``batch(indices)`` returns ``input_ids`` and ``labels`` (the same ids, with
    padding set to ``-100`` so the loss ignores it; the model shifts labels by one itself).
    """

    def __init__(self, path: Path | str, seq_len: int):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"token file {self.path} does not exist")
        self.info = TokenFileInfo.load(self.path.with_suffix(self.path.suffix + INFO_SUFFIX))
        if seq_len < 2:
            raise ValueError(f"seq_len must be at least 2, got {seq_len}")
        self.seq_len = seq_len
        self.tokens = np.memmap(self.path, dtype=np.dtype(self.info.dtype), mode="r")
        if len(self.tokens) != self.info.tokens:
            raise ValueError(
                f"{self.path}: holds {len(self.tokens)} tokens, its description says "
                f"{self.info.tokens} (an interrupted write?)"
            )
        if self.info.tokens == 0:
            raise ValueError(f"{self.path}: the token file is empty")
        self.roles = None
        if self.info.aligned_to:
            if seq_len != self.info.aligned_to:
                raise ValueError(
                    f"{self.path}: holds whole documents in rows of {self.info.aligned_to} "
                    f"tokens; it cannot be read as sequences of {seq_len}"
                )
            roles_path = self.path.with_suffix(self.path.suffix + ROLES_SUFFIX)
            self.roles = np.memmap(roles_path, dtype=np.uint8, mode="r")
            if len(self.roles) != len(self.tokens):
                raise ValueError(
                    f"{roles_path}: {len(self.roles)} roles for {len(self.tokens)} tokens"
                )
            rows = np.asarray(self.roles).reshape(-1, seq_len)
            self._targets = (rows[:, 1:] == TARGET).sum(axis=1)
            self._padding = (rows == PAD).sum(axis=1)

    def __len__(self) -> int:
        return -(-self.info.tokens // self.seq_len)

    def length_of(self, index: int) -> int:
        """Real (unpadded) tokens in sequence ``index``."""
        return min(self.seq_len, self.info.tokens - index * self.seq_len)

    def targets_in(self, indices: Sequence[int]) -> int:
        """Tokens the loss predicts in these sequences: all but the first of each, padding
        excluded (in an aligned file: the ``TARGET`` tokens after the first position)."""
        if self.roles is not None:
            return int(sum(self._targets[int(i)] for i in indices))
        return int(sum(self.length_of(int(i)) - 1 for i in indices))

    def padding_in(self, indices: Sequence[int]) -> int:
        if self.roles is not None:
            return int(sum(self._padding[int(i)] for i in indices))
        return int(sum(self.seq_len - self.length_of(int(i)) for i in indices))

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``labels`` (``int64``, shape ``(len(indices), seq_len)``)."""
        rows = np.full((len(indices), self.seq_len), self.info.pad_token_id, dtype=np.int64)
        labels = np.full_like(rows, IGNORE_INDEX)
        for row, index in enumerate(indices):
            start = int(index) * self.seq_len
            if not 0 <= start < self.info.tokens:
                raise IndexError(f"sequence {index} is outside {self.path} ({len(self)} sequences)")
            chunk = self.tokens[start : start + self.seq_len]
            rows[row, : len(chunk)] = chunk
            labels[row, : len(chunk)] = chunk
            if self.roles is not None:
                labels[row, self.roles[start : start + self.seq_len] != TARGET] = IGNORE_INDEX
        return torch.from_numpy(rows), torch.from_numpy(labels)


def one_per_sequence_cost(lengths: Iterable[int], seq_len: int) -> dict[str, float]:
    """What giving each document its own padded sequence would cost, the alternative to packing.

    ``padding`` is the fraction of processed positions that would hold padding; ``truncated`` is
    the fraction of the documents' tokens cut off because they do not fit. Chapter 5 compares
    this with packing.
    """
    lengths = [int(n) for n in lengths]
    if not lengths:
        raise ValueError("no documents")
    kept = [min(n, seq_len) for n in lengths]
    return {
        "padding": 1.0 - sum(kept) / (len(kept) * seq_len),
        "truncated": 1.0 - sum(kept) / sum(lengths),
    }
