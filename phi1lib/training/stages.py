"""The training stages of the pipeline: tokenizer, packed corpora, pretraining runs, fine-tuning.

``tokenizer``            the tokenizer (the paper's, or a BPE trained on CodeTextbook's training part)
``tokens_codetextbook``  CodeTextbook = ``filtered_code`` + ``textbooks``, packed, with a held-out slice
``tokens_filtered_code`` the filtered code alone, packed (ablation (b))
``tokens_raw_code``      the unfiltered corpus, packed (ablation (a))
``tokens_exercises``     CodeExercises: the training set whole exercises per row with token roles
                         (``[exercise_tokens]``), the held-out set as a stream
``pretrain``             phi-1-base: the profile's model pretrained on CodeTextbook
``pretrain_filtered``    the same model and token budget on the filtered code only
``pretrain_unfiltered``  the same model and token budget on the unfiltered code
``finetune``             phi-1: ``pretrain`` fine-tuned on CodeExercises

A training stage trains in its context's work folder
(``runs/<profile>/.work/<stage>-<fingerprint>/``), which survives interruptions, so building the
stage again resumes from the newest checkpoint; under a multi-process launch every process
trains in it together. The finished stage holds
``model/`` (model and tokenizer, ``save_pretrained``), ``metrics.csv``, ``tensorboard/`` and
``training.json``.
Introduced in chapter 4 ("Pretraining phi-1-base").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact
from phi1lib.training.loop import SNAPSHOTS, train
from phi1lib.training.packing import (
    PackedSequences,
    heldout_document,
    write_exercise_file,
    write_token_file,
)
from phi1lib.training.presets import build_config, get_preset, padded_vocab_size
from phi1lib.training.tokenizer import (
    TRAINED_SOURCE,
    bytes_per_token,
    load_source_tokenizer,
    load_tokenizer,
    train_bpe_tokenizer,
)

CODETEXTBOOK_PARTS = ("filtered_code", "textbooks")
TRAIN_FILE = "train.bin"
HELDOUT_FILE = "heldout.bin"


class CorpusRecordError(ValueError):
    """A record of an upstream dataset that cannot be trained on."""


def texts(artifact: Artifact, dataset: str = "data", batch_size: int = 1000) -> Iterator[str]:
    """The ``text`` column of a stage's dataset, streamed; a bad record is named (chapter 4)."""
    data = artifact.dataset(dataset)
    if "text" not in data.column_names:
        raise CorpusRecordError(
            f"stage {artifact.stage!r} dataset {dataset!r} ({artifact.path}) has no 'text' column; "
            f"columns: {data.column_names}"
        )
    row = 0
    for batch in data.select_columns(["text"]).iter(batch_size=batch_size):
        for text in batch["text"]:
            if not isinstance(text, str):
                raise CorpusRecordError(
                    f"stage {artifact.stage!r} dataset {dataset!r} record {row}: text is "
                    f"{type(text).__name__}, not a string"
                )
            row += 1
            if text:
                yield text


def _count(artifact: Artifact, dataset: str = "data") -> int:
    return len(artifact.dataset(dataset))


def _heldout_fraction(profile: Profile) -> float:
    return profile.pretrain.heldout_fraction


# ---------------------------------------------------------------------------------- tokenizer


def _tokenizer_config(profile: Profile) -> dict[str, Any]:
    return {"tokenizer": profile.section("tokenizer"), "heldout": _heldout_fraction(profile)}


def _build_tokenizer(ctx: StageContext) -> dict[str, Any]:
    settings = ctx.profile.tokenizer
    fraction = _heldout_fraction(ctx.profile)

    def training_documents() -> Iterator[str]:
        for part in CODETEXTBOOK_PARTS:
            yield from (t for t in texts(ctx.inputs[part]) if not heldout_document(t, fraction))

    if settings.source == TRAINED_SOURCE:
        tokenizer = train_bpe_tokenizer(training_documents(), settings.vocab_size)
    else:
        tokenizer = load_source_tokenizer(settings.source)
    tokenizer.save_pretrained(ctx.out / "tokenizer")
    sample = [t for _, t in zip(range(200), training_documents(), strict=False)]
    return {
        "vocab_size": len(tokenizer),
        "source": settings.source,
        "bytes_per_token": round(bytes_per_token(tokenizer, sample), 3),
    }


TOKENIZER = Stage(
    name="tokenizer",
    build=_build_tokenizer,
    config=_tokenizer_config,
    needs=CODETEXTBOOK_PARTS,
    version=3,  # 2: newlines are tokens of their own; 3: so are runs of spaces
    description="the tokenizer: the paper's (online) or a byte-level BPE trained on CodeTextbook",
)


