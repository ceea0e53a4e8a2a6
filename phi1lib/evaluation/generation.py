"""Completions from any causal language model: a ``save_pretrained`` folder or a hub id.

Prompts are batched with left padding (so that every row's next token sits at the same
position), sorted by length so that a batch wastes little padding, and cut at the first stop
sequence so that a completion ends with the function it was asked for. Greedy decoding gives one
reproducible completion per problem, our pass@1 (the paper's pass@1 also uses one completion per
problem but does not say how it decoded); sampling with a temperature gives the ``n``
completions that pass@k for ``k > 1`` needs. Introduced in chapter 6 ("Scoring our models").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

# How many trailing tokens are decoded to look for a stop sequence after each step; a stop
# sequence is a few characters, and every token decodes to at least one.
_STOP_WINDOW_TOKENS = 24


@dataclass(frozen=True)
class SamplingSettings:
    """How completions are drawn: greedy when ``temperature`` is 0, else nucleus sampling."""

    n_samples: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    batch_size: int = 8
    seed: int = 0
    cpu_threads: int = 0  # 0: leave torch's setting; see _cpu_threads

    def __post_init__(self):
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {self.n_samples}")
        if self.n_samples > 1 and self.temperature <= 0:
            raise ValueError(
                f"{self.n_samples} samples per problem need a temperature > 0: greedy decoding "
                "would give the same completion every time"
            )
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1")


@dataclass
class GenerationStats:
    """What a generation run cost: kept with the results so a reader can compare machines."""

    prompts: int = 0
    completions: int = 0
    new_tokens: int = 0
    truncated_prompts: int = 0
    wall_time_s: float = 0.0
    device: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_time_s if self.wall_time_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "completions": self.completions,
            "new_tokens": self.new_tokens,
            "truncated_prompts": self.truncated_prompts,
            "wall_time_s": round(self.wall_time_s, 3),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "device": self.device,
            **self.extra,
        }


def truncate_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest stop sequence it contains (chapter 6)."""
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


