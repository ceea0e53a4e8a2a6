"""The educational-value classifier: a random forest on code embeddings (paper §2.1).

The paper asked GPT-4 about ~100k files, then trained a random forest on the embeddings of those
files to predict the label, and ran the forest over everything else: a judge that is expensive
per file teaches a classifier that is nearly free per file. The paper publishes neither the
forest's settings nor its keep threshold; ours come from the profile's ``[classifier]`` section.

Labels are binary: educational when the judge's 0-5 score is at least 3. The forest weights both
classes equally (``class_weight="balanced"``), because most real code is not educational and an
unweighted forest learns to say "no". It is trained on a stratified part of the judged sample and
evaluated on the held-out rest: accuracy, ROC AUC, and precision, recall and the confusion
matrix at the keep threshold on the predicted probability. The threshold is either fixed in the
profile, or chosen on the training files alone so that the filter keeps the share of files the
judge called educational.
Introduced in chapter 1.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class LabelError(ValueError):
    """A judged sample the classifier cannot learn from (one class only, too few labels)."""


@dataclass
class TrainedClassifier:
    """A fitted forest, its threshold, the split it was evaluated on, and honest scores.

    ``test_proba`` scores the held-out files; ``oob_proba`` scores each training file with only
    the trees that did not see it during training (out of bag), so that neither is inflated by
    the forest having learned that very file.
    """

    model: Any
    threshold: float
    train_index: np.ndarray
    test_index: np.ndarray
    oob_proba: np.ndarray
    test_proba: np.ndarray
    metrics: dict[str, Any]


def evaluate(y_true: Sequence[int], proba: Sequence[float], threshold: float) -> dict[str, Any]:
    """Accuracy, ROC AUC, precision, recall, F1 and the confusion matrix at ``threshold``.

    ROC AUC is None when the held-out labels hold one class only. The confusion matrix is
    ``[[true negatives, false positives], [false negatives, true positives]]``. (chapter 1)
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    predicted = (proba >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "threshold": float(threshold),
        "n": int(len(y_true)),
        "positives": int(y_true.sum()),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both_classes else None,
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "confusion": confusion_matrix(y_true, predicted, labels=[0, 1]).tolist(),
    }


def threshold_sweep(
    y_true: Sequence[int], proba: Sequence[float], thresholds: Sequence[float]
) -> list[dict[str, float | None]]:
    """Precision, recall and the fraction predicted educational at each threshold (chapter 1)."""
    rows = []
    for threshold in thresholds:
        scores = evaluate(y_true, proba, threshold)
        kept = float(np.mean(np.asarray(proba) >= threshold)) if len(proba) else 0.0
        rows.append(
            {
                "threshold": float(threshold),
                # Precision is undefined where no file is kept: None (JSON null; a plot's gap).
                "precision": scores["precision"] if kept > 0 else None,
                "recall": scores["recall"],
                "kept_fraction": kept,
            }
        )
    return rows


THRESHOLD_RULES = ("judge_rate", "fixed")


def judge_rate_threshold(y_true: Sequence[int], proba: Sequence[float]) -> float:
    """The score above which lies the same share of files as the judge called educational.

    If the judge found 20% of its sample educational, the threshold keeps the best-scored 20%
    (of the files given, here the training files by their out-of-bag scores). (chapter 1)
    """
    rate = float(np.mean(np.asarray(y_true, dtype=int)))
    return float(np.quantile(np.asarray(proba, dtype=float), 1.0 - rate))


def train_classifier(
    features: np.ndarray,
    labels: Sequence[int],
    *,
    n_estimators: int,
    test_fraction: float,
    threshold_rule: str,
    threshold: float,
    seed: int,
    n_jobs: int = -1,
) -> TrainedClassifier:
    """Fit a random forest on a stratified part of the judged sample and score the rest.

    ``threshold_rule`` ``"judge_rate"`` keeps the share of files the judge called educational
    (:func:`judge_rate_threshold` on the training files' out-of-bag scores, so the held-out files
    play no part in any choice); ``"fixed"`` uses ``threshold``. Raises :class:`LabelError`
    when the sample has a single class or a class with fewer than two members: judge more
    files. (chapter 1)
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(
            f"classifier.threshold_rule must be one of {THRESHOLD_RULES}, not {threshold_rule!r}"
        )
    labels = np.asarray(labels, dtype=int)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    counts = np.bincount(labels, minlength=2)
    if len(counts) > 2 or counts.min() < 2:
        raise LabelError(
            f"the judged sample has {counts[0]} non-educational and {counts[1]} educational "
            "files; a classifier needs at least two of each (raise judge.sample_size)"
        )
    index = np.arange(len(labels))
    train_index, test_index = train_test_split(
        index, test_size=test_fraction, random_state=seed, stratify=labels
    )
    train_index = np.sort(train_index)
    model = RandomForestClassifier(
        n_estimators=n_estimators,
        class_weight="balanced",
        oob_score=True,
        random_state=seed,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():  # with few trees some files are never out of bag: handled
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        model.fit(features[train_index], labels[train_index])
    oob = model.oob_decision_function_[:, list(model.classes_).index(1)]
    unseen = np.isnan(oob)  # a file every tree saw (only with very few trees)
    oob[unseen] = educational_probability(model, features[train_index][unseen])
    oob_proba = oob.astype(np.float32)
    if threshold_rule == "judge_rate":
        threshold = judge_rate_threshold(labels[train_index], oob_proba)
    test_proba = educational_probability(model, features[test_index])
    metrics = {
        "train": int(len(train_index)),
        "test": int(len(test_index)),
        "train_positive_rate": float(labels[train_index].mean()),
        "threshold_rule": threshold_rule,
        "oob": evaluate(labels[train_index], oob_proba, threshold),
        **evaluate(labels[test_index], test_proba, threshold),
    }
    return TrainedClassifier(
        model, threshold, train_index, test_index, oob_proba, test_proba, metrics
    )


def educational_probability(model: Any, features: np.ndarray) -> np.ndarray:
    """The forest's probability that each row is educational (class 1), as float32."""
    if len(features) == 0:
        return np.zeros(0, dtype=np.float32)
    proba = model.predict_proba(features)
    column = list(model.classes_).index(1)
    return proba[:, column].astype(np.float32)


def save_classifier(model: Any, path: Path) -> None:
    """Pickle the forest (scikit-learn's own format; load it with the same scikit-learn)."""
    with Path(path).open("wb") as handle:
        pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load_classifier(path: Path) -> Any:
    """Load a forest saved by :func:`save_classifier`; only load files you made yourself."""
    with Path(path).open("rb") as handle:
        return pickle.load(handle)
