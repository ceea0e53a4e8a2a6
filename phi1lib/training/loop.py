"""One training loop for every profile: a 2-core CPU, one GPU, or many GPUs on many nodes.

The loop is the paper's recipe (paper §2.3): AdamW, a linear warmup then a linear decay of the
learning rate, weight decay, gradient clipping, gradient accumulation up to a global batch of
sequences, dropout, and mixed precision on GPUs (bf16, or fp16 with a gradient scaler as the
paper used). Scale-out is left to existing engines through Hugging Face ``accelerate``: the same
code runs as one process, or under ``accelerate launch`` / ``torchrun`` as many processes with
DDP, FSDP or DeepSpeed ZeRO-2, chosen by a config file in ``configs/``.

Two properties make the loop trustworthy, and the tests check both:

- *The global batch is the unit.* The loss of a step is the mean over every predicted token of
  the global batch, however it is split over processes and micro-batches, so two processes give
  the same losses as one.
- *Exact resume.* Checkpoints hold everything that the future of the run depends on (weights,
  optimizer moments, schedule, gradient scaler, random generators, and the step, which fixes the
  data position), so a run killed at any moment and resumed logs the same losses as one that was
  never interrupted.

Introduced in chapter 4 ("The training loop").
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PhiConfig, PreTrainedTokenizerBase

from phi1lib.training import checkpoint
from phi1lib.training.batches import BatchPlan
from phi1lib.training.flops import device_peak_flops, flops_per_token, measure_matmul_flops
from phi1lib.training.heldout import loss_sums, spread_indices
from phi1lib.training.metrics import MetricsLog, read_metrics, recompute_mfu
from phi1lib.training.packing import PackedSequences
from phi1lib.training.presets import attention_implementation, build_model

SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
SNAPSHOTS = "snapshots"
SNAPSHOT_PREFIX = "step-"
_DROPOUT_KEYS = ("attention_dropout", "resid_pdrop", "embd_pdrop")
PRECISIONS = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class TrainSettings:
    """The knobs of one training phase; a profile's ``[finetune]`` section (``[pretrain]`` adds
    one more, see ``PretrainSettings``)."""

    seq_len: int
    global_batch: int
    micro_batch: int
    steps: int
    # The length of the planned run that shapes the learning-rate schedule, when training stops
    # before its end (0: ``steps``): the paper scheduled 36k steps and kept the 24k-step
    # checkpoint (§2.3).
    schedule_steps: int
    lr: float
    warmup_steps: int
    min_lr_ratio: float
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    adam_eps: float
    grad_clip: float
    dropout: float
    precision: str
    compile: bool
    seed: int
    log_every: int
    eval_every: int
    eval_sequences: int
    checkpoint_every: int
    keep_checkpoints: int
    # Every this many steps the model alone is saved under ``snapshots/`` (0: never), so that a
    # later stage can score the run as it learnt (chapter 5's learning curve).
    snapshot_every: int

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {sorted(PRECISIONS)}")
        if self.schedule_steps and self.schedule_steps < self.steps:
            raise ValueError(
                f"schedule_steps ({self.schedule_steps}) is shorter than steps ({self.steps})"
            )

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len

    @property
    def planned_steps(self) -> int:
        """The steps the learning-rate schedule spans (``steps`` unless the run stops early)."""
        return self.schedule_steps or self.steps


def learning_rate_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """The multiple of the peak learning rate at optimizer step ``step`` (counted from 0).

    Linear warmup over ``warmup`` steps, then linear decay to ``min_ratio`` at ``total`` steps, the
    paper's shape (it does not say where the decay ends; paper §2.3). Chapter 4.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return max(min_ratio, 1.0 - (1.0 - min_ratio) * progress)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases and LayerNorm gains are not decayed (as in GPT-2)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    plain = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def _initial_model(init: PhiConfig | Path, dropout: float, attention: str, seed: int):
    """A fresh model from a configuration, or a trained one (to fine-tune) from a folder."""
    if isinstance(init, PhiConfig):
        config = PhiConfig.from_dict(init.to_dict())
        config.attention_dropout = config.resid_pdrop = config.embd_pdrop = dropout
        return build_model(config, attention=attention, seed=seed)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(init),
        attn_implementation=attention,
        dtype=torch.float32,
        attention_dropout=dropout,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
    )


def _describe_init(init: PhiConfig | Path) -> Any:
    return init.to_dict() if isinstance(init, PhiConfig) else str(init)


