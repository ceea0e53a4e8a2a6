"""The stages of chapter 1, from real code to the filtered code of CodeTextbook.

``code_corpus``     read the corpus (every file, skipped ones with their reason)
``raw_code``        exact and near duplicates removed, tokens counted: the *unfiltered* corpus
``code_judgements`` the teacher's 0-5 educational-value labels for a sample of ``raw_code``
``code_embeddings`` one embedding per ``raw_code`` file
``edu_classifier``  a random forest trained on the judged files' embeddings, with its metrics
``filtered_code``   every file scored; the ones at or above the threshold kept, with ``edu_score``

``raw_code`` and ``filtered_code`` are what later chapters read: the ablation's unfiltered
corpus and the filtered half of CodeTextbook, each a ``data`` dataset with a ``text`` column and
token counts in its manifest. Introduced in chapter 1.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from phi1lib.dedup import deduplicate
from phi1lib.embeddings import count_tokens, load_embedder
from phi1lib.filtering import classifier as forest
from phi1lib.filtering.corpus import SKIP_REASONS, corpus_records
from phi1lib.filtering.judge import judge_texts, sample_indices, score_counts
from phi1lib.filtering.scoring import MODEL_FILE, embedding_view
from phi1lib.pipeline import Stage, StageContext
from phi1lib.teacher.tasks import JUDGE

EMBED_BLOCK = 1024  # files embedded between two saves of the resumable work
MIN_LABELLED = 0.9  # below this share of usable answers the judge stage fails (nothing is stored)
SWEEP = tuple(round(t, 2) for t in np.arange(0.05, 1.0, 0.05))
JUDGE_CACHE = "teacher/code_judgements"  # the judge's answers, kept between builds


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _corpus_config(profile) -> dict[str, Any]:
    corpus = profile.section("corpus")
    del corpus["token_counter"]  # counting tokens is raw_code's business
    if corpus["source"] != "hub":
        del corpus["hub_sources"]  # streams that are not read change nothing
    return corpus


def build_code_corpus(ctx: StageContext) -> dict[str, Any]:
    """Read every file of the profile's corpus source into one dataset, skipped files included."""
    from datasets import Dataset, Features, Value

    features = Features(
        {
            "text": Value("string"),
            "path": Value("string"),
            "package": Value("string"),
            "source": Value("string"),
            "size": Value("int64"),
            "skip_reason": Value("string"),
        }
    )
    dataset = Dataset.from_generator(
        corpus_records,
        gen_kwargs={"corpus": _corpus_config(ctx.profile), "progress": True},
        features=features,
        cache_dir=str(ctx.work / "generator"),
    )
    dataset.save_to_disk(str(ctx.out / "data"))
    del dataset
    reasons = Counter(_load(ctx.out / "data")["skip_reason"])
    counts = {"files": sum(reasons.values()), "readable": reasons.get(None, 0)}
    counts.update({f"skipped_{reason}": reasons.get(reason, 0) for reason in SKIP_REASONS})
    return counts


def _load(path: Path):
    from datasets import load_from_disk

    return load_from_disk(str(path))


def build_raw_code(ctx: StageContext) -> dict[str, Any]:
    """Drop skipped files, remove exact and near duplicates, count tokens."""
    corpus = ctx.inputs["code_corpus"].dataset()
    readable = corpus.filter(
        lambda reason: reason is None, input_columns="skip_reason", keep_in_memory=True
    )
    texts = readable["text"]
    dedup = ctx.profile.dedup
    result = deduplicate(
        texts,
        near=dedup.near,
        threshold=dedup.threshold,
        num_perm=dedup.num_perm,
        ngram_size=dedup.ngram_size,
        progress=True,
    )
    kept = readable.select(result.kept, keep_in_memory=True).remove_columns("skip_reason")
    tokens = count_tokens(kept["text"], ctx.profile.corpus.token_counter)
    kept = kept.add_column("tokens", tokens)
    kept.save_to_disk(str(ctx.out / "data"))
    paths = readable["path"]
    report = result.to_dict()
    report["clusters"] = [
        {"kind": kind, "paths": [paths[i] for i in members]}
        for kind, groups in (("exact", result.exact_groups), ("near", result.near_clusters))
        for members in groups
    ]
    report["token_counter"] = ctx.profile.corpus.token_counter
    _write_json(ctx.out / "dedup.json", report)
    summary = result.summary()
    return {
        "files": len(kept),
        "tokens": int(sum(tokens)),
        "bytes": int(sum(kept["size"])),
        "input_files": summary["input"],
        "removed_exact": summary["removed_exact"],
        "removed_near": summary["removed_near"],
        "near_clusters": summary["near_clusters"],
        "largest_cluster": summary["largest_cluster"],
    }


