"""The stages of chapter 1, from real code to the filtered code of CodeTextbook.

``code_corpus``     read the corpus (every file, skipped ones with their reason)
``raw_code``        exact and near duplicates removed, tokens counted: the *unfiltered* corpus
``code_judgements`` the teacher's 0-5 educational-value labels for a sample of ``raw_code``
``code_embeddings`` one embedding per ``raw_code`` file
``edu_classifier``  a random forest trained on the judged files' embeddings, with its metrics
``filtered_code``   every file scored; the ones at or above the threshold kept, with ``edu_score``

``raw_code`` and ``filtered_code`` are what later chapters read: the ablation's unfiltered
corpus and the filtered half of CodeTextbook, each a ``data`` dataset with a ``text`` column and
token counts in its manifest.

Reading, deduplication, embedding and scoring are datatrove pipelines (:mod:`.steps`,
:mod:`.dedup_steps`) run by the profile's executor (:mod:`.engine`) over several tasks at every
profile; each stage then lays its tasks' output end to end as the artifact. Introduced in
chapter 1.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from phi1lib.filtering import classifier as forest
from phi1lib.filtering.corpus import SKIP_REASONS, local_python_files, sample_files
from phi1lib.filtering.judge import judge_texts, sample_indices, score_counts
from phi1lib.filtering.scoring import MODEL_FILE
from phi1lib.pipeline import Stage, StageContext
from phi1lib.teacher.tasks import JUDGE

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
    else:  # which rows a task streams depends on how many tasks share
        from phi1lib.filtering.engine import Engine

        corpus["tasks"] = Engine.from_profile(profile).tasks
    return corpus


def _features(columns: dict[str, str]):
    from datasets import Features, Value

    return Features({name: Value(kind) for name, kind in columns.items()})


def build_code_corpus(ctx: StageContext) -> dict[str, Any]:
    """Read every file of the profile's corpus source into one dataset, skipped files included."""
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.steps import CORPUS_COLUMNS, reading_steps, save_shards

    corpus = _corpus_config(ctx.profile)
    corpus.pop("tasks", None)
    engine = Engine.from_profile(ctx.profile)
    work = ctx.work
    local = None
    if corpus["source"] == "local":  # drawn once here, not once per task
        local = sample_files(local_python_files(), corpus["max_files"], corpus["seed"])
    engine.run(reading_steps(corpus, local, work, engine), work, stage="code_corpus")
    records = save_shards(
        work / "records",
        _features(CORPUS_COLUMNS),
        ctx.out / "data",
        work / "arrow",
        ctx.fingerprint,
    )
    reasons = Counter(records["skip_reason"])
    del records
    counts = {"files": sum(reasons.values()), "readable": reasons.get(None, 0)}
    counts.update({f"skipped_{reason}": reasons.get(reason, 0) for reason in SKIP_REASONS})
    return counts


def build_raw_code(ctx: StageContext) -> dict[str, Any]:
    """Drop skipped files, remove exact and near duplicates, count tokens (:mod:`.dedup_steps`)."""
    from datasets import load_from_disk

    from phi1lib.filtering.dedup_steps import KEPT_COLUMNS, Duplicates, dedup_params, dedup_steps
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.steps import DatasetReader, save_shards

    corpus_path = ctx.inputs["code_corpus"].file("data")
    dedup = ctx.profile.section("dedup")
    token_counter = ctx.profile.corpus.token_counter
    engine = Engine.from_profile(ctx.profile)
    work = ctx.work
    steps = dedup_steps(corpus_path, work, dedup, engine=engine, token_counter=token_counter)
    engine.run(steps, work, stage="raw_code")
    kept = save_shards(
        work / "kept", _features(KEPT_COLUMNS), ctx.out / "data", work / "arrow", ctx.fingerprint
    )
    corpus = load_from_disk(str(corpus_path))
    reader = DatasetReader(corpus_path)
    found = Duplicates.load(
        work / "clusters" / "members.npy",
        lambda task: reader.rows(len(corpus), task, engine.tasks).start,
    )
    summary = found.summary(ctx.inputs["code_corpus"].counts["readable"])
    if summary["kept"] != len(kept):
        raise RuntimeError(
            f"raw_code: the filter kept {len(kept)} files, the clusters say {summary['kept']}"
        )
    _save_clusters(found, corpus, ctx.out / "clusters")
    _write_json(
        ctx.out / "dedup.json",
        {
            "summary": summary,
            "params": dedup_params(dedup),
            "cluster_sizes": {str(k): v for k, v in found.cluster_sizes().items()},
            "token_counter": token_counter,
        },
    )
    tokens = np.asarray(kept["tokens"], dtype=np.int64)
    counts = {
        "files": len(kept),
        "tokens": int(tokens.sum()),
        "bytes": int(np.asarray(kept["size"], dtype=np.int64).sum()),
        "input_files": summary["input"],
        "removed_exact": summary["removed_exact"],
        "removed_near": summary["removed_near"],
        "near_clusters": summary["near_clusters"],
        "largest_cluster": summary["largest_cluster"],
    }

    return counts