def _run_record(
    init: PhiConfig | Path, settings: TrainSettings, train_data: PackedSequences
) -> dict[str, Any]:
    """What identifies a run: its settings, its starting point and its data (not the process count,
    since any split of the global batch trains the same model)."""
    record = {
        "settings": asdict(settings),
        "init": _describe_init(init),
        "train_data": str(train_data.path),
        "train_tokens": train_data.info.tokens,
    }
    return json.loads(json.dumps(record, default=str))


def _check_run_file(workdir: Path, record: dict[str, Any]) -> None:
    """Refuse to resume (or return) a work folder that an incompatible run started."""
    path = workdir / RUN_FILE
    if path.exists() and json.loads(path.read_text()) != record:
        raise ValueError(
            f"{workdir} holds a run with other settings or data ({path}); "
            "use another folder or delete this one"
        )


def _make_accelerator(settings: TrainSettings):
    """The ``accelerate`` engine: the process group (if launched as many) and mixed precision."""
    from accelerate import Accelerator, PartialState

    on_gpu = torch.cuda.is_available()
    state = PartialState(cpu=not on_gpu)
    per_pass = settings.micro_batch * state.num_processes
    if settings.global_batch % per_pass:
        raise ValueError(
            f"global batch {settings.global_batch} is not a multiple of micro batch "
            f"{settings.micro_batch} x {state.num_processes} processes"
        )
    precision = PRECISIONS[settings.precision] if on_gpu else "no"
    accelerator = Accelerator(
        cpu=not on_gpu,
        mixed_precision=precision,
        gradient_accumulation_steps=settings.global_batch // per_pass,
        step_scheduler_with_optimizer=False,
    )
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None:  # DeepSpeed reads the batch shape and clipping from its own config
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = settings.micro_batch
        plugin.deepspeed_config["gradient_clipping"] = settings.grad_clip
    return accelerator


