"""The run-store stages of chapters 7 and 8: ``probes`` and ``diversity``.

``probes`` runs the probe suite on the pretrained (base) and the fine-tuned model of a profile,
plus the fine-tuned models of the profiles named in ``probes.compare_profiles`` when their run
store holds one (other sizes; the stage borrows them, see ``Stage.borrows``). ``diversity`` measures the four datasets of the pipeline side by
side. Both write JSON that the chapters read. Introduced in chapters 7 and 8.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from phi1lib.analysis.ast_shapes import functions_in
from phi1lib.analysis.measure import (
    DISTINCT_NS,
    embedding_metrics,
    family_agreement,
    ngram_count,
    sample_indices,
    shape_metrics,
    text_metrics,
    topic_metrics,
)
from phi1lib.analysis.probes.report import ProbeOutcome, paired_differences, rates_by
from phi1lib.analysis.probes.runner import run_probe_suite
from phi1lib.analysis.probes.suite import SUITE_FILE, load_suite
from phi1lib.pipeline import Stage, StageContext
from phi1lib.profiles import Profile
from phi1lib.runstore import Artifact, fingerprint
from phi1lib.sandbox.layers import require_isolation

BASE, TUNED = "base", "fine-tuned"
JUDGE_CACHE = "teacher/probes"  # the judge's grades of probe answers (``phi1 probes`` shares it)
PROGRESS_FILE = "progress.json"  # in the work folder: the models answered before an interruption
# The datasets of chapter 8, in pipeline order: (stage, label shown in the chapter).
DATASETS = (
    ("raw_code", "raw code"),
    ("filtered_code", "filtered code"),
    ("textbooks", "textbooks"),
    ("exercises", "exercises"),
)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False, default=float))


# --- chapter 7: probes -----------------------------------------------------------------------


def judged(profile: Profile) -> bool:
    """Whether the probe answers are graded: the profile asks for it and has a real LLM."""
    from phi1lib.evaluation.judge import judge_available

    return bool(profile.probes.judge) and judge_available(profile)


def _compared(profile: Profile) -> list[tuple[str, str]]:
    """The fine-tuned models of other profiles (other sizes) the probes stage borrows."""
    return [(name, "finetune") for name in profile.probes.compare_profiles]


def compared_models(inputs: Mapping[str, Artifact]) -> dict[str, Path]:
    """The borrowed fine-tuned models of other profiles that are built, by their label."""
    return {
        f"{TUNED} ({key.split('@', 1)[1]})": artifact.path / "model"
        for key, artifact in inputs.items()
        if key.startswith("finetune@")
    }


def _probes_config(profile: Profile) -> Mapping[str, Any]:
    judge = None
    if judged(profile):
        judge = {"endpoint": profile.teacher.endpoint, "model": profile.teacher.model}
    return {
        "probes": profile.section("probes"),
        "suite": fingerprint(SUITE_FILE.read_text()),
        "judge": judge,
    }


def _models_cached(path: Path) -> dict[str, list[dict]]:
    return json.loads(path.read_text()) if path.exists() else {}


def build_probes(ctx: StageContext) -> dict[str, Any]:
    """Answer, check (and grade) every probe with every model; write outcomes and tables."""
    profile = ctx.profile
    sandbox = require_isolation(profile.sandbox)
    probes = load_suite()
    settings = profile.probes
    models = {
        BASE: ctx.inputs["pretrain"].path / "model",
        TUNED: ctx.inputs["finetune"].path / "model",
        **compared_models(ctx.inputs),
    }
    # Finished models survive an interruption: the next build starts with the missing ones.
    resume = ctx.work / PROGRESS_FILE
    done = _models_cached(resume)
    costs: dict[str, Any] = {}
    judge_cache = ctx.cache(JUDGE_CACHE)
    for label, path in models.items():
        if label in done:
            continue
        outcomes, costs[label] = run_probe_suite(
            path,
            probes,
            label,
            settings,
            judge_profile=profile if judged(profile) else None,
            judge_cache=judge_cache,
        )
        done[label] = {"outcomes": [o.to_dict() for o in outcomes], "costs": costs[label]}
        _write_json(resume, done)
    outcomes = [ProbeOutcome.from_dict(o) for label in models for o in done[label]["outcomes"]]
    with (ctx.out / "outcomes.jsonl").open("w") as handle:
        for outcome in outcomes:
            handle.write(json.dumps(outcome.to_dict()) + "\n")
    summary = {
        # Only what the data determines: 'phi1 verify' rebuilds the stage and compares bytes.
        "models": {
            label: {
                "parameters": done[label]["costs"]["generation"]["parameters"],
                "new_tokens": done[label]["costs"]["generation"]["new_tokens"],
            }
            for label in models
        },
        "judged": judged(profile),
        "by_category": rates_by(outcomes, "category"),
        "by_perturbation": rates_by(
            [o for o in outcomes if o.category == "robustness"], "perturbation"
        ),
        "overall": rates_by(outcomes, "all"),
        "differences": paired_differences(
            outcomes,
            BASE,
            TUNED,
            resamples=profile.probes.bootstrap_resamples,
            seed=profile.probes.seed,
        ),
    }
    _write_json(ctx.out / "summary.json", summary)
    # What the build cost goes to the manifest's counts, beside what it found.
    counts: dict[str, Any] = {"probes": len(probes), "models": len(models), "sandbox": sandbox}
    for label in models:
        counts[f"passed {label}"] = sum(o.passed for o in outcomes if o.model == label)
        generation = done[label]["costs"]["generation"]
        counts[f"generation s {label}"] = generation["wall_time_s"]
        counts[f"tokens/s {label}"] = generation["tokens_per_s"]
        if "judge" in done[label]["costs"]:
            counts[f"judge tokens {label}"] = done[label]["costs"]["judge"]["tokens"]
    return counts


PROBES = Stage(
    name="probes",
    build=build_probes,
    config=_probes_config,
    needs=("pretrain", "finetune"),
    borrows=_compared,
    version=2,
    description="the probe suite of chapter 7 on the base and the fine-tuned model",
)


# --- chapter 8: diversity --------------------------------------------------------------------


def _diversity_config(profile: Profile) -> Mapping[str, Any]:
    return {"diversity": profile.section("diversity"), "embed": profile.section("embed")}


def topic_names() -> list[str]:
    """The curriculum's topic list, which the synthesis stages sample from (chapter 2), as names."""
    from phi1lib.synthesis.curriculum import load_curriculum

    return [entry["topic"] for entry in load_curriculum().topics]