def tokenizer_of(artifact: Artifact):
    """The tokenizer saved by the ``tokenizer`` stage."""
    return load_tokenizer(artifact.path / "tokenizer")


# ------------------------------------------------------------------------------ packed corpora


def _pack(ctx: StageContext, documents, total: int, filename: str, label: str) -> dict[str, int]:
    tokenizer = tokenizer_of(ctx.inputs["tokenizer"])
    info = write_token_file(
        documents, tokenizer, ctx.out / filename, total=total, description=label
    )
    if info.tokens == 0:
        raise CorpusRecordError(f"{label}: no documents to pack into {filename}")
    return {"tokens": info.tokens, "documents": info.documents, "text_bytes": info.text_bytes}


def _corpus_stage(name: str, parts: tuple[str, ...], with_heldout: bool, description: str):
    """A stage that packs the training documents of ``parts`` (and, if asked, the held-out ones)."""

    def build(ctx: StageContext) -> dict[str, Any]:
        fraction = _heldout_fraction(ctx.profile)
        total = sum(_count(ctx.inputs[part]) for part in parts)

        def documents(held_out: bool) -> Iterator[str]:
            for part in parts:
                for text in texts(ctx.inputs[part]):
                    if heldout_document(text, fraction) == held_out:
                        yield text

        counts = {
            f"train_{k}": v
            for k, v in _pack(ctx, documents(False), total, TRAIN_FILE, f"{name} (train)").items()
        }
        if with_heldout:
            heldout = _pack(ctx, documents(True), total, HELDOUT_FILE, f"{name} (held out)")
            counts.update({f"heldout_{k}": v for k, v in heldout.items()})
        return counts

    return Stage(
        name=name,
        build=build,
        config=lambda profile: {"heldout": _heldout_fraction(profile), "parts": list(parts)},
        needs=("tokenizer", *parts),
        description=description,
    )


TOKENS_CODETEXTBOOK = _corpus_stage(
    "tokens_codetextbook",
    CODETEXTBOOK_PARTS,
    with_heldout=True,
    description="CodeTextbook (filtered code + textbooks) tokenized and packed, with a held-out slice",
)
TOKENS_FILTERED_CODE = _corpus_stage(
    "tokens_filtered_code",
    ("filtered_code",),
    with_heldout=False,
    description="the filtered code alone, tokenized and packed (ablation b)",
)
TOKENS_RAW_CODE = _corpus_stage(
    "tokens_raw_code",
    ("raw_code",),
    with_heldout=False,
    description="the unfiltered code corpus, tokenized and packed (ablation a)",
)


def _exercise_pairs(artifact: Artifact) -> Iterator[tuple[str, str]]:
    """``(prompt, text)`` of every training exercise, a bad record named (chapter 5)."""
    data = artifact.dataset("data")
    for row, record in enumerate(data.select_columns(["prompt", "text"])):
        prompt, text = record["prompt"], record["text"]
        if not isinstance(prompt, str) or not isinstance(text, str) or not text.startswith(prompt):
            raise CorpusRecordError(
                f"stage {artifact.stage!r} dataset 'data' record {row}: its text does not start "
                "with its prompt, so the solution cannot be told apart"
            )
        yield prompt, text


def _build_exercise_tokens(ctx: StageContext) -> dict[str, Any]:
    exercises = ctx.inputs["exercises"]
    settings = ctx.profile.exercise_tokens
    if settings.packing == "whole":
        info = write_exercise_file(
            _exercise_pairs(exercises),
            tokenizer_of(ctx.inputs["tokenizer"]),
            ctx.out / TRAIN_FILE,
            seq_len=ctx.profile.finetune.seq_len,
            loss_on=settings.loss_on,
            total=_count(exercises, "data"),
            description="exercises (train, whole)",
        )
        train_counts = {
            "tokens": info.tokens,
            "documents": info.documents,
            "text_bytes": info.text_bytes,
            "truncated": info.truncated,
        }
    else:
        train_counts = _pack(
            ctx,
            texts(exercises, "data"),
            _count(exercises, "data"),
            TRAIN_FILE,
            "exercises (train)",
        )
    heldout_counts = _pack(
        ctx,
        texts(exercises, "heldout"),
        _count(exercises, "heldout"),
        HELDOUT_FILE,
        "exercises (held out)",
    )
    return {
        **{f"train_{k}": v for k, v in train_counts.items()},
        **{f"heldout_{k}": v for k, v in heldout_counts.items()},
    }


TOKENS_EXERCISES = Stage(
    name="tokens_exercises",
    build=_build_exercise_tokens,
    config=lambda profile: {
        "exercise_tokens": profile.section("exercise_tokens"),
        "seq_len": profile.finetune.seq_len,
    },
    needs=("tokenizer", "exercises"),
    description="CodeExercises (training and held-out sets) tokenized and packed",
)