def train(
    *,
    init: PhiConfig | Path,
    tokenizer: PreTrainedTokenizerBase,
    train_data: PackedSequences,
    heldout_data: PackedSequences | None,
    settings: TrainSettings,
    workdir: Path,
    description: str = "training",
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume training) into ``workdir``; returns the run's summary (chapter 4).

    ``init`` is a ``PhiConfig`` for a fresh model (pretraining) or the folder of a trained one
    (fine-tuning). ``workdir`` receives ``checkpoints/``, ``metrics.csv``, ``tensorboard/`` and,
    at the end, ``final/``: the model and tokenizer saved with ``save_pretrained`` and
    ``summary.json``. A finished work folder is returned as it is; an unfinished one is resumed
    from its newest checkpoint. Every process of a multi-process launch calls this function.
    ``on_step(step)`` is called after each step is logged and before it is checkpointed (a live
    plot, or a test that kills the run at a chosen step).
    """
    workdir = Path(workdir)
    final = workdir / "final"
    record = _run_record(init, settings, train_data)
    _check_run_file(workdir, record)
    if (final / SUMMARY_FILE).exists():
        return json.loads((final / SUMMARY_FILE).read_text())
    if train_data.seq_len != settings.seq_len:
        raise ValueError(
            f"data cut at {train_data.seq_len} tokens, settings say {settings.seq_len}"
        )

    accelerator = _make_accelerator(settings)
    main = accelerator.is_main_process
    world, rank = accelerator.num_processes, accelerator.process_index
    if main and not (workdir / RUN_FILE).exists():
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / RUN_FILE).write_text(json.dumps(record, indent=2))
    accelerator.wait_for_everyone()
    plan = BatchPlan(
        len(train_data), settings.global_batch, settings.micro_batch, world, settings.seed
    )
    device = accelerator.device
    attention = attention_implementation(device)

    model = _initial_model(init, settings.dropout, attention, settings.seed)
    torch.manual_seed(settings.seed + 1 + rank)  # dropout draws differ between processes
    optimizer, schedule = _optimizer_and_schedule(model, settings, accelerator)
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    forward = torch.compile(model) if settings.compile else model
    config = accelerator.unwrap_model(model).config

    roots = workdir / "checkpoints"
    start, counters = 0, {"tokens": 0, "padding": 0, "elapsed_s": 0.0}
    if main:
        checkpoint.remove_partial(roots)
    accelerator.wait_for_everyone()
    latest = checkpoint.latest_checkpoint(roots)
    if latest is not None:
        accelerator.load_state(str(latest))
        state = checkpoint.read_state(latest)
        start, counters = state["step"], state["counters"]

    log = MetricsLog(workdir, resume_after_step=start) if main else None
    per_token = flops_per_token(config, settings.seq_len)
    peak, peak_source = device_peak_flops(device)
    accumulation = plan.accumulation
    heldout_indices = (
        spread_indices(len(heldout_data), settings.eval_sequences)[rank::world]
        if heldout_data is not None
        else []
    )

    def heldout() -> float:
        total, count = loss_sums(
            model, heldout_data, heldout_indices, batch_size=settings.micro_batch, device=device
        )
        sums = accelerator.reduce(torch.tensor([total, count], device=device), "sum")
        return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")

    bar = tqdm(total=settings.steps, initial=start, desc=description, unit="step", disable=not main)
    interval_loss = torch.zeros((), device=device)
    interval_steps, interval_tokens = 0, 0
    interval_start = time.perf_counter()
    for step in range(start, settings.steps):
        model.train()
        global_indices = plan.global_indices(step)
        targets = train_data.targets_in(global_indices)
        # Each micro-batch's summed loss is divided so that, after accelerate divides by the
        # accumulation steps and DDP averages over processes, the gradient is that of the mean
        # loss over every target token of the global batch.
        divisor = torch.tensor(targets / (world * accumulation), device=device)
        batches = [
            train_data.batch(plan.micro_indices(step, rank, micro)) for micro in range(accumulation)
        ]
        grad_norm = _optimizer_step(
            accelerator, model, forward, optimizer, schedule, batches, divisor, settings,
            interval_loss,
        )  # fmt: skip
        counters["tokens"] += settings.tokens_per_step
        counters["padding"] += train_data.padding_in(global_indices)
        interval_steps += 1
        interval_tokens += settings.tokens_per_step
        done = step + 1
        bar.update(1)

        evaluate = heldout_data is not None and (
            done % settings.eval_every == 0 or done == settings.steps
        )
        if done % settings.log_every == 0 or done == settings.steps or evaluate:
            loss = accelerator.reduce(interval_loss, "sum").item() / (
                world * accumulation * interval_steps
            )
            seconds = time.perf_counter() - interval_start
            counters["elapsed_s"] += seconds
            tokens_per_s = interval_tokens / seconds
            row = {
                "step": done,
                "tokens": counters["tokens"],
                "epoch": plan.epochs_at(done),
                "loss": loss,
                "heldout_loss": heldout() if evaluate else None,
                "lr": schedule.get_last_lr()[0],
                "grad_norm": float(grad_norm) if grad_norm is not None else None,
                "tokens_per_s": tokens_per_s,
                "mfu": tokens_per_s * per_token / (peak * world) if peak else None,
                "pad_fraction": counters["padding"] / counters["tokens"],
                "elapsed_s": counters["elapsed_s"],
            }
            if main:
                log.log(row)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}")
            interval_loss.zero_()
            interval_steps = interval_tokens = 0
        if on_step is not None:
            on_step(done)
        if (
            settings.snapshot_every
            and done % settings.snapshot_every == 0
            and done < settings.steps
        ):
            _save_model(accelerator, model, tokenizer, snapshot_dir(workdir, done))
        if done % settings.checkpoint_every == 0 and done < settings.steps:
            _save_checkpoint(accelerator, roots, done, counters, settings.keep_checkpoints)
        if interval_steps == 0:
            interval_start = time.perf_counter()
    bar.close()
    if device.type == "cpu" and peak:
        # The CPU's ceiling is measured; measured again now, the better figure is kept, so that
        # other work during the first measurement cannot inflate the run's MFU.
        peak = max(peak, measure_matmul_flops())
        peak_source += ", the better of before and after training"

    summary = _run_facts(settings, counters, plan, train_data, accelerator, model, per_token)
    summary["attention"] = attention
    summary.update(peak_flops=peak, peak_source=peak_source)
    if main:
        log.close()
        if peak:
            recompute_mfu(workdir / "metrics.csv", per_token, peak * world)
        summary.update(_summarise_log(workdir / "metrics.csv"))
    _save_model(accelerator, model, tokenizer, final, summary)
    return summary


def _optimizer_and_schedule(model, settings: TrainSettings, accelerator):
    """AdamW with weight decay on matrices only, and the warmup-then-linear-decay schedule."""
    device = accelerator.device
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings.weight_decay),
        lr=settings.lr,
        betas=(settings.adam_beta1, settings.adam_beta2),
        eps=settings.adam_eps,
        fused=device.type in ("cuda", "cpu") and accelerator.state.deepspeed_plugin is None,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        partial(
            learning_rate_factor,
            warmup=settings.warmup_steps,
            total=settings.planned_steps,
            min_ratio=settings.min_lr_ratio,
        ),
    )
    return optimizer, schedule


def _optimizer_step(
    accelerator, model, forward, optimizer, schedule, batches, divisor, settings, interval_loss
):
    """One optimizer step over the micro-batches of this process; the gradient norm before
    clipping when gradients were synchronised (else ``None``). ``interval_loss`` accumulates
    the summed losses for the next log line."""
    device = accelerator.device
    grad_norm = None
    for input_ids, labels in batches:
        with accelerator.accumulate(model):
            output = forward(
                input_ids=input_ids.to(device),
                labels=labels.to(device),
                num_items_in_batch=divisor,
                use_cache=False,
            )
            accelerator.backward(output.loss)
            interval_loss += output.loss.detach()
            if accelerator.sync_gradients:
                if settings.grad_clip > 0:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
    return grad_norm


def _run_facts(settings, counters, plan, train_data, accelerator, model, per_token) -> dict:
    """What the summary says about the run itself: its size, hardware and arithmetic."""
    return {
        "steps": settings.steps,
        "tokens": counters["tokens"],
        "pad_fraction": counters["padding"] / max(1, counters["tokens"]),
        "epochs": plan.epochs_at(settings.steps),
        "train_sequences": len(train_data),
        "world_size": accelerator.num_processes,
        "accumulation": plan.accumulation,
        "device": str(accelerator.device),
        "precision": accelerator.mixed_precision,
        "compiled": settings.compile,
        "flops_per_token": per_token,
        "parameters": sum(p.numel() for p in accelerator.unwrap_model(model).parameters()),
    }


def _save_checkpoint(accelerator, root: Path, step: int, counters: dict, keep: int) -> None:
    partial_folder = checkpoint.partial_dir(root, step)
    accelerator.save_state(str(partial_folder), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpoint.finish(
            partial_folder,
            checkpoint.checkpoint_dir(root, step),
            {"step": step, "counters": dict(counters)},
        )
        checkpoint.prune(root, keep)
    accelerator.wait_for_everyone()


def snapshot_dir(workdir: Path, step: int) -> Path:
    """Where the model of ``step`` is saved when the run takes snapshots."""
    return Path(workdir) / SNAPSHOTS / f"{SNAPSHOT_PREFIX}{step:06d}"


def snapshots(folder: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every snapshot in a ``snapshots/`` folder, by step."""
    if not folder.is_dir():
        return []
    found = [
        (int(path.name.removeprefix(SNAPSHOT_PREFIX)), path)
        for path in folder.iterdir()
        if path.is_dir() and path.name.startswith(SNAPSHOT_PREFIX)
    ]
    return sorted(found)