class _StopOnSequences(StoppingCriteria):
    """Per-row stopping: a row is done once its *generated* text contains a stop sequence.

    Only the new tokens are looked at, so a prompt that ends with a newline cannot combine with
    the first generated word into a stop sequence.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_length: int, stops):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stops = tuple(stops)
        self.done: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        new = input_ids[:, self.prompt_length :]
        window = new[:, -_STOP_WINDOW_TOKENS:].tolist()
        for row, tokens in enumerate(window):
            if not self.done[row]:
                tail = self.tokenizer.decode(tokens, skip_special_tokens=True)
                self.done[row] = any(stop in tail for stop in self.stops)
        return self.done.to(input_ids.device)


@contextlib.contextmanager
def _cpu_threads(device: torch.device, threads: int) -> Iterator[None]:
    """Run with ``threads`` CPU threads, then restore the old setting.

    A model of a few million parameters generates one token with many tiny matrix products.
    With several threads each product waits at a barrier for all of them, and on a busy machine
    (the sandbox's workers, other notebooks) those waits dominate: on a 2-core machine at load
    average 7, a 1.7M-parameter model generated 8 to 30 times faster with one thread than with
    two (``benchmarks/bench_eval_generation.py`` measures it). On an idle machine two threads
    were 1.4 times faster than one (3.6k against 2.6k tokens/s): the ``tiny`` profile takes one
    thread, giving up that much at best to avoid the collapse at worst.
    """
    if device.type != "cpu" or threads <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def pick_device(device: str | None = None) -> torch.device:
    """The device to generate on: the argument, else CUDA when present, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _tokenizer_source(model: str | Path) -> str:
    """A model folder may hold its tokenizer, or have it in a sibling ``tokenizer`` folder."""
    path = Path(model)
    if path.is_dir() and not (path / "tokenizer_config.json").exists():
        sibling = path.parent / "tokenizer"
        if (sibling / "tokenizer_config.json").exists():
            return str(sibling)
    return str(model)


def load_model(
    model: str | Path, device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for batched generation (chapter 6).

    ``model`` is a ``save_pretrained`` folder (the run store's ``pretrain``/``finetune``
    artifacts) or a hub id such as ``microsoft/phi-1`` (needs the network the first time).
    On a GPU the weights are loaded in bfloat16 when the card supports it.
    """
    target = pick_device(device)
    dtype = torch.float32
    if target.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        tokenizer = AutoTokenizer.from_pretrained(_tokenizer_source(model))
        lm = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
    except OSError as error:
        raise OSError(
            f"cannot load the model {str(model)!r}: not a save_pretrained folder, and not a hub id "
            f"that can be fetched (offline runs need a local folder). Cause: {error}"
        ) from error
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.to(target).eval()
    return lm, tokenizer


def _max_prompt_tokens(model: PreTrainedModel, max_new_tokens: int) -> int | None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if not limit:
        return None
    return max(limit - max_new_tokens, 16)


@torch.inference_mode()
def generate_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    stops: Sequence[Sequence[str]] | Sequence[str],
    settings: SamplingSettings | None = None,
    *,
    progress: bool = True,
    stats: GenerationStats | None = None,
) -> list[list[str]]:
    """``settings.n_samples`` completions for each prompt, each cut at its first stop sequence.

    ``stops`` is either one list of stop sequences for all prompts or one list per prompt.
    Prompts longer than the model's context (less the new tokens) keep their last tokens; how
    many were cut is counted in ``stats``. Completions are returned in prompt order.
    """
    settings = settings or SamplingSettings()
    if stops and isinstance(stops[0], str):
        per_prompt = [tuple(stops)] * len(prompts)
    else:
        per_prompt = [tuple(s) for s in stops]
    if len(per_prompt) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(per_prompt)} lists of stop sequences")
    stats = stats if stats is not None else GenerationStats()
    device = model.device
    stats.device = str(device)
    max_prompt = _max_prompt_tokens(model, settings.max_new_tokens)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    stats.truncated_prompts += sum(1 for n in lengths if max_prompt and n > max_prompt)

    # One job per (prompt, sample); longest first, so batches hold prompts of similar length.
    jobs = [(i, s) for i in range(len(prompts)) for s in range(settings.n_samples)]
    jobs.sort(key=lambda job: -lengths[job[0]])
    results: list[list[str]] = [[""] * settings.n_samples for _ in prompts]
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="generating", unit="completion", disable=not progress)
    with _cpu_threads(device, settings.cpu_threads):
        _generate_batches(
            model, tokenizer, prompts, per_prompt, jobs, results, settings, stats, bar
        )
    bar.close()
    stats.prompts += len(prompts)
    stats.completions += len(jobs)
    stats.wall_time_s += time.perf_counter() - started
    return results


def _generate_batches(model, tokenizer, prompts, per_prompt, jobs, results, settings, stats, bar):
    """The batch loop of :func:`generate_completions`; fills ``results`` in place."""
    device = model.device
    max_prompt = _max_prompt_tokens(model, settings.max_new_tokens)
    sampling = settings.temperature > 0
    for start in range(0, len(jobs), settings.batch_size):
        batch = jobs[start : start + settings.batch_size]
        batch_stops = sorted({stop for i, _ in batch for stop in per_prompt[i]})
        encoded = tokenizer(
            [prompts[i] for i, _ in batch],
            return_tensors="pt",
            padding=True,
            truncation=max_prompt is not None,
            max_length=max_prompt,
            add_special_tokens=False,
        ).to(device)
        prompt_length = encoded["input_ids"].shape[1]
        criteria = StoppingCriteriaList([_StopOnSequences(tokenizer, prompt_length, batch_stops)])
        output = model.generate(
            **encoded,
            max_new_tokens=settings.max_new_tokens,
            do_sample=sampling,
            temperature=settings.temperature if sampling else None,
            top_p=settings.top_p if sampling else None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stopping_criteria=criteria,
        )
        new_tokens = output[:, prompt_length:]
        stats.new_tokens += int((new_tokens != tokenizer.pad_token_id).sum())
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for (i, s), text in zip(batch, texts, strict=True):
            results[i][s] = truncate_at_stop(text, per_prompt[i])
        bar.update(len(batch))