def _judge_config(profile) -> dict[str, Any]:
    teacher = profile.section("teacher")
    answer_shaping = ("endpoint", "model", "budget_tokens", "budget_usd", "batch")
    return {
        "judge": profile.section("judge"),
        "teacher": {key: teacher[key] for key in answer_shaping if key in teacher},
    }


def build_code_judgements(ctx: StageContext) -> dict[str, Any]:
    """Ask the teacher about a deterministic sample of ``raw_code``; keep every answer."""
    from datasets import Dataset

    raw = ctx.inputs["raw_code"].dataset()
    judge = ctx.profile.judge
    chosen = sample_indices(len(raw), judge.sample_size, judge.seed)
    sample = raw.select(chosen, keep_in_memory=True)
    ids = [f"raw_code/{i}:{path}" for i, path in zip(chosen, sample["path"], strict=True)]
    rows, report = judge_texts(
        sample["text"],
        ids,
        ctx.profile,
        cache_dir=ctx.cache(JUDGE_CACHE),
        max_chars=judge.max_chars,
    )
    table = {
        "index": chosen,
        "path": sample["path"],
        "package": sample["package"],
        "score": [row["score"] for row in rows],
        "educational": [row["educational"] for row in rows],
        "reason": [row["reason"] for row in rows],
        "status": [row["status"] for row in rows],
        "error": [row["error"] for row in rows],
    }
    labelled = [row for row in rows if row["score"] is not None]
    if len(labelled) < MIN_LABELLED * len(rows):
        failed = [row for row in rows if row["score"] is None]
        raise RuntimeError(
            f"the judge answered only {len(labelled)} of {len(rows)} files usably "
            f"({report.summary()}); first problem: {failed[0]['error']}. Answers so far are "
            "cached: fix the teacher and run the stage again to ask only for the rest."
        )
    Dataset.from_dict(table).save_to_disk(str(ctx.out / "data"))
    # What a rebuild from the cache reproduces byte for byte; the run's own costs go in counts.
    statuses = {k: v for k, v in report.counts.items() if k != "cached"}
    _write_json(
        ctx.out / "report.json",
        {"template": JUDGE, "model": ctx.profile.teacher.model, "statuses": statuses},
    )
    return {
        "teacher_run": report.summary(),
        "teacher_tokens": report.tokens,
        "teacher_cost_usd": round(report.cost_usd, 4),
        "judged": len(rows),
        "labelled": len(labelled),
        "educational": sum(bool(row["educational"]) for row in labelled),
        "mean_score": round(float(np.mean([r["score"] for r in labelled])), 4) if labelled else 0,
        **score_counts(rows),
    }


def build_code_embeddings(ctx: StageContext) -> dict[str, Any]:
    """Embed every ``raw_code`` file (its :func:`embedding_view`); an interrupted run resumes.

    Blocks of ``EMBED_BLOCK`` files are saved to the work folder as soon as they are done, and a
    rerun with the same input and settings starts from the first missing block.
    """
    raw = ctx.inputs["raw_code"]
    embed = ctx.profile.embed
    texts = [embedding_view(text) for text in raw.dataset()["text"]]
    embedder = load_embedder(
        embed.model,
        max_tokens=embed.max_tokens,
        max_chunks=embed.max_chunks,
        batch_size=embed.batch_size,
    )
    blocks = []
    for start in range(0, len(texts), EMBED_BLOCK):
        block_file = ctx.work / f"{start:09d}.npy"
        if not block_file.exists():
            vectors = embedder.embed(texts[start : start + EMBED_BLOCK], progress=True)
            np.save(ctx.work / f"{start:09d}.tmp.npy", vectors)
            (ctx.work / f"{start:09d}.tmp.npy").replace(block_file)
        blocks.append(np.load(block_file))
    embeddings = np.concatenate(blocks) if blocks else np.zeros((0, embedder.dim), np.float32)
    np.save(ctx.out / "embeddings.npy", embeddings)
    return {"files": len(embeddings), "dim": int(embedder.dim), "model": embed.model}