def _save_model(
    accelerator, model, tokenizer, folder: Path, summary: dict[str, Any] | None = None
) -> None:
    """Model and tokenizer as ``save_pretrained`` folders, dropout off, written whole or not at
    all (a partial folder renamed at the end); every process takes part in gathering weights."""
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        partial_folder = folder.with_name(folder.name + checkpoint.PARTIAL_SUFFIX)
        config = accelerator.unwrap_model(model).config
        rates = {key: getattr(config, key) for key in _DROPOUT_KEYS}
        for key in _DROPOUT_KEYS:
            setattr(config, key, 0.0)
        try:
            accelerator.unwrap_model(model).save_pretrained(
                partial_folder, state_dict=state_dict, safe_serialization=True
            )
        finally:  # a snapshot taken mid-run leaves the live configuration as it was
            for key, value in rates.items():
                setattr(config, key, value)
        tokenizer.save_pretrained(partial_folder)
        if summary is not None:
            (partial_folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        partial_folder.rename(folder)
    accelerator.wait_for_everyone()


def _summarise_log(path: Path) -> dict[str, Any]:
    """Final losses and the steady-state speed (the first logged interval holds compile time)."""
    frame = read_metrics(path)
    steady = frame.iloc[1:] if len(frame) > 1 else frame
    heldout = frame["heldout_loss"].dropna()
    mfu_values = [v for v in steady["mfu"].dropna()]
    return {
        "final_loss": float(frame["loss"].iloc[-1]),
        "final_heldout_loss": float(heldout.iloc[-1]) if len(heldout) else math.nan,
        "tokens_per_s": float(statistics.median(steady["tokens_per_s"])),
        "mfu": float(statistics.median(mfu_values)) if mfu_values else math.nan,
        "train_seconds": float(frame["elapsed_s"].iloc[-1]),
    }