def topic_descriptions() -> list[str]:
    """One line per curriculum topic for the embedding model: the name and its subtopics."""
    from phi1lib.synthesis.curriculum import load_curriculum

    return [f"{e['topic']}: {', '.join(e['subtopics'])}" for e in load_curriculum().topics]


def dataset_sizes(profile: Profile) -> dict[str, dict[str, int]]:
    """Items and tokens of each dataset of chapter 8 (building what is missing), for the table
    that puts our sizes beside the paper's."""
    from phi1lib.pipeline import run

    sizes = {}
    for stage, label in DATASETS:
        data = run(stage, profile).dataset("data")
        column = next((c for c in ("tokens", "n_tokens") if c in data.column_names), None)
        sizes[label] = {
            "items": len(data),
            "tokens": int(sum(data[column])) if column else 0,
        }
    return sizes


def code_vectors(ctx: StageContext) -> dict[str, Any]:
    """Embeddings of the raw and the filtered code, taken from chapter 1's ``code_embeddings``
    (one row per ``raw_code`` file, same model and settings) instead of embedding them again."""
    import numpy as np

    vectors = np.load(ctx.inputs["code_embeddings"].file("embeddings.npy"))
    raw = ctx.inputs["raw_code"].dataset("data")
    kept = np.flatnonzero(np.asarray(ctx.inputs["filtered_code"].dataset("scores")["kept"]))
    filtered = ctx.inputs["filtered_code"].dataset("data")
    if len(vectors) != len(raw) or len(kept) != len(filtered):
        raise ValueError(
            f"code_embeddings holds {len(vectors)} rows for {len(raw)} raw files and "
            f"{len(kept)} kept for {len(filtered)} filtered files: the artifacts disagree"
        )
    return {"raw code": vectors, "filtered code": vectors[kept]}


def build_diversity(ctx: StageContext) -> dict[str, Any]:
    """Measure raw code, filtered code, textbooks and exercises on equal-size samples (as many
    items as the smallest dataset holds, at most ``diversity.max_items``)."""
    from phi1lib.embeddings import embed_texts

    settings = ctx.profile.diversity
    stored = code_vectors(ctx)
    samples: dict[str, tuple[list[str], list[str] | None, list[int]]] = {}
    known_families: dict[str, list[str]] = {}
    data_of = {label: ctx.inputs[stage].dataset("data") for stage, label in DATASETS}
    items = min([settings.max_items, *(len(data) for data in data_of.values())])
    for label, data in data_of.items():
        picked = sample_indices(len(data), items, settings.seed)
        rows = data.select(picked)
        labels = list(rows["topic"]) if "topic" in rows.column_names else None
        samples[label] = (list(rows["text"]), labels, picked)
        if "family" in rows.column_names:  # the generator says which template wrote each item
            known_families[label] = list(rows["family"])
    budget = min(
        [settings.max_ngrams]
        + [ngram_count(texts, max(DISTINCT_NS)) for texts, _, _ in samples.values()]
    )
    # Family counts depend on how many functions are clustered: every dataset gets as many as
    # the poorest sample provides (at most diversity.max_functions).
    parsed = {label: functions_in(texts) for label, (texts, _, _) in samples.items()}
    functions = min([settings.max_functions, *(len(units) for units, _ in parsed.values())])
    topics = topic_names()
    topic_vectors = embed_texts(topic_descriptions(), ctx.profile)
    report: dict[str, Any] = {
        "settings": settings.to_dict(),
        "items": items,
        "functions": functions,
        "topics": topics,
        "datasets": {},
    }
    families: dict[str, Any] = {}
    for label, (texts, labels, picked) in tqdm(samples.items(), desc="measuring datasets"):
        if label in stored:
            vectors = stored[label][picked]
        else:
            vectors = embed_texts(texts, ctx.profile, progress=True)
        shapes, families[label] = shape_metrics(parsed[label], len(texts), settings, functions)
        known = labels if labels is not None and set(labels) <= set(topics) else None
        report["datasets"][label] = {
            "items": len(texts),
            **text_metrics(texts, settings, budget),
            **embedding_metrics(vectors, settings),
            **shapes,
            **topic_metrics(
                topics, labels=known, embeddings=vectors, topic_embeddings=topic_vectors
            ),
        }
        if label in known_families:
            report["datasets"][label]["family_check"] = family_agreement(
                texts, known_families[label], settings
            )
    _write_json(ctx.out / "diversity.json", report)
    _write_json(ctx.out / "families.json", families)
    return {label: len(texts) for label, (texts, _, _) in samples.items()}


DIVERSITY = Stage(
    name="diversity",
    build=build_diversity,
    config=_diversity_config,
    needs=(*(stage for stage, _ in DATASETS), "code_embeddings"),
    version=5,
    description="diversity and redundancy of every dataset of the pipeline (chapter 8)",
)
