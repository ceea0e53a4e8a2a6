"""Share a synthetic dataset on the Hugging Face hub with one call.

    from phi1lib.synthesis import push_to_hub
    push_to_hub("exercises", "your-name/phi1-code-exercises", profile="gpu")

The stage is built (or loaded from the run store) for the profile and pushed as a
``DatasetDict``: ``train`` for the textbooks; ``train`` and ``heldout`` for the exercises. The
commit message names the stage's fingerprint, so the hub copy can be traced to the run that
made it. Needs a hub token (``hf auth login`` or ``token=``) and the network. Introduced in
chapter 3 ("Sharing the data").
"""

from __future__ import annotations

from typing import Any

SPLITS = {
    "textbooks": {"train": "data"},
    "exercises": {"train": "data", "heldout": "heldout", "infamily": "infamily"},
}


def dataset_dict(stage: str, profile: Any = None, *, store: Any = None) -> Any:
    """The stage's datasets as a ``datasets.DatasetDict`` with hub split names, and its artifact."""
    from datasets import DatasetDict

    from phi1lib import pipeline

    if stage not in SPLITS:
        raise ValueError(f"only {sorted(SPLITS)} can be pushed, not {stage!r}")
    artifact = pipeline.run(stage, profile, store=store)
    splits = DatasetDict(
        {split: artifact.dataset(folder) for split, folder in SPLITS[stage].items()}
    )
    return splits, artifact


def push_to_hub(
    stage: str,
    repo_id: str,
    profile: Any = None,
    *,
    private: bool = True,
    token: str | None = None,
    store: Any = None,
) -> Any:
    """Push the ``textbooks`` or ``exercises`` dataset of ``profile`` to ``repo_id`` (chapter 3).

    Wraps ``DatasetDict.push_to_hub``; returns its commit information.
    """
    splits, artifact = dataset_dict(stage, profile, store=store)
    return splits.push_to_hub(
        repo_id,
        private=private,
        token=token,
        commit_message=f"phi1 book: {stage} ({artifact.fingerprint}, profile {artifact.manifest.get('profile', '?')})",
    )
