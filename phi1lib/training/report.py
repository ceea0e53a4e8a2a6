"""Tables for chapters 4 and 5: our presets and recipe beside the paper's, and the runs' results.

Every number in these tables is either computed here from our configuration and artifacts, or
taken from ``phi1lib.paper`` (the paper's own numbers, with their sources); the column names say
which is which. Introduced in chapter 4.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from phi1lib.paper import ARCHITECTURE, HYPERPARAMETERS
from phi1lib.profiles import Profile, load_profile
from phi1lib.training.presets import (
    PHI1_VOCAB_SIZE,
    build_config,
    get_preset,
    parameter_counts,
)

PAPER_SIZES = {"phi-1": "1.3B", "phi-1-small": "350M"}


def preset_table(profiles: Iterable[str] = ("smoke", "tiny", "gpu", "phi-1-small", "phi-1")):
    """One row per profile's model: sizes and parameter counts computed from the configuration.

    The vocabulary is the profile's (its tokenizer size rounded up, or 51,200), so the counts are
    those of the model the profile trains. Chapter 4.
    """
    rows = []
    for name in profiles:
        profile = load_profile(name, use_env=False)
        preset = get_preset(profile.model.preset)
        vocab = profile.model.vocab_size or _rounded(profile.tokenizer.vocab_size)
        counts = parameter_counts(build_config(preset, vocab))
        rows.append(
            {
                "profile": name,
                "layers": preset.layers,
                "width": preset.hidden,
                "MLP": preset.mlp,
                "heads x dim": f"{preset.heads} x {preset.head_dim}",
                "rotary dims": preset.rotary_dim,
                "vocabulary": vocab,
                "non-embedding params": _millions(counts["non_embedding"]),
                "total params": _millions(counts["total"]),
                "paper says": PAPER_SIZES.get(name, ""),
            }
        )
    return pd.DataFrame(rows).set_index("profile")


def _rounded(size: int) -> int:
    return -(-int(size) // 64) * 64


def _millions(count: int) -> str:
    return f"{count / 1e6:,.1f}M" if count < 1e9 else f"{count / 1e9:.3f}B"


def paper_architecture_check() -> pd.DataFrame:
    """The paper's stated sizes (``phi1lib.paper``) beside our presets' (chapter 4)."""
    rows = []
    for name, stated in ARCHITECTURE.items():
        preset = get_preset(name)
        ours = {
            "layers": preset.layers,
            "hidden": preset.hidden,
            "mlp": preset.mlp,
            "heads": preset.heads,
            "head_dim": preset.head_dim,
            "rotary_dim": preset.rotary_dim,
        }
        for key, value in stated.items():
            rows.append(
                {"model": name, "field": key, "paper": f"{value:,}", "our preset": f"{ours[key]:,}"}
            )
    for name in ARCHITECTURE:
        total = parameter_counts(build_config(name, PHI1_VOCAB_SIZE))["total"]
        rows.append(
            {
                "model": name,
                "field": "parameters",
                "paper": PAPER_SIZES[name],
                "our preset": f"{total:,}",
            }
        )
    return pd.DataFrame(rows).set_index(["model", "field"])


_RECIPE_FIELDS = (
    ("global batch (sequences)", "global_batch", "global_batch_sequences"),
    ("sequence length", "seq_len", "seq_len"),
    ("peak learning rate", "lr", "peak_lr"),
    ("warmup steps", "warmup_steps", "warmup_steps"),
    ("weight decay", "weight_decay", "weight_decay"),
    ("dropout", "dropout", "dropout"),
    ("precision", "precision", "precision"),
)


def recipe_table(phase: str, profiles: Iterable[Profile | str] = ("tiny", "phi-1")) -> pd.DataFrame:
    """A training phase's hyperparameters: the paper's (``phi1lib.paper``) beside our profiles'.

    ``phase`` is ``"pretrain"`` or ``"finetune"``; ``profiles`` are loaded profiles or names
    (the same profile twice is shown once). Chapters 4 and 5.
    """
    paper = HYPERPARAMETERS[phase]
    loaded: dict[str, Profile] = {}
    for item in profiles:
        profile = item if isinstance(item, Profile) else load_profile(item, use_env=False)
        loaded.setdefault(profile.name, profile)
    loaded = list(loaded.values())
    rows = []
    for label, ours, theirs in _RECIPE_FIELDS:
        row = {"": label, "paper": paper[theirs]}
        for profile in loaded:
            row[f"profile {profile.name}"] = getattr(profile.settings(phase), ours)
        rows.append(row)
    steps = paper.get("steps_kept", paper.get("steps"))
    rows.append(
        {
            "": "steps",
            "paper": steps,
            **{f"profile {p.name}": p.settings(phase).steps for p in loaded},
        }
    )
    rows.append(
        {
            "": "schedule length (steps)",
            "paper": paper.get("steps_planned", steps),
            **{f"profile {p.name}": p.settings(phase).planned_steps for p in loaded},
        }
    )
    rows.append(
        {
            "": "tokens seen",
            "paper": f"{steps * paper['global_batch_sequences'] * paper['seq_len'] / 1e9:.1f}B",
            **{f"profile {p.name}": _tokens(p, phase) for p in loaded},
        }
    )
    return pd.DataFrame(rows).set_index("")


def _tokens(profile: Profile, phase: str) -> str:
    settings = profile.settings(phase)
    tokens = settings.steps * settings.global_batch * settings.seq_len
    return f"{tokens / 1e9:.1f}B" if tokens >= 1e9 else f"{tokens / 1e6:.2f}M"


def run_summary(artifacts: Mapping[str, Any]) -> pd.DataFrame:
    """One row per training artifact: tokens, final losses, speed, MFU (chapters 4 and 5)."""
    rows = []
    for label, artifact in artifacts.items():
        summary = artifact.json("training.json")
        rows.append(
            {
                "run": label,
                "steps": summary["steps"],
                "tokens": f"{summary['tokens'] / 1e6:.2f}M",
                "epochs": round(summary["epochs"], 2),
                "final train loss": round(summary["final_loss"], 3),
                "final held-out loss": round(summary["final_heldout_loss"], 3),
                "tokens/s": f"{summary['tokens_per_s']:,.0f}",
                "MFU": f"{summary['mfu']:.0%}",
                "train time (s)": round(summary["train_seconds"], 1),
                "device": summary["device"],
                "attention": summary["attention"],
                "compiled": summary["compiled"],
            }
        )
    return pd.DataFrame(rows).set_index("run")


def read_sweep(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The preset sweep recorded by ``benchmarks/bench_training_sweep.py`` and its provenance."""
    data = json.loads(Path(path).read_text())
    frame = pd.DataFrame(data["rows"]).sort_values("heldout_bits_per_byte").set_index("candidate")
    provenance = {key: value for key, value in data.items() if key != "rows"}
    return frame, provenance