def _save_clusters(found, corpus, target: Path) -> None:
    """Every exact group and near cluster with its files' paths, the kept one first."""
    from datasets import Dataset, Features, Sequence, Value

    clusters = found.clusters()
    rows = sorted({row for _, members in clusters for row in members})
    paths = dict(zip(rows, corpus.select(rows)["path"], strict=True))
    Dataset.from_dict(
        {
            "kind": [kind for kind, _ in clusters],
            "size": [len(rows) for _, rows in clusters],
            "paths": [[paths[row] for row in rows] for _, rows in clusters],
        },
        features=Features(
            {"kind": Value("string"), "size": Value("int64"), "paths": Sequence(Value("string"))}
        ),
    ).save_to_disk(str(target))


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
    """Embed every ``raw_code`` file (its :func:`~.scoring.embedding_view`); interruptions resume.

    The tasks embed whole blocks of ``steps.EMBED_BLOCK`` files, on the GPU when there is one, and
    save each block as soon as it is done (:class:`~.steps.EmbedFiles`); a rerun embeds only
    the blocks that are missing. The blocks are then laid end to end in raw_code's order.
    """
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.steps import EMBED_BLOCK, embedding_steps

    raw = ctx.inputs["raw_code"]
    embed = ctx.profile.section("embed")
    engine = Engine.from_profile(ctx.profile)
    work = ctx.work
    steps = embedding_steps(raw.file("data"), work, embed, engine)
    engine.run(steps, work, stage="code_embeddings")
    files = raw.counts["files"]
    starts = range(0, files, EMBED_BLOCK)
    if files:
        dim = np.load(work / "blocks" / f"{0:09d}.npy", mmap_mode="r").shape[1]
    else:
        dim = _embedding_dim(embed)
    embeddings = np.lib.format.open_memmap(
        ctx.out / "embeddings.npy", mode="w+", dtype=np.float32, shape=(files, dim)
    )
    for start in starts:  # block by block: the whole array need not fit in memory
        embeddings[start : start + EMBED_BLOCK] = np.load(work / "blocks" / f"{start:09d}.npy")
    embeddings.flush()
    del embeddings
    return {"files": files, "dim": int(dim), "model": embed["model"]}


def _embedding_dim(embed: dict[str, Any]) -> int:
    from phi1lib.embeddings import load_embedder

    return load_embedder(embed["model"], max_tokens=embed["max_tokens"]).dim


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
    see it), so that the training files are not favoured over the rest of the corpus. The tasks
    score their blocks of files (:class:`~.steps.ScoreFiles`) and write all scores and the kept
    files; each file is scored by exactly one task.
    """
    from phi1lib.filtering.engine import Engine
    from phi1lib.filtering.steps import SCORE_COLUMNS, SCORED_COLUMNS, save_shards, scoring_steps

    raw = ctx.inputs["raw_code"]
    classifier_artifact = ctx.inputs["edu_classifier"]
    threshold = classifier_artifact.json("metrics.json")["threshold"]
    training = classifier_artifact.json("training.json")
    engine = Engine.from_profile(ctx.profile)
    work = ctx.work
    steps = scoring_steps(
        raw.file("data"),
        ctx.inputs["code_embeddings"].file("embeddings.npy"),
        classifier_artifact.file(MODEL_FILE),
        threshold,
        dict(zip(training["raw_index"], training["edu_score"], strict=True)),
        work,
        engine,
    )
    engine.run(steps, work, stage="filtered_code")
    scores = save_shards(
        work / "scores",
        _features(SCORE_COLUMNS),
        ctx.out / "scores",
        work / "arrow",
        ctx.fingerprint,
    )
    kept = save_shards(
        work / "kept", _features(SCORED_COLUMNS), ctx.out / "data", work / "arrow", ctx.fingerprint
    )
    if len(scores) != raw.counts["files"]:
        raise RuntimeError(f"filtered_code: {len(scores)} scores for {raw.counts['files']} files")
    tokens = np.asarray(scores["tokens"], dtype=np.int64)
    kept_mask = np.asarray(scores["kept"], dtype=bool)
    counts = {
        "files": len(kept),
        "tokens": int(tokens[kept_mask].sum()),
        "input_files": len(scores),
        "input_tokens": int(tokens.sum()),
        "threshold": threshold,
        "kept_file_fraction": round(len(kept) / max(len(scores), 1), 4),
        "kept_token_fraction": round(float(tokens[kept_mask].sum() / max(tokens.sum(), 1)), 4),
    }
    del scores, kept
    return counts


CODE_CORPUS = Stage(
    "code_corpus",
    build_code_corpus,
    _corpus_config,
    version=2,  # 2: read by datatrove tasks; FIFOs and devices are skipped as binary
    description="Real Python files, one record each; unreadable, binary, huge, empty and "
    "unparsable files kept as records with their skip reason.",
)
RAW_CODE = Stage(
    "raw_code",
    build_raw_code,
    lambda p: {"dedup": p.section("dedup"), "token_counter": p.corpus.token_counter},
    needs=("code_corpus",),
    version=2,  # 2: datatrove's MinHash stages; the clusters as a dataset
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
    version=3,  # 3: embedded by datatrove tasks in blocks of 256 files
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
    version=3,  # 3: scored by datatrove tasks
    description="Every raw_code file scored; the educational ones kept, with edu_score.",
)