# ------------------------------------------------------------------------------- training runs


def model_config(profile: Profile, tokenizer):
    """The ``PhiConfig`` of the profile's preset, sized for the tokenizer (chapter 4)."""
    vocab = profile.model.vocab_size or padded_vocab_size(len(tokenizer))
    if vocab < len(tokenizer):
        raise ValueError(
            f"model.vocab_size {vocab} is smaller than the tokenizer ({len(tokenizer)})"
        )
    return build_config(
        profile.model.preset,
        vocab,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _model_section(profile: Profile) -> dict[str, Any]:
    return {**profile.section("model"), "sizes": get_preset(profile.model.preset).to_dict()}


def export_run(workdir: Path, out: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Move the finished model (and the snapshots, when the run took some) into the artifact
    and copy the logs; the checkpoints stay behind, in the work folder that the pipeline
    removes once the stage is stored."""
    shutil.move(str(workdir / "final"), str(out / "model"))
    if (workdir / SNAPSHOTS).is_dir():
        shutil.move(str(workdir / SNAPSHOTS), str(out / SNAPSHOTS))
    shutil.copy2(workdir / "metrics.csv", out / "metrics.csv")
    if (workdir / "tensorboard").exists():
        shutil.copytree(workdir / "tensorboard", out / "tensorboard")
    (out / "training.json").write_text(json.dumps(dict(summary), indent=2))
    keys = ("steps", "tokens", "final_loss", "final_heldout_loss", "tokens_per_s", "mfu")
    return {key: summary[key] for key in keys if key in summary}


def _train(ctx: StageContext, phase: str, data: str) -> dict[str, Any]:
    """Train the stage's model in its work folder (every process of a launch calls this) and
    return the run's summary: ``phase`` is the profile section it trains with, ``data`` the
    packed corpus it reads (chapter 4)."""
    settings = ctx.profile.settings(phase)
    inputs = ctx.inputs
    if phase == "pretrain":
        tokenizer = tokenizer_of(inputs["tokenizer"])
        init = model_config(ctx.profile, tokenizer)
        heldout = PackedSequences(
            inputs["tokens_codetextbook"].path / HELDOUT_FILE, settings.seq_len
        )
    else:
        init = inputs["pretrain"].path / "model"
        tokenizer = load_tokenizer(init)
        heldout = PackedSequences(inputs["tokens_exercises"].path / HELDOUT_FILE, settings.seq_len)
    return train(
        init=init,
        tokenizer=tokenizer,
        train_data=PackedSequences(inputs[data].path / TRAIN_FILE, settings.seq_len),
        heldout_data=heldout,
        settings=settings,
        workdir=ctx.work,
        description=ctx.stage.name,
    )


def _training_stage(
    name: str, *, phase: str, data: str, needs: tuple[str, ...], description: str
) -> Stage:
    """A stage that trains the profile's model with section ``phase`` on the corpus ``data``."""

    def build(ctx: StageContext) -> dict[str, Any]:
        summary = _train(ctx, phase, data)
        if not ctx.main_process:
            return {}  # the main process of the launch stores what they trained together
        return export_run(ctx.work, ctx.out, summary)

    def config(profile: Profile) -> dict[str, Any]:
        values = {phase: profile.section(phase)}
        if phase == "pretrain":
            values["model"] = _model_section(profile)
        return values

    # version 2: held-out loss is logged on sequences spread over the whole held-out file
    # version 3: a CPU's MFU uses the better of two ceiling measurements (before, after training)
    return Stage(
        name=name,
        build=build,
        config=config,
        needs=needs,
        version=3,
        description=description,
        collective=True,
    )


PRETRAIN = _training_stage(
    "pretrain",
    phase="pretrain",
    data="tokens_codetextbook",
    needs=("tokenizer", "tokens_codetextbook"),
    description="phi-1-base: the profile's model pretrained on CodeTextbook",
)
PRETRAIN_FILTERED = _training_stage(
    "pretrain_filtered",
    phase="pretrain",
    data="tokens_filtered_code",
    needs=("tokenizer", "tokens_filtered_code", "tokens_codetextbook"),
    description="ablation (b): the same model and token budget on the filtered code alone",
)
PRETRAIN_UNFILTERED = _training_stage(
    "pretrain_unfiltered",
    phase="pretrain",
    data="tokens_raw_code",
    needs=("tokenizer", "tokens_raw_code", "tokens_codetextbook"),
    description="ablation (a): the same model and token budget on the unfiltered code",
)
FINETUNE = _training_stage(
    "finetune",
    phase="finetune",
    data="tokens_exercises",
    needs=("pretrain", "tokens_exercises"),
    description="phi-1: phi-1-base fine-tuned on CodeExercises",
)