def side_by_side(record: Mapping[str, Any], columns: Mapping[str, str]) -> str:
    """HTML: one held-out exercise's prompt, then each model's completion in its own column.

    ``columns`` maps a heading to the stage whose completion it shows; each column says whether
    the completion passed the exercise's tests. Chapter 5.
    """
    from html import escape

    cells = []
    for heading, stage in columns.items():
        answer = record[stage]
        verdict = "passes its tests" if answer["passed"] else f"fails ({answer['status']})"
        cells.append(
            f"<td style='vertical-align:top'><b>{escape(heading)}</b>: {escape(verdict)}"
            f"<pre>{escape(answer['completion']) or '(empty)'}</pre></td>"
        )
    return (
        f"<p><b>{escape(record['task_id'])}</b></p><pre>{escape(record['prompt'])}</pre>"
        f"<table><tr>{''.join(cells)}</tr></table>"
    )


def corpus_table(counts: Mapping[str, Any], seq_len: int) -> pd.DataFrame:
    """A packed corpus's two parts (training, held out): documents, tokens, bytes per token and
    the sequences of ``seq_len`` they fill, from the packing stage's counts (chapter 4)."""
    return pd.DataFrame(
        {
            split: {
                "documents": counts[f"{split}_documents"],
                "tokens": counts[f"{split}_tokens"],
                "bytes per token": round(
                    counts[f"{split}_text_bytes"] / counts[f"{split}_tokens"], 2
                ),
                f"sequences of {seq_len}": -(-counts[f"{split}_tokens"] // seq_len),
            }
            for split in ("train", "heldout")
        }
    )


def pretraining_costs(
    profiles: Iterable[str] = ("phi-1-small", "phi-1"),
    gpus: Iterable[str] = ("A100", "H100"),
    mfu: float = 0.5,
    count: int = 8,
) -> pd.DataFrame:
    """What pretraining a profile costs on ``count`` GPUs at ``mfu``: tokens, FLOPs and hours,
    from the profile's steps, batch and model by the FLOP count of chapter 4."""
    from phi1lib.training.flops import GPU_PEAK_FLOPS, flops_per_token

    rows = []
    for name in profiles:
        profile = load_profile(name, use_env=False)
        section = profile.pretrain
        config = build_config(profile.model.preset, profile.model.vocab_size)
        tokens = section.steps * section.global_batch * section.seq_len
        total = tokens * flops_per_token(config, section.seq_len)
        for gpu in gpus:
            rows.append(
                {
                    "profile": name,
                    "tokens": f"{tokens / 1e9:.1f}B",
                    "FLOPs": f"{total:.2e}",
                    "GPUs": f"{count} x {gpu}",
                    f"hours at {mfu:.0%} MFU": round(
                        total / (count * GPU_PEAK_FLOPS[gpu] * mfu) / 3600, 1
                    ),
                }
            )
    return pd.DataFrame(rows)


def exercise_packing_table(
    lengths: Iterable[int],
    seq_len: int,
    measured_pad_fraction: float,
    counts: Mapping[str, Any],
    packing: str,
) -> pd.DataFrame:
    """The padding one exercise per padded sequence would cost, beside what packing cost in the
    fine-tuning run (chapter 5). ``lengths`` are the exercises' token counts with their
    ``<|endoftext|>``; ``counts`` are the packing stage's."""
    from phi1lib.training.packing import one_per_sequence_cost

    lengths = list(lengths)
    costs = {}
    for length in sorted({seq_len, 2048}):
        cost = one_per_sequence_cost(lengths, length)
        costs[f"one exercise per padded sequence of {length}"] = {
            "pad tokens (% of processed tokens)": 100 * cost["padding"],
            "exercise tokens cut off (%)": 100 * cost["truncated"],
        }
    costs[f"packed ({packing}) into rows of {seq_len} (measured in the fine-tuning run)"] = {
        "pad tokens (% of processed tokens)": 100 * measured_pad_fraction,
        "exercises cut off (%)": 100 * counts.get("train_truncated", 0) / counts["train_documents"],
    }
    return pd.DataFrame(costs).T.round(3)


def paper_finetuning_jump() -> pd.DataFrame:
    """The paper's HumanEval pass@1 before and after fine-tuning on CodeExercises (§2.1,
    Table 1), for the 1.3B and the 350M model."""
    from phi1lib.paper import FILTER_ABLATION_350M, PHI1_FAMILY

    return pd.DataFrame(
        {
            "phi-1-base -> phi-1, 1.3B (paper)": {
                "HumanEval pass@1 (%)": f"{PHI1_FAMILY['phi-1-base']['humaneval']} -> "
                f"{PHI1_FAMILY['phi-1']['humaneval']}"
            },
            "CodeTextbook -> phi-1-small, 350M (paper)": {
                "HumanEval pass@1 (%)": f"{FILTER_ABLATION_350M[-1]['humaneval']} -> "
                f"{PHI1_FAMILY['phi-1-small']['humaneval']}"
            },
        }
    )
