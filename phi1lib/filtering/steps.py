"""Chapter 1's work as datatrove pipeline steps: read the corpus, count tokens, embed, score.

datatrove, the library behind FineWeb and Cosmopedia, runs a *pipeline* (a list of steps, each a
generator over ``Document`` objects) once per *task*; each task handles its own share of the data
and an executor runs the tasks, on this machine, on Slurm or on Ray (:mod:`.engine`). The steps
here keep only settings, so that they travel to other processes and machines in a pickle, and
load their models inside ``run``. A document's ``metadata`` carries the corpus columns, and
``row`` is its position in the dataset it was read from. The deduplication steps are in
:mod:`.dedup_steps`. Introduced in chapter 1 ("At The Stack's scale").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.parquet import ParquetWriter

from phi1lib.filtering.corpus import LocalFile, corpus_records, shard_range
from phi1lib.filtering.engine import Engine, Step

EMBED_BLOCK = 256  # files embedded between two saves; tasks get whole blocks (resumable)
# The columns of the stages' datasets and their Arrow types; ``text`` is a document's text.
RECORD_COLUMNS = {"path": "string", "package": "string", "source": "string", "size": "int64"}
CORPUS_COLUMNS = {"text": "string", **RECORD_COLUMNS, "skip_reason": "string"}
SCORE_COLUMNS = {"path": "string", "package": "string", "tokens": "int64"}
SCORE_COLUMNS |= {"edu_score": "float64", "kept": "bool", "trained_on": "bool"}
SCORED_COLUMNS = {"text": "string", **RECORD_COLUMNS, "tokens": "int64", "edu_score": "float64"}


def record_document(record: Mapping[str, Any], row: int | None = None) -> Document:
    """A corpus record (``text``, ``path``, ``package``, ...) as a datatrove document."""
    metadata = {key: value for key, value in record.items() if key != "text"}
    if row is not None:
        metadata["row"] = row
    return Document(text=record["text"], id=str(record["path"]), metadata=metadata)


def is_readable(document: Document) -> bool:
    """Whether a record entered the corpus (it has no ``skip_reason``)."""
    return document.metadata.get("skip_reason") is None


def is_kept(document: Document) -> bool:
    """Whether the quality filter kept a scored file."""
    return bool(document.metadata["kept"])


def parquet_writer(folder: Path | str, columns: Mapping[str, str]) -> ParquetWriter:
    """A datatrove writer of one Parquet file per task with these columns (``text`` or metadata).

    The schema is given, not inferred, so a task whose first batch has only skipped files (all
    ``skip_reason`` null, say) writes the same columns as the others.
    """
    import pyarrow as pa

    fields = [(name, pa.type_for_alias(kind)) for name, kind in columns.items()]
    return ParquetWriter(
        str(folder),
        output_filename="${rank}.parquet",
        schema=pa.schema(fields),
        adapter=_row,
        max_file_size=-1,  # one file per task: their names sort in task order
    )


def _row(writer: ParquetWriter, document: Document) -> dict[str, Any]:
    return {
        name: document.text if name == "text" else document.metadata.get(name)
        for name in writer.schema.names
    }


class CorpusReader(PipelineStep):
    """The profile's corpus (:func:`~phi1lib.filtering.corpus.corpus_records`), this task's block.

    ``local_files`` is the local source's sample, drawn once by the caller; a hub source is
    streamed, each task reading its own part of every stream.
    """

    type = "📖 - READER"
    name = "🐍 code corpus"

    def __init__(self, corpus: Mapping[str, Any], local_files: Sequence[LocalFile] | None = None):
        super().__init__()
        self.corpus = dict(corpus)
        self.local_files = list(local_files) if local_files is not None else None

    def run(
        self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1
    ) -> DocumentsPipeline:
        records = corpus_records(
            self.corpus, rank=rank, world_size=world_size, local_files=self.local_files
        )
        for record in records:
            with self.track_time():
                self.stat_update("skipped" if record["skip_reason"] else "readable")
                document = record_document(record)
            yield document


class DatasetReader(PipelineStep):
    """A dataset saved with ``save_to_disk`` (a stage's artifact), one contiguous block per task.

    The rows are handed out in blocks of ``block`` rows (a task always gets whole blocks), so
    that work done per block, such as embedding, does not depend on the number of tasks. With
    ``blank_skipped`` the text of a skipped record is emptied: it keeps its place in the
    task's stream (deduplication counts positions) but gives nothing to hash.
    """

    type = "📖 - READER"
    name = "💾 saved dataset"

    def __init__(self, path: Path | str, *, block: int = 1, blank_skipped: bool = False):
        super().__init__()
        self.path = str(path)
        self.block = block
        self.blank_skipped = blank_skipped

    def rows(self, total: int, rank: int, world_size: int) -> range:
        """The rows task ``rank`` of ``world_size`` reads, out of ``total``."""
        blocks = shard_range(math.ceil(total / self.block), rank, world_size)
        return range(min(blocks.start * self.block, total), min(blocks.stop * self.block, total))

    def run(
        self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1
    ) -> DocumentsPipeline:
        from datasets import load_from_disk

        dataset = load_from_disk(self.path)
        rows = self.rows(len(dataset), rank, world_size)
        if not rows:
            return
        part = dataset.select(rows)
        row = rows.start
        for batch in part.iter(batch_size=1000):
            for values in zip(*batch.values(), strict=True):
                record = dict(zip(batch.keys(), values, strict=True))
                if self.blank_skipped and record.get("skip_reason") is not None:
                    record["text"] = ""
                self.stat_update("documents")
                yield record_document(record, row)
                row += 1


class TokenCounter(PipelineStep):
    """Count each file's tokens under the profile's tokenizer into ``metadata["tokens"]``."""

    type = "🔢 - TOKENIZER"
    name = "🔢 token counter"

    def __init__(self, tokenizer: str, batch_size: int = 256):
        super().__init__()
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from phi1lib.embeddings import token_counter

        count = token_counter(self.tokenizer)
        for batch in _batches(data, self.batch_size):
            with self.track_time("batch"):
                counts = count([doc.text for doc in batch])
            for document, tokens in zip(batch, counts, strict=True):
                document.metadata["tokens"] = tokens
                self.stat_update("tokens", value=tokens)
            yield from batch


class EmbedFiles(PipelineStep):
    """Embed every file (its :func:`~phi1lib.filtering.scoring.embedding_view`) block by block.

    Each block of ``block`` rows is embedded in batches of ``embed.batch_size`` on the GPU when
    there is one, and saved to ``output_folder/<first row>.npy`` as soon as it is done; a block
    already there is not embedded again, so a task killed mid-way loses at most one block, and
    the executor's completion markers skip the tasks that had finished. ``threads`` caps torch's
    CPU threads (several tasks at once on one machine would otherwise oversubscribe it).
    """

    type = "🧮 - EMBED"
    name = "🧮 embeddings"

    def __init__(
        self, output_folder: Path | str, embed: Mapping[str, Any], block: int, threads: int = 0
    ):
        super().__init__()
        self.output_folder = Path(output_folder)
        self.embed = dict(embed)
        self.block = block
        self.threads = threads

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from phi1lib.filtering.scoring import embedding_view

        self.output_folder.mkdir(parents=True, exist_ok=True)
        embedder = None
        for start, documents in _blocks(data, self.block):
            target = self.output_folder / f"{start:09d}.npy"
            if target.exists():
                self.stat_update("resumed_blocks")
            else:
                embedder = embedder or self._embedder(rank)
                with self.track_time("block"):
                    vectors = embedder.embed([embedding_view(d.text) for d in documents])
                partial = target.with_suffix(".tmp.npy")
                np.save(partial, vectors)
                partial.replace(target)
                self.stat_update("embedded", value=len(documents))
            yield from documents

    def _embedder(self, rank: int):
        import torch

        from phi1lib.embeddings import load_embedder

        if self.threads:
            torch.set_num_threads(self.threads)
        device = None
        if torch.cuda.is_available():  # a task per GPU when there are several
            device = f"cuda:{rank % torch.cuda.device_count()}"
        return load_embedder(
            self.embed["model"],
            max_tokens=self.embed["max_tokens"],
            max_chunks=self.embed["max_chunks"],
            batch_size=self.embed["batch_size"],
            device=device,
        )


class ScoreFiles(PipelineStep):
    """The forest's educational-value score of every file, from the stored embeddings.

    Sets ``edu_score`` (rounded to 6 places), ``kept`` (score at or above ``threshold``) and
    ``trained_on``. A file the forest was trained on gets its out-of-bag score instead
    (``training_scores``: row -> score), so that it is not favoured over the rest (chapter 1).
    """

    type = "🎓 - SCORER"
    name = "🎓 educational value"

    def __init__(
        self,
        embeddings: Path | str,
        model: Path | str,
        threshold: float,
        training_scores: Mapping[int, float],
        batch_size: int = 4096,
    ):
        super().__init__()
        self.embeddings = str(embeddings)
        self.model = str(model)
        self.threshold = threshold
        self.training_scores = dict(training_scores)
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from phi1lib.filtering.classifier import educational_probability, load_classifier

        vectors = np.load(self.embeddings, mmap_mode="r")
        forest = load_classifier(Path(self.model))
        for batch in _batches(data, self.batch_size):
            rows = [doc.metadata["row"] for doc in batch]
            with self.track_time("batch"):
                scores = educational_probability(forest, np.asarray(vectors[rows]))
            trained_on = [row in self.training_scores for row in rows]
            for i, row in enumerate(rows):
                if trained_on[i]:
                    scores[i] = self.training_scores[row]  # stored as float32, like the rest
            for document, score, trained in zip(batch, scores, trained_on, strict=True):
                kept = bool(score >= self.threshold)
                document.metadata.update(
                    edu_score=round(float(score), 6), kept=kept, trained_on=trained
                )
                self.stat_update("kept" if kept else "filtered_out")
            yield from batch


def reading_steps(
    corpus: Mapping[str, Any], local_files: Sequence[LocalFile] | None, work: Path, engine: Engine
) -> list[Step]:
    """``code_corpus``: every record of the corpus, in ``work/records/*.parquet``."""
    read = [CorpusReader(corpus, local_files), parquet_writer(work / "records", CORPUS_COLUMNS)]
    return [Step("read", read, engine.tasks)]


def embedding_steps(raw: Path, work: Path, embed: Mapping[str, Any], engine: Engine) -> list[Step]:
    """``code_embeddings``: the files of ``raw`` embedded into ``work/blocks/*.npy``."""
    pipeline = [
        DatasetReader(raw, block=EMBED_BLOCK),
        EmbedFiles(work / "blocks", embed, EMBED_BLOCK, threads=engine.threads_per_task()),
    ]
    return [Step("embed", pipeline, engine.tasks, gpu=True)]


def scoring_steps(
    raw: Path,
    embeddings: Path,
    model: Path,
    threshold: float,
    training_scores: Mapping[int, float],
    work: Path,
    engine: Engine,
) -> list[Step]:
    """``filtered_code``: every score in ``work/scores``, the kept files in ``work/kept``."""
    from datatrove.pipeline.filters.lambda_filter import LambdaFilter

    pipeline = [
        DatasetReader(raw),
        ScoreFiles(embeddings, model, threshold, training_scores),
        parquet_writer(work / "scores", SCORE_COLUMNS),
        LambdaFilter(is_kept),
        parquet_writer(work / "kept", SCORED_COLUMNS),
    ]
    return [Step("score", pipeline, engine.tasks)]


def _batches(documents: DocumentsPipeline, size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for document in documents:
        batch.append(document)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _blocks(documents: DocumentsPipeline, block: int) -> Iterator[tuple[int, list[Document]]]:
    """Documents grouped by the block of ``block`` rows their ``row`` falls in."""
    start, members = None, []
    for document in documents:
        first = document.metadata["row"] - document.metadata["row"] % block
        if first != start and members:
            yield start, members
            members = []
        start = first
        members.append(document)
    if members:
        yield start, members


def save_shards(folder: Path, features: Any, target: Path, cache: Path, fingerprint: str) -> Any:
    """Lay the tasks' Parquet files end to end (task order) as one dataset ``save_to_disk``-ed.

    This is how a stage turns its tasks' output into the run-store artifact the chapters read.
    A task with nothing to write leaves no file. ``fingerprint`` (the stage's, with the artifact's
    name) becomes the dataset's: one derived from the files would follow their paths and
    modification times into ``state.json``, and a stage built twice would not write the same bytes.
    """
    from datasets import Dataset

    from phi1lib.runstore import fingerprint as digest

    key = digest({"stage": fingerprint, "artifact": Path(target).name})
    files = sorted(str(path) for path in Path(folder).glob("*.parquet"))
    if files:
        dataset = Dataset.from_generator(
            _parquet_rows,
            gen_kwargs={"files": files},
            features=features,
            cache_dir=str(cache),
            fingerprint=key,
        )
    else:
        dataset = Dataset.from_dict({name: [] for name in features}, features=features)
        dataset._fingerprint = key
    dataset.save_to_disk(str(target))
    return dataset


def _parquet_rows(files: Sequence[str]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=1000):
            yield from batch.to_pylist()
