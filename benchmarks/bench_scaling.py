"""Held-out loss against training compute for the ablation's three pretraining corpora (chapter 4).

The paper's Figure 2.1 compares (a) unfiltered code, (b) filtered code and (c) CodeTextbook at a
few fixed budgets. Here the tiny profile's model is trained on each corpus at several compute
budgets (each run with its own warmup-and-decay schedule, as a run of that length would be),
with several seeds, and scored on the same yardstick: the held-out slice of CodeTextbook, in nats
per token and bits per byte. A power law with a floor, ``L(C) = E + A * C**-alpha``, is fitted per
corpus to the seed means, and from the fits: how much less compute (c) needs than (a) and (b) to
reach the loss that (a) reaches at the largest budget.

Runs train in ``runs/tiny/.bench-scaling/`` and resume from there when the script is run again;
the result is written to ``benchmarks/results/scaling.json`` after every run, with the date,
machine, command and load average, which chapter 4 draws as recorded results.

    HF_HUB_OFFLINE=1 nice .venv/bin/python benchmarks/bench_scaling.py --steps 8,25,80,250,800 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from phi1lib import pipeline
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore
from phi1lib.training.flops import flops_per_token
from phi1lib.training.loop import train
from phi1lib.training.packing import PackedSequences
from phi1lib.training.stages import HELDOUT_FILE, TRAIN_FILE, model_config, tokenizer_of

CORPORA = {
    "(a) unfiltered code": "tokens_raw_code",
    "(b) filtered code": "tokens_filtered_code",
    "(c) CodeTextbook": "tokens_codetextbook",
}
RESULTS = Path(__file__).resolve().parent / "results" / "scaling.json"


def fit_power_law(flops: np.ndarray, loss: np.ndarray) -> dict[str, float] | None:
    """``L = E + A * (C / C0)**-alpha`` by least squares (C0: the smallest budget); ``None``
    when it does not converge or has too few points."""
    from scipy.optimize import curve_fit

    if len(flops) < 4:
        return None
    scale = float(flops.min())

    def law(c, e, a, alpha):
        return e + a * (c / scale) ** (-alpha)

    start = (float(loss.min()) * 0.8, float(loss.max() - loss.min() * 0.8), 0.3)
    try:
        (e, a, alpha), _ = curve_fit(
            law, flops, loss, p0=start, bounds=([0, 0, 0], [20, 50, 3]), maxfev=20000
        )
    except (RuntimeError, ValueError):
        return None
    residual = float(np.sqrt(np.mean((law(flops, e, a, alpha) - loss) ** 2)))
    return {"E": e, "A": a, "alpha": alpha, "C0": scale, "rms_residual": residual}


def compute_for(fit: dict[str, float], loss: float) -> float | None:
    """The compute at which a fitted law reaches ``loss`` (``None`` below its floor)."""
    if loss <= fit["E"]:
        return None
    return fit["C0"] * ((loss - fit["E"]) / fit["A"]) ** (-1.0 / fit["alpha"])


def _run(profile, tokenizer, corpus: str, steps: int, seed: int, args, root: Path) -> dict:
    store = RunStore(profile.name)
    settings = replace(
        profile.pretrain,
        steps=steps,
        schedule_steps=0,
        global_batch=args.batch,
        micro_batch=args.batch,
        warmup_steps=max(1, steps // 10),
        seed=seed,
        log_every=max(1, steps // 10),
        eval_every=steps,
        eval_sequences=args.heldout_sequences,
        checkpoint_every=max(50, steps // 4),
        compile=False,
    )
    seq_len = settings.seq_len
    summary = train(
        init=model_config(profile, tokenizer),
        tokenizer=tokenizer,
        train_data=PackedSequences(store.path(corpus) / TRAIN_FILE, seq_len),
        heldout_data=PackedSequences(store.path("tokens_codetextbook") / HELDOUT_FILE, seq_len),
        settings=settings,
        workdir=root / f"{corpus}-{steps}-{seed}",
        description=f"{corpus} {steps} steps seed {seed}",
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="8,25,80,250,800", help="budgets in optimizer steps")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--heldout-sequences", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    budgets = sorted({int(s) for s in args.steps.split(",")})
    seeds = [int(s) for s in args.seeds.split(",")]
    profile = load_profile("tiny", use_env=False)
    for corpus in CORPORA.values():
        pipeline.run(corpus, profile)
    store = RunStore(profile.name)
    tokenizer = tokenizer_of(store.load("tokenizer"))
    config = model_config(profile, tokenizer)
    per_token = flops_per_token(config, profile.pretrain.seq_len)
    heldout = PackedSequences(
        store.path("tokens_codetextbook") / HELDOUT_FILE, profile.pretrain.seq_len
    )
    bytes_per_token = heldout.info.text_bytes / heldout.info.tokens
    root = store.root / ".bench-scaling"
    record = {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "command": "HF_HUB_OFFLINE=1 nice .venv/bin/python "
        + " ".join(["benchmarks/bench_scaling.py", *map(shlex.quote, sys.argv[1:])]),
        "model": {"preset": profile.model.preset, "vocab_size": config.vocab_size},
        "seq_len": profile.pretrain.seq_len,
        "batch": args.batch,
        "flops_per_token": per_token,
        "heldout": "CodeTextbook held-out slice, bytes per token "
        f"{bytes_per_token:.3f} (for bits per byte)",
        "rows": [],
    }
    jobs = [(label, c, s, seed) for label, c in CORPORA.items() for s in budgets for seed in seeds]
    started = time.perf_counter()
    for label, corpus, steps, seed in tqdm(jobs, desc="scaling runs", unit="run"):
        summary = _run(profile, tokenizer, corpus, steps, seed, args, root)
        loss = summary["final_heldout_loss"]
        record["rows"].append(
            {
                "corpus": label,
                "stage": corpus,
                "steps": steps,
                "seed": seed,
                "tokens": summary["tokens"],
                "flops": summary["tokens"] * per_token,
                "train_seconds": summary.get("train_seconds"),
                "tokens_per_s": summary.get("tokens_per_s"),
                "heldout_loss": loss,
                "heldout_bits_per_byte": loss / math.log(2) / bytes_per_token,
            }
        )
        record["load_average"] = os.getloadavg()
        record["wall_s"] = round(time.perf_counter() - started, 1)
        record["fits"] = fits(record["rows"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2))
    for label, fit in record["fits"].items():
        print(label, json.dumps(fit))


def fits(rows: list[dict]) -> dict[str, dict]:
    """Per corpus: the seed means at each budget, the fitted law, and the compute (c) saves."""
    result: dict[str, dict] = {}
    for label in CORPORA:
        mine = [r for r in rows if r["corpus"] == label]
        budgets = sorted({r["flops"] for r in mine})
        means = [
            float(np.mean([r["heldout_loss"] for r in mine if r["flops"] == f])) for f in budgets
        ]
        result[label] = {
            "flops": budgets,
            "mean_heldout_loss": means,
            "fit": fit_power_law(np.array(budgets), np.array(means)) if budgets else None,
        }
    target_from = result["(a) unfiltered code"]["mean_heldout_loss"]
    textbook = result["(c) CodeTextbook"]["fit"]
    if target_from and textbook:
        target = target_from[-1]
        result["compute_saved"] = {"target_loss": target}
        for label in ("(a) unfiltered code", "(b) filtered code"):
            other = result[label]["fit"]
            need_c, need_other = compute_for(textbook, target), other and compute_for(other, target)
            result["compute_saved"][label] = {
                "flops_c": need_c,
                "flops_other": need_other,
                "ratio": need_other / need_c if need_c and need_other else None,
            }
    return result


if __name__ == "__main__":
    main()
