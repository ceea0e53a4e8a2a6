"""Exact and near-duplicate removal at The Stack's scale: datatrove's MinHash stages, BigCode's rules.

:mod:`phi1lib.dedup` keeps every MinHash signature of a corpus in one process: 256 numbers of 8
bytes per file, tens of GB for The Stack. datatrove's MinHash deduplication instead spills to disk
in four stages, each a pipeline run over many tasks (:mod:`.engine` decides where):

1. **signatures** (one task per share of the corpus): every file's signature, cut into bands,
   one sorted file per band and task (``MinhashDedupSignature``, with the shingles of
   :func:`phi1lib.dedup.shingles`);
2. **buckets** (one task per band): the band's files merged in sorted order; every two files that
   share the band are written down as a pair (``MinhashDedupBuckets``, unchanged);
3. **clusters** (one task): the pairs joined into clusters; each keeps its *first* file, the
   others are to be removed (:class:`FirstMemberCluster`, which replaces ``MinhashDedupCluster``:
   that one keeps whichever member happens to root the union-find);
4. **filter** (one task per share): the removed files dropped (``MinhashDedupFilter``, unchanged).

Only the clusters stage holds anything for the whole corpus, and only the files that have a
duplicate. Exact duplicates take the same road with a one-band signature of the normalised text
(:class:`ExactSignature`), so one clusters stage sees both kinds and one filter removes both.
Files are numbered by task and position within the task, and tasks read contiguous blocks
(:func:`~phi1lib.filtering.corpus.shard_range`), so "first" means first in the corpus whatever the
number of tasks.

**BigCode's parameters in datatrove's terms.** BigCode near-deduplicated The Stack with 5-grams
of tokens split at non-alphanumeric characters, 256 permutations and a Jaccard threshold of 0.7
(the "Large-scale Near-deduplication Behind BigCode" post, and ``minhash_deduplication.py`` in
bigcode-project/bigcode-dataset). For locality-sensitive hashing, datasketch, like BigCode's
script, turns these into the bands ``b`` and rows ``r`` that minimise the sum of false positive
and false negative probabilities: 25 bands of 10 rows, so that LSH compares 250 of the 256 hash
values. datatrove's ``MinhashConfig`` calls bands ``num_buckets`` and rows ``hashes_per_bucket``,
so ``MinhashConfig(n_grams=5, num_buckets=25, hashes_per_bucket=10)`` computes exactly the 250
values LSH uses; each is a shingle's 32-bit SHA-1 hash (datasketch's and BigCode's
``sha1_hash32``) under a random permutation ``a * h + b mod 2**61 - 1``, cut to 32 bits (the
formula of BigCode's script; datatrove draws its own ``a`` and ``b``). Two files are a pair when
they agree on all 10 values of some band; the chance of that is ``1 - (1 - s**10)**25`` for
Jaccard similarity ``s``: 2.4% at 0.5, 51% at 0.7, 99.6% at 0.85.

**How this differs from the in-memory path, and by how much.** Like BigCode's script, datatrove
counts every pair that shares a band; the in-memory path also checks each such pair's MinHash
estimate over all 256 permutations against the threshold. So datatrove also removes some files
whose partner is less similar than 0.7 (2% of the pairs at 0.5, 14% at 0.6), and since the two
draw different random permutations, a pair near the threshold can fall either way in each. Far
from the threshold both agree: the tests plant copies and near copies and check that both paths
remove the same files, and that on the smoke corpus any file only one path removes has a
partner of similarity between 0.45 and 0.9. Introduced in chapter 1 ("At The Stack's scale").
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters.lambda_filter import LambdaFilter
from datatrove.utils.binaryio import read_tuples_from_file
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

from phi1lib.dedup import SEED, code_tokens, content_hash, shingles
from phi1lib.filtering.engine import Engine, Step
from phi1lib.filtering.steps import (
    RECORD_COLUMNS,
    DatasetReader,
    TokenCounter,
    is_readable,
    parquet_writer,
)

_MERSENNE_PRIME = (1 << 61) - 1
# Every pair of a file and its first member, with the first member of its exact group.
MEMBER_DTYPE = np.dtype(
    [(name, "<u4") for name in ("task", "doc", "root_task", "root_doc", "exact_task", "exact_doc")]
)
# One band of two 61-bit numbers: 122 bits of the SHA-256 of the normalised text.
EXACT_CONFIG = MinhashConfig(
    n_grams=1,
    num_buckets=1,
    hashes_per_bucket=2,
    seed=SEED,
    hash_config=HashConfig(precision=64, hash_fc="sha1"),
)
KEPT_COLUMNS = {"text": "string", **RECORD_COLUMNS, "tokens": "int64"}


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """The bands and rows datasketch (and BigCode's script) derive for a threshold."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def minhash_config(dedup: Mapping[str, Any]) -> MinhashConfig:
    """The datatrove configuration of a profile's ``[dedup]`` section (see the module docstring)."""
    bands, rows = lsh_bands(dedup["threshold"], dedup["num_perm"])
    return MinhashConfig(
        n_grams=dedup["ngram_size"],
        num_buckets=bands,
        hashes_per_bucket=rows,
        seed=SEED,
        hash_config=HashConfig(precision=32, hash_fc="sha1"),
    )


class CodeWords(WordTokenizer):
    """Runs of letters, digits and underscores: the words BigCode's shingles are made of.

    datatrove's signature step asks for a word tokenizer (its English one needs spaCy);
    :class:`CodeMinhashSignature` shingles with :func:`phi1lib.dedup.shingles` instead.
    """

    def word_tokenize(self, text: str) -> list[str]:
        return code_tokens(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class CodeMinhashSignature(MinhashDedupSignature):
    """datatrove's signature step over chapter 1's shingles (5-grams of code tokens)."""

    name = "🎯 MinHash signatures of code"

    def __init__(self, output_folder: Path | str, config: MinhashConfig):
        super().__init__(str(output_folder), config=config, language=CodeWords())

    def get_shingles(self, text: str) -> np.ndarray:
        grams = shingles(text, self.config.n_grams)
        hashes = np.fromiter(map(self._hash_func, grams), dtype=np.uint64, count=len(grams))
        return hashes.reshape((-1, 1))


class ExactSignature(MinhashDedupSignature):
    """A one-band signature that two files share exactly when their normalised texts are equal.

    The band holds two numbers below 2**61 - 1 taken from the SHA-256 of
    :func:`phi1lib.dedup.normalise` of the text (122 bits: no collision in a corpus of any size
    this book meets), so the bucket and cluster stages find exact copies like near ones.
    """

    name = "🎯 exact signatures"

    def __init__(self, output_folder: Path | str):
        super().__init__(str(output_folder), config=EXACT_CONFIG, language=CodeWords())

    def get_shingles(self, text: str) -> np.ndarray:
        if not text:
            return np.zeros((0, 2), dtype=np.uint64)
        first, second = struct.unpack("<QQ", bytes.fromhex(content_hash(text))[:16])
        return np.array([[first % _MERSENNE_PRIME, second % _MERSENNE_PRIME]], dtype=np.uint64)

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        return [shingles[0].tolist()]


class _Forest:
    """Union-find over (task, doc) pairs whose root is always the smallest member."""

    def __init__(self) -> None:
        self.parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(self, node: tuple[int, int]) -> tuple[int, int]:
        root = node
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while node != root:  # path compression, without recursion
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


class FirstMemberCluster(PipelineStep):
    """datatrove's clusters stage, keeping each cluster's first file (one task).

    Reads the pairs that the bucket stages wrote for exact and for near duplicates, joins them
    into clusters, and writes for every task the sorted positions of its files to remove
    (``NNNNNN.remove``, the format ``MinhashDedupFilter`` reads), plus ``members.npy``: each
    clustered file with the first file of its cluster and of its exact group (for the report).
    """

    type = "🫂 - DEDUP"
    name = "🎯 clusters, first member kept"

    def __init__(self, exact_pairs: Path | str, near_pairs: Path | str | None, output: Path | str):
        super().__init__()
        self.exact_pairs = str(exact_pairs)
        self.near_pairs = str(near_pairs) if near_pairs is not None else None
        self.output = str(output)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if world_size != 1:
            raise ValueError(f"the clusters stage runs as one task, not {world_size}")
        exact, joined = _Forest(), _Forest()
        sources = [(self.exact_pairs, (exact, joined)), (self.near_pairs, (joined,))]
        with self.track_time():
            for folder_path, forests in sources:
                if folder_path is None:
                    continue
                folder = get_datafolder(folder_path)
                for name in folder.list_files(glob_pattern="*.dups"):
                    with folder.open(name, "rb") as handle:
                        for f1, d1, f2, d2 in read_tuples_from_file(
                            handle, "4I", lines_to_buffer=1024
                        ):
                            for forest in forests:
                                forest.union((f1, d1), (f2, d2))
                            self.stat_update("pairs")
            nodes = sorted(joined.parent)
            members = np.array(
                [(*node, *joined.find(node), *exact.find(node)) for node in nodes],
                dtype=MEMBER_DTYPE,
            )
            output = get_datafolder(self.output)
            with output.get_output_file_manager(mode="wb") as files:
                for task, doc, root_task, root_doc, *_ in members.tolist():
                    if (task, doc) != (root_task, root_doc):
                        files.write(f"{task:06d}.remove", struct.pack("<I", doc))
                        self.stat_update("to_remove")
            with output.open("members.npy", "wb") as handle:
                np.save(handle, members)


def dedup_steps(
    corpus: Path,
    work: Path,
    dedup: Mapping[str, Any],
    *,
    engine: Engine,
    token_counter: str,
) -> list[Step]:
    """The pipelines of ``raw_code``: the corpus without its duplicates, tokens counted.

    ``corpus`` is the ``code_corpus`` dataset; the kept files land in ``work/kept/*.parquet`` and
    the clusters in ``work/clusters/members.npy``. Every per-file pipeline reads the corpus with
    the same number of tasks, so a file's (task, position) is the same in all of them.
    """
    tasks, bucket_workers = engine.tasks, engine.bucket_workers

    def reader() -> DatasetReader:
        return DatasetReader(corpus, blank_skipped=True)

    steps = [
        Step("exact_signatures", [reader(), ExactSignature(work / "exact")], tasks),
        Step(
            "exact_buckets",
            [
                MinhashDedupBuckets(
                    str(work / "exact"), str(work / "exact-pairs"), config=EXACT_CONFIG
                )
            ],
            EXACT_CONFIG.num_buckets * bucket_workers,
        ),
    ]
    near_pairs = None
    if dedup["near"]:
        config = minhash_config(dedup)
        near_pairs = work / "near-pairs"
        steps += [
            Step("near_signatures", [reader(), CodeMinhashSignature(work / "near", config)], tasks),
            Step(
                "near_buckets",
                [MinhashDedupBuckets(str(work / "near"), str(near_pairs), config=config)],
                config.num_buckets * bucket_workers,
            ),
        ]
    steps += [
        Step(
            "clusters", [FirstMemberCluster(work / "exact-pairs", near_pairs, work / "clusters")], 1
        ),
        Step(
            "filter",
            [
                reader(),
                MinhashDedupFilter(str(work / "clusters")),
                LambdaFilter(is_readable),
                TokenCounter(token_counter),
                parquet_writer(work / "kept", KEPT_COLUMNS),
            ],
            tasks,
        ),
    ]
    return steps


@dataclass
class Duplicates:
    """The clusters the datatrove stages found, in corpus rows (what ``raw_code`` reports).

    ``row``, ``first`` and ``exact_first`` are aligned arrays: every clustered file, the first
    file of its cluster (exact and near duplicates joined) and the first of its exact group.
    """

    row: np.ndarray
    first: np.ndarray
    exact_first: np.ndarray

    @classmethod
    def load(cls, members: Path, first_row_of_task: Callable[[int], int]) -> Duplicates:
        table = np.load(members)
        offset = np.array(
            [first_row_of_task(t) for t in range(int(table["task"].max(initial=0)) + 1)]
        )

        def rows(task: str, doc: str) -> np.ndarray:
            return offset[table[task]].astype(np.int64) + table[doc]

        return cls(
            rows("task", "doc"), rows("root_task", "root_doc"), rows("exact_task", "exact_doc")
        )

    def removed(self) -> dict[int, str]:
        """Row -> ``"exact"`` or ``"near"``, for every removed file."""
        kinds = {}
        for row, first, exact in zip(self.row, self.first, self.exact_first, strict=True):
            if row != first:
                kinds[int(row)] = "exact" if row != exact else "near"
        return kinds

    def clusters(self) -> list[tuple[str, list[int]]]:
        """Exact groups, then near clusters of exact survivors, each as sorted rows (first kept).

        The same definitions as :class:`phi1lib.dedup.DedupResult`: a near cluster is made of
        files that are not exact copies of an earlier one.
        """
        exact: dict[int, list[int]] = {}
        near: dict[int, list[int]] = {}
        for row, first, exact_first in zip(self.row, self.first, self.exact_first, strict=True):
            exact.setdefault(int(exact_first), []).append(int(row))
            if row == exact_first:
                near.setdefault(int(first), []).append(int(row))
        found = []
        for kind, groups in (("exact", exact), ("near", near)):
            found += [(kind, sorted(g)) for _, g in sorted(groups.items()) if len(g) > 1]
        return found

    def cluster_sizes(self) -> dict[int, int]:
        """How many clusters (exact and near joined) have each size, ascending."""
        sizes = Counter(Counter(self.first.tolist()).values())
        return dict(sorted(sizes.items()))

    def summary(self, readable: int) -> dict[str, Any]:
        """The counts of :meth:`phi1lib.dedup.DedupResult.summary`, for ``readable`` input files."""
        kinds = Counter(self.removed().values())
        clusters = Counter(kind for kind, _ in self.clusters())
        return {
            "input": readable,
            "kept": readable - sum(kinds.values()),
            "removed_exact": kinds["exact"],
            "removed_near": kinds["near"],
            "exact_groups": clusters["exact"],
            "near_clusters": clusters["near"],
            "largest_cluster": max(self.cluster_sizes(), default=1),
        }


def dedup_params(dedup: Mapping[str, Any]) -> dict[str, Any]:
    """What a reader needs to know about how ``raw_code`` was deduplicated (its ``dedup.json``)."""
    from importlib.metadata import version

    bands, rows = lsh_bands(dedup["threshold"], dedup["num_perm"])
    return {
        "engine": f"datatrove {version('datatrove')}",
        "normalisation": "line endings, trailing whitespace, blank lines at both ends",
        "exact_hash": "sha256 of the normalised text (122 bits compared)",
        "near": dedup["near"],
        "threshold": dedup["threshold"],
        "num_perm": dedup["num_perm"],
        "bands": bands,
        "rows": rows,
        "ngram_size": dedup["ngram_size"],
        "shingle_hash": "sha1, 32 bits",
        "seed": SEED,
        "pair_rule": "a shared band (no check of the estimated similarity), as BigCode's script",
        "kept": "the first file of each cluster",
    }