def build_edu_classifier(ctx: StageContext) -> dict[str, Any]:
    """Train the forest on the judged files' embeddings; save it with its held-out metrics."""
    judgements = ctx.inputs["code_judgements"].dataset()
    embeddings = np.load(ctx.inputs["code_embeddings"].file("embeddings.npy"))
    labelled = judgements.filter(
        lambda score: score is not None, input_columns="score", keep_in_memory=True
    )
    index = np.asarray(labelled["index"], dtype=int)
    labels = np.asarray(labelled["educational"], dtype=int)
    settings = ctx.profile.classifier
    trained = forest.train_classifier(
        embeddings[index],
        labels,
        n_estimators=settings.n_estimators,
        test_fraction=settings.test_fraction,
        threshold_rule=settings.threshold_rule,
        threshold=settings.threshold,
        seed=settings.seed,
    )
    forest.save_classifier(trained.model, ctx.out / MODEL_FILE)
    test_labels = labels[trained.test_index]
    _write_json(
        ctx.out / "metrics.json",
        {
            **trained.metrics,
            "sweep": forest.threshold_sweep(test_labels, trained.test_proba, SWEEP),
        },
    )
    scores = np.asarray(labelled["score"])
    for name, rows, proba in (
        ("heldout.json", trained.test_index, trained.test_proba),
        ("training.json", trained.train_index, trained.oob_proba),
    ):
        _write_json(
            ctx.out / name,
            {
                "raw_index": index[rows].tolist(),
                "judge_score": scores[rows].tolist(),
                "educational": labels[rows].tolist(),
                "edu_score": [round(float(p), 6) for p in proba],
            },
        )
    metrics = trained.metrics
    return {
        "train": metrics["train"],
        "test": metrics["test"],
        "threshold": trained.threshold,
        "accuracy": round(metrics["accuracy"], 4),
        "roc_auc": None if metrics["roc_auc"] is None else round(metrics["roc_auc"], 4),
        "precision": round(metrics["precision"], 4),
        "recall": round(metrics["recall"], 4),
    }


def build_filtered_code(ctx: StageContext) -> dict[str, Any]:
    """Score every ``raw_code`` file and keep those at or above the classifier's threshold.

    A file the forest was trained on gets its out-of-bag score (from the trees that did not
    see it), so that the training files are not favoured over the rest of the corpus.
    """
    from datasets import Dataset

    raw = ctx.inputs["raw_code"].dataset()
    embeddings = np.load(ctx.inputs["code_embeddings"].file("embeddings.npy"))
    classifier_artifact = ctx.inputs["edu_classifier"]
    model = forest.load_classifier(classifier_artifact.file(MODEL_FILE))
    threshold = classifier_artifact.json("metrics.json")["threshold"]
    scores = forest.educational_probability(model, embeddings)
    training = classifier_artifact.json("training.json")
    scores[training["raw_index"]] = training["edu_score"]
    kept_mask = scores >= threshold
    rounded = [round(float(s), 6) for s in scores]
    trained_on = np.zeros(len(raw), dtype=bool)
    trained_on[training["raw_index"]] = True
    Dataset.from_dict(
        {
            "path": raw["path"],
            "package": raw["package"],
            "tokens": raw["tokens"],
            "edu_score": rounded,
            "kept": kept_mask.tolist(),
            "trained_on": trained_on.tolist(),
        }
    ).save_to_disk(str(ctx.out / "scores"))
    kept_index = np.flatnonzero(kept_mask).tolist()
    kept = raw.select(kept_index, keep_in_memory=True)
    kept = kept.add_column("edu_score", [rounded[i] for i in kept_index])
    kept.save_to_disk(str(ctx.out / "data"))
    tokens = np.asarray(raw["tokens"])
    return {
        "files": len(kept_index),
        "tokens": int(tokens[kept_mask].sum()),
        "input_files": len(raw),
        "input_tokens": int(tokens.sum()),
        "threshold": threshold,
        "kept_file_fraction": round(len(kept_index) / max(len(raw), 1), 4),
        "kept_token_fraction": round(float(tokens[kept_mask].sum() / max(tokens.sum(), 1)), 4),
    }


CODE_CORPUS = Stage(
    "code_corpus",
    build_code_corpus,
    _corpus_config,
    description="Real Python files, one record each; unreadable, binary, huge, empty and "
    "unparsable files kept as records with their skip reason.",
)
RAW_CODE = Stage(
    "raw_code",
    build_raw_code,
    lambda p: {"dedup": p.section("dedup"), "token_counter": p.corpus.token_counter},
    needs=("code_corpus",),
    description="The readable corpus without exact and near duplicates: the unfiltered code.",
)
CODE_JUDGEMENTS = Stage(
    "code_judgements",
    build_code_judgements,
    _judge_config,
    needs=("raw_code",),
    version=2,
    description="The teacher's 0-5 educational-value scores for a sample of raw_code.",
)
CODE_EMBEDDINGS = Stage(
    "code_embeddings",
    build_code_embeddings,
    lambda p: p.section("embed"),
    needs=("raw_code",),
    version=2,
    description="One mean-pooled, unit-length embedding per raw_code file.",
)
EDU_CLASSIFIER = Stage(
    "edu_classifier",
    build_edu_classifier,
    lambda p: p.section("classifier"),
    needs=("code_judgements", "code_embeddings"),
    version=3,  # 3: the threshold sweep's precision is null where no file is kept
    description="A random forest on the judged files' embeddings, with held-out metrics.",
)
FILTERED_CODE = Stage(
    "filtered_code",
    build_filtered_code,
    lambda p: {},  # everything it depends on comes from its inputs
    needs=("raw_code", "code_embeddings", "edu_classifier"),
    version=2,
    description="Every raw_code file scored; the educational ones kept, with edu_score.",
)
