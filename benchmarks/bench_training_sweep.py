"""Which small model learns the most per CPU-second? The sweep behind the ``tiny`` preset (chapter 4).

Every candidate (width, depth, vocabulary, sequence length, micro-batch) gets the same budget of
CPU-seconds: its compiled training speed is measured first (the fastest of several steps, the
best estimate of an unshared machine), and it then trains for as many tokens as it processes in
``--seconds`` at that speed, however long that takes on a loaded machine. Held-out loss is reported in bits per byte of text, which compares
tokenizers of different vocabularies fairly.

The data is the ``tiny`` profile's CodeTextbook when the run store holds it (``filtered_code``
and ``textbooks``), else a deterministic sample of local Python files (the standard library and
site-packages) as a stand-in. Results go to ``benchmarks/results/training_sweep.json``, which
chapter 4 shows with its provenance.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_training_sweep.py --seconds 45
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sysconfig
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore
from phi1lib.training.heldout import heldout_loss
from phi1lib.training.loop import train
from phi1lib.training.packing import PackedSequences, heldout_document, write_token_file
from phi1lib.training.presets import ModelPreset, build_config, padded_vocab_size
from phi1lib.training.speed import measure_training_speed
from phi1lib.training.tokenizer import train_bpe_tokenizer

RESULTS = Path(__file__).with_name("results") / "training_sweep.json"

# (name, preset, vocabulary, sequence length, batch); the first is the `tiny` preset's choice
L4 = ModelPreset(4, 128, 512, 2, max_positions=512)
CANDIDATES = [
    ("d128-L4 B16", L4, 2048, 256, 16),
    ("d128-L4 B32", L4, 2048, 256, 32),
    ("d128-L6 B16", ModelPreset(6, 128, 512, 2, max_positions=512), 2048, 256, 16),
    ("d192-L4 B16", ModelPreset(4, 192, 768, 3, max_positions=512), 2048, 256, 16),
    ("d96-L4 B16", ModelPreset(4, 96, 384, 2, max_positions=512), 2048, 256, 16),
    ("d128-L4 B16 V1024", L4, 1024, 256, 16),
    ("d128-L4 B16 V4096", L4, 4096, 256, 16),
    ("d128-L4 B32 T128", L4, 2048, 128, 32),
    ("d128-L4 B8 T512", L4, 2048, 512, 8),
]


def local_code_texts(max_files: int = 1500, seed: int = 0) -> list[str]:
    """A deterministic sample of the interpreter's own Python files (the stand-in corpus)."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    files = sorted({p for root in roots for p in root.rglob("*.py") if "phi1lib" not in p.parts})
    chosen = random.Random(seed).sample(files, min(max_files, len(files)))
    texts = []
    for path in sorted(chosen):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if 0 < len(text) <= 200_000:
            texts.append(text)
    return texts


def codetextbook_texts() -> tuple[list[str], str]:
    """The tiny profile's CodeTextbook if built, else the local stand-in."""
    store = RunStore("tiny")
    parts = [store.load("filtered_code"), store.load("textbooks")]
    if all(parts):
        texts = [t for artifact in parts for t in artifact.dataset("data")["text"] if t]
        return texts, "tiny CodeTextbook (filtered_code + textbooks)"
    return local_code_texts(), "stand-in: 1,500 local Python files (stdlib + site-packages)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="CPU-seconds per candidate")
    parser.add_argument("--only", nargs="*", help="names of candidates to run")
    args = parser.parse_args()

    tiny = load_profile("tiny", use_env=False)
    texts, source = codetextbook_texts()
    fraction = tiny.pretrain.heldout_fraction
    train_texts = [t for t in texts if not heldout_document(t, fraction)]
    heldout_texts = [t for t in texts if heldout_document(t, fraction)]
    print(
        f"data: {source}; {len(train_texts)} training and {len(heldout_texts)} held-out documents"
    )
    print(f"load average at start: {os.getloadavg()}; torch threads: {torch.get_num_threads()}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="phi1-sweep-") as scratch:
        scratch = Path(scratch)
        tokenizers = {}
        for name, preset, vocab, seq_len, micro in CANDIDATES:
            if args.only and name not in args.only:
                continue
            if vocab not in tokenizers:
                tokenizer = train_bpe_tokenizer(train_texts, vocab)
                folder = scratch / f"v{vocab}"
                write_token_file(train_texts, tokenizer, folder / "train.bin")
                info = write_token_file(heldout_texts, tokenizer, folder / "heldout.bin")
                tokenizers[vocab] = (tokenizer, folder, info)
            tokenizer, folder, info = tokenizers[vocab]
            config = build_config(
                preset, padded_vocab_size(len(tokenizer)), eos_token_id=tokenizer.eos_token_id
            )
            speed = measure_training_speed(config, seq_len=seq_len, micro_batch=micro, compile=True)
            best_tokens_per_s = micro * seq_len / speed.best_step_s
            steps = max(10, int(args.seconds * best_tokens_per_s / (micro * seq_len)))
            settings = replace(
                tiny.pretrain,
                seq_len=seq_len,
                micro_batch=micro,
                global_batch=micro,
                steps=steps,
                warmup_steps=max(1, steps // 10),
                eval_every=steps,
                checkpoint_every=steps,
                log_every=max(1, steps // 10),
                compile=True,
            )
            started = time.perf_counter()
            train_data = PackedSequences(folder / "train.bin", seq_len)
            heldout = PackedSequences(folder / "heldout.bin", seq_len)
            summary = train(
                init=config,
                tokenizer=tokenizer,
                train_data=train_data,
                heldout_data=None,
                settings=settings,
                workdir=scratch / name.replace(" ", "_"),
                description=name,
            )
            wall = time.perf_counter() - started
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(scratch / name.replace(" ", "_") / "final")
            loss = heldout_loss(model, heldout, max_sequences=256 * 256 // seq_len, batch_size=32)
            bits_per_byte = loss / math.log(2) * info.tokens / info.text_bytes
            row = {
                "candidate": name,
                "layers": preset.layers,
                "hidden": preset.hidden,
                "vocab": vocab,
                "seq_len": seq_len,
                "micro_batch": micro,
                "non_embedding_params": speed.non_embedding_params,
                "tokens_per_s": round(best_tokens_per_s),
                "model_gflops_per_s": round(best_tokens_per_s * speed.flops_per_token / 1e9, 1),
                "compile_s": round(speed.warmup_s, 1),
                "train_tokens": summary["tokens"],
                "train_wall_s": round(wall, 1),
                "heldout_loss": round(loss, 4),
                "heldout_bits_per_byte": round(bits_per_byte, 4),
            }
            rows.append(row)
            print(json.dumps(row))

    print(f"\n{'candidate':16s} {'params':>8s} {'tok/s':>7s} {'tokens':>8s} {'bits/byte':>9s}")
    for row in sorted(rows, key=lambda r: r["heldout_bits_per_byte"]):
        print(
            f"{row['candidate']:16s} {row['non_embedding_params'] / 1e6:7.2f}M "
            f"{row['tokens_per_s']:7d} {row['train_tokens']:8d} {row['heldout_bits_per_byte']:9.4f}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.processor() or platform.machine()}, "
                f"{torch.get_num_threads()} threads, torch {torch.__version__}",
                "load_average_end": os.getloadavg(),
                "seconds_per_candidate": args.seconds,
                "data": source,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
